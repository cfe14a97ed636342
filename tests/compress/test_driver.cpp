#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "compress/driver.h"
#include "core/rng.h"
#include "io/safetensors.h"

namespace pbs2p {
namespace {

namespace fs = std::filesystem;

std::string golden_model(const char* name) { return std::string(PBS2P_SOURCE_DIR) + "/tests/model/golden/" + name; }

CalibrationSet random_calibration(const Model& model, int64_t windows, int64_t seq, uint64_t seed) {
    Rng rng(seed);
    std::vector<int32_t> stream(static_cast<size_t>(windows * seq * 2));
    for (auto& t : stream) t = static_cast<int32_t>(rng.below(static_cast<uint64_t>(model.config().vocab_size)));
    return sample_calibration(stream, windows, seq, seed, "random stream");
}

DriverOptions pbs2p_options() {
    DriverOptions options;
    options.layer.method = "pbs2p";
    options.layer.n_keep = 4;
    options.layer.m_group = 8;
    options.layer.block_size = 32;  // the golden test models are 32 wide
    return options;
}

std::vector<float> all_weights(Model& model) {
    std::vector<float> out;
    for (Linear* linear : model.all_linears()) out.insert(out.end(), linear->weight.data.begin(), linear->weight.data.end());
    return out;
}

TEST(Calibration, RejectsTooShortText) {
    std::vector<int32_t> stream(100, 1);
    EXPECT_THROW(sample_calibration(stream, 4, 32, 0, "short.txt"), Error);
    try {
        sample_calibration(stream, 4, 32, 0, "short.txt");
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("short.txt"), std::string::npos);
    }
    CalibrationSet ok = sample_calibration(stream, 3, 32, 0, "short.txt");
    EXPECT_EQ(ok.tokens.size(), 96u);
}

TEST(Calibration, IsDeterministicForASeed) {
    std::vector<int32_t> stream(1000);
    for (size_t i = 0; i < stream.size(); ++i) stream[i] = static_cast<int32_t>(i);
    EXPECT_EQ(sample_calibration(stream, 5, 16, 7, "s").tokens, sample_calibration(stream, 5, 16, 7, "s").tokens);
    EXPECT_NE(sample_calibration(stream, 5, 16, 7, "s").tokens, sample_calibration(stream, 5, 16, 8, "s").tokens);
}

TEST(Driver, Pbs2pCompressesEveryLayerToExactNm) {
    for (const char* name : {"llama_gqa", "opt_bias"}) {
        Model model = Model::load(golden_model(name));
        CalibrationSet calibration = random_calibration(model, 4, 32, 1);
        std::map<std::string, BinaryLayout> layouts;
        CompressionReport report = compress_model(model, calibration, pbs2p_options(), &layouts);
        ASSERT_EQ(report.layers.size(), model.all_linears().size()) << name;
        // Coarse stage: N per block within bounds, averaging exactly the target.
        ASSERT_EQ(report.block_keep.size(), static_cast<size_t>(model.num_blocks()));
        int sum = 0;
        for (int n : report.block_keep) {
            EXPECT_GE(n, 3);
            EXPECT_LE(n, 5);
            sum += n;
        }
        EXPECT_EQ(sum, 4 * model.num_blocks());
        for (Linear* linear : model.all_linears()) {
            ASSERT_TRUE(layouts.count(linear->name)) << linear->name;
            const BinaryLayout& layout = layouts.at(linear->name);
            Matrix expanded = dequantize(layout);
            ASSERT_EQ(expanded.data, linear->weight.data) << linear->name;
            for (int64_t i = 0; i < linear->weight.rows; ++i)
                for (int64_t g = 0; g < linear->weight.cols; g += layout.m_group) {
                    int kept = 0;
                    for (int j = 0; j < layout.m_group; ++j) kept += linear->weight(i, g + j) != 0.0f;
                    EXPECT_LE(kept, layout.n_keep);
                }
        }
        EXPECT_GT(report.storage_bits(), report.nominal_bits());
    }
}

// A fresh checkpoint folder in `options`, which stop after the first block.
fs::path interrupting_checkpoint(DriverOptions& options, const std::string& name) {
    fs::path checkpoint = fs::temp_directory_path() / ("pbs2p-test-driver-" + name);
    fs::remove_all(checkpoint);
    fs::create_directories(checkpoint);
    options.checkpoint_dir = checkpoint.string();
    options.fingerprint = name;
    options.stop_after_blocks = 1;
    return checkpoint;
}

TEST(Driver, ResumedRunIsIdenticalToUninterruptedRun) {
    const std::string dir = golden_model("llama_gqa");
    Model reference = Model::load(dir);
    CalibrationSet calibration = random_calibration(reference, 4, 32, 2);
    DriverOptions options = pbs2p_options();
    compress_model(reference, calibration, options);

    const fs::path checkpoint = interrupting_checkpoint(options, "resume");
    Model interrupted = Model::load(dir);
    EXPECT_THROW(compress_model(interrupted, calibration, options), CompressionInterrupted);

    options.stop_after_blocks = -1;
    Model resumed = Model::load(dir);
    CompressionReport report = compress_model(resumed, calibration, options);
    EXPECT_EQ(report.resumed_blocks, 1);
    EXPECT_EQ(all_weights(resumed), all_weights(reference));

    // A checkpoint from a different job is ignored.
    options.fingerprint = "other";
    Model fresh = Model::load(dir);
    EXPECT_EQ(compress_model(fresh, calibration, options).resumed_blocks, 0);
    EXPECT_EQ(all_weights(fresh), all_weights(reference));
    fs::remove_all(checkpoint);
}

void expect_same_layouts(const std::map<std::string, BinaryLayout>& a,
                         const std::map<std::string, BinaryLayout>& b) {
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [name, layout] : a) {
        ASSERT_TRUE(b.count(name)) << name;
        const BinaryLayout& other = b.at(name);
        EXPECT_TRUE(layout.keep == other.keep && layout.sign == other.sign && layout.alpha == other.alpha &&
                    layout.mu == other.mu && layout.n_keep == other.n_keep && layout.code == other.code)
            << name;
    }
}

