// Tokenizer pieces that need no downloaded assets: GGUF metadata reading (incl. every truncation of a
// file), tiny GGUF vocabularies of both models, pre-tokenizer patterns, and bad inputs.
#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "io/gguf.h"
#include "io/tokenizer.h"
#include "io/tokenizer_vocab.h"
#include "io/unicode.h"
#include "test_tokenizer_util.h"

namespace pbs2p {
namespace {

namespace fs = std::filesystem;

TEST(Utf8, FirstInvalidByteFollowsRfc3629) {
    const size_t ok = std::string_view::npos;
    EXPECT_EQ(utf8_invalid_offset(""), ok);
    EXPECT_EQ(utf8_invalid_offset("plain ASCII"), ok);
    EXPECT_EQ(utf8_invalid_offset("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf"),
              ok);                                           // up to U+10FFFF
    EXPECT_EQ(utf8_invalid_offset("ab\x80"), 2u);            // continuation byte without a lead
    EXPECT_EQ(utf8_invalid_offset("a\xc0\xaf"), 1u);         // overlong '/'
    EXPECT_EQ(utf8_invalid_offset("a\xc1\xbf"), 1u);         // overlong
    EXPECT_EQ(utf8_invalid_offset("\xe0\x80\xaf"), 0u);      // overlong 3-byte
    EXPECT_EQ(utf8_invalid_offset("\xf0\x80\x80\xaf"), 0u);  // overlong 4-byte
    EXPECT_EQ(utf8_invalid_offset("x\xed\xa0\x80"), 1u);     // surrogate U+D800
    EXPECT_EQ(utf8_invalid_offset("\xf4\x90\x80\x80"), 0u);  // above U+10FFFF
    EXPECT_EQ(utf8_invalid_offset("\xf5\x80\x80\x80"), 0u);
    EXPECT_EQ(utf8_invalid_offset("\xff"), 0u);
    EXPECT_EQ(utf8_invalid_offset("abc\xe2\x82"), 3u);   // truncated at the end
    EXPECT_EQ(utf8_invalid_offset("abc\xe2\x82x"), 3u);  // bad continuation
    try {
        require_utf8("ok \xfe", "f.txt");
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "f.txt: not valid UTF-8 at byte offset 3 (byte 0xfe)");
    }
}

TEST(Utf8, PrintableEscapesControlAndInvalidBytes) {
    EXPECT_EQ(printable_utf8("caf\xc3\xa9"), "caf\xc3\xa9");  // valid UTF-8 stays
    EXPECT_EQ(printable_utf8("a\xff"
                             "b\x01"
                             "c\nd\x7f"),
              "a\\xffb\\x01c\\x0ad\\x7f");
    EXPECT_EQ(printable_utf8("x\xe2\x82"), "x\\xe2\\x82");
}

// Builds GGUF v3 metadata in memory.
class GgufBuilder {
public:
    GgufBuilder& str(const std::string& key, const std::string& value) {
        header(key, GgufType::string);
        string(value);
        return *this;
    }
    GgufBuilder& u32(const std::string& key, uint32_t value) {
        header(key, GgufType::uint32);
        put(value);
        return *this;
    }
    GgufBuilder& boolean(const std::string& key, bool value) {
        header(key, GgufType::boolean);
        put(uint8_t(value));
        return *this;
    }
    GgufBuilder& strings(const std::string& key, const std::vector<std::string>& values) {
        array_header(key, GgufType::string, values.size());
        for (const auto& v : values) string(v);
        return *this;
    }
    GgufBuilder& f32s(const std::string& key, const std::vector<float>& values) {
        array_header(key, GgufType::float32, values.size());
        for (float v : values) put(v);
        return *this;
    }
    GgufBuilder& i32s(const std::string& key, const std::vector<int32_t>& values) {
        array_header(key, GgufType::int32, values.size());
        for (int32_t v : values) put(v);
        return *this;
    }
    std::string bytes() const {
        std::string out = "GGUF";
        append(out, uint32_t(3));
        append(out, uint64_t(0));
        append(out, count_);
        return out + body_;
    }
    std::string write(const std::string& name) const {
        const std::string path = (fs::temp_directory_path() / name).string();
        test::write_text_file(path, bytes());
        return path;
    }

private:
    template <typename T>
    static void append(std::string& out, T v) {
        out.append(reinterpret_cast<const char*>(&v), sizeof(T));
    }
    template <typename T>
    void put(T v) {
        append(body_, v);
    }
    void string(const std::string& s) {
        put(uint64_t(s.size()));
        body_ += s;
    }
    void header(const std::string& key, GgufType type) {
        ++count_;
        string(key);
        put(uint32_t(type));
    }
    void array_header(const std::string& key, GgufType element, size_t n) {
        header(key, GgufType::array);
        put(uint32_t(element));
        put(uint64_t(n));
    }
    std::string body_;
    uint64_t count_ = 0;
};

const std::string bar = "\xE2\x96\x81";  // "▁"

// A tiny SentencePiece-style vocabulary: ids 0-2 control, 3.. pieces, then byte tokens for '!' and '\n'.
GgufBuilder tiny_spm_gguf() {
    const std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", bar, "a", "b", "ab", bar + "ab", "<0x21>", "<0x0A>", "<tag>"};
    const std::vector<float> scores = {0, 0, 0, -1, -2, -2, -1.5f, -0.5f, 0, 0, 0};
    const std::vector<int32_t> types = {2, 3, 3, 1, 1, 1, 1, 1, 6, 6, 4};
    GgufBuilder b;
    b.str("general.architecture", "llama")
        .str("tokenizer.ggml.model", "llama")
        .strings("tokenizer.ggml.tokens", tokens)
        .f32s("tokenizer.ggml.scores", scores)
        .i32s("tokenizer.ggml.token_type", types)
        .u32("tokenizer.ggml.bos_token_id", 1)
        .u32("tokenizer.ggml.eos_token_id", 2)
        .u32("tokenizer.ggml.unknown_token_id", 0)
        .boolean("tokenizer.ggml.add_bos_token", true);
    return b;
}

TEST(Gguf, ReadsAllMetadata) {
    const std::string path = tiny_spm_gguf().write("pbs2p_test_tiny_spm.gguf");
    const GgufMetadata m = GgufMetadata::read(path);
    EXPECT_EQ(m.version(), 3u);
    EXPECT_EQ(m.values().size(), 9u);
    EXPECT_EQ(m.get_string("tokenizer.ggml.model"), "llama");
    EXPECT_EQ(m.get_strings("tokenizer.ggml.tokens").size(), 11u);
    EXPECT_EQ(m.get_reals("tokenizer.ggml.scores")[6], -1.5);
    EXPECT_EQ(m.get_ints("tokenizer.ggml.token_type")[10], 4);
    EXPECT_EQ(m.get_int("tokenizer.ggml.bos_token_id"), 1);
    EXPECT_TRUE(m.get_bool("tokenizer.ggml.add_bos_token"));
    EXPECT_EQ(m.get_int("missing.key", 7), 7);
    EXPECT_THROW(m.get_string("tokenizer.ggml.bos_token_id"), Error);
    try {
        m.get_int("no.such.key");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("no.such.key"), std::string::npos);
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
    }
    fs::remove(path);
}

