// load_tokenizer: picks the loader from the path (directory, file name, extension, then magic bytes).
#include "io/tokenizer.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/tokenizer_vocab.h"

namespace pbs2p {
namespace {

namespace fs = std::filesystem;

std::string sibling_if_exists(const fs::path& dir, const char* name) {
    const fs::path p = dir / name;
    return fs::is_regular_file(p) ? p.string() : std::string();
}

enum class FileKind { gguf, json, sentencepiece, unknown };

FileKind sniff(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    PBS2P_CHECK(in, "{}: cannot open tokenizer file", path);
    char head[4] = {};
    in.read(head, 4);
    if (in.gcount() == 4 && std::string_view(head, 4) == "GGUF") return FileKind::gguf;
    const std::string ext = fs::path(path).extension().string();
    if (ext == ".gguf") return FileKind::gguf;
    if (ext == ".json") return FileKind::json;
    if (ext == ".model") return FileKind::sentencepiece;
    for (int i = 0; i < in.gcount(); ++i) {
        if (head[i] == '{') return FileKind::json;
        if (head[i] != ' ' && head[i] != '\n' && head[i] != '\r' && head[i] != '\t') break;
    }
    // A SentencePiece model is a protobuf whose first field (pieces, #1, length-delimited) starts with 0x0A.
    if (in.gcount() >= 1 && head[0] == 0x0A) return FileKind::sentencepiece;
    return FileKind::unknown;
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path) {
    if (fs::is_directory(path)) {
        const std::string config = sibling_if_exists(path, "tokenizer_config.json");
        if (auto model = sibling_if_exists(path, "tokenizer.model"); !model.empty())
            return load_sentencepiece_model(model, config);
        if (auto json = sibling_if_exists(path, "tokenizer.json"); !json.empty()) return load_tokenizer_json(json, config);
        const std::string vocab = sibling_if_exists(path, "vocab.json"), merges = sibling_if_exists(path, "merges.txt");
        if (!vocab.empty() && !merges.empty()) return load_vocab_merges(vocab, merges, config);
        fail("{}: no tokenizer.model, tokenizer.json or vocab.json + merges.txt in this directory", path);
    }
    PBS2P_CHECK(fs::exists(path), "{}: no such tokenizer file or directory", path);
    const std::string config = sibling_if_exists(fs::path(path).parent_path(), "tokenizer_config.json");
    switch (sniff(path)) {
        case FileKind::gguf: return load_gguf_tokenizer(path);
        case FileKind::json: return load_tokenizer_json(path, config);
        case FileKind::sentencepiece: return load_sentencepiece_model(path, config);
        case FileKind::unknown: break;
    }
    fail("{}: unknown tokenizer type (supported: SentencePiece tokenizer.model, Hugging Face tokenizer.json with a "
         "BPE model, GGUF with tokenizer.ggml.model llama or gpt2)",
         path);
}

}  // namespace pbs2p
