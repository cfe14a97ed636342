// The block progress: durations as shown, and the estimate of the time left (no timing asserted).
#include <gtest/gtest.h>

#include "core/progress.h"

namespace pbs2p {
namespace {

TEST(Progress, DurationsAsShown) {
    EXPECT_EQ(format_duration(0.2), "0s");
    EXPECT_EQ(format_duration(42.4), "42s");
    EXPECT_EQ(format_duration(303), "5m03s");
    EXPECT_EQ(format_duration(3720), "1h02m");
    EXPECT_EQ(format_duration(-5), "0s");
}

// The estimate exists once a counted block has finished; blocks that do not count (restored from a
// checkpoint) leave it unknown, and the last block leaves nothing to wait for.
TEST(Progress, EstimateOnlyFromCountedBlocks) {
    BlockProgress progress("test", 3, false);
    EXPECT_LT(progress.eta_seconds(), 0.0);
    progress.phase(0, "load");
    progress.block_done(0, false);
    EXPECT_LT(progress.eta_seconds(), 0.0);
    progress.phase(1, "load");
    progress.block_done(1, true);
    EXPECT_GE(progress.eta_seconds(), 0.0);
    progress.phase(2, "solve", "q_proj (1/7)");
    progress.block_done(2, true);
    EXPECT_EQ(progress.eta_seconds(), 0.0);
}

}  // namespace
}  // namespace pbs2p
