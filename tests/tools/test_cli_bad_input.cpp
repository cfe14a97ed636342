// Bad input through the `pbs2p` binary: every case must end with exit status 1 and one error line naming
// the file and the item at fault, never a signal, a sanitizer report or an "internal error". Fixtures are
// golden test models copied to a temp directory and mutated byte by byte.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <functional>
#include <limits>

#include "model/model.h"
#include "packed/packed_file.h"
#include "packed/random_layout.h"
#include "tools/cli_test_util.h"

namespace pbs2p {
namespace {

using namespace cli_test;

class CliBadInput : public ::testing::Test {
  protected:
    void SetUp() override {
        model_ = copy_golden("llama_gqa", tmp_ / "model");
        text_ = tmp_ / "text.txt";
        write_file(text_, sample_text(1500));
    }
    fs::path weights() const { return model_ / "model.safetensors"; }
    fs::path config() const { return model_ / "config.json"; }
    // Commands that load the model: info, eval, generate, compress.
    CliRun info() const { return run_cli({"info", model_.string()}); }
    CliRun eval(const std::string& ctx = "32") const {
        return run_cli({"eval", model_.string(), "--text", text_.string(), "--ctx", ctx, "-t", "1"});
    }
    CliRun generate() const {
        return run_cli({"generate", model_.string(), "-p", "the", "-n", "2", "-t", "1"});
    }
    CliRun compress(const std::vector<std::string>& extra, const std::string& calib = "") const {
        std::vector<std::string> args = {"compress",
                                         model_.string(),
                                         "--calib",
                                         calib.empty() ? (source_dir() / "data/calib.txt").string() : calib,
                                         "--calib-windows",
                                         "2",
                                         "--calib-seq",
                                         "32",
                                         "-o",
                                         (tmp_ / "out").string(),
                                         "-t",
                                         "1"};
        args.insert(args.end(), extra.begin(), extra.end());
        return run_cli(args);
    }
    // Every model-loading command reports the same defect cleanly.
    void expect_all_loaders_fail(std::initializer_list<std::string> mentions) const {
        for (const CliRun& r : {eval(), generate(), compress({"--method", "sparsegpt"})})
            expect_clean_error(r, mentions);
    }
    void mutate_header(const std::function<void(nlohmann::json&)>& change) const {
        SafetensorsParts parts = SafetensorsParts::read(weights());
        change(parts.header);
        parts.write(weights());
    }