// A lazily loaded model gives the weights and layouts of a loaded one; block_done sees every block
// resident and in order, also the restored ones; a binary method's checkpoint stores layouts, not fp32
// weights, and the resumed run re-derives the same weights from them; afterwards no block is resident.
TEST(Driver, LazyModelBlockByBlockWithCompactCheckpoint) {
    const std::string dir = golden_model("llama_gqa");
    Model reference = Model::load(dir);
    CalibrationSet calibration = random_calibration(reference, 4, 32, 3);
    DriverOptions options = pbs2p_options();
    std::map<std::string, BinaryLayout> reference_layouts;
    compress_model(reference, calibration, options, &reference_layouts);

    const fs::path checkpoint = interrupting_checkpoint(options, "lazy");
    Model interrupted = Model::load_lazy(dir);
    EXPECT_THROW(compress_model(interrupted, calibration, options), CompressionInterrupted);
    const SafetensorsReader block0 =
        SafetensorsReader::open((checkpoint / "block-0000.safetensors").string());
    for (const std::string& name : block0.names())
        EXPECT_FALSE(name.ends_with(".weight")) << name << ": the layout determines it";

    options.stop_after_blocks = -1;
    Model resumed = Model::load_lazy(dir);
    std::vector<int> done;
    std::vector<bool> restored;
    std::vector<float> weights;
    DriverHooks hooks;
    hooks.block_done = [&](int l, std::map<std::string, BinaryLayout>& layouts) {
        done.push_back(l);
        for (Linear* linear : resumed.block_linears(l)) {
            EXPECT_TRUE(layouts.count(linear->name)) << linear->name;
            weights.insert(weights.end(), linear->weight.data.begin(), linear->weight.data.end());
        }
    };
    hooks.block_finished = [&](int, const BlockTimes&, bool was_restored) {
        restored.push_back(was_restored);
    };
    std::map<std::string, BinaryLayout> layouts;
    const CompressionReport report = compress_model(resumed, calibration, options, &layouts, {}, hooks);
    EXPECT_EQ(report.resumed_blocks, 1);
    EXPECT_EQ(done, (std::vector<int>{0, 1}));
    EXPECT_EQ(restored, (std::vector<bool>{true, false}));
    EXPECT_EQ(weights, all_weights(reference));
    expect_same_layouts(layouts, reference_layouts);
    ASSERT_EQ(report.block_times.size(), 2u);
    EXPECT_GT(report.block_times[1][BlockPhase::solve], 0.0);
    try {
        resumed.forward({1, 2, 3});
        ADD_FAILURE() << "the blocks should be released after block_done";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("not materialized"), std::string::npos) << e.what();
    }
    fs::remove_all(checkpoint);
}

