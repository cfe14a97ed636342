// Our own tokenizer engine behind `Tokenizer`: a vocabulary plus the rules of one family, described by a
// VocabSpec that the tokenizer.json and GGUF loaders fill in.
//   byte-level BPE  (GPT-2/OPT, LLaMA-3, Qwen2): pre-tokenizer pattern, bytes -> GPT-2 byte alphabet,
//                   merges by rank.
//   metaspace BPE   (LLaMA-2-style tokenizer.json): " " -> "▁", optional "▁" prefix, merges by rank,
//                   <0xNN> byte fallback.
//   metaspace SPM   (llama.cpp's `llama` GGUF vocabularies): merges of adjacent pieces by highest vocabulary
//                   score, <0xNN> byte fallback.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/tokenizer.h"

namespace pbs2p {

// Largest inputs the tokenizer loaders accept (every published vocabulary is far below them); beyond them a
// file is refused, naming the limit, before its vocabulary is allocated.
namespace tokenizer_limits {
inline constexpr int64_t kMaxFileBytes = 512ll << 20;  // tokenizer.json, vocab.json, merges.txt
inline constexpr int32_t kMaxVocabSize = 1 << 21;      // token ids, added tokens included
}  // namespace tokenizer_limits

// Throws pbs2p::Error when `id` is outside [0, kMaxVocabSize); `what` names the file and the token.
void check_vocab_id(int64_t id, const std::string& what);
// Throws pbs2p::Error when the file at `path` is larger than kMaxFileBytes.
void check_tokenizer_file_size(const std::string& path);

// Pre-tokenizer patterns implemented by hand (see tokenizer_pretokenize.cpp for the regexes).
enum class PreTokenizer { none, gpt2, llama3, qwen2 };
const char* pre_tokenizer_name(PreTokenizer kind);
// The pattern a tokenizer.json regex string denotes; throws pbs2p::Error naming `source` if unknown.
PreTokenizer pre_tokenizer_from_regex(const std::string& regex, const std::string& source);
// Byte ranges [begin, end) of the pre-tokens of `text`, in order, covering all of it.
void pre_tokenize(PreTokenizer kind, std::string_view text,
                  std::vector<std::pair<uint32_t, uint32_t>>& words);

enum class TextMapping { byte_level, metaspace };
enum class MergeRule { ranked_pairs, scored_concat };
enum class PrependScheme { never, first, always };  // where metaspace puts a leading "▁"

struct AddedToken {
    int32_t id = -1;
    std::string content;
    bool special = false;  // skipped when decoding
};

struct VocabSpec {
    std::string source;  // file, for error messages
    std::string kind;    // reported by Tokenizer::kind()
    std::vector<std::string>
        tokens;  // id -> token text as stored (byte-level alphabet or "▁" form); may have holes ("")
    std::vector<float> scores;                                // scored_concat: id -> score
    std::vector<std::pair<std::string, std::string>> merges;  // ranked_pairs: in rank order
    std::vector<AddedToken> added;                            // matched in the raw text before the model runs
    std::vector<int32_t> control_ids;                         // further ids skipped when decoding
    TextMapping mapping = TextMapping::byte_level;
    MergeRule rule = MergeRule::ranked_pairs;
    PreTokenizer pre = PreTokenizer::none;
    PrependScheme prepend = PrependScheme::never;
    bool metaspace_split = false;  // split words before each "▁" (HF Metaspace split=true)
    bool byte_fallback = false;
    bool fuse_unk = false;
    bool ignore_merges = false;        // a pre-token that is itself a token is not merged (LLaMA-3)
    bool strip_leading_space = false;  // decode drops one leading space (undoes the "▁" prefix)
    int32_t unk_id = -1;
    int32_t bos_id = -1;  // prepended by encode(text, true); -1 if the tokenizer adds none
    int32_t eos_id = -1;
};

std::unique_ptr<Tokenizer> make_vocab_tokenizer(VocabSpec spec);

// Loaders (tokenizer_json.cpp, tokenizer_gguf.cpp, tokenizer_sentencepiece.cpp). `config_path` is a
// tokenizer_config.json or empty.
std::unique_ptr<Tokenizer> load_tokenizer_json(const std::string& path, const std::string& config_path);
std::unique_ptr<Tokenizer> load_gguf_tokenizer(const std::string& path);
// GPT-2/OPT "slow tokenizer" files: vocab.json (token -> id) and merges.txt (one "a b" per line).
std::unique_ptr<Tokenizer> load_vocab_merges(const std::string& vocab_path, const std::string& merges_path,
                                             const std::string& config_path);
std::unique_ptr<Tokenizer> load_sentencepiece_model(const std::string& path, const std::string& config_path);

// llama.cpp's token types (tokenizer.ggml.token_type in GGUF).
enum class GgufTokenType : int32_t {
    normal = 1,
    unknown = 2,
    control = 3,
    user_defined = 4,
    unused = 5,
    byte = 6
};

// A SentencePiece tokenizer.model as the vocabulary tables of a `llama` GGUF tokenizer: pieces as stored
// ("▁" for spaces, "<0xNN>" byte pieces), scores, token types; special ids -1 when absent.
struct SentencePieceVocab {
    std::vector<std::string> pieces;
    std::vector<float> scores;
    std::vector<GgufTokenType> types;
    int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
};
SentencePieceVocab read_sentencepiece_vocab(const std::string& model_path);

// GPT-2's reversible map of bytes to printable code points (used by byte-level vocabularies).
uint32_t byte_to_codepoint(uint8_t byte);
int byte_from_codepoint(uint32_t cp);  // -1 if `cp` is not in the byte alphabet

}  // namespace pbs2p
