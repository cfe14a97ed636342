// GGUF export of the golden test models and of synthetic ternary models, read back with our GGUF reader:
// hyper-parameter keys, tensor names, types and shapes, values (including llama.cpp's q/k row
// permutation), the SentencePiece vocabulary (loaded back by our GGUF tokenizer, same ids), the ternary
// types decoded bit-exactly, bit counts, and the refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <tuple>

#include "core/error.h"
#include "core/half.h"
#include "io/gguf.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "io/safetensors_fixtures.h"
#include "io/tokenizer.h"
#include "io/tokenizer_vocab.h"
#include "model/model_test_util.h"
#include "packed/ggml_ternary.h"
#include "packed/gguf_export.h"

namespace pbs2p {
namespace {

namespace fs = std::filesystem;

const fs::path source_dir = PBS2P_SOURCE_DIR;

// A golden test model with the tiny 96-piece SentencePiece tokenizer.
std::string golden_with_tokenizer(const test::ScratchDir& scratch, const std::string& name,
                                  const std::string& copy = "") {
    const fs::path dir = fs::path(scratch.str()) / (copy.empty() ? name : copy);
    fs::create_directories(dir);
    for (const char* f : {"config.json", "model.safetensors"})
        fs::copy_file(source_dir / "tests/model/golden" / name / f, dir / f);
    fs::copy_file(source_dir / "tests/tools/fixtures/tiny_tokenizer.model", dir / "tokenizer.model");
    return dir.string();
}

std::vector<float> gguf_floats(const GgufMetadata& m, const std::string& name) {
    const GgufTensorInfo& t = m.tensor(name);
    const std::vector<uint8_t> bytes = m.read_tensor_data(t);
    std::vector<float> out(static_cast<size_t>(t.numel()));
    if (t.type == uint32_t(GgmlType::f32)) {
        std::memcpy(out.data(), bytes.data(), bytes.size());
    } else if (t.type == uint32_t(GgmlType::f16)) {
        for (size_t i = 0; i < out.size(); ++i) {
            uint16_t h;
            std::memcpy(&h, bytes.data() + 2 * i, 2);
            out[i] = fp16_to_f32(h);
        }
    } else {
        decode_ternary_matrix(static_cast<GgmlType>(t.type), bytes.data(), t.numel() / t.dims[0], t.dims[0],
                              out.data());
    }
    return out;
}

// Row r of llama.cpp's layout is row (h, j, i) of the HF layout: out[h][i][j] = in[h][j][i] for the
// [heads, 2, rows / heads / 2] split of the rows.
std::vector<float> expected_permutation(const Matrix& w, int64_t heads) {
    const int64_t half = w.rows / heads / 2;
    std::vector<float> out;
    for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < half; ++i)
            for (int64_t j = 0; j < 2; ++j) {
                const float* row = w.row(h * 2 * half + j * half + i);
                out.insert(out.end(), row, row + w.cols);
            }
    return out;
}

std::vector<float> as_vector(const Matrix& m) {
    return std::vector<float>(m.data.begin(), m.data.end());
}

using testing_fixtures::expect_error_mentioning;

TEST(GgufExport, LlamaF32KeysNamesAndValues) {
    test::ScratchDir scratch("gguf_llama");
    const std::string dir = golden_with_tokenizer(scratch, "llama_gqa");
    const std::string out = scratch.file("m.gguf");
    const GgufExportSummary s = export_gguf(dir, out, GgufExportType::f32);
    EXPECT_EQ(s.architecture, "llama");

    const GgufMetadata m = GgufMetadata::read(out);
    EXPECT_EQ(m.get_string("general.architecture"), "llama");
    EXPECT_EQ(m.get_int("general.file_type"), 0);
    EXPECT_EQ(m.get_int("llama.block_count"), 2);
    EXPECT_EQ(m.get_int("llama.context_length"), 128);
    EXPECT_EQ(m.get_int("llama.embedding_length"), 32);
    EXPECT_EQ(m.get_int("llama.feed_forward_length"), 64);
    EXPECT_EQ(m.get_int("llama.attention.head_count"), 4);
    EXPECT_EQ(m.get_int("llama.attention.head_count_kv"), 2);
    EXPECT_EQ(m.get_int("llama.rope.dimension_count"), 8);
    EXPECT_EQ(m.get_int("llama.vocab_size"), 96);
    EXPECT_FLOAT_EQ(float(m.get_real("llama.attention.layer_norm_rms_epsilon")), 1e-5f);
    EXPECT_EQ(m.get_real("llama.rope.freq_base"), 10000.0);

    std::set<std::string> names;
    for (const GgufTensorInfo& t : m.tensors()) names.insert(t.name);
    std::set<std::string> expected = {"token_embd.weight", "output_norm.weight", "output.weight"};
    for (int l = 0; l < 2; ++l)
        for (const char* n : {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm",
                              "ffn_gate", "ffn_up", "ffn_down"})
            expected.insert("blk." + std::to_string(l) + "." + n + ".weight");
    EXPECT_EQ(names, expected);
    for (const GgufTensorInfo& t : m.tensors()) EXPECT_EQ(t.type, uint32_t(GgmlType::f32)) << t.name;
    EXPECT_EQ(m.tensor("blk.1.ffn_down.weight").dims, (std::vector<int64_t>{64, 32}));
    EXPECT_EQ(m.tensor("blk.0.attn_norm.weight").dims, (std::vector<int64_t>{32}));

    const SafetensorsReader hf = SafetensorsReader::open(dir);
    for (int l = 0; l < 2; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".", g = "blk." + std::to_string(l) + ".";
        EXPECT_EQ(gguf_floats(m, g + "attn_q.weight"),
                  expected_permutation(hf.load_matrix(p + "self_attn.q_proj.weight", 32, 32), 4));
        EXPECT_EQ(gguf_floats(m, g + "attn_k.weight"),
                  expected_permutation(hf.load_matrix(p + "self_attn.k_proj.weight", 16, 32), 2));
        EXPECT_EQ(gguf_floats(m, g + "attn_v.weight"),
                  as_vector(hf.load_matrix(p + "self_attn.v_proj.weight", 16, 32)));
        EXPECT_EQ(gguf_floats(m, g + "ffn_down.weight"),
                  as_vector(hf.load_matrix(p + "mlp.down_proj.weight", 32, 64)));
        EXPECT_EQ(gguf_floats(m, g + "ffn_norm.weight"),
                  hf.load_vector(p + "post_attention_layernorm.weight", 32));
    }
    EXPECT_EQ(gguf_floats(m, "token_embd.weight"),
              as_vector(hf.load_matrix("model.embed_tokens.weight", 96, 32)));
    EXPECT_EQ(gguf_floats(m, "output.weight"), as_vector(hf.load_matrix("lm_head.weight", 96, 32)));

    EXPECT_EQ(s.bits.tensors, 21);
    EXPECT_DOUBLE_EQ(s.bits.linear_bits_per_weight(), 32.0);
    EXPECT_EQ(s.bits.linear_weights, 2 * (32 * 32 + 2 * 16 * 32 + 32 * 32 + 3 * 64 * 32));
    EXPECT_EQ(s.bits.file_bytes, int64_t(fs::file_size(out)));
}

TEST(GgufExport, F16WeightsF32Norms) {
    test::ScratchDir scratch("gguf_f16");
    const std::string dir = golden_with_tokenizer(scratch, "llama_gqa");
    const std::string out = scratch.file("m.gguf");
    const GgufExportSummary s = export_gguf(dir, out, GgufExportType::f16);
    const GgufMetadata m = GgufMetadata::read(out);
    EXPECT_EQ(m.get_int("general.file_type"), 1);
    EXPECT_EQ(m.tensor("blk.0.attn_v.weight").type, uint32_t(GgmlType::f16));
    EXPECT_EQ(m.tensor("token_embd.weight").type, uint32_t(GgmlType::f16));
    EXPECT_EQ(m.tensor("output_norm.weight").type, uint32_t(GgmlType::f32));
    const SafetensorsReader hf = SafetensorsReader::open(dir);
    std::vector<float> expected = as_vector(hf.load_matrix("model.layers.0.self_attn.v_proj.weight", 16, 32));
    for (float& x : expected) x = round_to_fp16(x);
    EXPECT_EQ(gguf_floats(m, "blk.0.attn_v.weight"), expected);
    EXPECT_DOUBLE_EQ(s.bits.linear_bits_per_weight(), 16.0);
    EXPECT_EQ(s.bits.tensors_by_type.at("f32"), 5);  // 2 x 2 block norms + the final norm
}

// The exported vocabulary loads through our GGUF tokenizer and gives the SentencePiece model's ids.
void expect_same_tokenization(const std::string& dir, const std::string& gguf, size_t chars) {
    std::ifstream in(source_dir / "data/test.txt", std::ios::binary);
    std::string text(chars, '\0');
    in.read(text.data(), static_cast<std::streamsize>(chars));
    text.resize(static_cast<size_t>(in.gcount()));
    const auto spm = load_tokenizer(dir);
    const auto ours = load_tokenizer(gguf);
    EXPECT_EQ(ours->kind(), "gguf-llama");
    EXPECT_EQ(ours->vocab_size(), spm->vocab_size());
    EXPECT_EQ(ours->bos_id(), spm->bos_id());
    EXPECT_EQ(ours->eos_id(), spm->eos_id());
    EXPECT_EQ(ours->encode(text, true), spm->encode(text, true));
    EXPECT_EQ(ours->decode(ours->encode(text, false)), spm->decode(spm->encode(text, false)));
}

TEST(GgufExport, SentencePieceVocabularyLoadsBack) {
    test::ScratchDir scratch("gguf_vocab");
    const std::string dir = golden_with_tokenizer(scratch, "llama_gqa");
    export_gguf(dir, scratch.file("m.gguf"), GgufExportType::f16);
    const GgufMetadata m = GgufMetadata::read(scratch.file("m.gguf"));
    EXPECT_EQ(m.get_string("tokenizer.ggml.model"), "llama");
    EXPECT_EQ(m.get_strings("tokenizer.ggml.tokens").size(), 96u);
    EXPECT_TRUE(m.get_bool("tokenizer.ggml.add_bos_token"));
    const SentencePieceVocab vocab = read_sentencepiece_vocab(dir + "/tokenizer.model");
    EXPECT_EQ(m.get_strings("tokenizer.ggml.tokens"), vocab.pieces);
    const std::vector<double> scores = m.get_reals("tokenizer.ggml.scores");
    EXPECT_EQ(std::vector<float>(scores.begin(), scores.end()), vocab.scores);
    const std::vector<int64_t> types = m.get_ints("tokenizer.ggml.token_type");
    ASSERT_EQ(types.size(), vocab.types.size());
    for (size_t i = 0; i < types.size(); ++i) EXPECT_EQ(types[i], int64_t(vocab.types[i])) << i;
    EXPECT_EQ(types[0], int64_t(GgufTokenType::unknown));
    EXPECT_EQ(types[1], int64_t(GgufTokenType::control));
    EXPECT_EQ(m.get_int("tokenizer.ggml.bos_token_id"), vocab.bos_id);
    EXPECT_EQ(m.get_int("tokenizer.ggml.eos_token_id"), vocab.eos_id);
}

// The tiny fixture tokenizer has no byte pieces, so only a real vocabulary can be compared id for id.
TEST(GgufExport, ReferenceModelVocabularyLoadsBack) {
    const fs::path ref = source_dir / "models/ref-llama";
    if (!fs::exists(ref / "config.json")) GTEST_SKIP() << "models/ref-llama is not in this checkout";
    test::ScratchDir scratch("gguf_ref");
    const GgufExportSummary s = export_gguf(ref.string(), scratch.file("ref.gguf"), GgufExportType::f16);
    EXPECT_EQ(s.bits.tensors, 4 * 9 + 3);
    expect_same_tokenization(ref.string(), scratch.file("ref.gguf"), 20000);
}

TEST(GgufExport, Qwen2KeepsRowOrderAndBiases) {
    test::ScratchDir scratch("gguf_qwen2");
    const std::string dir = golden_with_tokenizer(scratch, "qwen2_bias");
    const std::string out = scratch.file("m.gguf");
    EXPECT_EQ(export_gguf(dir, out, GgufExportType::f32).architecture, "qwen2");
    const GgufMetadata m = GgufMetadata::read(out);
    EXPECT_EQ(m.get_string("general.architecture"), "qwen2");
    EXPECT_EQ(m.get_int("qwen2.block_count"), 2);
    EXPECT_FALSE(m.has("llama.block_count"));
    const ModelConfig c = load_hf_config(dir);
    const SafetensorsReader hf = SafetensorsReader::open(dir);
    EXPECT_EQ(gguf_floats(m, "blk.0.attn_q.weight"),
              as_vector(hf.load_matrix("model.layers.0.self_attn.q_proj.weight", c.q_dim(), c.hidden_size)));
    EXPECT_EQ(gguf_floats(m, "blk.1.attn_k.bias"),
              hf.load_vector("model.layers.1.self_attn.k_proj.bias", c.kv_dim()));
    EXPECT_EQ(m.tensor("blk.1.attn_v.bias").type, uint32_t(GgmlType::f32));
}

// A one-block LLaMA model of width 256 whose linear layers are exact ternary blocks.
struct TernaryModel {
    std::string dir;
    std::map<std::string, Matrix> linears;
};

TernaryModel write_ternary_model(const test::ScratchDir& scratch, const std::string& name, bool exact) {
    TernaryModel model;
    model.dir = scratch.file(name);
    fs::create_directories(model.dir);
    const int64_t hidden = 256, ffn = 512, vocab = 96, kv_dim = 128;
    nlohmann::json config = {{"architectures", {"LlamaForCausalLM"}},
                             {"model_type", "llama"},
                             {"hidden_size", hidden},
                             {"intermediate_size", ffn},
                             {"num_hidden_layers", 1},
                             {"num_attention_heads", 4},
                             {"num_key_value_heads", 2},
                             {"vocab_size", vocab},
                             {"max_position_embeddings", 64},
                             {"rms_norm_eps", 1e-6},
                             {"rope_theta", 10000.0},
                             {"hidden_act", "silu"},
                             {"tie_word_embeddings", true}};
    std::ofstream(model.dir + "/config.json") << config.dump();
    fs::copy_file(source_dir / "tests/tools/fixtures/tiny_tokenizer.model", model.dir + "/tokenizer.model");
    std::mt19937 rng(3);
    std::uniform_int_distribution<int> trit(-1, 1);
    std::uniform_real_distribution<float> uniform(0.01f, 0.5f);
    std::vector<TensorToWrite> tensors;
    const auto add_matrix = [&](const std::string& n, int64_t rows, int64_t cols, bool ternary) {
        Matrix w(rows, cols);
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t b = 0; b < cols / 256; ++b) {
                const float d = round_to_fp16(uniform(rng));
                for (int64_t j = 0; j < 256; ++j)
                    w(r, b * 256 + j) = ternary ? float(trit(rng)) * d : uniform(rng) - 0.25f;
            }
        if (ternary) model.linears[n] = w;
        tensors.push_back(tensor_from_floats(n, w.ptr(), {rows, cols}, DType::f32));
    };
    const std::string p = "model.layers.0.";
    add_matrix("model.embed_tokens.weight", vocab, hidden, false);
    add_matrix(p + "self_attn.q_proj.weight", hidden, hidden, true);
    add_matrix(p + "self_attn.k_proj.weight", kv_dim, hidden, true);
    add_matrix(p + "self_attn.v_proj.weight", kv_dim, hidden, true);
    add_matrix(p + "self_attn.o_proj.weight", hidden, hidden, true);
    add_matrix(p + "mlp.gate_proj.weight", ffn, hidden, true);
    add_matrix(p + "mlp.up_proj.weight", ffn, hidden, true);
    add_matrix(p + "mlp.down_proj.weight", hidden, ffn, true);
    if (!exact) {
        Matrix& up = model.linears[p + "mlp.up_proj.weight"];
        up(3, 200) = 0.3f * up(3, 200) + 0.001f;  // breaks row 3, block 0
        tensors[6] = tensor_from_floats(p + "mlp.up_proj.weight", up.ptr(), {ffn, hidden}, DType::f32);
    }
    const std::vector<float> ones(hidden, 1.0f);
    for (const char* n : {"model.norm.weight", "model.layers.0.input_layernorm.weight",
                          "model.layers.0.post_attention_layernorm.weight"})
        tensors.push_back(tensor_from_floats(n, ones.data(), {hidden}, DType::f32));
    write_safetensors(model.dir + "/model.safetensors", tensors);
    return model;
}

