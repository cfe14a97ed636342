// GGUF vocabularies against llama.cpp's own tokenizer test vectors (models/ggml-vocab-*.gguf.inp/.out:
// texts separated by "\n__ggml_vocab_test__\n", one line of space-separated ids per text, tokenized
// without BOS). Also decode(encode(x)) == x on the same texts.
#include <gtest/gtest.h>

#include "io/tokenizer.h"
#include "test_tokenizer_util.h"

namespace pbs2p {
namespace {

struct VectorCase {
    std::string text;
    std::vector<int32_t> ids;
};

std::vector<VectorCase> read_vectors(const std::string& inp_path, const std::string& out_path) {
    const std::string inp = test::read_text_file(inp_path);
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> texts;
    for (size_t pos = 0; pos < inp.size();) {
        const size_t next = inp.find(sep, pos);
        if (next == std::string::npos) {
            texts.push_back(inp.substr(pos));
            break;
        }
        texts.push_back(inp.substr(pos, next - pos));
        pos = next + sep.size();
    }
    std::istringstream out(test::read_text_file(out_path));
    std::vector<VectorCase> cases;
    std::string line;
    for (size_t i = 0; std::getline(out, line); ++i) {
        VectorCase c;
        c.text = i < texts.size() ? texts[i] : std::string();
        std::istringstream ids(line);
        for (int32_t id; ids >> id;) c.ids.push_back(id);
        cases.push_back(std::move(c));
    }
    EXPECT_EQ(texts.size(), cases.size()) << inp_path;
    return cases;
}

struct VocabCase {
    const char* name;
    const char* kind;
    int32_t vocab_size;
};

class LlamaCppVectors : public ::testing::TestWithParam<VocabCase> {};

TEST_P(LlamaCppVectors, MatchIdsAndRoundTrip) {
    const VocabCase& vc = GetParam();
    const std::string base = test::assets_dir() + "/llama.cpp/models/ggml-vocab-" + vc.name + ".gguf";
    PBS2P_REQUIRE_ASSET(base);
    const auto tokenizer = load_tokenizer(base);
    EXPECT_EQ(tokenizer->kind(), vc.kind);
    EXPECT_EQ(tokenizer->vocab_size(), vc.vocab_size);
    const auto cases = read_vectors(base + ".inp", base + ".out");
    ASSERT_GT(cases.size(), 30u);
    int matched = 0;
    for (const auto& c : cases) {
        const auto ids = tokenizer->encode(c.text, false);
        EXPECT_EQ(ids, c.ids) << vc.name << " text: '" << c.text << "'";
        matched += ids == c.ids;
        EXPECT_EQ(tokenizer->decode(ids), c.text) << vc.name;
    }
    RecordProperty("matched", matched);
    std::printf("%s: %d/%zu llama.cpp test vectors match\n", vc.name, matched, cases.size());
}

INSTANTIATE_TEST_SUITE_P(Vocabularies, LlamaCppVectors,
                         ::testing::Values(VocabCase{"llama-spm", "gguf-llama", 32000},
                                           VocabCase{"gpt-2", "gguf-gpt2", 50257},
                                           VocabCase{"llama-bpe", "gguf-gpt2", 128256},
                                           VocabCase{"qwen2", "gguf-gpt2", 151936}),
                         [](const auto& info) {
                             std::string name = info.param.name;
                             for (char& ch : name)
                                 if (ch == '-') ch = '_';
                             return name;
                         });

}  // namespace
}  // namespace pbs2p
