// End-to-end tests of the `pbs2p` binary: help texts, version, info, eval, generate and compress on
// the golden test models (with a tiny tokenizer) and on the reference models when they are present.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>
#include <set>

#include "core/half.h"
#include "eval/perplexity.h"
#include "io/safetensors.h"
#include "io/test_tokenizer_util.h"
#include "io/tokenizer.h"
#include "model/model.h"
#include "tools/cli_test_util.h"

namespace pbs2p {
namespace {

using namespace cli_test;

const std::vector<std::string> kGoldenModels = {"llama3_rope", "llama_gqa", "opt_bias", "opt_proj",
                                                "qwen2_bias"};

// Long option names ("--x") and positional names declared in a source file by add_option/add_flag.
std::set<std::string> declared_options(const fs::path& source) {
    std::set<std::string> names;
    const std::string text = read_file(source);
    static const std::regex decl(R"re(add_(?:option|flag)\(\s*"([^"]+)")re");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), decl); it != std::sregex_iterator(); ++it) {
        std::stringstream parts((*it)[1].str());
        for (std::string part; std::getline(parts, part, ',');) {
            if (part[0] == '!') part.erase(0, 1);  // CLI11's negated form of a flag, e.g. "!--no-x"
            if (part.rfind("--", 0) == 0 || part[0] != '-') names.insert(part);
        }
    }
    return names;
}

// Every option a subcommand declares: its own file, plus the shared option sets it pulls in.
std::set<std::string> subcommand_options(const fs::path& cmd_source) {
    const fs::path tools = source_dir() / "src/tools";
    std::set<std::string> names = declared_options(cmd_source);
    const std::string text = read_file(cmd_source);
    if (contains(text, "add_common_options(")) {
        for (const char* o : {"--json", "--threads"}) names.insert(o);
    }
    if (contains(text, "add_compress_options(")) {
        const auto shared = declared_options(tools / "compress_options.cpp");
        names.insert(shared.begin(), shared.end());
    }
    return names;
}

std::vector<std::pair<std::string, fs::path>> subcommand_sources() {
    std::vector<std::pair<std::string, fs::path>> out;
    for (const auto& entry : fs::directory_iterator(source_dir() / "src/tools")) {
        const std::string file = entry.path().filename().string();
        if (file.rfind("cmd_", 0) == 0 && entry.path().extension() == ".cpp")
            out.emplace_back(file.substr(4, file.size() - 8), entry.path());
    }
    std::sort(out.begin(), out.end());
    return out;
}

TEST(Cli, TopLevelHelpListsEverySubcommand) {
    const CliRun r = run_cli({"--help"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const auto commands = subcommand_sources();
    ASSERT_GE(commands.size(), 8u);
    for (const auto& [name, source] : commands) {
        const std::regex listed("\n  " + name + " ");
        EXPECT_TRUE(std::regex_search(r.out, listed)) << name << " missing from --help\n" << r.out;
    }
}

TEST(Cli, EverySubcommandHelpMentionsEveryOption) {
    for (const auto& [name, source] : subcommand_sources()) {
        const CliRun r = run_cli({name, "--help"});
        EXPECT_EQ(r.exit_code, 0) << r.describe();
        expect_no_crash(r);
        const std::set<std::string> options = subcommand_options(source);
        for (const std::string& option : options)
            EXPECT_TRUE(contains(r.out, option)) << "pbs2p " << name << " --help does not mention " << option;
        if (name == "compress") {  // the parsing itself must have found the shared options
            EXPECT_TRUE(options.count("--nm") && options.count("--calib") && options.count("--method"));
        }
    }
}

TEST(Cli, UnknownSubcommandAndMissingArgumentsFail) {
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{}, {"no-such-command"}, {"eval"}, {"compress", "--method", "pbs2p"}}) {
        const CliRun r = run_cli(args);
        EXPECT_NE(r.exit_code, 0) << r.describe();
        expect_no_crash(r);
    }
}

TEST(Cli, Version) {
    for (const char* form : {"version", "--version"}) {
        const CliRun r = run_cli({form});
        ASSERT_EQ(r.exit_code, 0) << r.describe();
        EXPECT_TRUE(std::regex_search(r.out, std::regex(R"(^pbs2p \d+\.\d+\.\d+)"))) << r.out;
    }
}

TEST(Cli, InfoOnGoldenModels) {
    for (const std::string& name : kGoldenModels) {
        const fs::path dir = golden_dir(name);
        const CliRun r = run_cli({"info", dir.string(), "--json"});
        ASSERT_EQ(r.exit_code, 0) << r.describe();
        const auto j = nlohmann::json::parse(r.out);
        const auto config = nlohmann::json::parse(read_file(dir / "config.json"));
        EXPECT_EQ(j.at("architecture"), config.at("architectures")[0]) << name;
        EXPECT_EQ(j.at("num_layers"), config.at("num_hidden_layers")) << name;
        EXPECT_EQ(j.at("hidden_size"), config.at("hidden_size")) << name;
        EXPECT_EQ(j.at("vocab_size"), config.at("vocab_size")) << name;
        EXPECT_EQ(j.at("tokenizer"), "none") << name;
        int64_t stored = 0;
        const SafetensorsReader tensors = SafetensorsReader::open(dir.string());
        for (const auto& t : tensors.names()) stored += tensors.tensor(t).numel();
        EXPECT_EQ(j.at("stored_parameters").get<int64_t>(), stored) << name;
        EXPECT_EQ(j.at("file_bytes").get<int64_t>(),
                  static_cast<int64_t>(fs::file_size(dir / "model.safetensors")));

        const CliRun text = run_cli({"info", dir.string()});
        ASSERT_EQ(text.exit_code, 0) << text.describe();
        EXPECT_TRUE(contains(text.out, config.at("architectures")[0].get<std::string>())) << text.out;
    }
}

// info on a GGUF file (llama.cpp's vocabulary files: metadata of LLaMA-7B and Qwen2-7B, no tensors).
TEST(Cli, InfoOnGgufFiles) {
    struct Expected {
        const char* vocab;
        const char* architecture;
        int layers, hidden, vocab_size;
    };
    for (const Expected& e :
         {Expected{"llama-spm", "llama", 32, 4096, 32000}, Expected{"qwen2", "qwen2", 32, 4096, 151936}}) {
        const std::string path = test::assets_dir() + "/llama.cpp/models/ggml-vocab-" + e.vocab + ".gguf";
        PBS2P_REQUIRE_ASSET(path);
        const CliRun r = run_cli({"info", path, "--json"});
        ASSERT_EQ(r.exit_code, 0) << r.describe();
        const auto j = nlohmann::json::parse(r.out);
        EXPECT_EQ(j.at("format"), "gguf");
        EXPECT_EQ(j.at("gguf_version"), 3);
        EXPECT_EQ(j.at("architecture"), e.architecture);
        EXPECT_EQ(j.at("tensor_count"), 0);
        EXPECT_EQ(j.at("num_layers"), e.layers);
        EXPECT_EQ(j.at("hidden_size"), e.hidden);
        EXPECT_EQ(j.at("vocab_size"), e.vocab_size);
        EXPECT_NE(j.at("tokenizer"), "none");
        const CliRun text = run_cli({"info", path});
        ASSERT_EQ(text.exit_code, 0) << text.describe();
        EXPECT_TRUE(contains(text.out, "GGUF v3, 0 tensors")) << text.out;
    }
    // A file that starts like GGUF but is cut short is a one-line error naming it.
    TempDir tmp;
    write_file(tmp / "short.gguf", std::string("GGUF\x03\x00", 6));
    expect_clean_error(run_cli({"info", (tmp / "short.gguf").string()}), {(tmp / "short.gguf").string()});
}

TEST(Cli, InfoOnReferenceModels) {
    int found = 0;
    for (const char* name : {"ref-llama", "ref-opt", "ref-llama-deep"}) {
        const std::string dir = reference_model(name);
        if (dir.empty()) continue;
        ++found;
        const CliRun r = run_cli({"info", dir, "--json"});
        ASSERT_EQ(r.exit_code, 0) << r.describe();
        const auto j = nlohmann::json::parse(r.out);
        EXPECT_NE(j.at("tokenizer"), "none") << name;
        EXPECT_GT(j.at("parameters").get<int64_t>(), 0) << name;
    }
    EXPECT_EQ(found, 3) << "models/ref-llama, models/ref-opt and models/ref-llama-deep belong to the checkout";
}

// Perplexity through the CLI equals the library's on the same model, tokens and windows.
TEST(Cli, EvalMatchesLibraryOnGoldenModels) {
    TempDir tmp;
    write_file(tmp / "text.txt", sample_text(1500));
    for (const std::string& name : {std::string("llama_gqa"), std::string("opt_bias")}) {
        const fs::path model_dir = copy_golden(name, tmp / name);
        const CliRun r = run_cli({"eval", model_dir.string(), "--text", (tmp / "text.txt").string(), "--ctx",
                                  "32", "--json", "-t", "1"});
        ASSERT_EQ(r.exit_code, 0) << r.describe();
        const auto j = nlohmann::json::parse(r.out);
        const auto& p = j.at("perplexity");
        EXPECT_EQ(p.at("protocol"), "gptq");
        EXPECT_EQ(p.at("ctx"), 32);

        const Model model = Model::load(model_dir.string());
        const auto tokenizer = load_tokenizer(model_dir.string());
        const std::vector<int32_t> tokens = tokenizer->encode(read_file(tmp / "text.txt"), true);
        EXPECT_EQ(j.at("text_tokens").get<size_t>(), tokens.size());
        EvalOptions options;
        options.ctx = 32;
        options.progress = false;
        const PerplexityResult expected = evaluate_perplexity(model, tokens, tokenizer->bos_id(), options);
        EXPECT_EQ(p.at("windows").get<int64_t>(), expected.windows) << name;
        EXPECT_EQ(p.at("tokens_scored").get<int64_t>(), expected.tokens_scored) << name;
        EXPECT_NEAR(p.at("ppl").get<double>(), expected.ppl, 1e-6 * expected.ppl) << name;
        EXPECT_TRUE(std::isfinite(expected.ppl) && expected.ppl > 1.0) << expected.ppl;

        // llamacpp protocol and a window cap go through as well.
        const CliRun capped =
            run_cli({"eval", model_dir.string(), "--text", (tmp / "text.txt").string(), "--ctx", "16",
                     "--protocol", "llamacpp", "--max-windows", "2", "--json", "-t", "1"});
        ASSERT_EQ(capped.exit_code, 0) << capped.describe();
        const auto c = nlohmann::json::parse(capped.out).at("perplexity");
        EXPECT_EQ(c.at("protocol"), "llamacpp");
        EXPECT_EQ(c.at("windows"), 2);
    }
}

TEST(Cli, EvalOnReferenceModel) {
    const std::string dir = reference_model("ref-llama");
    ASSERT_FALSE(dir.empty()) << "models/ref-llama belongs to the checkout";
    TempDir tmp;
    write_file(tmp / "text.txt", sample_text(4000));
    const CliRun r = run_cli(
        {"eval", dir, "--text", (tmp / "text.txt").string(), "--ctx", "64", "--max-windows", "4", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const double ppl = nlohmann::json::parse(r.out).at("perplexity").at("ppl").get<double>();
    EXPECT_TRUE(std::isfinite(ppl) && ppl > 1.0 && ppl < 1000.0) << ppl;
}

TEST(Cli, GenerateGreedyIsDeterministic) {
    TempDir tmp;
    const fs::path model_dir = copy_golden("llama_gqa", tmp / "m");
    const std::vector<std::string> args = {
        "generate", model_dir.string(), "-p", "the state of the union", "-n", "6", "--json", "-t", "1"};
    const CliRun a = run_cli(args), b = run_cli(args);
    ASSERT_EQ(a.exit_code, 0) << a.describe();
    ASSERT_EQ(b.exit_code, 0) << b.describe();
    const auto ja = nlohmann::json::parse(a.out), jb = nlohmann::json::parse(b.out);
    EXPECT_EQ(ja.at("tokens"), jb.at("tokens"));
    EXPECT_LE(ja.at("tokens").size(), 6u);
    EXPECT_GT(ja.at("prompt_tokens").get<int>(), 1);

    // Streaming text mode prints the prompt first.
    const CliRun text = run_cli({"generate", model_dir.string(), "-p", "the state", "-n", "3", "-t", "1"});
    ASSERT_EQ(text.exit_code, 0) << text.describe();
    EXPECT_EQ(text.out.rfind("the state", 0), 0u) << text.out;
}

// A model whose vocabulary is larger than its tokenizer's (padded embeddings, e.g. OPT: 50272 vs 50265)
// must never emit an id the tokenizer cannot print: generate samples among the tokenizer's ids only.
TEST(Cli, GenerateWithPaddedVocabulary) {
    TempDir tmp;
    const fs::path model_dir = copy_golden("llama_gqa", tmp / "m", false);
    fs::copy_file(fixture("tiny_tokenizer_80.model"), model_dir / "tokenizer.model");
    ASSERT_EQ(nlohmann::json::parse(read_file(model_dir / "config.json")).at("vocab_size"), 96);
    for (const char* temperature : {"0", "5"}) {
        const CliRun r = run_cli({"generate", model_dir.string(), "-p", "the state of the union", "-n", "24",
                                  "--temperature", temperature, "--seed", "3", "--json", "-t", "1"});
        expect_no_crash(r);
        ASSERT_EQ(r.exit_code, 0) << r.describe();
        const nlohmann::json printed = nlohmann::json::parse(r.out);  // kept alive for the loop
        ASSERT_FALSE(printed.at("tokens").empty()) << r.out;
        for (const auto& id : printed.at("tokens")) EXPECT_LT(id.get<int>(), 80) << r.out;
    }
}

// --- compress ---------------------------------------------------------------------------------------

std::vector<std::string> compress_args(const std::string& model, const std::string& method,
                                       const fs::path& out) {
    const std::string calib = (source_dir() / "data/calib.txt").string();
    return {"compress",        model, "--method",    method, "--nm", "4:8",        "--calib", calib,
            "--calib-windows", "4",   "--calib-seq", "64",   "-o",   out.string(), "-t",      "1"};
}

// report.json's storage_bits (per layer and in total) is the compressor's count; the packed file's bytes
// of every layer (its codes and scales tensors) must give exactly that many bits per weight.
void expect_packed_bits_equal_report(const fs::path& out, const nlohmann::json& report) {
    const SafetensorsReader packed = SafetensorsReader::open((out / "model.packed.safetensors").string());
    double bits = 0;
    int64_t weights = 0;
    for (const auto& layer : report.at("layers")) {
        const std::string name = layer.at("name");
        const int64_t n = layer.at("rows").get<int64_t>() * layer.at("cols").get<int64_t>();
        const double layer_bits =
            8.0 * static_cast<double>(packed.tensor(name + ".codes").nbytes + packed.tensor(name + ".scales").nbytes);
        EXPECT_DOUBLE_EQ(layer_bits / static_cast<double>(n), layer.at("stats").at("storage_bits").get<double>())
            << name;
        bits += layer_bits;
        weights += n;
    }
    EXPECT_EQ(weights, report.at("compressed_parameters").get<int64_t>());
    EXPECT_NEAR(bits / static_cast<double>(weights), report.at("storage_bits").get<double>(), 1e-12);
    EXPECT_NEAR(bits / static_cast<double>(weights), report.at("packed_bits_per_weight").get<double>(), 1e-12);
}

// Checks a compress output directory; returns report.json.
nlohmann::json check_compress_output(const fs::path& out, const std::string& method, bool packed) {
    for (const char* f : {"model.safetensors", "report.json", "config.json"})
        EXPECT_TRUE(fs::exists(out / f)) << out / f;
    EXPECT_EQ(fs::exists(out / "model.packed.safetensors"), packed) << out;
    EXPECT_FALSE(fs::exists(out / ".checkpoint")) << "checkpoint left behind in " << out;
    EXPECT_FALSE(fs::exists(out / "layouts.safetensors")) << "interchange file left behind in " << out;
    const auto report = nlohmann::json::parse(read_file(out / "report.json"));
    EXPECT_EQ(report.at("method"), method);
    for (const char* total : {"nominal_bits", "storage_bits", "compressed_parameters", "calibration_tokens",
                              "wall_seconds", "peak_rss_bytes", "layers", "block_keep"})
        EXPECT_TRUE(report.contains(total)) << "report.json lacks " << total;
    EXPECT_EQ(report.at("calibration_tokens"), 4 * 64);
    EXPECT_EQ(report.at("packed"), packed);
    // config.json says what the directory holds, with the bits the report counts.
    const auto config = nlohmann::json::parse(read_file(out / "config.json"));
    const auto& q = config.at("quantization_config");
    EXPECT_EQ(q.at("quant_method"), "pbs2p");
    EXPECT_EQ(q.at("method"), method);
    EXPECT_EQ(q.at("storage_bits_per_weight"), report.at("storage_bits"));
    EXPECT_EQ(q.contains("packed_file"), packed);
    if (packed) EXPECT_EQ(q.at("packed_bits_per_weight"), report.at("packed_bits_per_weight"));
    EXPECT_LT(report.at("nominal_bits").get<double>(), report.at("storage_bits").get<double>());
    EXPECT_GT(report.at("compressed_parameters").get<int64_t>(), 0);
    EXPECT_FALSE(report.at("layers").empty());
    for (const auto& layer : report.at("layers")) {
        const auto& s = layer.at("stats");
        EXPECT_TRUE(s.contains("n_keep") && s.contains("m_group")) << layer.dump();
        EXPECT_EQ(s.at("m_group"), 8) << layer.at("name");
        EXPECT_LT(s.at("nominal_bits").get<double>(), s.at("storage_bits").get<double>()) << layer.at("name");
        const double err = s.at("rel_error").get<double>();
        EXPECT_TRUE(std::isfinite(err) && err >= 0.0) << layer.at("name");
    }
    if (packed) {
        EXPECT_LT(report.at("nominal_bits").get<double>(), 1.0) << "pbs2p 4:8 must be sub-1-bit";
        EXPECT_GT(report.at("packed_file_bytes").get<int64_t>(), 0);
        expect_packed_bits_equal_report(out, report);
    }
    return report;
}

// The CLI has no flag for an interrupted run (DriverOptions::stop_after_blocks is library-only, covered
// by tests/compress/test_driver.cpp); what it promises is that rerunning the same command over an
// existing output directory gives the same bytes.
CliRun expect_rerun_is_byte_identical(const std::vector<std::string>& args, const fs::path& out,
                                      bool packed) {
    const std::string model = read_file(out / "model.safetensors");
    const std::string packed_bytes = packed ? read_file(out / "model.packed.safetensors") : std::string();
    const CliRun again = run_cli(args);
    EXPECT_EQ(again.exit_code, 0) << again.describe();
    EXPECT_TRUE(read_file(out / "model.safetensors") == model) << "model.safetensors differs on rerun";
    if (packed) {
        EXPECT_TRUE(read_file(out / "model.packed.safetensors") == packed_bytes)
            << "model.packed.safetensors differs on rerun";
    }
    return again;
}

TEST(CliCompress, Pbs2pOnGoldenModel) {
    TempDir tmp;
    const fs::path model_dir = copy_golden("llama_gqa", tmp / "m");
    const auto args = compress_args(model_dir.string(), "pbs2p", tmp / "out");
    const CliRun r = run_cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const auto report = check_compress_output(tmp / "out", "pbs2p", true);
    for (const auto& layer : report.at("layers")) {
        const int n = layer.at("stats").at("n_keep").get<int>();
        EXPECT_TRUE(n >= 3 && n <= 5) << layer.at("name") << " N " << n;  // CFS keeps N within N-1..N+1
    }
    // The outputs load: eval on the dequantized weights and on the packed file, unpack of the packed file.
    TempDir text_dir;
    write_file(text_dir / "t.txt", sample_text(1200));
    for (const fs::path& model : {tmp / "out", tmp / "out" / "model.packed.safetensors"}) {
        const CliRun ev = run_cli({"eval", model.string(), "--text", (text_dir / "t.txt").string(), "--ctx",
                                   "32", "--json", "-t", "1"});
        EXPECT_EQ(ev.exit_code, 0) << ev.describe();
    }
    const CliRun un = run_cli({"unpack", (tmp / "out").string(), "-o", (tmp / "unpacked").string()});
    EXPECT_EQ(un.exit_code, 0) << un.describe();
    expect_rerun_is_byte_identical(args, tmp / "out", true);
}

// 2:4 is stored as the equivalent 4:8 pattern (11-bit codes, not the ideal 5 bits per 4): the counted
// bits must be those of the stored form.
TEST(CliCompress, Pbs2pTwoOfFourCountsTheStoredBits) {
    TempDir tmp;
    const fs::path model_dir = copy_golden("llama_gqa", tmp / "m");
    std::vector<std::string> args = compress_args(model_dir.string(), "pbs2p", tmp / "out");
    for (size_t i = 0; i + 1 < args.size(); ++i)
        if (args[i] == "--nm") args[i + 1] = "2:4";
    const CliRun r = run_cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    const auto report = nlohmann::json::parse(read_file(tmp / "out" / "report.json"));
    ASSERT_TRUE(report.at("packed").get<bool>());
    for (const auto& layer : report.at("layers")) EXPECT_EQ(layer.at("stats").at("m_group"), 4);
    expect_packed_bits_equal_report(tmp / "out", report);
}

TEST(CliCompress, BaselineOnGoldenModelAndRerun) {
    TempDir tmp;
    for (const std::string& name : {std::string("llama_gqa"), std::string("opt_bias")}) {
        const fs::path model_dir = copy_golden(name, tmp / name);
        const fs::path out = tmp / (name + "-out");
        const auto args = compress_args(model_dir.string(), "sparsegpt", out);
        const CliRun r = run_cli(args);
        ASSERT_EQ(r.exit_code, 0) << r.describe();
        const auto report = check_compress_output(out, "sparsegpt", false);
        for (const auto& layer : report.at("layers")) EXPECT_EQ(layer.at("stats").at("n_keep"), 4);
        // A rerun over the existing directory (with --json: the report on stdout) gives the same bytes.
        std::vector<std::string> json_args = args;
        json_args.push_back("--json");
        const CliRun j = expect_rerun_is_byte_identical(json_args, out, false);
        ASSERT_EQ(j.exit_code, 0) << j.describe();
        const auto printed = nlohmann::json::parse(j.out).at("layers");
        ASSERT_EQ(printed.size(), report.at("layers").size());
        for (size_t i = 0; i < printed.size(); ++i) {  // everything but the timings
            EXPECT_EQ(printed[i].at("name"), report.at("layers")[i].at("name"));
            EXPECT_EQ(printed[i].at("stats").at("rel_error"),
                      report.at("layers")[i].at("stats").at("rel_error"));
        }
    }
}

TEST(CliCompress, Pbs2pOnReferenceModel) {
    const std::string dir = reference_model("ref-llama");
    ASSERT_FALSE(dir.empty()) << "models/ref-llama belongs to the checkout";
    TempDir tmp;
    const auto args = compress_args(dir, "pbs2p", tmp / "out");
    const CliRun r = run_cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    check_compress_output(tmp / "out", "pbs2p", true);
    expect_rerun_is_byte_identical(args, tmp / "out", true);
}

// Interrupting a compress run (here on purpose, after one block) and rerunning the same command resumes
// from the checkpoint and writes the same bytes as a run that was never interrupted.
TEST(CliCompress, InterruptedRunResumesToIdenticalFiles) {
    TempDir tmp;
    const fs::path model_dir = copy_golden("llama_gqa", tmp / "model");
    const fs::path whole = tmp / "whole", resumed = tmp / "resumed";
    const CliRun full = run_cli(compress_args(model_dir.string(), "pbs2p", whole));
    ASSERT_EQ(full.exit_code, 0) << full.describe();

    std::vector<std::string> interrupted = compress_args(model_dir.string(), "pbs2p", resumed);
    interrupted.insert(interrupted.end(), {"--stop-after-blocks", "1"});
    const CliRun stopped = run_cli(interrupted);
    ASSERT_EQ(stopped.exit_code, 3) << stopped.describe();
    EXPECT_TRUE(fs::exists(resumed / ".checkpoint" / "state.json"));
    EXPECT_FALSE(fs::exists(resumed / "model.safetensors"));

    const CliRun finished = run_cli(compress_args(model_dir.string(), "pbs2p", resumed));
    ASSERT_EQ(finished.exit_code, 0) << finished.describe();
    EXPECT_TRUE(contains(finished.err, "resuming: 1 of 2 blocks")) << finished.err;
    for (const char* file : {"model.safetensors", "model.packed.safetensors"})
        EXPECT_EQ(read_file(resumed / file), read_file(whole / file)) << file;
    const auto report = nlohmann::json::parse(read_file(resumed / "report.json"));
    EXPECT_EQ(report.at("resumed_blocks"), 1);
}

// --dequantized: none writes the packed file alone, bf16 (here through its alias --dtype) sharded by
// --max-shard-size gives the default f32 weights rounded to bf16; all share one packed file.
TEST(CliCompress, DequantizedFormsAndShards) {
    TempDir tmp;
    const fs::path model_dir = copy_golden("llama_gqa", tmp / "m");
    const fs::path f32 = tmp / "f32", none = tmp / "none", bf16 = tmp / "bf16";
    ASSERT_EQ(run_cli(compress_args(model_dir.string(), "pbs2p", f32)).exit_code, 0);

    std::vector<std::string> args = compress_args(model_dir.string(), "pbs2p", none);
    args.insert(args.end(), {"--dequantized", "none"});
    const CliRun r = run_cli(args);
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    std::set<std::string> files;
    for (const auto& entry : fs::directory_iterator(none)) files.insert(entry.path().filename().string());
    EXPECT_EQ(files, (std::set<std::string>{"config.json", "model.packed.safetensors", "report.json",
                                            "tokenizer.model", ".lock"}));
    EXPECT_EQ(read_file(none / "model.packed.safetensors"), read_file(f32 / "model.packed.safetensors"));
    const auto config = nlohmann::json::parse(read_file(none / "config.json"));
    EXPECT_TRUE(
        contains(config.at("quantization_config").at("weights").get<std::string>(), "packed file only"));

    args = compress_args(model_dir.string(), "pbs2p", bf16);
    args.insert(args.end(), {"--dtype", "bf16", "--max-shard-size", "16KB"});
    ASSERT_EQ(run_cli(args).exit_code, 0);
    const auto report = nlohmann::json::parse(read_file(bf16 / "report.json"));
    const auto shards = report.at("dequantized_files").get<std::vector<std::string>>();
    ASSERT_GE(shards.size(), 3u) << "two shards and the index";
    EXPECT_EQ(shards.back(), "model.safetensors.index.json");
    EXPECT_FALSE(fs::exists(bf16 / "model.safetensors"));
    for (const std::string& shard : shards) EXPECT_TRUE(fs::exists(bf16 / shard)) << shard;
    const SafetensorsReader full = SafetensorsReader::open(f32.string());
    const SafetensorsReader sharded = SafetensorsReader::open(bf16.string());
    ASSERT_EQ(sharded.names(), full.names());
    const auto values = [](const SafetensorsReader& r, const std::string& name) {
        const TensorInfo& t = r.tensor(name);
        if (t.shape.size() == 1) return r.load_vector(name, t.shape[0]);
        const Matrix m = r.load_matrix(name, t.shape[0], t.shape[1]);
        return std::vector<float>(m.data.begin(), m.data.end());
    };
    for (const std::string& name : full.names()) {
        const std::vector<float> a = values(full, name), b = values(sharded, name);
        EXPECT_EQ(sharded.tensor(name).dtype, DType::bf16) << name;
        ASSERT_EQ(a.size(), b.size()) << name;
        for (size_t i = 0; i < a.size(); ++i)
            ASSERT_EQ(b[i], bf16_to_f32(f32_to_bf16(a[i]))) << name << " [" << i << "]";
    }
    EXPECT_GT(report.at("dequantized_bytes").get<int64_t>(), 0);
    const auto& times = report.at("block_seconds");
    ASSERT_EQ(times.size(), 2u);
    for (const char* phase : {"load", "forward", "hessian", "solve", "forward_compressed", "write", "total"})
        EXPECT_GE(times[0].at(phase).get<double>(), 0.0) << phase;
    EXPECT_GT(times[1].at("solve").get<double>(), 0.0);
}

// A method without a packed form and --dequantized none: one line, before any calibration work.
TEST(CliCompress, DequantizedNoneNeedsAPackedForm) {
    TempDir tmp;
    const fs::path model_dir = copy_golden("llama_gqa", tmp / "m");
    std::vector<std::string> args = compress_args(model_dir.string(), "sparsegpt", tmp / "out");
    args.insert(args.end(), {"--dequantized", "none"});
    expect_clean_error(run_cli(args), {"--dequantized none", "sparsegpt", "no packed form"});
    EXPECT_FALSE(fs::exists(tmp / "out" / ".checkpoint"));
}

}  // namespace
}  // namespace pbs2p
