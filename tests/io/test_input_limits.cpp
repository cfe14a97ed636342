// Hostile sizes: headers, vocabularies and configs that claim far more than any real model are refused
// before anything of that size is allocated, with the limit named in a one-line error.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/gguf.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "io/tokenizer_vocab.h"
#include "safetensors_fixtures.h"

namespace pbs2p {
namespace {

using namespace testing_fixtures;
using json = nlohmann::json;

json small_llama_config() {
    return {{"architectures", {"LlamaForCausalLM"}},
            {"hidden_size", 64},
            {"intermediate_size", 128},
            {"num_hidden_layers", 2},
            {"num_attention_heads", 4},
            {"num_key_value_heads", 2},
            {"max_position_embeddings", 256},
            {"vocab_size", 100}};
}

TEST(InputLimits, ConfigWithAbsurdSizesIsRefusedNamingTheLimit) {
    EXPECT_NO_THROW(parse_hf_config(small_llama_config(), "c.json"));
    struct Case {
        const char* key;
        json value;
        std::vector<std::string> mentions;
    };
    const Case cases[] = {
        {"hidden_size", 1000000000, {"hidden_size = 1000000000", "exceeds the limit", "65536"}},
        {"vocab_size", 0, {"vocab_size must be positive"}},
        {"vocab_size", int64_t{1} << 40, {"vocab_size", "exceeds the limit", "4194304"}},
        {"intermediate_size", int64_t{1} << 33, {"intermediate size", "exceeds the limit"}},
        {"num_hidden_layers", 100000, {"num_hidden_layers", "exceeds the limit", "1024"}},
        {"max_position_embeddings", int64_t{1} << 40, {"max_position_embeddings", "exceeds the limit"}},
        {"num_attention_heads", 7, {"hidden_size (64) is not divisible by num_attention_heads (7)"}},
        {"num_attention_heads", -4, {"num_attention_heads must be positive"}},
        {"head_dim", 1 << 20, {"head_dim", "exceeds the limit"}},
        {"hidden_size", 1e9, {"hidden_size", "must be an integer"}},
    };
    for (const Case& c : cases) {
        json j = small_llama_config();
        j[c.key] = c.value;
        std::vector<std::string> mentions = c.mentions;
        mentions.push_back("c.json");
        expect_error_mentioning([&] { parse_hf_config(j, "c.json"); }, mentions,
                                std::string(c.key) + "=" + c.value.dump());
    }
}

TEST(InputLimits, ConfigFileLargerThanTheLimitIsNotParsed) {
    ScratchDir dir;
    const std::string path = dir.file("config.json");
    std::string text = small_llama_config().dump();
    text.insert(text.size() - 1,
                ", \"padding\": \"" + std::string(config_limits::kMaxConfigBytes, 'x') + "\"");
    write_bytes(path, Bytes(text.begin(), text.end()));
    expect_error_mentioning([&] { load_hf_config(path); }, {path, "exceeds the limit", "config file"});
}

TEST(InputLimits, SafetensorsHeaderClaimingGigabytesIsRefused) {
    ScratchDir dir;
    const std::string path = dir.file("big.safetensors");
    write_bytes(path, raw_safetensors("{}", {}, uint64_t{4} << 30));
    expect_error_mentioning([&] { SafetensorsReader::open(path); },
                            {path, "header length 4294967296", "absurd"});
}

// A sharded index names files beside it only: no path can make it map a file elsewhere.
TEST(InputLimits, ShardedIndexCannotReachOutsideItsFolder) {
    ScratchDir dir;
    const std::string path = dir.file("model.safetensors.index.json");
    for (const std::string shard : {"../outside.safetensors", "/etc/passwd", "sub/x.safetensors", ".."}) {
        const std::string text = json{{"weight_map", {{"w", shard}}}}.dump();
        write_bytes(path, Bytes(text.begin(), text.end()));
        expect_error_mentioning([&] { SafetensorsReader::open(path); },
                                {path, "'w'", "not a file beside the index"}, shard);
    }
}

// A tokenizer.json whose vocabulary is tiny but names a token id in the millions (formerly a
// 16-million-entry table, 0.5 GB, for a 200-byte file).
TEST(InputLimits, TokenizerClaimingAHugeVocabularyIsRefused) {
    ScratchDir dir;
    for (const auto& [label, root] : std::vector<std::pair<std::string, json>>{
             {"vocab id",
              {{"model", {{"type", "BPE"}, {"vocab", {{"a", 16000000}}}, {"merges", json::array()}}}}},
             {"added id",
              {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}}}, {"merges", json::array()}}},
               {"added_tokens", {{{"id", 2147483647}, {"content", "<x>"}, {"special", true}}}}}}}) {
        const std::string path = dir.file("tokenizer.json");
        const std::string text = root.dump();
        write_bytes(path, Bytes(text.begin(), text.end()));
        expect_error_mentioning([&] { load_tokenizer(path); }, {path, "kMaxVocabSize", "2097152"}, label);
    }
}

// Found by fuzzing: a float id (converting 6.7e48 to an integer is undefined behaviour) is refused as such.
TEST(InputLimits, TokenizerWithAFloatTokenIdIsRefused) {
    ScratchDir dir;
    const std::string path = dir.file("tokenizer.json");
    const std::string text = R"({"model": {"type": "BPE", "vocab": {"a": 6.66667e48}, "merges": []}})";
    write_bytes(path, Bytes(text.begin(), text.end()));
    expect_error_mentioning([&] { load_tokenizer(path); }, {path, "vocab entry 'a'", "is not an integer"});
}

// GGUF: counts and string lengths are checked against what the file can hold before anything is read.
TEST(InputLimits, GgufClaimingGigabytesIsRefused) {
    ScratchDir dir;
    auto u64 = [](Bytes& b, uint64_t v) {
        b.insert(b.end(), reinterpret_cast<uint8_t*>(&v), reinterpret_cast<uint8_t*>(&v) + 8);
    };
    auto u32 = [](Bytes& b, uint32_t v) {
        b.insert(b.end(), reinterpret_cast<uint8_t*>(&v), reinterpret_cast<uint8_t*>(&v) + 4);
    };
    auto header = [&](uint64_t kv_count) {
        Bytes b = {'G', 'G', 'U', 'F'};
        u32(b, 3);
        u64(b, 0);
        u64(b, kv_count);
        return b;
    };
    const std::string path = dir.file("x.gguf");
    Bytes many_keys = header(uint64_t{1} << 40);
    write_bytes(path, many_keys);
    expect_error_mentioning([&] { GgufMetadata::read(path); }, {path, "metadata entries exceed the file"});

    Bytes long_key = header(1);
    u64(long_key, uint64_t{8} << 30);
    long_key.resize(long_key.size() + 16, 'x');  // the file holds more than one entry's minimum
    write_bytes(path, long_key);
    expect_error_mentioning([&] { GgufMetadata::read(path); }, {path, "string of 8589934592 bytes"});

    Bytes long_array = header(1);
    u64(long_array, 1);
    long_array.push_back('k');
    u32(long_array, 9);  // array
    u32(long_array, 8);  // of strings
    u64(long_array, uint64_t{1} << 33);
    write_bytes(path, long_array);
    expect_error_mentioning([&] { GgufMetadata::read(path); },
                            {path, "array of 8589934592 string exceeds the file"});
}

}  // namespace
}  // namespace pbs2p
