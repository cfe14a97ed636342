// Allocation of codes by tensor type: parsing, exact bit counts and the greedy budget fill.
#include <gtest/gtest.h>

#include "compress/allocation.h"
#include "compress/driver.h"
#include "core/error.h"

using namespace pbs2p;

namespace {

// One LLaMA block of ref-llama's shape: 256 wide, FFN 768, 2 KV heads of 64.
std::vector<LayerShape> block_shapes() {
    return {{"model.layers.0.self_attn.q_proj", 256, 256}, {"model.layers.0.self_attn.k_proj", 128, 256},
            {"model.layers.0.self_attn.v_proj", 128, 256}, {"model.layers.0.self_attn.o_proj", 256, 256},
            {"model.layers.0.mlp.gate_proj", 768, 256},    {"model.layers.0.mlp.up_proj", 768, 256},
            {"model.layers.0.mlp.down_proj", 256, 768}};
}

}  // namespace

TEST(Allocation, ParsesChoicesLaddersAndRecipes) {
    EXPECT_EQ(parse_code_choice("tern13@-1"), (CodeChoice{"tern13", -1}));
    EXPECT_EQ(parse_code_choice("tern11@256"), (CodeChoice{"tern11", 256}));
    EXPECT_THROW(parse_code_choice("tern12@8"), Error);
    EXPECT_THROW(parse_code_choice("tern11@x"), Error);
    EXPECT_EQ(parse_ladder("tern11@256,tern13@-1").size(), 2u);
    const auto recipe = parse_recipe("v_proj=tern13@-1,*=tern11@256");
    EXPECT_EQ(recipe.at("v_proj"), (CodeChoice{"tern13", -1}));
    EXPECT_EQ(recipe_to_string(recipe), "*=tern11@256,v_proj=tern13@-1");
    EXPECT_THROW(parse_recipe("v_proj"), Error);
    EXPECT_THROW(parse_recipe("v_proj=tern11@8,v_proj=tern13@8"), Error);
    EXPECT_EQ(tensor_type("model.layers.3.mlp.down_proj"), "down_proj");
}

TEST(Allocation, CountsBitsExactly) {
    EXPECT_DOUBLE_EQ(code_choice_bits({"tern11", 256}, 256), 11.0 / 8 + 16.0 / 256);
    EXPECT_DOUBLE_EQ(code_choice_bits({"tern13", -1}, 768), 13.0 / 8 + 16.0 / 768);
    EXPECT_THROW(code_choice_bits({"tern13", 96}, 256), Error);
    // A scale group wider than the row is one per row, as the compressor reads it (small models).
    EXPECT_DOUBLE_EQ(code_choice_bits({"tern11", 256}, 32), code_choice_bits({"tern11", -1}, 32));
    // All tern11@256: 1.4375 everywhere.
    EXPECT_DOUBLE_EQ(recipe_bits(block_shapes(), parse_recipe("*=tern11@256")), 1.4375);
    // v_proj (32768 of 786432 weights) at tern13@-1 adds 0.25 bits on 1/24 of the weights.
    EXPECT_NEAR(recipe_bits(block_shapes(), parse_recipe("v_proj=tern13@-1,*=tern11@256")),
                1.4375 + 0.25 / 24, 1e-12);
}

TEST(Allocation, GreedyFillStaysUnderTheBudgetAndFollowsThePriority) {
    const auto ladder = parse_ladder("tern11@256,tern13@-1,tern13@128");
    const std::vector<std::string> priority = {"v_proj", "down_proj", "o_proj", "gate_proj", "up_proj"};
    for (double budget : {1.4375, 1.5, 1.6, 1.65, 1.7, 2.0}) {
        const auto recipe = allocate_codes(block_shapes(), ladder, priority, budget);
        const double bits = recipe_bits(block_shapes(), recipe);
        EXPECT_LE(bits, budget + 1e-12) << budget;
        // Greedy is maximal: no single type can be raised one more rung within the budget.
        for (const auto& [type, choice] : recipe) {
            size_t rung = 0;
            while (!(ladder[rung] == choice)) ++rung;
            if (rung + 1 == ladder.size()) continue;
            auto raised = recipe;
            raised[type] = ladder[rung + 1];
            EXPECT_GT(recipe_bits(block_shapes(), raised), budget) << budget << " " << type;
        }
    }
    // 1.5: v_proj first (+0.0104), then down_proj (+0.052) fit; o_proj (+0.0208) does not after both.
    const auto small = allocate_codes(block_shapes(), ladder, priority, 1.5);
    EXPECT_EQ(small.at("v_proj").code, "tern13");
    EXPECT_EQ(small.at("down_proj").code, "tern13");
    EXPECT_EQ(small.at("q_proj").code, "tern11");
    EXPECT_THROW(allocate_codes(block_shapes(), ladder, priority, 1.4), Error);
}

TEST(Allocation, DriverAppliesTheRecipeByTensorType) {
    DriverOptions d;
    d.layer.method = "pbs2p";
    d.code_by_type = parse_recipe("v_proj=tern13@-1,*=tern11@256");
    EXPECT_EQ(layer_options_for(d, "model.layers.1.self_attn.v_proj").code, "tern13");
    EXPECT_EQ(layer_options_for(d, "model.layers.1.self_attn.v_proj").scale_group, -1);
    EXPECT_EQ(layer_options_for(d, "model.layers.1.mlp.up_proj").scale_group, 256);
    d.code_by_type = parse_recipe("v_proj=tern13@-1");
    EXPECT_THROW(layer_options_for(d, "model.layers.1.mlp.up_proj"), Error);
}
