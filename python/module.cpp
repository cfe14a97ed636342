// The `pbs2p` Python module: a model opened from a Hugging Face directory or a packed file (perplexity,
// generation, logits, tokenizer), compressing a model as `pbs2p compress` does, and compressing one
// layer on NumPy arrays. It calls the library functions the CLI calls, so its numbers are the CLI's.
// Long calls run without the GIL; pbs2p::Error becomes pbs2p.Error (a RuntimeError) with its message.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compress/driver.h"
#include "compress/layer_compressor.h"
#include "core/error.h"
#include "core/threads.h"
#include "eval/generate.h"
#include "eval/perplexity.h"
#include "io/tokenizer.h"
#include "model/model.h"
#include "options.h"
#include "tools/compress_job.h"
#include "tools/compress_options.h"
#include "tools/model_loading.h"

namespace pbs2p::python {
namespace {

constexpr const char* kNmHint = "give N:M as nm='4:8'";

py::object json_to_python(const nlohmann::json& j) {
    return py::module_::import("json").attr("loads")(j.dump());
}

// A row-major copy of `m` as a NumPy array [rows, cols].
template <typename T>
py::array_t<T> to_numpy(const BasicMatrix<T>& m) {
    py::array_t<T> out({m.rows, m.cols});
    std::memcpy(out.mutable_data(), m.ptr(), static_cast<size_t>(m.size()) * sizeof(T));
    return out;
}

template <typename T>
py::array_t<T> to_numpy(const std::vector<T>& values, int64_t rows, int64_t cols) {
    py::array_t<T> out({rows, cols});
    std::copy(values.begin(), values.end(), out.mutable_data());
    return out;
}

template <typename T>
BasicMatrix<T> from_numpy(const py::array_t<T, py::array::c_style | py::array::forcecast>& a,
                          const char* name) {
    if (a.ndim() != 2)
        throw py::value_error(std::string(name) + " must be 2-D, got " + std::to_string(a.ndim()) + "-D");
    BasicMatrix<T> m(a.shape(0), a.shape(1));
    std::memcpy(m.ptr(), a.data(), static_cast<size_t>(m.size()) * sizeof(T));
    return m;
}

// ---- Model ------------------------------------------------------------------------------------------

struct PyModel {
    std::string path;
    bool packed = false;
    Model model;
    std::unique_ptr<Tokenizer> tokenizer;

