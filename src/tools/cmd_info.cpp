// `pbs2p info MODEL`: architecture, sizes, parameter count, stored dtypes, file size and tokenizer kind,
// read from config.json and the safetensors headers (weights are not loaded). For a .gguf file: its
// architecture, tensors per ggml type and the bits per weight of its decoder linear layers and of the
// whole file, counted from the tensor infos.
#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/gguf.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "packed/gguf_export.h"
#include "tools/command.h"

namespace pbs2p::tools {
namespace {

struct InfoOptions {
    std::string model;
    CommonOptions common;
};

int64_t safetensors_file_bytes(const std::string& dir) {
    namespace fs = std::filesystem;
    if (!fs::is_directory(dir)) return fs::exists(dir) ? static_cast<int64_t>(fs::file_size(dir)) : 0;
    int64_t bytes = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.is_regular_file() && entry.path().extension() == ".safetensors")
            bytes += static_cast<int64_t>(entry.file_size());
    }
    return bytes;
}

int run_gguf(const InfoOptions& o) {
    const GgufMetadata m = GgufMetadata::read(o.model);
    const GgufBitCount bits = count_gguf_bits(m);
    const std::string arch = m.get_string("general.architecture", "");
    if (o.common.json) {
        nlohmann::json j = gguf_bit_count_json(bits);
        j["model"] = o.model;
        j["format"] = "gguf";
        j["architecture"] = arch;
        fmt::print("{}\n", j.dump(2));
        return 0;
    }
    std::string by_type;
    for (const auto& [type, n] : bits.tensors_by_type)
        by_type += fmt::format("{}{} {}", by_type.empty() ? "" : ", ", n, type);
    std::string linear_types;
    for (const auto& [type, n] : bits.linear_weights_by_type)
        linear_types += fmt::format("{}{} ({:.1f}M)", linear_types.empty() ? "" : ", ", type, n / 1e6);
    fmt::print("model          {}\n", o.model);
    fmt::print("format         GGUF v{}, architecture {}\n", m.version(), arch.empty() ? "?" : arch);
    fmt::print("tensors        {} ({})\n", bits.tensors, by_type);
    fmt::print("linear layers  {:.2f}M weights, {:.4f} bits/weight ({})\n", bits.linear_weights / 1e6,
               bits.linear_bits_per_weight(), linear_types);
    fmt::print("file size      {:.2f} MiB, {:.4f} bits/weight over {:.2f}M weights\n",
               bits.file_bytes / 1048576.0, bits.file_bits_per_weight(), bits.weights / 1e6);
    return 0;
}

int run(const InfoOptions& o) {
    apply_common_options(o.common);
    if (std::filesystem::path(o.model).extension() == ".gguf") return run_gguf(o);
    const ModelConfig c = load_hf_config(o.model);
    const SafetensorsReader tensors = SafetensorsReader::open(o.model);
    std::map<std::string, int64_t> dtype_params;  // stored parameters per dtype
    int64_t stored_params = 0;
    for (const auto& name : tensors.names()) {
        const TensorInfo& t = tensors.tensor(name);
        dtype_params[dtype_name(t.dtype)] += t.numel();
        stored_params += t.numel();
    }
    std::string tokenizer_kind;
    try {
        tokenizer_kind = load_tokenizer(o.model)->kind();
    } catch (const Error& e) {
        tokenizer_kind = "none";
    }
    const int64_t file_bytes = safetensors_file_bytes(o.model);
    std::string rope = c.use_rope ? fmt::format("theta {}", c.rope_theta) : "learned positions";
    if (!c.rope_scaling.type.empty())
        rope += fmt::format(", {} scaling x{}", c.rope_scaling.type, c.rope_scaling.factor);

    if (o.common.json) {
        nlohmann::json dtypes;
        for (const auto& [name, n] : dtype_params) dtypes[name] = n;
        nlohmann::json j{{"model", o.model},
                         {"architecture", c.architecture},
                         {"model_type", c.model_type},
                         {"vocab_size", c.vocab_size},
                         {"hidden_size", c.hidden_size},
                         {"intermediate_size", c.intermediate_size},
                         {"num_layers", c.num_layers},
                         {"num_heads", c.num_heads},
                         {"num_kv_heads", c.num_kv_heads},
                         {"head_dim", c.head_dim},
                         {"max_position_embeddings", c.max_position_embeddings},
                         {"positions", rope},
                         {"tie_word_embeddings", c.tie_word_embeddings},
                         {"parameters", c.parameter_count()},
                         {"stored_parameters", stored_params},
                         {"dtypes", dtypes},
                         {"file_bytes", file_bytes},
                         {"tokenizer", tokenizer_kind}};
        fmt::print("{}\n", j.dump(2));
        return 0;
    }
    std::string dtypes;
    for (const auto& [name, n] : dtype_params)
        dtypes += fmt::format("{}{} ({:.1f}M)", dtypes.empty() ? "" : ", ", name, n / 1e6);
    fmt::print("model          {}\n", o.model);
    fmt::print("architecture   {} ({})\n", c.architecture, c.model_type);
    fmt::print("layers         {}\n", c.num_layers);
    fmt::print("hidden         {} (FFN {}, embeddings {})\n", c.hidden_size, c.intermediate_size,
               c.embed_dim);
    fmt::print("heads          {} query, {} key/value, head_dim {}\n", c.num_heads, c.num_kv_heads,
               c.head_dim);
    fmt::print("vocab          {}{}\n", c.vocab_size, c.tie_word_embeddings ? " (tied LM head)" : "");
    fmt::print("positions      {} max, {}\n", c.max_position_embeddings, rope);
    fmt::print("parameters     {:.2f}M ({:.2f}M stored)\n", c.parameter_count() / 1e6, stored_params / 1e6);
    fmt::print("dtype          {}\n", dtypes);
    fmt::print("file size      {:.2f} MiB\n", file_bytes / 1048576.0);
    fmt::print("tokenizer      {}\n", tokenizer_kind);
    return 0;
}

CommandRegistrar registrar{
    {"info", "Show a model's architecture, sizes, dtypes and tokenizer", [](CLI::App& app) {
         auto o = std::make_shared<InfoOptions>();
         app.add_option("model", o->model, "Model directory (config.json + *.safetensors) or a .gguf file")
             ->required();
         add_common_options(app, o->common);
         return std::function<int()>([o] { return run(*o); });
     }}};

}  // namespace
}  // namespace pbs2p::tools
