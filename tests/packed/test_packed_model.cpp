// Packed layers inside a model: pack a tiny LLaMA checkpoint with random N:8 layouts, load it with the
// packed kernels, and compare logits with the same model holding the dequantized fp32 weights; the pack
// and unpack commands on the same directory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "packed/packed_file.h"
#include "packed/packed_model.h"
#include "packed/packed_model_dir.h"
#include "packed/random_layout.h"

namespace pbs2p {
namespace {

namespace fs = std::filesystem;

class PackedModelTest : public ::testing::Test {
protected:
    void SetUp() override {
        const fs::path golden = fs::path(PBS2P_SOURCE_DIR) / "tests/model/golden/llama_gqa";
        root_ = fs::temp_directory_path() /
                ("pbs2p_packed_model_" + std::to_string(::getpid()) + "_" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(root_ / "compressed");
        for (const char* f : {"config.json", "model.safetensors"})
            fs::copy_file(golden / f, root_ / "compressed" / f);
        Model dense = Model::load(golden.string());
        uint64_t seed = 1;
        for (Linear* l : dense.all_linears()) {
            if (!l->present() || l->name.find("layers.") == std::string::npos) continue;
            layouts_[l->name] = random_layout(l->out_features, l->in_features, 5, 8, l->in_features, seed++);
        }
        write_layouts((root_ / "compressed" / kLayoutsFileName).string(), layouts_);
    }
    void TearDown() override { fs::remove_all(root_); }

    // The golden model with every compressed linear replaced by its dequantized weight.
    Model dequantized_model() const {
        return Model::load((root_ / "compressed").string(), [&](const std::string& name, int64_t, int64_t, Linear& l) {
            const auto it = layouts_.find(name);
            if (it == layouts_.end()) return false;
            l.weight = dequantize(it->second);
            return true;
        });
    }

    fs::path root_;
    std::map<std::string, BinaryLayout> layouts_;
};

TEST_F(PackedModelTest, PackedModelMatchesDequantizedWeights) {
    ASSERT_EQ(layouts_.size(), 14u);  // 2 blocks x (q, k, v, o, gate, up, down)
    const PackSummary s = pack_model_dir((root_ / "compressed").string(), (root_ / "packed").string(),
                                         {TableType::f32, TableType::f32});
    EXPECT_EQ(s.layers, 14);
    EXPECT_GT(s.other_tensors, 0);
    const std::vector<int32_t> tokens = {1, 5, 17, 33, 2, 90, 7};
    const Matrix expected = dequantized_model().forward(tokens);
    for (const PackedKernel& k : packed_kernels()) {
        if (!k.available) {
            std::printf("[ SKIPPED  ] kernel %s: this CPU lacks %s\n", k.name, k.isa);
            continue;
        }
        const Model packed = load_packed_model((root_ / "packed").string(), k.name);
        for (const Linear* l : packed.block_linears(0)) {
            ASSERT_TRUE(l->kernel) << l->name;
            EXPECT_TRUE(l->weight.empty()) << l->name;
        }
        const Matrix logits = packed.forward(tokens);
        ASSERT_EQ(logits.rows, expected.rows);
        float max_logit = 0, max_diff = 0;
        for (int64_t i = 0; i < logits.size(); ++i) {
            max_logit = std::max(max_logit, std::fabs(expected.data[i]));
            max_diff = std::max(max_diff, std::fabs(logits.data[i] - expected.data[i]));
        }
        const float tol = std::string(k.activations) == "q8" ? 0.05f : 1e-4f;
        EXPECT_LE(max_diff, tol * std::max(1.0f, max_logit)) << k.name;
    }
}

// Embedding and head stored as f16 / q8 / q4 run in that type; unpacking decodes them to fp32, and the
// dense model built from the unpacked directory gives the same logits.
TEST_F(PackedModelTest, TablesRunInTheirStoredType) {
    const std::vector<int32_t> tokens = {1, 5, 17, 33, 2, 90, 7, 64, 3};  // 9 tokens: the fp32 panel path
    const PackSummary f32 = pack_model_dir((root_ / "compressed").string(), (root_ / "packed32").string(),
                                           {TableType::f32, TableType::f32});
    for (TableType type : {TableType::f16, TableType::q8, TableType::q4}) {
        const std::string packed = (root_ / "packed").string(), unpacked = (root_ / "unpacked").string();
        const PackSummary s = pack_model_dir((root_ / "compressed").string(), packed, {type, type});
        ASSERT_EQ(s.tables.size(), 2u);
        for (const TableSummary& t : s.tables) {
            EXPECT_EQ(t.type, type) << t.name;
            EXPECT_EQ(t.bytes, 96 * table_format(type).row_bytes(32)) << t.name;
        }
        EXPECT_EQ(s.packed_bytes, f32.packed_bytes);
        EXPECT_EQ(s.parameters(), f32.parameters());
        EXPECT_LT(s.bits_per_parameter(), f32.bits_per_parameter());
        EXPECT_EQ(PackedFile::open(packed + "/" + kPackedModelFileName).format_version(), 2);
        const Model model = load_packed_model(packed, default_packed_kernel().name);
        ASSERT_TRUE(model.parts().token_embedding.table);
        ASSERT_TRUE(model.parts().lm_head.table);
        EXPECT_NE(model.parts().lm_head.table->format_name().find(table_type_name(type)), std::string::npos);
        unpack_model_dir(packed, unpacked, true);
        const Model dense = Model::load(unpacked);
        const Matrix expected = dense.forward(tokens), logits = model.forward(tokens);
        float max_logit = 0, max_diff = 0;
        for (int64_t i = 0; i < logits.size(); ++i) {
            max_logit = std::max(max_logit, std::fabs(expected.data[i]));
            max_diff = std::max(max_diff, std::fabs(logits.data[i] - expected.data[i]));
        }
        EXPECT_LE(max_diff, 1e-4f * std::max(1.0f, max_logit)) << table_type_name(type);
        fs::remove_all(packed);
        fs::remove_all(unpacked);
    }
}

TEST_F(PackedModelTest, PackAndUnpackCommands) {
    const std::string bin = PBS2P_BINARY;
    const std::string in = (root_ / "compressed").string(), packed = (root_ / "packed").string(),
                      out = (root_ / "unpacked").string();
    ASSERT_EQ(std::system((bin + " pack " + in + " -o " + packed + " --json > /dev/null").c_str()), 0);
    ASSERT_EQ(std::system((bin + " unpack " + packed + " -o " + out + " --dequantize > /dev/null").c_str()), 0);
    const auto back = read_layouts((fs::path(out) / kLayoutsFileName).string());
    ASSERT_EQ(back.size(), layouts_.size());
    for (const auto& [name, l] : layouts_) {
        EXPECT_EQ(back.at(name).keep, l.keep);
        EXPECT_EQ(back.at(name).sign, l.sign);
        EXPECT_EQ(back.at(name).alpha, l.alpha);
    }
    EXPECT_TRUE(fs::exists(fs::path(out) / "config.json"));
    // Table types from the command line; --json reports the whole-file accounting.
    const std::string json_path = (root_ / "pack.json").string();
    ASSERT_EQ(std::system((bin + " pack " + in + " -o " + packed +
                           " --embedding-type q4 --head-type f16 --json > " + json_path)
                              .c_str()),
              0);
    const PackSummary s = summarize_packed_file(packed);
    ASSERT_EQ(s.tables.size(), 2u);
    for (const TableSummary& t : s.tables)
        EXPECT_EQ(t.type, is_lm_head_tensor(t.name) ? TableType::f16 : TableType::q4) << t.name;
    std::ifstream json_file(json_path);
    const nlohmann::json j = nlohmann::json::parse(json_file);
    EXPECT_DOUBLE_EQ(j.at("bits_per_parameter").get<double>(), s.bits_per_parameter());
    EXPECT_EQ(j.at("file_bytes").get<int64_t>(), s.file_bytes);
    EXPECT_EQ(j.at("tables").size(), 2u);
    EXPECT_NE(std::system((bin + " pack " + in + " -o " + packed + " --head-type q5 2> /dev/null").c_str()),
              0);
    // A directory without layouts fails with a one-line error and a non-zero status.
    EXPECT_NE(std::system((bin + " pack " + out + "/missing -o " + packed + " 2> /dev/null").c_str()), 0);
}

}  // namespace
}  // namespace pbs2p