TEST(Gguf, EveryTruncationIsAnError) {
    const std::string full = tiny_spm_gguf().bytes();
    const std::string path = (fs::temp_directory_path() / "pbs2p_test_truncated.gguf").string();
    for (size_t n = 0; n < full.size(); n += n < 64 ? 1 : 5) {  // every header cut, then a spread of the rest
        test::write_text_file(path, full.substr(0, n));
        EXPECT_THROW(GgufMetadata::read(path), Error) << "truncated to " << n << " bytes";
    }
    test::write_text_file(path, full.substr(0, full.size() - 3));
    EXPECT_THROW(load_tokenizer(path), Error);
    fs::remove(path);
}

TEST(Gguf, RejectsBadMagicVersionAndHugeCounts) {
    const std::string path = (fs::temp_directory_path() / "pbs2p_test_bad.gguf").string();
    std::string bytes = tiny_spm_gguf().bytes();
    bytes[4] = 1;  // version 1
    test::write_text_file(path, bytes);
    EXPECT_THROW(GgufMetadata::read(path), Error);
    bytes = tiny_spm_gguf().bytes();
    const uint64_t huge = uint64_t(1) << 60;
    std::memcpy(&bytes[16], &huge, 8);  // metadata count
    test::write_text_file(path, bytes);
    EXPECT_THROW(GgufMetadata::read(path), Error);
    fs::remove(path);
}

TEST(GgufTokenizer, TinySpmVocabulary) {
    const std::string path = tiny_spm_gguf().write("pbs2p_test_tiny_spm2.gguf");
    const auto t = load_tokenizer(path);
    EXPECT_EQ(t->kind(), "gguf-llama");
    EXPECT_EQ(t->vocab_size(), 11);
    EXPECT_EQ(t->bos_id(), 1);
    // "ab ab!\n" -> "▁ab▁ab!\n": "▁ab" twice (highest score), '!' and '\n' via byte fallback.
    EXPECT_EQ(t->encode("ab ab!\n", false), (std::vector<int32_t>{7, 7, 8, 9}));
    EXPECT_EQ(t->encode("ab", true), (std::vector<int32_t>{1, 7}));
    // A user-defined token is matched in the text; a "▁" prefix follows it again.
    EXPECT_EQ(t->encode("ab<tag>ab", false), (std::vector<int32_t>{7, 10, 7}));
    // Characters with neither a piece nor a byte token become <unk>.
    EXPECT_EQ(t->encode("c", false), (std::vector<int32_t>{3, 0}));
    EXPECT_EQ(t->decode({1, 7, 7, 8, 9, 2}), "ab ab!\n");
    EXPECT_EQ(t->piece(7), " ab");
    EXPECT_EQ(t->piece(8), "!");
    EXPECT_THROW(t->decode({11}), Error);
    fs::remove(path);
}