TEST(GgufExport, TernaryTypesStoreLinearLayersExactly) {
    test::ScratchDir scratch("gguf_ternary");
    const TernaryModel model = write_ternary_model(scratch, "ternary", true);
    for (const auto& [type, bits] :
         {std::pair{GgufExportType::tq1_0, 1.6875}, std::pair{GgufExportType::tq2_0, 2.0625}}) {
        const std::string out = scratch.file(std::string(gguf_export_type_name(type)) + ".gguf");
        const GgufExportSummary s = export_gguf(model.dir, out, type);
        EXPECT_DOUBLE_EQ(s.bits.linear_bits_per_weight(), bits);
        const GgufMetadata m = GgufMetadata::read(out);
        EXPECT_EQ(m.get_int("general.file_type"), type == GgufExportType::tq1_0 ? 36 : 37);
        EXPECT_EQ(m.tensor("token_embd.weight").type, uint32_t(GgmlType::f16));
        EXPECT_FALSE(m.has("output.weight"));  // tied: llama.cpp reuses token_embd
        EXPECT_EQ(m.tensor("output_norm.weight").type, uint32_t(GgmlType::f32));
        const std::string p = "model.layers.0.";
        EXPECT_EQ(gguf_floats(m, "blk.0.attn_q.weight"),
                  expected_permutation(model.linears.at(p + "self_attn.q_proj.weight"), 4));
        EXPECT_EQ(gguf_floats(m, "blk.0.attn_k.weight"),
                  expected_permutation(model.linears.at(p + "self_attn.k_proj.weight"), 2));
        for (const auto& [gguf, hf] :
             {std::pair{"attn_v", "self_attn.v_proj"}, std::pair{"attn_output", "self_attn.o_proj"},
              std::pair{"ffn_gate", "mlp.gate_proj"}, std::pair{"ffn_up", "mlp.up_proj"},
              std::pair{"ffn_down", "mlp.down_proj"}}) {
            const GgufTensorInfo& t = m.tensor(std::string("blk.0.") + gguf + ".weight");
            EXPECT_EQ(t.type, uint32_t(type == GgufExportType::tq1_0 ? GgmlType::tq1_0 : GgmlType::tq2_0))
                << gguf;
            EXPECT_EQ(gguf_floats(m, t.name), as_vector(model.linears.at(p + hf + ".weight"))) << gguf;
        }
    }
    // f32 / f16 still take any model.
    EXPECT_NO_THROW(export_gguf(model.dir, scratch.file("f16.gguf"), GgufExportType::f16));
}