    const ModelConfig& config() const { return model.config(); }
};

std::unique_ptr<PyModel> load_model(const std::string& path, const std::optional<std::string>& kernel) {
    py::gil_scoped_release release;
    const bool packed = tools::is_packed_model(path);
    Model model = tools::load_model_for_cli(path, kernel.value_or(""));
    auto tokenizer = load_tokenizer(tools::model_directory(path));
    return std::make_unique<PyModel>(PyModel{path, packed, std::move(model), std::move(tokenizer)});
}

double model_perplexity(const PyModel& m, const std::string& text, std::optional<int64_t> ctx,
                        const std::string& protocol_text, std::optional<int64_t> max_windows) {
    py::gil_scoped_release release;
    const PerplexityProtocol protocol = parse_protocol(protocol_text);
    PBS2P_CHECK(m.tokenizer->vocab_size() <= m.config().vocab_size,
                "{}: tokenizer has {} tokens but the model's vocabulary is {}", m.path,
                m.tokenizer->vocab_size(), m.config().vocab_size);
    const std::vector<int32_t> tokens = m.tokenizer->encode(text, true);
    EvalOptions options;
    options.protocol = protocol;
    options.ctx = ctx.value_or(0) > 0 ? *ctx : default_context(protocol, m.config());
    options.max_windows = max_windows.value_or(0);
    options.progress = false;
    return evaluate_perplexity(m.model, tokens, m.tokenizer->bos_id(), options).ppl;
}

std::string model_generate(const PyModel& m, const std::string& prompt_text, int64_t max_tokens,
                           double temperature, int64_t top_k, uint64_t seed) {
    if (max_tokens < 0 || temperature < 0 || top_k < 0)
        throw py::value_error("generate(): max_tokens, temperature and top_k must be >= 0");
    py::gil_scoped_release release;
    const std::vector<int32_t> prompt = m.tokenizer->encode(prompt_text, true);
    PBS2P_CHECK(!prompt.empty(), "--prompt: empty prompt");
    GenerateOptions options;
    options.max_tokens = max_tokens;
    options.sampling = {temperature, top_k, seed, m.tokenizer->vocab_size()};
    const int32_t eos = m.tokenizer->eos_id() >= 0 ? m.tokenizer->eos_id() : m.config().eos_token_id;
    return m.tokenizer->decode(generate(m.model, prompt, eos, options).tokens);
}

py::array_t<float> model_logits(const PyModel& m, const std::vector<int32_t>& ids) {
    Matrix out;
    {
        py::gil_scoped_release release;
        out = m.model.forward(ids);
    }
    return to_numpy(out);
}

py::dict config_dict(const ModelConfig& c) {
    py::dict d;
    d["architecture"] = c.architecture;
    d["model_type"] = c.model_type;
    d["vocab_size"] = c.vocab_size;
    d["hidden_size"] = c.hidden_size;
    d["intermediate_size"] = c.intermediate_size;
    d["num_layers"] = c.num_layers;
    d["num_heads"] = c.num_heads;
    d["num_kv_heads"] = c.num_kv_heads;
    d["head_dim"] = c.head_dim;
    d["max_position_embeddings"] = c.max_position_embeddings;
    d["bos_token_id"] = c.bos_token_id;
    d["eos_token_id"] = c.eos_token_id;
    return d;
}

// ---- compress ---------------------------------------------------------------------------------------

py::object compress_model_dir(const std::string& model_dir, const std::string& out_dir,
                              const std::string& calib, const std::string& method, const std::string& nm,
                              int64_t calib_windows, int64_t calib_seq, uint64_t seed,
                              const std::string& dtype, bool resume, const py::object& progress,
                              double bits_budget, const std::string& recipe, const py::kwargs& options) {
    tools::CompressJob job;
    job.model_dir = model_dir;
    job.out_dir = out_dir;
    job.dtype = dtype;
    job.no_resume = !resume;
    job.show_progress = progress.is_none();
    tools::CompressCliOptions& c = job.compress;
    c.driver.layer.method = method;
    c.nm = nm;
    c.calib_path = calib;
    c.calib_windows = calib_windows;
    c.calib_seq = calib_seq;
    c.seed = seed;
    c.bits_budget = bits_budget;
    c.recipe = recipe;
    apply_options(
        c.driver, options, [](auto& o, auto&& visit) { for_each_driver_option(o, visit); }, "compress",
        {"n_keep", "m_group"}, kNmHint);
    // The Python API keeps the library's defaults (the paper's PBS2P unless options say otherwise).
    tools::finalize_compress_options(c, /*use_preset=*/false);
    // Runs between two layers with the GIL held: Ctrl-C (KeyboardInterrupt) or an exception raised by
    // `progress` stops the run there, and the checkpoint lets a rerun resume.
    auto on_layer = [&progress](int64_t done, int64_t total, const std::string& status) {
        py::gil_scoped_acquire acquire;
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
        if (!progress.is_none()) progress(done, total, status);
    };
    nlohmann::json report;
    {
        py::gil_scoped_release release;
        report = tools::run_compress_job(job, on_layer);
    }
    return json_to_python(report);
}

py::dict stats_dict(const LayerStats& s) {
    py::dict d;
    d["method"] = s.method;
    d["rows"] = s.rows;
    d["cols"] = s.cols;
    d["n_keep"] = s.n_keep;
    d["m_group"] = s.m_group;
    d["rel_error"] = s.rel_error;
    d["rel_error_uncompensated"] = s.rel_error_uncompensated;
    d["nominal_bits"] = s.nominal_bits;
    d["storage_bits"] = s.storage_bits;
    d["salient_fraction"] = s.salient_fraction;
    d["seconds"] = s.seconds;
    d["pruned"] = s.pruned;
    d["sign_flips"] = s.sign_flips;
    d["zero_signs_fixed"] = s.zero_signs_fixed;
    d["percdamp_used"] = s.percdamp_used;
    return d;
}

py::dict layout_dict(const BinaryLayout& l) {
    py::dict d;
    d["n_keep"] = l.n_keep;
    d["m_group"] = l.m_group;
    d["scale_group"] = l.scale_group;
    d["keep"] = to_numpy(std::vector<bool>(l.keep.begin(), l.keep.end()), l.rows, l.cols);
    d["sign"] = to_numpy(std::vector<bool>(l.sign.begin(), l.sign.end()), l.rows, l.cols);
    d["alpha"] = to_numpy(l.alpha, l.rows, l.scale_groups_per_row());
    d["mu"] = to_numpy(l.mu, l.rows, l.scale_groups_per_row());
    return d;
}

py::dict compress_one_layer(const py::array_t<float, py::array::c_style | py::array::forcecast>& w_array,
                            const py::array_t<double, py::array::c_style | py::array::forcecast>& h_array,
                            const std::string& method, const std::string& nm, const py::kwargs& kwargs) {
    const Matrix W = from_numpy(w_array, "W");
    const MatrixD H = from_numpy(h_array, "H");
    if (H.rows != W.cols || H.cols != W.cols)
        throw py::value_error("H must be [in, in] = [" + std::to_string(W.cols) + ", " +
                              std::to_string(W.cols) + "] for W [" + std::to_string(W.rows) + ", " +
                              std::to_string(W.cols) + "], got [" + std::to_string(H.rows) + ", " +
                              std::to_string(H.cols) + "]");
    CompressOptions options;
    options.method = method;
    tools::parse_nm(nm, options);
    apply_options(
        options, kwargs, [](auto& o, auto&& visit) { for_each_layer_option(o, visit); }, "compress_layer",
        {"n_keep", "m_group"}, kNmHint);
    CompressedLayer result;
    {
        py::gil_scoped_release release;
        result = pbs2p::compress_layer(W, H, options);
    }
    py::dict out;
    out["weight"] = to_numpy(result.weight);
    out["stats"] = stats_dict(result.stats);
    out["layout"] = result.layout ? py::object(layout_dict(*result.layout)) : py::object(py::none());
    return out;
}

}  // namespace
}  // namespace pbs2p::python

