// Helpers for the end-to-end CLI tests: run the built `pbs2p` binary with its output captured, scratch
// directories, golden model copies (with a tiny tokenizer so text commands run on them) and safetensors
// header surgery for bad-input fixtures.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace pbs2p::cli_test {

namespace fs = std::filesystem;

inline fs::path source_dir() {
    return fs::path(PBS2P_SOURCE_DIR);
}
inline fs::path golden_dir(const std::string& name) {
    return source_dir() / "tests/model/golden" / name;
}
inline fs::path fixture(const std::string& name) {
    return source_dir() / "tests/tools/fixtures" / name;
}
// A reference model trained by the project (absent until committed): "" when missing.
inline std::string reference_model(const std::string& name) {
    const fs::path dir = source_dir() / "models" / name;
    return fs::exists(dir / "config.json") ? dir.string() : std::string();
}

inline std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

inline void write_file(const fs::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(out.good()) << "cannot write " << path;
}

// A fresh directory removed with everything in it at scope exit.
class TempDir {
  public:
    TempDir() {
        static std::atomic<int> counter{0};
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        path_ = fs::temp_directory_path() / ("pbs2p_cli_" + std::to_string(::getpid()) + "_" +
                                             std::to_string(counter++) + "_" + (info ? info->name() : "x"));
        fs::remove_all(path_);
        fs::create_directories(path_);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const fs::path& path() const { return path_; }
    fs::path operator/(const std::string& name) const { return path_ / name; }

  private:
    fs::path path_;
};

struct CliRun {
    std::string command;
    int exit_code = -1;  // -1 when killed by a signal
    int signal = 0;
    std::string out, err;
    std::string describe() const {
        return "command: " + command + "\nexit " + std::to_string(exit_code) + " signal " +
               std::to_string(signal) + "\nstdout:\n" + out.substr(0, 2000) + "\nstderr:\n" +
               err.substr(0, 2000);
    }
};

inline std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// Runs `launcher args...` (exec'd, so a signal reaches the wait status) with stdout/stderr in temp
// files; `launcher` is a shell-quoted command line (the binary, or mpirun with the binary), `shown` its
// name in CliRun::command.
inline CliRun run_launched(const std::string& launcher, const std::string& shown,
                           const std::vector<std::string>& args) {
    TempDir capture;
    CliRun r;
    r.command = shown;
    std::string cmd = "exec " + launcher;
    for (const std::string& a : args) {
        cmd += " " + shell_quote(a);
        r.command += " " + a;
    }
    cmd += " > " + shell_quote((capture / "out").string()) + " 2> " +
           shell_quote((capture / "err").string()) + " < /dev/null";
    const int status = std::system(cmd.c_str());
    if (status != -1 && WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (status != -1 && WIFSIGNALED(status)) r.signal = WTERMSIG(status);
    r.out = read_file(capture / "out");
    r.err = read_file(capture / "err");
    return r;
}

// Runs `pbs2p args...`.
inline CliRun run_cli(const std::vector<std::string>& args) {
    return run_launched(shell_quote(PBS2P_BINARY), "pbs2p", args);
}

inline bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

// The run ended normally (no signal, no sanitizer report, no "internal error").
inline void expect_no_crash(const CliRun& r) {
    EXPECT_EQ(r.signal, 0) << r.describe();
    EXPECT_LT(r.exit_code, 128) << r.describe();
    for (const char* bad : {"internal error", "Sanitizer", "runtime error:", "terminate called", "Aborted"})
        EXPECT_FALSE(contains(r.err, bad)) << "'" << bad << "' in stderr\n" << r.describe();
}

// The last line of stderr, without a trailing newline.
inline std::string last_line(const std::string& text) {
    std::string t = text;
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
    const size_t nl = t.find_last_of("\n\r");
    return nl == std::string::npos ? t : t.substr(nl + 1);
}

// A handled error: exit status 1, no crash, stderr ends with exactly one "pbs2p: error: ..." line that
// names every item of `mentions` (typically the file and the tensor/option/key at fault) and holds only
// printable ASCII (a message never carries raw bytes of a file; the fixtures' paths are ASCII).
inline void expect_clean_error(const CliRun& r, std::initializer_list<std::string> mentions) {
    expect_no_crash(r);
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    const std::string line = last_line(r.err);
    EXPECT_EQ(line.rfind("pbs2p: error: ", 0), 0u) << r.describe();
    size_t error_lines = 0;
    for (size_t p = r.err.find("pbs2p: error"); p != std::string::npos; p = r.err.find("pbs2p: error", p + 1))
        ++error_lines;
    EXPECT_EQ(error_lines, 1u) << r.describe();
    for (const std::string& m : mentions)
        EXPECT_TRUE(contains(line, m)) << "error line lacks '" << m << "'\n" << r.describe();
    for (unsigned char c : line)
        EXPECT_TRUE(c >= 0x20 && c < 0x7F) << "raw byte " << int(c) << " in: " << line;
}

// Copies a golden test model (config.json + model.safetensors) to `dst`; with `tokenizer`, adds the tiny
// 96-piece SentencePiece tokenizer so text commands (eval, generate, compress) run on it.
inline fs::path copy_golden(const std::string& name, const fs::path& dst, bool tokenizer = true) {
    fs::create_directories(dst);
    for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(golden_dir(name) / f, dst / f);
    if (tokenizer) fs::copy_file(fixture("tiny_tokenizer.model"), dst / "tokenizer.model");
    return dst;
}

// A short English text (the start of the test split), `chars` long.
inline std::string sample_text(size_t chars) {
    const std::string text = read_file(source_dir() / "data/test.txt");
    return text.substr(0, std::min(chars, text.size()));
}

// A safetensors file split into its JSON header and its data bytes, and written back (with a fresh
// header length), so tests can corrupt one field and keep everything else as it was.
struct SafetensorsParts {
    nlohmann::json header;
    std::string data;

    static SafetensorsParts read(const fs::path& path) {
        const std::string bytes = read_file(path);
        uint64_t n = 0;
        std::memcpy(&n, bytes.data(), 8);
        return {nlohmann::json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
    }
    void write(const fs::path& path) const { write_raw(path, header.dump(), data); }
    static void write_raw(const fs::path& path, std::string header_text, const std::string& data) {
        while (header_text.size() % 8) header_text += ' ';
        const uint64_t n = header_text.size();
        std::string bytes(8, '\0');
        std::memcpy(bytes.data(), &n, 8);
        write_file(path, bytes + header_text + data);
    }
    // Byte offset of a tensor's data inside `data`.
    size_t begin(const std::string& tensor) const {
        return header.at(tensor).at("data_offsets")[0].get<size_t>();
    }
};

}  // namespace pbs2p::cli_test
