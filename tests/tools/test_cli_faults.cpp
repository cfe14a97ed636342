// CI-sized versions of scripts/fault_campaign: one kill -9 in the middle of a compress run, one disk-full
// during compress, one locked output folder, and the clean errors for unusable output and calibration paths.
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "cli_test_util.h"
#include "core/dir_lock.h"

namespace pbs2p {
namespace {

using namespace cli_test;

std::vector<std::string> compress_args(const fs::path& model, const fs::path& out) {
    const std::string calib = (source_dir() / "data/calib.txt").string();
    return {"compress", model.string(), "--method",
            "pbs2p",    "--nm",         "4:8",
            "--calib",  calib,          "--calib-windows",
            "4",        "--calib-seq",  "64",
            "-o",       out.string(),   "-t",
            "1"};
}

// `pbs2p args...` started in the background (stdout/stderr to files in `capture`), optionally with a
// file-size limit (RLIMIT_FSIZE: a write past it fails as on a full disk).
class BackgroundCli {
  public:
    BackgroundCli(const std::vector<std::string>& args, const fs::path& capture,
                  rlim_t file_limit = RLIM_INFINITY)
        : capture_(capture) {
        std::vector<std::string> argv_strings = {PBS2P_BINARY};
        argv_strings.insert(argv_strings.end(), args.begin(), args.end());
        for (const auto& a : argv_strings) command_ += a + " ";
        pid_ = ::fork();
        if (pid_ == 0) {
            const int out = ::open((capture / "out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            const int err = ::open((capture / "err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            ::dup2(out, 1);
            ::dup2(err, 2);
            if (file_limit != RLIM_INFINITY) {
                const rlimit limit{file_limit, file_limit};
                ::setrlimit(RLIMIT_FSIZE, &limit);
            }
            std::vector<char*> argv;
            for (auto& a : argv_strings) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
    }
    bool running() {
        if (finished_) return false;
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) record(status);
        return !finished_;
    }
    void kill(int signal) { ::kill(pid_, signal); }
    CliRun wait() {
        if (!finished_) {
            int status = 0;
            ::waitpid(pid_, &status, 0);
            record(status);
        }
        result_.command = command_;
        result_.out = read_file(capture_ / "out");
        result_.err = read_file(capture_ / "err");
        return result_;
    }

  private:
    void record(int status) {
        finished_ = true;
        if (WIFEXITED(status)) result_.exit_code = WEXITSTATUS(status);
        if (WIFSIGNALED(status)) result_.signal = WTERMSIG(status);
    }
    fs::path capture_;
    std::string command_;
    pid_t pid_ = -1;
    bool finished_ = false;
    CliRun result_;
};

CliRun run_limited(const std::vector<std::string>& args, rlim_t file_limit) {
    TempDir capture;
    BackgroundCli cli(args, capture.path(), file_limit);
    return cli.wait();
}

// Regular files directly in `dir` (hidden ones included), name -> bytes.
std::map<std::string, std::string> folder_bytes(const fs::path& dir) {
    std::map<std::string, std::string> files;
    for (const auto& entry : fs::directory_iterator(dir))
        if (entry.is_regular_file()) files[entry.path().filename().string()] = read_file(entry.path());
    return files;
}

constexpr const char* kFinalOutputs[] = {"model.safetensors", "model.packed.safetensors", "config.json",
                                         "tokenizer.model"};

// kill -9 once the first block's checkpoint is complete, while the second block is compressed: no file
// is left under a final name, and the rerun resumes and writes the bytes of an uninterrupted run.
TEST(CliFaults, KilledRunResumesToIdenticalFiles) {
    TempDir tmp;
    const fs::path model_dir = copy_golden("llama_gqa", tmp / "model");
    const fs::path whole = tmp / "whole", killed = tmp / "killed";
    const CliRun full = run_cli(compress_args(model_dir, whole));
    ASSERT_EQ(full.exit_code, 0) << full.describe();

    TempDir capture;
    BackgroundCli cli(compress_args(model_dir, killed), capture.path());
    const fs::path first_block_done = killed / ".checkpoint" / "state.json";
    while (cli.running() && !fs::exists(first_block_done))
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    cli.kill(SIGKILL);
    const CliRun interrupted = cli.wait();
    ASSERT_EQ(interrupted.signal, SIGKILL) << "the run ended before it could be killed\n"
                                           << interrupted.describe();
    for (const char* file : kFinalOutputs)
        EXPECT_FALSE(fs::exists(killed / file)) << file << " appeared before the end";

    const CliRun resumed = run_cli(compress_args(model_dir, killed));
    ASSERT_EQ(resumed.exit_code, 0) << resumed.describe();
    EXPECT_TRUE(contains(resumed.err, "resuming: 1 of 2 blocks")) << resumed.err;
    for (const char* file : kFinalOutputs)
        EXPECT_EQ(read_file(killed / file), read_file(whole / file)) << file;
    for (const char* leftover : {".checkpoint", ".staging"})
        EXPECT_FALSE(fs::exists(killed / leftover)) << leftover;
}

// A write that fails for lack of space (here the file-size limit, as `ulimit -f`) ends the run with one
// line naming the file; the complete output of an earlier run in that folder is left exactly as it was.
TEST(CliFaults, DiskFullKeepsTheEarlierOutputIntact) {
    TempDir tmp;
    const fs::path model_dir = copy_golden("llama_gqa", tmp / "model");
    const fs::path out = tmp / "out";
    std::vector<std::string> f16 = compress_args(model_dir, out);
    f16.insert(f16.end(), {"--dtype", "f16"});
    const CliRun earlier = run_cli(f16);
    ASSERT_EQ(earlier.exit_code, 0) << earlier.describe();
    const auto before = folder_bytes(out);

    // The f32 weights need twice the bytes of the f16 ones: a limit between the two lets the checkpoint
    // through and stops the final model file.
    const rlim_t limit = fs::file_size(out / "model.safetensors") * 3 / 2;
    const CliRun full_disk = run_limited(compress_args(model_dir, out), limit);
    expect_clean_error(full_disk, {"File too large"});
    const auto after = folder_bytes(out);
    for (const auto& [name, bytes] : before) {
        if (name == kLockFileName) continue;
        EXPECT_TRUE(after.count(name) && after.at(name) == bytes) << name << " changed by the failed run";
    }
    for (const auto& [name, bytes] : after)
        EXPECT_TRUE(before.count(name)) << name << " left behind by the failed run";
    EXPECT_FALSE(fs::exists(out / ".staging")) << "staged outputs left behind";
}

// While one process holds the output folder's lock, a compress run into it refuses at once and names the
// folder; once the lock is released the same command runs.
TEST(CliFaults, SecondWriterIntoALockedFolderRefuses) {
    TempDir tmp;
    const fs::path model_dir = copy_golden("llama_gqa", tmp / "model");
    const fs::path out = tmp / "out";
    fs::create_directories(out);
    {
        DirectoryLock held(out.string(), "pbs2p compress");
        const CliRun second = run_cli(compress_args(model_dir, out));
        expect_clean_error(second, {out.string(), "another pbs2p compress is writing this folder",
                                    std::to_string(::getpid())});
        EXPECT_FALSE(fs::exists(out / ".checkpoint")) << "the refused run touched the folder";
    }
    const CliRun after = run_cli(compress_args(model_dir, out));
    EXPECT_EQ(after.exit_code, 0) << after.describe();
}

TEST(CliFaults, UnusableOutputOrCalibrationGivesOneLineErrors) {
    TempDir tmp;
    const fs::path model_dir = copy_golden("llama_gqa", tmp / "model");
    write_file(tmp / "a-file", "x");
    // A parent that is a regular file, and one under /sys (which refuses new entries even to root).
    for (const fs::path& out : {tmp / "a-file" / "out", fs::path("/sys/pbs2p-out")}) {
        const CliRun r = run_cli(compress_args(model_dir, out));
        expect_clean_error(r, {out.string(), "cannot create the output folder"});
    }
    std::vector<std::string> args = compress_args(model_dir, tmp / "out");
    const fs::path calib_dir = tmp / "calib.txt";
    fs::create_directories(calib_dir);
    args[7] = calib_dir.string();  // --calib names a directory
    const CliRun r = run_cli(args);
    expect_no_crash(r);
    EXPECT_NE(r.exit_code, 0) << r.describe();
}

}  // namespace
}  // namespace pbs2p
