// The distributed-compression interface in one process: the contiguous splits, the solve assignment,
// the single-process communicator and the order of the ordered sum. Runs on K ranks are compared with
// one process by tests/mpi (only with MPI).
#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include "compress/distributed.h"
#include "compress/driver.h"
#include "core/error.h"
#include "core/rng.h"

namespace pbs2p {
namespace {

TEST(Distributed, SharesCoverEveryItemOnceInOrder) {
    for (int64_t count : {0, 1, 4, 7, 8, 128, 1001})
        for (int parts : {1, 2, 3, 8, 13}) {
            int64_t next = 0, shortest = count, longest = 0;
            for (int p = 0; p < parts; ++p) {
                const IndexRange r = share_of(count, parts, p);
                EXPECT_EQ(r.begin, next) << count << " in " << parts;
                next = r.end;
                shortest = std::min(shortest, r.size());
                longest = std::max(longest, r.size());
            }
            EXPECT_EQ(next, count);
            EXPECT_LE(longest - shortest, 1) << count << " in " << parts;
        }
    // 4 windows in 8 slices: every other slice holds one, so 2 ranks get 2 windows each.
    EXPECT_EQ(share_of(4, 8, 0).size(), 0);
    EXPECT_EQ(share_of(4, 8, 1).begin, 0);
    EXPECT_EQ(share_of(4, 8, 7).begin, 3);
    EXPECT_THROW(share_of(4, 0, 0), Error);
    EXPECT_THROW(share_of(4, 2, 2), Error);
}

TEST(Distributed, BalancedOwnersPutTheLargestFirstOnTheLeastLoaded) {
    // q k v o gate up down of a small LLaMA block (out x in).
    const std::vector<int64_t> costs = {256 * 256, 128 * 256, 128 * 256, 256 * 256,
                                        768 * 256, 768 * 256, 256 * 768};
    EXPECT_EQ(balanced_owners(costs, 1), std::vector<int>(7, 0));
    const std::vector<int> two = balanced_owners(costs, 2);
    EXPECT_EQ(two, (std::vector<int>{1, 1, 1, 1, 0, 1, 0}));
    std::vector<int64_t> load(2, 0);
    for (size_t i = 0; i < costs.size(); ++i) load[static_cast<size_t>(two[i])] += costs[i];
    EXPECT_EQ(load[0], 2 * 196608);
    EXPECT_EQ(load[1], 196608 + 2 * 65536 + 2 * 32768);
    // More ranks than layers: one layer each, the rest idle.
    const std::vector<int> many = balanced_owners(costs, 9);
    EXPECT_EQ(many, (std::vector<int>{3, 5, 6, 4, 0, 1, 2}));
}

TEST(Distributed, SingleProcessCommunicatorIsRankZeroOfOne) {
    SingleProcessCommunicator c;
    EXPECT_EQ(c.rank(), 0);
    EXPECT_EQ(c.size(), 1);
    EXPECT_TRUE(c.is_root());
    std::vector<uint8_t> bytes = {1, 2, 3};
    c.broadcast_bytes(bytes, 0);
    EXPECT_EQ(bytes, (std::vector<uint8_t>{1, 2, 3}));
    double value = 2.5;
    c.broadcast(&value, sizeof value, 0);
    EXPECT_EQ(value, 2.5);
    EXPECT_EQ(c.gather_to_root({1.0, 2.0}), (std::vector<double>{1.0, 2.0}));
    c.barrier();
    c.abort(1);  // nothing to end: the process carries on
    EXPECT_THROW(c.send(&value, sizeof value, 1), Error);
    EXPECT_THROW(c.receive(&value, sizeof value, 1), Error);
    EXPECT_THROW(c.broadcast(&value, sizeof value, 1), Error);
    EXPECT_EQ(c.traffic().bytes_sent, 0);
    EXPECT_EQ(c.traffic().bytes_received, 0);
    EXPECT_EQ(&single_process_communicator(), &single_process_communicator());
}

TEST(Distributed, OrderedSumFoldsThePartsLeftToRight) {
    SingleProcessCommunicator c;
    // Each order of these gives another double: ((1e16 + 1) - 1e16) + 1 = 1, (1e16 - 1e16) + 1 + 1 = 2.
    OrderedSum sum(c, 2);
    sum.add({1e16, 1.0});
    sum.add({1.0, 2.0});
    sum.add({-1e16, 3.0});
    sum.add({1.0, 4.0});
    const std::vector<double> result = sum.finish();
    EXPECT_EQ(result, (std::vector<double>{1.0, 10.0}));

    OrderedSum none(c, 3);
    EXPECT_EQ(none.finish(), std::vector<double>(3, 0.0));
    OrderedSum wrong(c, 2);
    EXPECT_THROW(wrong.add({1.0}), Error);
}

TEST(Distributed, LauncherSizeComesFromTheEnvironment) {
    const char* saved = std::getenv("OMPI_COMM_WORLD_SIZE");
    const std::string keep = saved ? saved : "";
    ::setenv("OMPI_COMM_WORLD_SIZE", "3", 1);
    EXPECT_EQ(launcher_world_size(), 3);
    if (!built_with_mpi()) {
        EXPECT_THROW(make_world_communicator(), Error);
    }
    ::unsetenv("OMPI_COMM_WORLD_SIZE");
    if (!std::getenv("PMI_SIZE")) {
        EXPECT_EQ(launcher_world_size(), 1);
        EXPECT_EQ(make_world_communicator()->size(), 1);  // no launcher: one process, MPI never started
    }
    if (saved) ::setenv("OMPI_COMM_WORLD_SIZE", keep.c_str(), 1);
}

// The coarse stage's cosine, summed per calibration slice and then over the slices, is the mean over
// every row of the whole calibration set.
TEST(Distributed, SlicedBlockCosineIsTheMeanOverAllRows) {
    Model model = Model::load(std::string(PBS2P_SOURCE_DIR) + "/tests/model/golden/llama_gqa");
    Rng rng(5);
    std::vector<int32_t> stream(4000);
    for (auto& t : stream)
        t = static_cast<int32_t>(rng.below(static_cast<uint64_t>(model.config().vocab_size)));
    const CalibrationSet calibration = sample_calibration(stream, 11, 24, 5, "random stream");
    const std::vector<double> cosine = block_cosine_similarity(model, calibration);
    ASSERT_EQ(cosine.size(), static_cast<size_t>(model.num_blocks()));
    Matrix hidden = model.embed(calibration.tokens, calibration.windows, calibration.seq);
    for (int l = 0; l < model.num_blocks(); ++l) {
        const Matrix input = hidden;
        model.run_block(l, hidden, calibration.windows, calibration.seq);
        double total = 0;
        for (int64_t i = 0; i < hidden.rows; ++i) {
            double dot = 0, nx = 0, ny = 0;
            for (int64_t j = 0; j < hidden.cols; ++j) {
                dot += static_cast<double>(input(i, j)) * hidden(i, j);
                nx += static_cast<double>(input(i, j)) * input(i, j);
                ny += static_cast<double>(hidden(i, j)) * hidden(i, j);
            }
            total += dot / std::sqrt(nx * ny);
        }
        EXPECT_NEAR(cosine[static_cast<size_t>(l)], total / static_cast<double>(hidden.rows), 1e-6) << l;
    }
}

}  // namespace
}  // namespace pbs2p
