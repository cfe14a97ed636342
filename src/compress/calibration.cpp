#include "compress/calibration.h"

#include <algorithm>

#include "core/error.h"
#include "core/rng.h"

namespace pbs2p {

CalibrationSet sample_calibration(const std::vector<int32_t>& stream, int64_t windows, int64_t seq, uint64_t seed,
                                  const std::string& source) {
    PBS2P_CHECK(windows > 0 && seq > 1, "{}: calibration needs at least one window of 2 tokens (asked {} x {})",
                source, windows, seq);
    const int64_t available = static_cast<int64_t>(stream.size());
    PBS2P_CHECK(available >= windows * seq,
                "{}: calibration text has {} tokens, fewer than the {} x {} = {} asked; use a longer text or fewer "
                "windows (--calib-windows) or a shorter window (--calib-seq)",
                source, available, windows, seq, windows * seq);
    CalibrationSet set;
    set.windows = windows;
    set.seq = seq;
    set.tokens.reserve(static_cast<size_t>(windows * seq));
    Rng rng(seed);
    const uint64_t offsets = static_cast<uint64_t>(available - seq + 1);
    for (int64_t w = 0; w < windows; ++w) {
        const int64_t start = static_cast<int64_t>(rng.below(offsets));
        set.tokens.insert(set.tokens.end(), stream.begin() + start, stream.begin() + start + seq);
    }
    return set;
}

}  // namespace pbs2p
