// `pbs2p info MODEL`: architecture, sizes, parameter count, stored dtypes, file size and tokenizer kind,
// read from config.json and the safetensors headers (weights are not loaded). MODEL is anything the other
// commands accept: a Hugging Face directory, a packed file (also: its layers' code, scale groups and true
// bits) or a GGUF file (architecture, hyper-parameters, tensors per ggml type and the bits per weight of its
// decoder linear layers and of the whole file, counted from the tensor infos).
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.h"
#include "io/gguf.h"
#include "io/hf_config.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "packed/gguf_export.h"
#include "packed/packed_file.h"
#include "tools/command.h"
#include "tools/model_loading.h"

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

bool is_gguf_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    char magic[4] = {};
    return std::filesystem::is_regular_file(path) && in.read(magic, 4) && std::string(magic, 4) == "GGUF";
}

std::string tokenizer_kind_of(const std::string& path) {
    try {
        return load_tokenizer(path)->kind();
    } catch (const Error&) {
        return "none";
    }
}

// A GGUF file: architecture, tensor count and the hyper-parameters from its metadata (weights unread).
int run_gguf(const InfoOptions& o) {
    const GgufMetadata g = GgufMetadata::read(o.model);
    const std::string arch = g.get_string("general.architecture", "unknown");
    auto count = [&](const std::string& key) { return g.get_int(arch + "." + key, -1); };
    const int64_t vocab = g.has("tokenizer.ggml.tokens")
                              ? static_cast<int64_t>(g.at("tokenizer.ggml.tokens").array_size())
                              : -1;
    const double rope_theta = g.has(arch + ".rope.freq_base") ? g.get_real(arch + ".rope.freq_base") : -1.0;
    const int64_t file_bytes = static_cast<int64_t>(std::filesystem::file_size(o.model));
    const std::string tokenizer = tokenizer_kind_of(o.model);
    const GgufBitCount bits = count_gguf_bits(g);
    if (o.common.json) {
        nlohmann::json j = gguf_bit_count_json(bits);
        j.update(nlohmann::json{{"model", o.model},
                               {"format", "gguf"},
                               {"gguf_version", g.version()},
                               {"architecture", arch},
                               {"name", g.get_string("general.name", "")},
                               {"tensor_count", g.tensor_count()},
                               {"num_layers", count("block_count")},
                               {"hidden_size", count("embedding_length")},
                               {"intermediate_size", count("feed_forward_length")},
                               {"num_heads", count("attention.head_count")},
                               {"num_kv_heads", count("attention.head_count_kv")},
                               {"max_position_embeddings", count("context_length")},
                               {"rope_theta", rope_theta},
                               {"vocab_size", vocab},
                               {"file_bytes", file_bytes},
                               {"tokenizer", tokenizer}});
        fmt::print("{}\n", j.dump(2));
        return 0;
    }
    auto shown = [](int64_t v) { return v < 0 ? std::string("-") : std::to_string(v); };
    fmt::print("model          {}\n", o.model);
    fmt::print("format         GGUF v{}, {} tensors\n", g.version(), g.tensor_count());
    fmt::print("architecture   {}{}\n", arch,
               g.has("general.name") ? " (" + g.get_string("general.name") + ")" : "");
    fmt::print("layers         {}\n", shown(count("block_count")));
    fmt::print("hidden         {} (FFN {})\n", shown(count("embedding_length")),
               shown(count("feed_forward_length")));
    fmt::print("heads          {} query, {} key/value\n", shown(count("attention.head_count")),
               shown(count("attention.head_count_kv")));
    fmt::print("context        {}{}\n", shown(count("context_length")),
               rope_theta > 0 ? fmt::format(", rope theta {}", rope_theta) : "");
    fmt::print("vocab          {}\n", shown(vocab));
    std::string linear_types;
    for (const auto& [type, n] : bits.linear_weights_by_type)
        linear_types += fmt::format("{}{} ({:.1f}M)", linear_types.empty() ? "" : ", ", type, n / 1e6);
    fmt::print("linear layers  {:.2f}M weights, {:.4f} bits/weight ({})\n", bits.linear_weights / 1e6,
               bits.linear_bits_per_weight(), linear_types);
    fmt::print("file size      {:.2f} MiB, {:.4f} bits/weight over {:.2f}M weights\n", file_bytes / 1048576.0,
               bits.file_bits_per_weight(), bits.weights / 1e6);
    fmt::print("tokenizer      {}\n", tokenizer);
    return 0;
}

