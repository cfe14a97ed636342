// Model::load_lazy: block weights read only when a block is materialized, released again, and the same
// numbers as a model loaded normally.
#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "model/model.h"
#include "model_test_util.h"

namespace pbs2p {
namespace {

bool same_bits(const Matrix& a, const Matrix& b) {
    return a.rows == b.rows && a.cols == b.cols &&
           std::memcmp(a.ptr(), b.ptr(), sizeof(float) * static_cast<size_t>(a.size())) == 0;
}

void expect_not_materialized(const Model& model, const std::vector<int32_t>& tokens) {
    try {
        model.forward(tokens);
        ADD_FAILURE() << "forward through a released block did not fail";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("not materialized"), std::string::npos) << e.what();
    }
}

TEST(LazyModel, BlocksMaterializedOneAtATimeMatchTheLoadedModel) {
    for (const char* name : {"llama_gqa", "llama3_rope", "opt_bias", "opt_proj", "qwen2_bias"}) {
        SCOPED_TRACE(name);
        const std::string dir = test::golden_dir(name);
        const Model full = Model::load(dir);
        Model lazy = Model::load_lazy(dir);
        ASSERT_TRUE(lazy.is_lazy());
        EXPECT_FALSE(full.is_lazy());
        const std::vector<int32_t> tokens = test::load_golden(name).tokens;
        const auto n = static_cast<int64_t>(tokens.size());
        expect_not_materialized(lazy, tokens);
        EXPECT_LT(lazy.weight_bytes(), full.weight_bytes());

        // Block by block, as the compressor goes: one block resident at a time.
        Matrix expected = full.embed(tokens, 1, n), hidden = lazy.embed(tokens, 1, n);
        for (int l = 0; l < lazy.num_blocks(); ++l) {
            lazy.materialize_block(l);
            lazy.materialize_block(l);  // a second call reads nothing again
            full.run_block(l, expected, 1, n);
            lazy.run_block(l, hidden, 1, n);
            lazy.release_block(l);
            ASSERT_TRUE(same_bits(hidden, expected)) << "block " << l;
        }
        expect_not_materialized(lazy, tokens);

        for (int l = 0; l < lazy.num_blocks(); ++l) lazy.materialize_block(l);
        EXPECT_EQ(lazy.weight_bytes(), full.weight_bytes());
        EXPECT_TRUE(same_bits(lazy.forward(tokens), full.forward(tokens)));
        // Shapes are known without the weights: those save() would write.
        lazy.release_block(0);
        std::vector<std::pair<std::string, std::vector<int64_t>>> visited;
        full.for_each_block_tensor(
            0, [&](const std::string& t, const float*, const std::vector<int64_t>& shape) {
                visited.emplace_back(t, shape);
            });
        auto listed = lazy.block_tensor_shapes(0);
        std::sort(visited.begin(), visited.end());
        std::sort(listed.begin(), listed.end());
        EXPECT_EQ(listed, visited);
    }
}

// Normally loaded models are unaffected by the calls (the compressor makes them on every model).
TEST(LazyModel, CallsAreNoOpsOnALoadedModel) {
    Model model = Model::load(test::golden_dir("llama_gqa"));
    const std::vector<int32_t> tokens = test::load_golden("llama_gqa").tokens;
    const Matrix before = model.forward(tokens);
    for (int l = 0; l < model.num_blocks(); ++l) {
        model.release_block(l);
        model.materialize_block(l);
    }
    model.release_block(0);
    EXPECT_TRUE(same_bits(model.forward(tokens), before));
}

}  // namespace
}  // namespace pbs2p
