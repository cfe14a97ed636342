// Progress reporting: a redrawn bar on a terminal, plain lines otherwise, silent when disabled (--json).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace pbs2p {

class Progress {
public:
    Progress(std::string label, int64_t total, bool enabled = true);
    ~Progress();
    // Advances to `done` of `total`; `detail` is a short status shown beside the bar.
    void update(int64_t done, const std::string& detail = "");
    void finish(const std::string& detail = "");

    // Global switch (e.g. turned off by --json or --quiet).
    static void set_enabled(bool enabled);
    static bool enabled();

private:
    std::string label_;
    int64_t total_;
    bool enabled_;
    bool tty_;
    bool finished_ = false;
    int last_percent_ = -1;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_draw_;
};

// Progress through `total` blocks of work, each made of named phases (the block-by-block compressor): on
// a terminal one redrawn status line plus a line per finished block, otherwise a line per phase. Both show
// the elapsed time and an estimate of the time left: the mean time of the blocks finished in this run
// (blocks that did not count, e.g. restored from a checkpoint, are left out) times the blocks left, less
// the time already spent in the current block.
class BlockProgress {
  public:
    BlockProgress(std::string label, int64_t total, bool enabled = true);
    ~BlockProgress();
    // Block `block` (0-based) enters `phase`; `detail` is a short status (e.g. the layer being solved).
    void phase(int64_t block, const std::string& phase, const std::string& detail = "");
    // Block `block` is finished; `counted`: its time predicts the blocks left; `summary` is shown with it.
    void block_done(int64_t block, bool counted, const std::string& summary = "");
    // Seconds left by the estimate; negative while no counted block has finished.
    double eta_seconds() const;
    void finish();  // ends a redrawn line

  private:
    void show(const std::string& line, bool permanent);

    std::string label_;
    int64_t total_;
    bool enabled_;
    bool tty_;
    bool open_line_ = false;  // a redrawn line without its newline is on the terminal
    int64_t done_ = 0;        // blocks finished
    int64_t counted_ = 0;     // of which counted
    double counted_seconds_ = 0;
    std::chrono::steady_clock::time_point start_, block_start_;
    int64_t current_block_ = -1;
};

// "42s", "5m03s", "1h02m".
std::string format_duration(double seconds);

}  // namespace pbs2p