TEST(GgufTokenizer, TinyBytePairVocabulary) {
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) {
        std::string s;
        const uint32_t cp = byte_to_codepoint(uint8_t(b));
        if (cp < 0x80) s += char(cp); else { s += char(0xC0 | (cp >> 6)); s += char(0x80 | (cp & 0x3F)); }
        tokens.push_back(s);
    }
    const std::string space = "\xC4\xA0";  // "Ġ", the byte alphabet's space
    tokens.push_back("he");
    tokens.push_back("hel");
    tokens.push_back(space + "w");
    GgufBuilder b;
    b.str("tokenizer.ggml.model", "gpt2")
        .str("tokenizer.ggml.pre", "gpt-2")
        .strings("tokenizer.ggml.tokens", tokens)
        .strings("tokenizer.ggml.merges", {"h e", "he l", space + " w"});
    const std::string path = b.write("pbs2p_test_tiny_bpe.gguf");
    const auto t = load_tokenizer(path);
    EXPECT_EQ(t->kind(), "gguf-gpt2");
    EXPECT_EQ(t->bos_id(), -1);
    EXPECT_EQ(t->encode("hello world", false), (std::vector<int32_t>{257, 'l', 'o', 258, 'o', 'r', 'l', 'd'}));
    EXPECT_EQ(t->decode(t->encode("hello world \xC3\xA4\n", false)), "hello world \xC3\xA4\n");
    fs::remove(path);

    GgufBuilder unknown_pre;
    unknown_pre.str("tokenizer.ggml.model", "gpt2").str("tokenizer.ggml.pre", "deepseek-coder").strings("tokenizer.ggml.tokens", tokens).strings("tokenizer.ggml.merges", {});
    const std::string bad = unknown_pre.write("pbs2p_test_unknown_pre.gguf");
    EXPECT_THROW(load_tokenizer(bad), Error);
    fs::remove(bad);
}

TEST(GgufTokenizer, UnknownModelListsSupportedOnes) {
    GgufBuilder b;
    b.str("tokenizer.ggml.model", "bert").strings("tokenizer.ggml.tokens", {"a"});
    const std::string path = b.write("pbs2p_test_bert.gguf");
    try {
        load_tokenizer(path);
        FAIL() << "no error for tokenizer.ggml.model bert";
    } catch (const Error& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("bert"), std::string::npos) << msg;
        EXPECT_NE(msg.find("llama, gpt2"), std::string::npos) << msg;
    }
    fs::remove(path);
}

std::vector<std::string> split(PreTokenizer kind, const std::string& text) {
    std::vector<std::pair<uint32_t, uint32_t>> words;
    pre_tokenize(kind, text, words);
    std::vector<std::string> out;
    for (auto [b, e] : words) out.push_back(text.substr(b, e - b));
    return out;
}

using Words = std::vector<std::string>;

TEST(PreTokenizer, Gpt2Pattern) {
    EXPECT_EQ(split(PreTokenizer::gpt2, "Hello world's 123 !!  x\n\n"),
              (Words{"Hello", " world", "'s", " 123", " !!", " ", " x", "\n\n"}));
    EXPECT_EQ(split(PreTokenizer::gpt2, "I'M  done   "), (Words{"I", "'", "M", " ", " done", "   "}));
    EXPECT_EQ(split(PreTokenizer::gpt2, "Äpfel 日本"), (Words{"Äpfel", " 日本"}));
}

TEST(PreTokenizer, Llama3AndQwen2Patterns) {
    EXPECT_EQ(split(PreTokenizer::llama3, "I'M 12345 ab!Cd\n\n  x"),
              (Words{"I", "'M", " ", "123", "45", " ab", "!Cd", "\n\n", " ", " x"}));
    EXPECT_EQ(split(PreTokenizer::qwen2, "12345"), (Words{"1", "2", "3", "4", "5"}));
    EXPECT_EQ(split(PreTokenizer::llama3, " ...\n\nx  \n y"), (Words{" ...\n\n", "x", "  \n", " y"}));
    EXPECT_EQ(split(PreTokenizer::llama3, "a ½"), (Words{"a", " ", "½"}));
}

TEST(TokenizerErrors, BadFiles) {
    const fs::path dir = fs::temp_directory_path() / "pbs2p_test_tokenizer_errors";
    fs::create_directories(dir);
    const auto expect_error = [&](const std::string& name, const std::string& content) {
        const std::string path = (dir / name).string();
        test::write_text_file(path, content);
        EXPECT_THROW(load_tokenizer(path), Error) << name;
    };
    expect_error("malformed.json", R"({"model": {"type": "BPE", "vocab": {)");
    expect_error("wordpiece.json", R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})");
    expect_error("no_model.json", R"({"version": "1.0"})");
    expect_error("regex.json",
                 R"({"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\w+"}, "behavior": "Isolated", "invert": false},
                     "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})");
    expect_error("random.bin", std::string("\x01\x02\x03\x04garbage", 11));
    expect_error("broken.model", std::string("\x0A\x05garbage"));
    EXPECT_THROW(load_tokenizer((dir / "does_not_exist.json").string()), Error);
    EXPECT_THROW(load_tokenizer(dir.string()), Error);  // a directory without a tokenizer
    fs::remove_all(dir);
}

}  // namespace
}  // namespace pbs2p