// The packed layers of a packed file: per layer code (N:M or codebook), scale group and true bits, and the totals.
nlohmann::json packed_summary(const PackedFile& packed) {
    nlohmann::json layers = nlohmann::json::array();
    std::map<std::string, int64_t> patterns;  // "N:M (or code), scale group S" -> layers
    int64_t bytes = 0, weights = 0;
    for (const std::string& name : packed.layer_names()) {
        const PackedLayerDesc& d = packed.desc(name);
        const double bits = packed_bits_per_weight(d);
        layers.push_back({{"name", name},
                          {"rows", d.rows},
                          {"cols", d.cols},
                          {"code", d.code},
                          {"n_keep", d.n_keep},
                          {"m_group", d.m_group},
                          {"scale_group", d.scale_group},
                          {"code_bits", d.code_bits},
                          {"bits_per_weight", bits}});
        const std::string code = d.is_nm() ? fmt::format("{}:{}", d.n_keep, d.m_group) : d.code;
        ++patterns[fmt::format("{}, scale group {}", code, d.scale_group)];
        bytes += d.code_bytes() + d.rows * d.scale_groups_per_row() * d.scale_bytes();
        weights += d.rows * d.cols;
    }
    nlohmann::json pattern_counts = nlohmann::json::object();
    for (const auto& [pattern, n] : patterns) pattern_counts[pattern] = n;
    return {{"file", packed.path()},
            {"layers", layers},
            {"patterns", pattern_counts},
            {"packed_weights", weights},
            {"bits_per_weight",
             weights > 0 ? 8.0 * static_cast<double>(bytes) / static_cast<double>(weights) : 0.0}};
}

int run(const InfoOptions& o) {
    apply_common_options(o.common);
    if (is_gguf_file(o.model)) return run_gguf(o);
    // A packed file (or a directory holding one): config and tokenizer from its directory, tensors from it.
    namespace fs = std::filesystem;
    const bool packed_input = is_packed_model(o.model);
    const std::string dir = model_directory(o.model);
    std::string packed_path;
    if (fs::is_regular_file(o.model) && packed_input)
        packed_path = o.model;
    else if (fs::exists(fs::path(dir) / kPackedModelFileName))
        packed_path = (fs::path(dir) / kPackedModelFileName).string();
    const ModelConfig c = load_hf_config(dir);
    std::optional<PackedFile> packed;
    if (!packed_path.empty()) packed = PackedFile::open(packed_path);
    const SafetensorsReader tensors =
        packed_input ? SafetensorsReader::open(packed_path) : SafetensorsReader::open(o.model);
    std::map<std::string, int64_t> dtype_params;  // stored parameters per dtype
    int64_t stored_params = 0;
    for (const auto& name : tensors.names()) {
        const TensorInfo& t = tensors.tensor(name);
        dtype_params[dtype_name(t.dtype)] += t.numel();
        stored_params += t.numel();
    }
    const std::string tokenizer_kind = tokenizer_kind_of(dir);
    const int64_t file_bytes =
        packed_input ? static_cast<int64_t>(fs::file_size(packed_path)) : safetensors_file_bytes(o.model);
    const nlohmann::json packed_info = packed ? packed_summary(*packed) : nlohmann::json();
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
        j["format"] = packed_input ? "packed" : "hf";
        if (packed) j["packed"] = packed_info;
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
    if (packed) {
        std::string patterns;
        for (const auto& [pattern, n] : packed_info.at("patterns").items())
            patterns += fmt::format("{}{} x{}", patterns.empty() ? "" : "; ", pattern, n.get<int64_t>());
        fmt::print("packed file    {}\n", packed_path);
        fmt::print("packed layers  {}: {}\n", packed_info.at("layers").size(), patterns);
        fmt::print("true bits      {:.4f} per weight over {:.2f}M packed weights\n",
                   packed_info.at("bits_per_weight").get<double>(),
                   packed_info.at("packed_weights").get<int64_t>() / 1e6);
        for (const auto& l : packed_info.at("layers")) {
            const std::string code = l.at("code") == "nm"
                                         ? fmt::format("{}:{}", l.at("n_keep").get<int>(), l.at("m_group").get<int>())
                                         : l.at("code").get<std::string>();
            fmt::print("  {:<40} {}x{} {} scale group {} {:.4f} bits\n", l.at("name").get<std::string>(),
                       l.at("rows").get<int64_t>(), l.at("cols").get<int64_t>(), code,
                       l.at("scale_group").get<int64_t>(), l.at("bits_per_weight").get<double>());
        }
    }
    return 0;
}

CommandRegistrar registrar{{"info", "Show a model's architecture, sizes, dtypes and tokenizer", [](CLI::App& app) {
                                auto o = std::make_shared<InfoOptions>();
                                app.add_option("model", o->model,
                                               "Model directory (config.json + *.safetensors), packed file "
                                               "(model.packed.safetensors) or GGUF file")
                                    ->required();
                                add_common_options(app, o->common);
                                return std::function<int()>([o] { return run(*o); });
                            }}};

}  // namespace
}  // namespace pbs2p::tools
