// Calibration data: random windows of a tokenized text, drawn with a fixed seed.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pbs2p {

struct CalibrationSet {
    int64_t windows = 0;
    int64_t seq = 0;
    std::vector<int32_t> tokens;  // windows * seq, window-major
};

// Draws `windows` windows of `seq` tokens at uniformly random offsets of `stream` (seeded, deterministic).
// Throws pbs2p::Error naming `source` when the stream holds fewer than windows * seq tokens.
CalibrationSet sample_calibration(const std::vector<int32_t>& stream, int64_t windows, int64_t seq, uint64_t seed,
                                  const std::string& source);

// Window length for calibration and evaluation: `requested` when positive, else min(2048, model context)
// (the GPTQ-lineage setting, capped by what the model can attend to).
inline int64_t window_length_or_default(int64_t requested, int64_t model_context) {
    return requested > 0 ? requested : (model_context < 2048 ? model_context : 2048);
}

}  // namespace pbs2p