PYBIND11_MODULE(pbs2p, m) {
    using namespace pbs2p;
    using namespace pbs2p::python;
    m.doc() = "pbs2p: sub-1-bit LLM compression (PBS2P and baselines) and CPU inference";
    m.attr("__version__") = PBS2P_VERSION;
    py::register_exception<Error>(m, "Error", PyExc_RuntimeError);

    py::class_<PyModel>(m, "Model", "A model opened by pbs2p.load()")
        .def("perplexity", &model_perplexity, py::arg("text"), py::arg("ctx") = py::none(),
             py::arg("protocol") = "gptq", py::arg("max_windows") = py::none(),
             "Perplexity of `text` (tokenized whole, BOS first) as `pbs2p eval --text` computes it: protocol "
             "'gptq' or 'llamacpp', window length ctx (default: the CLI's), only the first max_windows "
             "windows")
        .def("generate", &model_generate, py::arg("prompt"), py::arg("max_tokens") = 128,
             py::arg("temperature") = 0.0, py::arg("top_k") = 0, py::arg("seed") = 0,
             "The text generated after `prompt` (without it), as `pbs2p generate --json` gives it (temperature 0 = greedy)")
        .def("logits", &model_logits, py::arg("ids"),
             "Logits of one sequence of token ids: float32 [len(ids), vocab]")
        .def(
            "tokenize",
            [](const PyModel& m, const std::string& text, bool add_bos) {
                py::gil_scoped_release release;
                return m.tokenizer->encode(text, add_bos);
            },
            py::arg("text"), py::arg("add_bos") = true,
            "Token ids of `text` (BOS first by default, as eval does)")
        .def(
            "decode",
            [](const PyModel& m, const std::vector<int32_t>& ids) { return m.tokenizer->decode(ids); },
            py::arg("ids"), "Text of token ids (special tokens skipped)")
        .def_readonly("path", &PyModel::path)
        .def_readonly("packed", &PyModel::packed, "True when loaded from a packed sub-1-bit file")
        .def_property_readonly("config", [](const PyModel& m) { return config_dict(m.config()); })
        .def_property_readonly("architecture", [](const PyModel& m) { return m.config().architecture; })
        .def_property_readonly("hidden_size", [](const PyModel& m) { return m.config().hidden_size; })
        .def_property_readonly("num_layers", [](const PyModel& m) { return m.config().num_layers; })
        .def_property_readonly("vocab_size", [](const PyModel& m) { return m.config().vocab_size; })
        .def_property_readonly("max_position_embeddings",
                               [](const PyModel& m) { return m.config().max_position_embeddings; })
        .def("__repr__", [](const PyModel& m) {
            return "<pbs2p.Model " + m.path + ": " + m.config().architecture + ", " +
                   std::to_string(m.config().num_layers) + " layers, hidden " +
                   std::to_string(m.config().hidden_size) + ", vocab " +
                   std::to_string(m.config().vocab_size) + (m.packed ? ", packed" : "") + ">";
        });

    m.def("load", &load_model, py::arg("path"), py::arg("kernel") = py::none(),
          "Opens a Hugging Face model directory or a packed file (OUT/model.packed.safetensors); `kernel` "
          "picks "
          "the packed kernel (reference | avx2_f32 | avx2_q8_lowbit | avx2_q8 | avx512_q8; default the fastest this CPU runs)");
    m.def("compress", &compress_model_dir, py::arg("model_dir"), py::arg("out_dir"), py::kw_only(),
          py::arg("calib"), py::arg("method") = "pbs2p", py::arg("nm") = "4:8",
          py::arg("calib_windows") = 128, py::arg("calib_seq") = 0, py::arg("seed") = 0,
          py::arg("dtype") = "f32", py::arg("resume") = true, py::arg("progress") = py::none(),
          py::arg("bits_budget") = 0.0, py::arg("recipe") = "",
          "Runs `pbs2p compress`: writes out_dir (model.safetensors, model.packed.safetensors for binary N:M "
          "methods, report.json) and returns the report. progress(done, total, status) is called after each "
          "layer (default: a progress bar on stderr). bits_budget > 0 allocates variable-N ternary codes by "
          "tensor type under that many bits per weight, as the CLI's --bits-budget (its default preset is "
          "bits_budget=1.65, alpha_passes=3); recipe='TYPE=CODE@SG,...' spells the allocation out. Other keywords "
          "are options by name (option_names()).");
    m.def(
        "compress_layer", &compress_one_layer, py::arg("W"), py::arg("H"), py::arg("method") = "pbs2p",
        py::arg("nm") = "4:8",
        "Compresses one linear weight W float32 [out, in] with its proxy Hessian H float64 [in, in]. Returns "
        "{'weight': dequantized W, 'stats': layer statistics, 'layout': the binary structured form (keep, "
        "sign, alpha, mu, scale_group) or None}. Other keywords are layer options by name.");
    m.def(
        "option_names",
        [](bool layer_only) {
            return layer_only ? option_names(CompressOptions{},
                                             [](auto& o, auto&& v) { for_each_layer_option(o, v); })
                              : option_names(DriverOptions{},
                                             [](auto& o, auto&& v) { for_each_driver_option(o, v); });
        },
        py::arg("layer_only") = false,
        "Option keywords compress() accepts (layer_only: those compress_layer() accepts)");
    m.def("methods", &method_names, "Compression method names");
    m.def("set_num_threads", &set_num_threads, py::arg("n"), "Threads for OpenMP and BLAS (0 = all cores)");
    m.def("num_threads", &num_threads);
}