TEST(GgufExport, TernaryRefusesInexactLayerNamingRowAndColumns) {
    test::ScratchDir scratch("gguf_inexact");
    const TernaryModel model = write_ternary_model(scratch, "inexact", false);
    const std::string out = scratch.file("x.gguf");
    expect_error_mentioning([&] { export_gguf(model.dir, out, GgufExportType::tq1_0); },
                            {"model.layers.0.mlp.up_proj.weight: row 3, columns 0..255", "tq1_0"});
    EXPECT_FALSE(fs::exists(out));
    EXPECT_NO_THROW(export_gguf(model.dir, out, GgufExportType::f32));
}

TEST(GgufExport, RefusalsNameTheCause) {
    test::ScratchDir scratch("gguf_refuse");
    const std::string out = scratch.file("x.gguf");
    const auto refused = [&](const std::string& dir, GgufExportType type, std::vector<std::string> mentions) {
        expect_error_mentioning([&] { export_gguf(dir, out, type); }, mentions, dir);
    };
    refused(golden_with_tokenizer(scratch, "opt_bias"), GgufExportType::f16,
            {"config.json", "architecture OPTForCausalLM cannot be exported to GGUF"});
    refused(golden_with_tokenizer(scratch, "llama3_rope"), GgufExportType::f16,
            {"config.json", "rope_scaling type 'llama3' is not supported"});
    const std::string dir = golden_with_tokenizer(scratch, "llama_gqa");
    fs::remove(dir + "/tokenizer.model");
    refused(dir, GgufExportType::f16, {dir, "no tokenizer.model"});
    refused(golden_with_tokenizer(scratch, "llama_gqa", "again"), GgufExportType::tq2_0,
            {"'blk.0.attn_q.weight'", "rows of 32 weights are not a whole number of tq2_0 blocks of 256"});
    EXPECT_THROW(parse_gguf_export_type("q4_0"), Error);
    EXPECT_FALSE(fs::exists(out));
}