    TempDir tmp_;
    fs::path model_, text_;
};

const std::string kTensor = "model.layers.1.mlp.up_proj.weight";  // BF16 [64, 32]

TEST_F(CliBadInput, TruncatedSafetensors) {
    const std::string bytes = read_file(weights());
    write_file(weights(), bytes.substr(0, bytes.size() / 2));
    expect_all_loaders_fail({weights().string()});
    expect_clean_error(info(), {weights().string()});
    write_file(weights(), bytes.substr(0, 5));  // shorter than the header length field
    expect_clean_error(eval(), {weights().string()});
}

TEST_F(CliBadInput, CorruptedHeaderJson) {
    const SafetensorsParts parts = SafetensorsParts::read(weights());
    std::string header = parts.header.dump();
    header[header.size() / 2] = '}';
    header.insert(1, "\"broken\": [");
    SafetensorsParts::write_raw(weights(), header, parts.data);
    expect_all_loaders_fail({weights().string()});
    expect_clean_error(info(), {weights().string()});
}

TEST_F(CliBadInput, HeaderLengthBeyondFile) {
    std::string bytes = read_file(weights());
    const uint64_t huge = uint64_t{1} << 40;
    std::memcpy(bytes.data(), &huge, 8);
    write_file(weights(), bytes);
    expect_clean_error(eval(), {weights().string()});
}

TEST_F(CliBadInput, DataOffsetsOutOfBounds) {
    mutate_header([](nlohmann::json& h) {
        auto& offsets = h[kTensor]["data_offsets"];
        offsets[1] = offsets[1].get<int64_t>() + (int64_t{1} << 30);
    });
    expect_all_loaders_fail({weights().string(), kTensor});
}

TEST_F(CliBadInput, MissingTensor) {
    mutate_header([](nlohmann::json& h) {
        h[kTensor + ".renamed"] = h[kTensor];
        h.erase(kTensor);
    });
    expect_all_loaders_fail({model_.string(), kTensor});
}

TEST_F(CliBadInput, ShapeDisagreesWithConfig) {
    mutate_header([](nlohmann::json& h) { h[kTensor]["shape"] = {32, 64}; });  // same bytes, transposed
    expect_all_loaders_fail({kTensor});
}

TEST_F(CliBadInput, UnsupportedDtypeF64) {
    mutate_header([](nlohmann::json& h) {
        h[kTensor]["dtype"] = "F64";
        h[kTensor]["shape"] = {16, 32};  // 4096 bytes either way
    });
    expect_all_loaders_fail({kTensor, "F64"});
}

TEST_F(CliBadInput, NonFiniteWeight) {
    const SafetensorsParts parts = SafetensorsParts::read(weights());
    for (const uint16_t bits :
         {uint16_t{0x7FC0}, uint16_t{0x7F80}, uint16_t{0xFF80}}) {  // bf16 NaN, +Inf, -Inf
        SafetensorsParts bad = parts;
        std::memcpy(bad.data.data() + bad.begin(kTensor) + 2 * 37, &bits, 2);
        bad.write(weights());
        expect_all_loaders_fail({kTensor});
    }
}

TEST_F(CliBadInput, UnsupportedArchitecture) {
    auto c = nlohmann::json::parse(read_file(config()));
    c["architectures"] = {"GPT2LMHeadModel"};
    c["model_type"] = "gpt2";
    write_file(config(), c.dump(2));
    expect_all_loaders_fail({config().string(), "GPT2LMHeadModel"});
    expect_clean_error(info(), {config().string(), "GPT2LMHeadModel"});
}

TEST_F(CliBadInput, ConfigIsNotJson) {
    write_file(config(), "this is not JSON {");
    expect_all_loaders_fail({config().string()});
    expect_clean_error(info(), {config().string()});
}

// A binary config.json: the error names the file and the byte offset, not the bytes.
TEST_F(CliBadInput, ConfigIsBinary) {
    write_file(config(), std::string("\xff\xfe\x00\x01\x89PNG", 8));
    expect_all_loaders_fail({config().string(), "byte 1"});
    expect_clean_error(info(), {config().string(), "byte 1"});
}

// Text that is not UTF-8 is rejected with the offset of the first bad byte (never silently replaced):
// a stray byte, an overlong form, a surrogate, a truncated sequence at the end.
TEST_F(CliBadInput, TextIsNotUtf8) {
    const std::pair<std::string, std::string> cases[] = {
        {"the union\xff is strong", "offset 9 (byte 0xff)"},
        {"ab\xc0\xafcd", "offset 2 (byte 0xc0)"},
        {"state \xed\xa0\x80 of", "offset 6 (byte 0xed)"},
        {"caf\xc3\xa9 au lait \xe2\x82", "offset 14 (byte 0xe2)"}};
    for (const auto& [bytes, where] : cases) {
        write_file(text_, sample_text(1500) + bytes);
        const std::string offset = "offset " + std::to_string(1500 + std::stoi(where.substr(7)));
        const std::string byte = where.substr(where.find("(byte"));
        expect_clean_error(eval(), {text_.string(), "not valid UTF-8", offset, byte});
        expect_clean_error(compress({"--method", "sparsegpt"}, text_.string()),
                           {text_.string(), offset, byte});
        expect_clean_error(run_cli({"tokenize", model_.string(), "--text", text_.string()}),
                           {text_.string(), offset});
    }
    expect_clean_error(run_cli({"generate", model_.string(), "-p", "the \xff", "-n", "2"}),
                       {"--prompt", "offset 4 (byte 0xff)"});
    write_file(text_, sample_text(1500) + "caf\xc3\xa9 \xe2\x82\xac 10");  // valid multi-byte UTF-8 passes
    EXPECT_EQ(eval().exit_code, 0) << eval().describe();
}

TEST_F(CliBadInput, MissingConfigAndWeights) {
    fs::remove(config());
    expect_clean_error(eval(), {"config.json"});
    copy_golden("llama_gqa", tmp_ / "again", false);
    model_ = tmp_ / "again";
    fs::copy_file(fixture("tiny_tokenizer.model"), model_ / "tokenizer.model");
    fs::remove(weights());
    expect_clean_error(eval(), {model_.string(), "model.safetensors"});
}

TEST_F(CliBadInput, EmptyText) {
    write_file(text_, "");
    expect_clean_error(eval(), {text_.string(), "empty"});
}

TEST_F(CliBadInput, TextShorterThanContext) {
    write_file(text_, "the union is strong");
    // The file is not named here (perplexity.cpp checks the token count without knowing the file).
    expect_clean_error(eval("64"), {"too short", "64"});
}

TEST_F(CliBadInput, MissingTextFile) {
    text_ = tmp_ / "no-such-text.txt";
    expect_clean_error(eval(), {text_.string()});
}

TEST_F(CliBadInput, UnknownTokenizerType) {
    fs::remove(model_ / "tokenizer.model");
    write_file(model_ / "tokenizer.json",
               R"({"model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 1}}})");
    const fs::path tokenizer = model_ / "tokenizer.json";
    expect_clean_error(eval(), {tokenizer.string(), "WordPiece"});
    expect_clean_error(generate(), {tokenizer.string(), "WordPiece"});
    expect_clean_error(compress({"--method", "sparsegpt"}), {tokenizer.string(), "WordPiece"});
    write_file(tokenizer, "\x01\x02 not a tokenizer");
    expect_clean_error(eval(), {tokenizer.string()});
}