// Most distinct values in one row over aligned column spans of `span` columns (the structure a method's
// scales are shared over).
size_t max_distinct_per_row_span(const Matrix& w, int64_t span) {
    size_t most = 0;
    for (int64_t i = 0; i < w.rows; ++i)
        for (int64_t j0 = 0; j0 < w.cols; j0 += span) {
            std::set<float> values(w.row(i) + j0, w.row(i) + std::min(j0 + span, w.cols));
            most = std::max(most, values.size());
        }
    return most;
}

// Most nonzero entries in one aligned group of m columns.
int max_kept_per_group(const Matrix& w, int m) {
    int most = 0;
    for (int64_t i = 0; i < w.rows; ++i)
        for (int64_t g = 0; g < w.cols; g += m) {
            int kept = 0;
            for (int j = 0; j < m; ++j) kept += w(i, g + j) != 0.0f;
            most = std::max(most, kept);
        }
    return most;
}

TEST(Driver, BaselinesRunThroughTheSameDriver) {
    // Every method through the driver on one model, each checked for the structure it promises.
    Model fp = Model::load(golden_model("opt_bias"));
    CalibrationSet calibration = random_calibration(fp, 4, 32, 3);
    const std::set<std::string> nm = {"sparsegpt", "wanda", "stbllm", "pbs2p"};
    for (const std::string& method : method_names()) {
        Model model = Model::load(golden_model("opt_bias"));
        DriverOptions options = pbs2p_options();
        options.layer.method = method;
        CompressionReport report = compress_model(model, calibration, options);
        ASSERT_EQ(report.layers.size(), model.all_linears().size()) << method;
        const std::vector<Linear*> linears = model.all_linears();
        const std::vector<Linear*> originals = fp.all_linears();
        for (size_t k = 0; k < linears.size(); ++k) {
            const Matrix& w = linears[k]->weight;
            const LayerStats& s = report.layers[k].stats;
            const std::string where = method + " " + linears[k]->name;
            for (float v : w.data) ASSERT_TRUE(std::isfinite(v)) << where;
            EXPECT_NE(w.data, originals[k]->weight.data) << where << ": left uncompressed";
            EXPECT_GT(s.rel_error, 0.0) << where;
            EXPECT_LT(s.rel_error, 1.0) << where;
            EXPECT_EQ(s.method, method) << where;
            if (method == "rtn" || method == "gptq") {
                // One 2-bit grid per row: at most 4 levels, and bits = 2 + one fp16 (scale, zero) per row.
                EXPECT_LE(max_distinct_per_row_span(w, w.cols), 4u) << where;
                EXPECT_DOUBLE_EQ(s.storage_bits, 2.0 + 32.0 / static_cast<double>(w.cols)) << where;
            }
            if (nm.count(method)) {
                // N:M: at most N nonzeros per group (pbs2p: the block's N from the coarse stage).
                EXPECT_EQ(s.m_group, 8) << where;
                EXPECT_EQ(s.n_keep, method == "pbs2p" ? report.block_keep.at(report.layers[k].block) : 4) << where;
                EXPECT_LE(max_kept_per_group(w, 8), s.n_keep) << where;
                EXPECT_GT(s.pruned, 0) << where;
            }
            if (method == "pbs2p") {
                // Row-wise backbone: every kept weight is mu +- alpha of its row and scale group.
                EXPECT_LE(max_distinct_per_row_span(w, 32), 3u) << where;
            }
            if (method == "billm" || method == "arb-llm") {
                EXPECT_GT(s.salient_fraction, 0.0) << where;
                EXPECT_LT(s.salient_fraction, 1.0) << where;
                EXPECT_NEAR(s.nominal_bits, 1.0 + s.salient_fraction, 1e-12) << where;
                EXPECT_GT(s.storage_bits, s.nominal_bits) << where;
            }
            if (method == "billm") {
                // Salient columns: order-2 residual (4 levels); the rest: two groups of one (alpha, mu) each.
                EXPECT_LE(max_distinct_per_row_span(w, 32), 8u) << where;
            }
            if (method == "sparsegpt" || method == "wanda") {
                EXPECT_GT(s.storage_bits, 8.0) << where;  // fp16 kept
            }
        }
    }
}

}  // namespace
}  // namespace pbs2p