// A small LLaMA shape for the random GGUF writer (ternary rows need columns in whole 256-weight blocks).
ModelConfig random_gguf_config() {
    ModelConfig c;
    c.architecture = "LlamaForCausalLM";
    c.model_type = "llama";
    c.vocab_size = 300;
    c.hidden_size = c.embed_dim = 256;
    c.intermediate_size = 512;
    c.num_layers = 2;
    c.num_heads = 4;
    c.num_kv_heads = 2;
    c.head_dim = 64;
    c.max_position_embeddings = 128;
    c.norm = NormKind::rms;
    c.activation = Activation::silu;
    c.gated_mlp = c.use_rope = true;
    return c;
}

TEST(GgufExport, RandomModelHasTheShapesTypesAndVocabulary) {
    test::ScratchDir scratch("gguf_random");
    const ModelConfig c = random_gguf_config();
    for (const auto& [type, linear, table] :
         {std::tuple{GgufExportType::f16, GgmlType::f16, GgmlType::f16},
          std::tuple{GgufExportType::tq1_0, GgmlType::tq1_0, GgmlType::f16},
          std::tuple{GgufExportType::tq2_0, GgmlType::tq2_0, GgmlType::f16}}) {
        const std::string out = scratch.file(std::string(gguf_export_type_name(type)) + ".gguf");
        const GgufExportSummary s = write_random_gguf(c, out, type, 7);
        const GgufMetadata m = GgufMetadata::read(out);
        EXPECT_EQ(m.get_string("general.architecture"), "llama");
        EXPECT_EQ(m.get_int("llama.block_count"), 2);
        EXPECT_EQ(m.get_int("llama.attention.head_count_kv"), 2);
        EXPECT_EQ(m.tensors().size(), 2u * 9 + 3);
        EXPECT_EQ(s.bits.linear_weights, 2 * (2 * 256 * 256 + 2 * 128 * 256 + 3 * 512 * 256));
        // ggml order: innermost (columns) first.
        const std::pair<const char*, std::vector<int64_t>> shapes[] = {
            {"token_embd.weight", {256, 300}},
            {"blk.1.attn_q.weight", {256, 256}},
            {"blk.1.attn_k.weight", {256, 128}},
            {"blk.0.attn_v.weight", {256, 128}},
            {"blk.0.attn_output.weight", {256, 256}},
            {"blk.0.ffn_gate.weight", {256, 512}},
            {"blk.1.ffn_up.weight", {256, 512}},
            {"blk.1.ffn_down.weight", {512, 256}},
            {"blk.1.ffn_norm.weight", {256}},
            {"output_norm.weight", {256}},
            {"output.weight", {256, 300}}};
        for (const auto& [name, dims] : shapes) {
            const GgufTensorInfo& t = m.tensor(name);
            EXPECT_EQ(t.dims, dims) << name;
            const bool vector = dims.size() == 1;
            const bool is_table =
                std::string(name) == "token_embd.weight" || std::string(name) == "output.weight";
            EXPECT_EQ(t.type, uint32_t(vector ? GgmlType::f32 : is_table ? table : linear)) << name;
        }
        EXPECT_EQ(gguf_floats(m, "blk.0.ffn_norm.weight"), std::vector<float>(256, 1.0f));
        // Ternary rows decode to {-d, 0, +d} per block with every trit present; float rows are bounded.
        const std::vector<float> down = gguf_floats(m, "blk.1.ffn_down.weight");
        if (is_ternary_ggml_type(linear)) {
            std::set<float> block(down.begin(), down.begin() + 256);
            ASSERT_EQ(block.size(), 3u);
            EXPECT_EQ(*block.begin(), -*block.rbegin());
        } else {
            for (float x : down) EXPECT_LE(std::abs(x), std::sqrt(3.0f / 512) * 1.001f);
        }
        // The placeholder vocabulary: specials, byte pieces, then ordinary pieces, vocab_size in all.
        const std::vector<std::string>& tokens = m.get_strings("tokenizer.ggml.tokens");
        ASSERT_EQ(tokens.size(), 300u);
        EXPECT_EQ(tokens[1], "<s>");
        EXPECT_EQ(tokens[3 + 0x41], "<0x41>");
        EXPECT_EQ(tokens[299], "\u2581t299");
        EXPECT_EQ(m.get_ints("tokenizer.ggml.token_type")[3], int64_t(GgufTokenType::byte));
        EXPECT_EQ(m.get_int("tokenizer.ggml.bos_token_id"), 1);
    }
    // Deterministic for a seed.
    write_random_gguf(c, scratch.file("again.gguf"), GgufExportType::tq2_0, 7);
    const GgufMetadata first = GgufMetadata::read(scratch.file("tq2_0.gguf"));
    const GgufMetadata again = GgufMetadata::read(scratch.file("again.gguf"));
    EXPECT_EQ(again.read_tensor_data(again.tensor("blk.0.attn_q.weight")),
              first.read_tensor_data(first.tensor("blk.0.attn_q.weight")));
    ModelConfig small_vocab = c;
    small_vocab.vocab_size = 100;
    EXPECT_THROW(write_random_gguf(small_vocab, scratch.file("bad.gguf"), GgufExportType::f16), Error);
}

TEST(GgufExport, DecoderLinearNames) {
    EXPECT_TRUE(is_gguf_decoder_linear("blk.0.attn_q.weight"));
    EXPECT_TRUE(is_gguf_decoder_linear("blk.31.ffn_down.weight"));
    EXPECT_FALSE(is_gguf_decoder_linear("blk.0.attn_norm.weight"));
    EXPECT_FALSE(is_gguf_decoder_linear("blk.0.attn_q.bias"));
    EXPECT_FALSE(is_gguf_decoder_linear("token_embd.weight"));
    EXPECT_FALSE(is_gguf_decoder_linear("output.weight"));
    EXPECT_FALSE(is_gguf_decoder_linear("blk.x.attn_q.weight"));
}

}  // namespace
}  // namespace pbs2p