TEST_F(CliBadInput, NoTokenizer) {
    fs::remove(model_ / "tokenizer.model");
    expect_clean_error(eval(), {model_.string(), "tokenizer"});
}

TEST_F(CliBadInput, CompressNmKeepsEverything) {
    expect_clean_error(compress({"--method", "pbs2p", "--nm", "8:8"}), {"--nm", "8:8"});
    expect_clean_error(compress({"--method", "pbs2p", "--nm", "four:eight"}), {"--nm", "four:eight"});
    EXPECT_FALSE(fs::exists(tmp_ / "out" / "model.safetensors"));
}

TEST_F(CliBadInput, CompressGroupNotDividingWidth) {
    // Every linear of the golden model has 32 or 64 input columns: M = 7 divides none of them.
    const CliRun r = compress({"--method", "pbs2p", "--nm", "3:7"});
    expect_clean_error(r, {"7"});
    EXPECT_TRUE(contains(last_line(r.err), "model.layers.0") || contains(last_line(r.err), "32"))
        << "error names neither the layer nor the width: " << last_line(r.err);
    EXPECT_FALSE(fs::exists(tmp_ / "out" / "model.safetensors"));
}

TEST_F(CliBadInput, CompressUnknownMethod) {
    expect_clean_error(compress({"--method", "nonsense"}), {"--method", "nonsense"});
}

TEST_F(CliBadInput, CompressCalibrationTooShort) {
    const fs::path calib = tmp_ / "calib-short.txt";
    write_file(calib, "Fellow citizens of the senate and house of representatives.");
    expect_clean_error(compress({"--method", "sparsegpt"}, calib.string()), {calib.string()});
}

