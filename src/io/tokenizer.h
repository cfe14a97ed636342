// Tokenizers behind one interface: SentencePiece `tokenizer.model` (libsentencepiece), Hugging Face
// `tokenizer.json` (byte-level BPE: GPT-2/OPT, LLaMA-3, Qwen2 pre-tokenizers; SentencePiece-style BPE
// with metaspace and byte fallback), and vocabularies stored in GGUF metadata (llama.cpp's `llama`
// SPM and `gpt2` BPE models).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pbs2p {

class Tokenizer {
public:
    virtual ~Tokenizer() = default;
    // Token ids for `text`; a BOS id is prepended when `add_bos` and the vocabulary has one.
    virtual std::vector<int32_t> encode(std::string_view text, bool add_bos) const = 0;
    // Text for `ids` (special tokens such as BOS/EOS are skipped).
    virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
    // Text of one token as it should be streamed during generation, given the previous token
    // (handles the leading-space marker and partial UTF-8 byte tokens by returning what is complete).
    // Current implementations are stateless: the leading-space marker becomes a space, a byte token
    // returns its single byte (concatenating pieces gives complete UTF-8), special tokens return "".
    virtual std::string piece(int32_t id) const = 0;
    virtual int32_t vocab_size() const = 0;
    virtual int32_t bos_id() const = 0;  // -1 if none, or if the tokenizer's configuration adds no BOS
    virtual int32_t eos_id() const = 0;  // -1 if none
    virtual std::string kind() const = 0;  // e.g. "sentencepiece", "bpe-bytelevel", "spm-bpe", "gguf-llama"
};

// `path` is a tokenizer.model, a tokenizer.json, a .gguf file, or a model directory holding
// tokenizer.model, tokenizer.json, or vocab.json + merges.txt (GPT-2/OPT), and tokenizer_config.json
// for add_bos and special tokens.
// Throws pbs2p::Error naming the file for unknown tokenizer types or malformed files.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

}  // namespace pbs2p
