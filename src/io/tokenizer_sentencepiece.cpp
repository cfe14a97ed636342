// SentencePiece tokenizer.model through libsentencepiece. BOS is added when tokenizer_config.json's
// add_bos_token says so (default: yes).
#include <sentencepiece_processor.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/tokenizer_vocab.h"

namespace pbs2p {
namespace {

class SentencePieceTokenizer final : public Tokenizer {
  public:
    SentencePieceTokenizer(const std::string& path, bool add_bos) : path_(path) {
        const auto status = processor_.Load(path);
        PBS2P_CHECK(status.ok(), "{}: cannot load SentencePiece model: {}", path, status.ToString());
        bos_ = add_bos ? processor_.bos_id() : -1;
        pieces_.resize(processor_.GetPieceSize());
        for (int id = 0; id < processor_.GetPieceSize(); ++id) {
            if (processor_.IsControl(id) || processor_.IsUnknown(id)) continue;
            if (processor_.IsByte(id)) {
                pieces_[id] = std::string(
                    1, static_cast<char>(std::stoi(processor_.IdToPiece(id).substr(3, 2), nullptr, 16)));
                continue;
            }
            const std::string stored = processor_.IdToPiece(id);
            std::string text;
            for (size_t pos = 0; pos < stored.size();) {
                const bool marker = stored.compare(pos, 3, "\xE2\x96\x81") == 0;
                text += marker ? ' ' : stored[pos];
                pos += marker ? 3 : 1;
            }
            pieces_[id] = std::move(text);
        }
    }

    std::vector<int32_t> encode(std::string_view text, bool add_bos) const override {
        std::vector<int> ids;
        const auto status = processor_.Encode(text, &ids);
        PBS2P_CHECK(status.ok(), "{}: SentencePiece encode failed: {}", path_, status.ToString());
        std::vector<int32_t> out;
        out.reserve(ids.size() + 1);
        if (add_bos && bos_ >= 0) out.push_back(bos_);
        out.insert(out.end(), ids.begin(), ids.end());
        return out;
    }

    std::string decode(const std::vector<int32_t>& ids) const override {
        for (int32_t id : ids) check_id(id);
        std::string text;
        const auto status = processor_.Decode(std::vector<int>(ids.begin(), ids.end()), &text);
        PBS2P_CHECK(status.ok(), "{}: SentencePiece decode failed: {}", path_, status.ToString());
        return text;
    }

    std::string piece(int32_t id) const override {
        check_id(id);
        return pieces_[id];
    }
    int32_t vocab_size() const override { return processor_.GetPieceSize(); }
    int32_t bos_id() const override { return bos_; }
    int32_t eos_id() const override { return processor_.eos_id(); }
    std::string kind() const override { return "sentencepiece"; }

  private:
    void check_id(int32_t id) const {
        PBS2P_CHECK(id >= 0 && id < vocab_size(), "{}: token id {} out of range [0, {})", path_, id,
                    vocab_size());
    }
    std::string path_;
    sentencepiece::SentencePieceProcessor processor_;
    std::vector<std::string> pieces_;
    int32_t bos_ = -1;
};

}  // namespace

SentencePieceVocab read_sentencepiece_vocab(const std::string& model_path) {
    sentencepiece::SentencePieceProcessor processor;
    const auto status = processor.Load(model_path);
    PBS2P_CHECK(status.ok(), "{}: cannot load SentencePiece model: {}", model_path, status.ToString());
    SentencePieceVocab vocab;
    for (int id = 0; id < processor.GetPieceSize(); ++id) {
        vocab.pieces.push_back(processor.IdToPiece(id));
        vocab.scores.push_back(processor.GetScore(id));
        vocab.types.push_back(processor.IsUnknown(id)   ? GgufTokenType::unknown
                              : processor.IsControl(id) ? GgufTokenType::control
                              : processor.IsUnused(id)  ? GgufTokenType::unused
                              : processor.IsByte(id)    ? GgufTokenType::byte
                                                        : GgufTokenType::normal);
    }
    vocab.bos_id = processor.bos_id();
    vocab.eos_id = processor.eos_id();
    vocab.unk_id = processor.unk_id();
    vocab.pad_id = processor.pad_id();
    return vocab;
}

std::unique_ptr<Tokenizer> load_sentencepiece_model(const std::string& path, const std::string& config_path) {
    bool add_bos = true;
    if (!config_path.empty()) {
        std::ifstream in(config_path, std::ios::binary);
        PBS2P_CHECK(in, "{}: cannot open", config_path);
        const auto config = nlohmann::json::parse(in, nullptr, false);
        PBS2P_CHECK(!config.is_discarded(), "{}: malformed JSON", config_path);
        if (config.is_object() && config.contains("add_bos_token") && config.at("add_bos_token").is_boolean())
            add_bos = config.at("add_bos_token").get<bool>();
    }
    return std::make_unique<SentencePieceTokenizer>(path, add_bos);
}

}  // namespace pbs2p
