// Configs and checkpoints that must be rejected with a one-line error naming the file and the item.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/hf_config.h"
#include "model/model.h"
#include "model_test_util.h"

namespace pbs2p {
namespace {

using json = nlohmann::json;
using test::golden_dir;

json golden_config(const std::string& name) {
    std::ifstream in(golden_dir(name) + "/config.json");
    return json::parse(in);
}

// Expects an Error whose message contains every fragment and is a single line.
template <typename Fn>
void expect_error(Fn&& fn, std::vector<std::string> fragments) {
    try {
        fn();
        FAIL() << "no error thrown";
    } catch (const Error& e) {
        std::string message = e.what();
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
        for (const auto& f : fragments) EXPECT_NE(message.find(f), std::string::npos) << message << " lacks " << f;
    }
}

TEST(HfConfig, ParsesLlamaGqaAndRopeScaling) {
    ModelConfig c = parse_hf_config(golden_config("llama3_rope"), "config.json");
    EXPECT_EQ(c.family, ModelFamily::llama);
    EXPECT_EQ(c.num_heads, 4);
    EXPECT_EQ(c.num_kv_heads, 1);
    EXPECT_EQ(c.head_dim, 16);
    EXPECT_EQ(c.q_dim(), 64);
    EXPECT_EQ(c.rope_scaling.type, "llama3");
    EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
    EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 64);
    EXPECT_TRUE(c.tie_word_embeddings);
    EXPECT_FALSE(c.qkv_bias);
}

TEST(HfConfig, Qwen2HasQkvBiasOnly) {
    ModelConfig c = parse_hf_config(golden_config("qwen2_bias"), "config.json");
    EXPECT_TRUE(c.qkv_bias);
    EXPECT_FALSE(c.o_bias);
    EXPECT_FALSE(c.mlp_bias);
}

TEST(HfConfig, OptDefaults) {
    ModelConfig c = parse_hf_config(golden_config("opt_proj"), "config.json");
    EXPECT_EQ(c.family, ModelFamily::opt);
    EXPECT_EQ(c.norm, NormKind::layer);
    EXPECT_DOUBLE_EQ(c.norm_eps, 1e-5);
    EXPECT_EQ(c.embed_dim, 16);
    EXPECT_FALSE(c.pre_norm);
    EXPECT_FALSE(c.final_norm);
    EXPECT_EQ(c.position_offset, 2);
    EXPECT_TRUE(c.tie_word_embeddings);
    EXPECT_EQ(c.activation, Activation::relu);
}

TEST(HfConfig, RopeInverseFrequenciesLlama3Bands) {
    ModelConfig c = parse_hf_config(golden_config("llama3_rope"), "config.json");
    auto scaled = rope_inverse_frequencies(c);
    c.rope_scaling = {};
    auto plain = rope_inverse_frequencies(c);
    ASSERT_EQ(scaled.size(), 8u);
    EXPECT_FLOAT_EQ(scaled[0], plain[0]);                  // high frequency: unchanged
    EXPECT_FLOAT_EQ(scaled.back(), plain.back() / 8.0f);  // low frequency: divided by factor
    EXPECT_LT(scaled[1], plain[1]);                        // medium band: interpolated between the two
    EXPECT_GT(scaled[1], plain[1] / 8.0f);
}

TEST(HfConfig, RejectsUnsupportedArchitecture) {
    json j = golden_config("llama_gqa");
    j["architectures"] = {"GPT2LMHeadModel"};
    expect_error([&] { parse_hf_config(j, "my/config.json"); },
                 {"my/config.json", "GPT2LMHeadModel", "LlamaForCausalLM", "OPTForCausalLM"});
}

TEST(HfConfig, RejectsInconsistentSizes) {
    json j = golden_config("llama_gqa");
    j["num_key_value_heads"] = 3;
    expect_error([&] { parse_hf_config(j, "c.json"); }, {"c.json", "num_key_value_heads"});
    j = golden_config("opt_bias");
    j["num_attention_heads"] = 5;
    expect_error([&] { parse_hf_config(j, "c.json"); }, {"c.json", "num_attention_heads"});
    j = golden_config("llama_gqa");
    j.erase("hidden_size");
    expect_error([&] { parse_hf_config(j, "c.json"); }, {"c.json", "hidden_size"});
    j = golden_config("llama_gqa");
    j["hidden_act"] = "gelu";
    expect_error([&] { parse_hf_config(j, "c.json"); }, {"c.json", "hidden_act"});
}

// Copies a golden checkpoint into a scratch dir, letting the caller edit the config and the tensors.
struct EditedCheckpoint {
    test::ScratchDir dir{"bad"};
    EditedCheckpoint(const std::string& name, const std::function<void(json&)>& edit_config,
                     const std::function<bool(TensorToWrite&)>& edit_tensor) {
        json config = golden_config(name);
        edit_config(config);
        std::ofstream(dir.file("config.json")) << config.dump(2);
        SafetensorsReader reader = SafetensorsReader::open(golden_dir(name));
        std::vector<TensorToWrite> tensors;
        for (const auto& tensor_name : reader.names()) {
            const TensorInfo& info = reader.tensor(tensor_name);
            TensorToWrite t{tensor_name, info.dtype, info.shape,
                            std::vector<uint8_t>(info.data, info.data + info.nbytes)};
            if (edit_tensor(t)) tensors.push_back(std::move(t));
        }
        write_safetensors(dir.file("model.safetensors"), tensors);
    }
};

TEST(ModelLoad, MissingTensor) {
    EditedCheckpoint ckpt("llama_gqa", [](json&) {},
                          [](TensorToWrite& t) { return t.name != "model.layers.1.mlp.up_proj.weight"; });
    expect_error([&] { Model::load(ckpt.dir.str()); }, {ckpt.dir.str(), "model.layers.1.mlp.up_proj.weight"});
}

TEST(ModelLoad, ShapeDisagreesWithConfig) {
    EditedCheckpoint ckpt("opt_bias", [](json& c) { c["ffn_dim"] = 48; }, [](TensorToWrite&) { return true; });
    expect_error([&] { Model::load(ckpt.dir.str()); }, {"model.safetensors", "fc1"});
}

TEST(ModelLoad, NanInWeights) {
    EditedCheckpoint ckpt("qwen2_bias", [](json&) {}, [](TensorToWrite& t) {
        if (t.name == "model.layers.0.self_attn.k_proj.weight") {
            float nan = std::nanf("");
            std::memcpy(t.bytes.data() + 4 * 7, &nan, 4);  // F32 checkpoint
        }
        return true;
    });
    expect_error([&] { Model::load(ckpt.dir.str()); }, {"model.safetensors", "model.layers.0.self_attn.k_proj.weight"});
}

TEST(ModelLoad, MissingConfig) {
    test::ScratchDir dir("empty");
    expect_error([&] { Model::load(dir.str()); }, {"config.json"});
}

TEST(ModelForward, RejectsOutOfVocabularyTokenAndFullCache) {
    Model model = Model::load(golden_dir("llama_gqa"));
    expect_error([&] { model.forward({1, 2, 96}); }, {"96", "vocabulary"});
    KvCache cache = model.new_cache(2);
    model.forward({1, 2}, cache);
    expect_error([&] { model.forward({3}, cache); }, {"KV cache"});
}

TEST(ModelForward, OptRejectsPositionsBeyondTable) {
    Model model = Model::load(golden_dir("opt_bias"));
    std::vector<int32_t> tokens(65, 5);  // max_position_embeddings 64
    expect_error([&] { model.forward(tokens); }, {"max_position_embeddings"});
}

}  // namespace
}  // namespace pbs2p