TEST_F(CliBadInput, CompressBadOptionValues) {
    for (const std::vector<std::string>& extra : {std::vector<std::string>{"--method", "gptq", "--bits", "0"},
                                                  {"--method", "pbs2p", "--importance", "x"},
                                                  {"--method", "pbs2p", "--backbone", "nope"},
                                                  {"--method", "pbs2p", "--fine-metric", "nope"},
                                                  {"--method", "pbs2p", "--dtype", "f8"}}) {
        const CliRun r = compress(extra);
        EXPECT_NE(r.exit_code, 0) << r.describe();
        expect_no_crash(r);
    }
}

// --- packed files -------------------------------------------------------------------------------------

class CliBadPacked : public CliBadInput {
  protected:
    void SetUp() override {
        CliBadInput::SetUp();
        // Random valid 5:8 layouts for every decoder linear, packed by `pbs2p pack` (tokenizer copied along).
        Model dense = Model::load(model_.string());
        std::map<std::string, BinaryLayout> layouts;
        uint64_t seed = 7;
        for (const Linear* l : dense.all_linears()) {
            if (l->present() && l->name.find("layers.") != std::string::npos)
                layouts[l->name] =
                    random_layout(l->out_features, l->in_features, 5, 8, l->in_features, seed++);
        }
        write_layouts((model_ / kLayoutsFileName).string(), layouts);
        packed_ = tmp_ / "packed";
        const CliRun r = run_cli({"pack", model_.string(), "-o", packed_.string()});
        ASSERT_EQ(r.exit_code, 0) << r.describe();
        file_ = packed_ / kPackedModelFileName;
        ASSERT_TRUE(fs::exists(file_));
        if (!fs::exists(packed_ / "tokenizer.model"))
            fs::copy_file(fixture("tiny_tokenizer.model"), packed_ / "tokenizer.model");
        layer_ = "model.layers.0.self_attn.q_proj";
    }
    CliRun unpack() const {
        return run_cli({"unpack", packed_.string(), "-o", (tmp_ / "unpacked").string()});
    }
    // unpack, and eval/generate on the packed directory and on the packed file, all fail the same way.
    void expect_packed_readers_fail(std::initializer_list<std::string> mentions) {
        expect_clean_error(unpack(), mentions);
        for (const fs::path& path : {packed_, file_}) {
            model_ = path;
            expect_clean_error(eval(), mentions);
            expect_clean_error(generate(), mentions);
            expect_clean_error(info(), mentions);
        }
    }

    fs::path packed_, file_;
    std::string layer_;
};

TEST_F(CliBadPacked, IntactPackedModelRuns) {
    ASSERT_EQ(unpack().exit_code, 0);
    // Perplexity of the packed model (directory or file) is that of its dequantized weights, up to the
    // int8 activations of the fast kernel.
    const CliRun dense =
        run_cli({"unpack", packed_.string(), "-o", (tmp_ / "dense").string(), "--dequantize"});
    ASSERT_EQ(dense.exit_code, 0) << dense.describe();
    fs::copy_file(fixture("tiny_tokenizer.model"), tmp_ / "dense" / "tokenizer.model",
                  fs::copy_options::overwrite_existing);
    model_ = tmp_ / "dense";
    const CliRun expected =
        run_cli({"eval", model_.string(), "--text", text_.string(), "--ctx", "32", "--json", "-t", "1"});
    ASSERT_EQ(expected.exit_code, 0) << expected.describe();
    const double expected_ppl = nlohmann::json::parse(expected.out).at("perplexity").at("ppl").get<double>();
    for (const fs::path& path : {packed_, file_}) {
        const CliRun r =
            run_cli({"eval", path.string(), "--text", text_.string(), "--ctx", "32", "--json", "-t", "1"});
        ASSERT_EQ(r.exit_code, 0) << r.describe();
        const double ppl = nlohmann::json::parse(r.out).at("perplexity").at("ppl").get<double>();
        EXPECT_NEAR(ppl, expected_ppl, 0.05 * expected_ppl) << path;
        const CliRun g = run_cli({"generate", path.string(), "-p", "the", "-n", "4", "--json", "-t", "1"});
        EXPECT_EQ(g.exit_code, 0) << g.describe();
    }
}

