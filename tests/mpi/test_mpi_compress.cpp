// `mpirun -np 2 pbs2p compress` against one process on the same model and calibration: every output
// file is byte-identical (report.json apart from its timings and traffic), also when the 2-rank run is
// interrupted after a block and resumed. Built only when pbs2p has MPI and mpirun is found.
#include <gtest/gtest.h>
#include <unistd.h>

#include "tools/cli_test_util.h"

namespace pbs2p::cli_test {
namespace {

// A tiny compress run (6 windows of 48 tokens, one thread) with `method`'s options.
std::vector<std::string> compress_args(const fs::path& model, const fs::path& out,
                                       const std::vector<std::string>& method = {"--method", "pbs2p", "--nm",
                                                                                 "4:8"}) {
    const std::string calib = (source_dir() / "data/calib.txt").string();
    std::vector<std::string> args = {"compress", model.string(), "--calib", calib,
                                     "-o",       out.string(),   "-t",      "1"};
    args.insert(args.end(), {"--calib-windows", "6", "--calib-seq", "48"});
    args.insert(args.end(), method.begin(), method.end());
    return args;
}

// `pbs2p args...` as `ranks` MPI ranks of one thread each.
CliRun run_mpi(int ranks, const std::vector<std::string>& args) {
    std::string launcher = shell_quote(PBS2P_MPIRUN) + " -np " + std::to_string(ranks) +
                           " --oversubscribe -x OMP_NUM_THREADS=1 -x OMP_WAIT_POLICY=passive";
    if (::geteuid() == 0) launcher += " --allow-run-as-root";
    return run_launched(launcher + " " + shell_quote(PBS2P_BINARY),
                        "mpirun -np " + std::to_string(ranks) + " pbs2p", args);
}

// report.json without what differs from run to run (times, memory) or by rank count (traffic).
nlohmann::json comparable_report(const fs::path& out) {
    nlohmann::json report = nlohmann::json::parse(read_file(out / "report.json"));
    for (const char* key :
         {"compress_seconds", "wall_seconds", "peak_rss_bytes", "phase_seconds", "block_seconds",
          "block_memory", "ranks", "rank_usage", "block_bytes_communicated", "resumed_blocks"})
        report.erase(key);
    for (auto& layer : report.at("layers")) layer.at("stats").erase("seconds");
    return report;
}

void expect_same_outputs(const fs::path& expected, const fs::path& actual) {
    // The outputs (not the lock file).
    auto is_output = [](const fs::directory_entry& e) {
        return e.is_regular_file() && e.path().filename().string()[0] != '.';
    };
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(expected))
        if (is_output(entry)) names.push_back(entry.path().filename().string());
    EXPECT_GE(names.size(), 4u);
    for (const auto& entry : fs::directory_iterator(actual))
        if (is_output(entry)) {
            EXPECT_TRUE(fs::exists(expected / entry.path().filename())) << entry.path();
        }
    for (const std::string& name : names) {
        if (name == "report.json") continue;
        EXPECT_TRUE(read_file(actual / name) == read_file(expected / name)) << name << " differs";
    }
    EXPECT_EQ(comparable_report(actual), comparable_report(expected));
}

TEST(MpiCompress, TwoRanksWriteTheBytesOfOneProcess) {
    TempDir tmp;
    const fs::path model = copy_golden("llama_gqa", tmp / "model");
    const CliRun one = run_cli(compress_args(model, tmp / "one"));
    ASSERT_EQ(one.exit_code, 0) << one.describe();
    const CliRun two = run_mpi(2, compress_args(model, tmp / "two"));
    ASSERT_EQ(two.exit_code, 0) << two.describe();
    expect_no_crash(two);
    EXPECT_TRUE(contains(two.err, "2 ranks")) << two.err;
    expect_same_outputs(tmp / "one", tmp / "two");
    // Only rank 0 reports: one summary line on stdout.
    EXPECT_EQ(std::count(two.out.begin(), two.out.end(), '\n'),
              std::count(one.out.begin(), one.out.end(), '\n'))
        << two.out;

    const auto report = nlohmann::json::parse(read_file(tmp / "two" / "report.json"));
    EXPECT_EQ(report.at("ranks"), 2);
    ASSERT_EQ(report.at("rank_usage").size(), 2u);
    for (const auto& rank : report.at("rank_usage")) {
        EXPECT_GT(rank.at("bytes_sent").get<int64_t>(), 0);
        EXPECT_GT(rank.at("peak_rss_bytes").get<int64_t>(), 0);
    }
    for (const auto& bytes : report.at("block_bytes_communicated")) EXPECT_GT(bytes.get<int64_t>(), 0);
}

// GPTQ has no binary layout (the dense weights travel); three ranks make a chain with a middle rank and
// shares of 2, 3 and 3 slices.
TEST(MpiCompress, ThreeRanksWriteTheBytesOfOneProcessForGptq) {
    TempDir tmp;
    const fs::path model = copy_golden("llama_gqa", tmp / "model");
    const std::vector<std::string> gptq = {"--method", "gptq"};
    const CliRun one = run_cli(compress_args(model, tmp / "one", gptq));
    ASSERT_EQ(one.exit_code, 0) << one.describe();
    const CliRun three = run_mpi(3, compress_args(model, tmp / "three", gptq));
    ASSERT_EQ(three.exit_code, 0) << three.describe();
    expect_no_crash(three);
    expect_same_outputs(tmp / "one", tmp / "three");
    EXPECT_EQ(nlohmann::json::parse(read_file(tmp / "three" / "report.json")).at("rank_usage").size(), 3u);
}

// The root alone writes the block-by-block outputs: bf16 shards with their index, or the packed file only.
TEST(MpiCompress, TwoRanksWriteShardsAndPackedOnlyOutputsOfOneProcess) {
    TempDir tmp;
    const fs::path model = copy_golden("llama_gqa", tmp / "model");
    const std::vector<std::vector<std::string>> outputs = {
        {"--dequantized", "bf16", "--max-shard-size", "16KB"}, {"--dequantized", "none"}};
    for (size_t i = 0; i < outputs.size(); ++i) {
        const std::string name = std::to_string(i);
        std::vector<std::string> one_args = compress_args(model, tmp / ("one" + name));
        std::vector<std::string> two_args = compress_args(model, tmp / ("two" + name));
        one_args.insert(one_args.end(), outputs[i].begin(), outputs[i].end());
        two_args.insert(two_args.end(), outputs[i].begin(), outputs[i].end());
        const CliRun one = run_cli(one_args);
        ASSERT_EQ(one.exit_code, 0) << one.describe();
        const CliRun two = run_mpi(2, two_args);
        ASSERT_EQ(two.exit_code, 0) << two.describe();
        expect_no_crash(two);
        expect_same_outputs(tmp / ("one" + name), tmp / ("two" + name));
    }
    EXPECT_TRUE(fs::exists(tmp / "two0" / "model.safetensors.index.json"));
    EXPECT_FALSE(fs::exists(tmp / "two1" / "model.safetensors"));
    EXPECT_TRUE(fs::exists(tmp / "two1" / "model.packed.safetensors"));
}

TEST(MpiCompress, InterruptedTwoRankRunResumesToTheSameBytes) {
    TempDir tmp;
    const fs::path model = copy_golden("llama_gqa", tmp / "model");
    const CliRun one = run_cli(compress_args(model, tmp / "one"));
    ASSERT_EQ(one.exit_code, 0) << one.describe();

    std::vector<std::string> stop = compress_args(model, tmp / "two");
    stop.insert(stop.end(), {"--stop-after-blocks", "1"});
    const CliRun stopped = run_mpi(2, stop);
    EXPECT_EQ(stopped.exit_code, 3) << stopped.describe();
    EXPECT_TRUE(fs::exists(tmp / "two" / ".checkpoint" / "state.json"));
    EXPECT_FALSE(fs::exists(tmp / "two" / "model.safetensors"));

    const CliRun resumed = run_mpi(2, compress_args(model, tmp / "two"));
    ASSERT_EQ(resumed.exit_code, 0) << resumed.describe();
    EXPECT_TRUE(contains(resumed.err, "resuming: 1 of 2 blocks")) << resumed.err;
    expect_same_outputs(tmp / "one", tmp / "two");
}

// An error on one rank (here the root's output folder) ends every rank, with one line naming the rank.
TEST(MpiCompress, AnErrorOnOneRankEndsThemAll) {
    TempDir tmp;
    const fs::path model = copy_golden("llama_gqa", tmp / "model");
    write_file(tmp / "a-file", "x");
    const CliRun r = run_mpi(2, compress_args(model, tmp / "a-file"));
    EXPECT_EQ(r.signal, 0) << r.describe();
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_TRUE(contains(r.err, "pbs2p: error (rank 0 of 2): ")) << r.err;
    EXPECT_TRUE(contains(r.err, "cannot create the output folder")) << r.err;
}

}  // namespace
}  // namespace pbs2p::cli_test
