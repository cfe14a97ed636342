// The fuzz target table. Inputs are written to a per-process scratch directory and opened through the same
// path-based entry points the CLI uses, so what is fuzzed is what ships.
#include "fuzz_targets.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "compress/calibration.h"
#include "core/error.h"
#include "eval/text.h"
#include "io/gguf.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "packed/packed_file.h"

namespace pbs2p::fuzz {
namespace {

namespace fs = std::filesystem;

// A directory private to this process (libFuzzer -jobs runs several), removed at exit.
const fs::path& scratch_dir() {
    static const fs::path dir = [] {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/pbs2p-fuzz-XXXXXX";
        if (!::mkdtemp(pattern.data())) std::abort();
        std::atexit([] {
            std::error_code ec;
            fs::remove_all(scratch_dir(), ec);
        });
        return fs::path(pattern);
    }();
    return dir;
}

std::string write_input(const std::string& name, const uint8_t* data, size_t size) {
    const fs::path path = scratch_dir() / name;
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    if (!out) std::abort();
    return path.string();
}

// Runs `body`; a pbs2p::Error is the parser refusing the input, which is fine.
template <typename Body>
void expect_ok_or_error(Body&& body) {
    try {
        body();
    } catch (const Error&) {
    }
}

// Reads every floating-point tensor the way the model loader does.
void load_every_tensor(const SafetensorsReader& reader) {
    for (const std::string& name : reader.names()) {
        const TensorInfo& t = reader.tensor(name);
        if (t.dtype != DType::f32 && t.dtype != DType::f16 && t.dtype != DType::bf16) continue;
        expect_ok_or_error([&] {
            if (t.shape.size() == 1) reader.load_vector(name, t.shape[0]);
            if (t.shape.size() == 2) reader.load_matrix(name, t.shape[0], t.shape[1]);
        });
    }
}

// Two small valid shards beside which a fuzzed model.safetensors.index.json is opened.
const fs::path& index_dir() {
    static const fs::path dir = [] {
        const fs::path d = scratch_dir() / "sharded";
        fs::create_directories(d);
        const float a[4] = {1, 2, 3, 4}, b[3] = {5, 6, 7};
        write_safetensors((d / "a.safetensors").string(),
                          {tensor_from_floats("a.weight", a, {2, 2}, DType::f32)});
        write_safetensors((d / "b.safetensors").string(),
                          {tensor_from_floats("b.weight", b, {3}, DType::bf16)});
        return d;
    }();
    return dir;
}

// An input starting with '{' is a sharded index (beside two fixed shards), anything else a .safetensors file.
void run_safetensors(const uint8_t* data, size_t size) {
    const bool is_index = size > 0 && data[0] == '{';
    std::string path;
    if (is_index) {
        path = (index_dir() / "model.safetensors.index.json").string();
        std::ofstream(path, std::ios::binary | std::ios::trunc)
            .write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    } else {
        path = write_input("model.safetensors", data, size);
    }
    expect_ok_or_error([&] { load_every_tensor(SafetensorsReader::open(path)); });
}

void run_hf_config(const uint8_t* data, size_t size) {
    const std::string path = write_input("config.json", data, size);
    expect_ok_or_error([&] {
        const ModelConfig config = load_hf_config(path);
        (void)config.parameter_count();
    });
}

// Loads a tokenizer and round-trips a fixed text and the first ids of the vocabulary.
void exercise_tokenizer(const std::string& path) {
    expect_ok_or_error([&] {
        const auto tokenizer = load_tokenizer(path);
        const std::vector<int32_t> ids =
            tokenizer->encode("Hello, world! \xc3\xa9t\xc3\xa9 42  tabs\tand\nlines", true);
        (void)tokenizer->decode(ids);
        std::vector<int32_t> first;
        for (int32_t id = 0; id < std::min(tokenizer->vocab_size(), 64); ++id) {
            first.push_back(id);
            (void)tokenizer->piece(id);
        }
        (void)tokenizer->decode(first);
    });
}

void run_tokenizer_json(const uint8_t* data, size_t size) {
    exercise_tokenizer(write_input("tokenizer.json", data, size));
}

// GGUF metadata, then the vocabulary read from it (as `pbs2p tokenize --tokenizer x.gguf` does).
void run_gguf(const uint8_t* data, size_t size) {
    const std::string path = write_input("model.gguf", data, size);
    expect_ok_or_error([&] {
        const GgufMetadata meta = GgufMetadata::read(path);
        for (const auto& [key, value] : meta.values()) (void)value.array_size();
    });
    exercise_tokenizer(path);
}

void open_packed_and_decode(const std::string& path) {
    expect_ok_or_error([&] {
        const PackedFile file = PackedFile::open(path);
        for (const std::string& name : file.layer_names()) (void)decode_layer(file.load_layer(name), name);
    });
}

// The file as given, then the same tensors and descriptors with every checksum made right, so the fuzzer
// reaches the descriptor and code validation behind the checksums.
void run_packed_file(const uint8_t* data, size_t size) {
    const std::string path = write_input("model.packed.safetensors", data, size);
    open_packed_and_decode(path);
    const std::string fixed = (scratch_dir() / "fixed.packed.safetensors").string();
    bool rewritten = false;
    expect_ok_or_error([&] {
        const SafetensorsReader reader = SafetensorsReader::open(path);
        std::vector<TensorToWrite> tensors;
        nlohmann::json checksums = nlohmann::json::object();
        for (const std::string& name : reader.names()) {
            const TensorInfo& t = reader.tensor(name);
            tensors.push_back({name, t.dtype, t.shape, std::vector<uint8_t>(t.data, t.data + t.nbytes)});
            checksums[name] = xxh3_hex(t.data, t.nbytes);
        }
        std::map<std::string, std::string> metadata = reader.metadata();
        metadata["checksums"] = checksums.dump();
        write_safetensors(fixed, tensors, metadata);
        rewritten = true;
    });
    if (rewritten) open_packed_and_decode(fixed);
}

// Calibration / evaluation text: read, tokenized with the reference model's tokenizer, windows drawn.
void run_calib_text(const uint8_t* data, size_t size) {
    static const auto tokenizer = load_tokenizer(std::string(PBS2P_SOURCE_DIR) + "/models/ref-llama");
    const std::string path = write_input("calib.txt", data, size);
    expect_ok_or_error([&] {
        const std::vector<int32_t> stream = tokenizer->encode(read_text_file(path), true);
        (void)tokenizer->decode(stream);
        (void)sample_calibration(stream, 2, 4, 1234, path);
    });
}

constexpr FuzzTarget kTargets[] = {
    {"safetensors", "a .safetensors file, or (starting with '{') a sharded model.safetensors.index.json",
     run_safetensors},
    {"hf_config", "a Hugging Face config.json", run_hf_config},
    {"tokenizer_json", "a Hugging Face tokenizer.json", run_tokenizer_json},
    {"gguf", "a GGUF file (metadata and the vocabulary in it)", run_gguf},
    {"packed_file", "a packed model file (descriptors, codes, scales, checksums)", run_packed_file},
    {"calib_text", "a calibration or evaluation text file", run_calib_text},
};

}  // namespace

std::span<const FuzzTarget> fuzz_targets() {
    return kTargets;
}

const FuzzTarget* find_fuzz_target(const std::string& name) {
    for (const FuzzTarget& t : kTargets)
        if (name == t.name) return &t;
    return nullptr;
}

}  // namespace pbs2p::fuzz