// info takes what eval / generate / bench take: the packed file and its directory, showing every packed
// layer's N:M, scale group and true bits.
TEST_F(CliBadPacked, InfoDescribesThePackedLayers) {
    const PackedFile packed = PackedFile::open(file_.string());
    for (const fs::path& path : {packed_, file_}) {
        const CliRun r = run_cli({"info", path.string(), "--json"});
        ASSERT_EQ(r.exit_code, 0) << r.describe();
        const nlohmann::json j = nlohmann::json::parse(r.out);
        EXPECT_EQ(j.at("format"), "packed");
        EXPECT_EQ(j.at("architecture"), "LlamaForCausalLM");
        const auto& layers = j.at("packed").at("layers");
        ASSERT_EQ(layers.size(), packed.layer_names().size());
        int64_t bytes = 0, weights = 0;
        for (const auto& l : layers) {
            const PackedLayerDesc& d = packed.desc(l.at("name"));
            EXPECT_EQ(l.at("n_keep"), 5);
            EXPECT_EQ(l.at("m_group"), 8);
            EXPECT_EQ(l.at("scale_group"), d.cols);
            const int64_t layer_bytes =
                packed.tensors().tensor(l.at("name").get<std::string>() + ".codes").nbytes +
                packed.tensors().tensor(l.at("name").get<std::string>() + ".scales").nbytes;
            EXPECT_DOUBLE_EQ(l.at("bits_per_weight").get<double>(), 8.0 * layer_bytes / (d.rows * d.cols));
            bytes += layer_bytes;
            weights += d.rows * d.cols;
        }
        EXPECT_DOUBLE_EQ(j.at("packed").at("bits_per_weight").get<double>(), 8.0 * bytes / weights);
        std::map<std::string, int> patterns;  // layers per N:M and scale group
        for (const auto& l : layers)
            ++patterns[fmt::format("5:8, scale group {}", l.at("scale_group").get<int64_t>())];
        EXPECT_EQ(j.at("packed").at("patterns"), nlohmann::json(patterns));
        const CliRun text = run_cli({"info", path.string()});
        ASSERT_EQ(text.exit_code, 0) << text.describe();
        EXPECT_TRUE(contains(text.out, "5:8")) << text.out;
        EXPECT_TRUE(contains(text.out, "true bits")) << text.out;
    }
}

TEST_F(CliBadPacked, TruncatedPackedFile) {
    const std::string bytes = read_file(file_);
    write_file(file_, bytes.substr(0, bytes.size() - 100));
    expect_packed_readers_fail({file_.string()});
}

TEST_F(CliBadPacked, ChecksumMismatch) {
    SafetensorsParts parts = SafetensorsParts::read(file_);
    parts.data[parts.begin(layer_ + ".codes") + 3] ^= 0x5A;
    parts.write(file_);
    expect_packed_readers_fail({file_.string(), layer_ + ".codes"});
}

TEST_F(CliBadPacked, CorruptedDescriptor) {
    SafetensorsParts parts = SafetensorsParts::read(file_);
    auto& meta = parts.header["__metadata__"];
    ASSERT_TRUE(meta.contains("packed_layers")) << meta.dump();
    meta["packed_layers"] = "{not json";
    parts.write(file_);
    expect_packed_readers_fail({file_.string()});
}

TEST_F(CliBadPacked, WrongFormatVersion) {
    SafetensorsParts parts = SafetensorsParts::read(file_);
    parts.header["__metadata__"]["format_version"] = "999";
    parts.write(file_);
    expect_packed_readers_fail({file_.string(), "999"});
}

}  // namespace
}  // namespace pbs2p
