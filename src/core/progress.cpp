#include "core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace pbs2p {

namespace {
bool g_progress_enabled = true;
}

void Progress::set_enabled(bool enabled) { g_progress_enabled = enabled; }
bool Progress::enabled() { return g_progress_enabled; }

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total > 0 ? total : 1),
      enabled_(enabled && g_progress_enabled),
      tty_(isatty(fileno(stderr)) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() {
    if (enabled_ && !finished_ && tty_) std::fputc('\n', stderr);
}

void Progress::update(int64_t done, const std::string& detail) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(now - start_).count();
    int percent = static_cast<int>(100 * done / total_);
    if (tty_) {
        bool due = std::chrono::duration<double>(now - last_draw_).count() > 0.1 || done >= total_;
        if (!due) return;
        last_draw_ = now;
        constexpr int width = 30;
        int filled = static_cast<int>(width * done / total_);
        std::string bar(static_cast<size_t>(filled), '#');
        bar.resize(width, '.');
        double eta = done > 0 ? elapsed * static_cast<double>(total_ - done) / static_cast<double>(done) : 0.0;
        fmt::print(stderr, "\r{} [{}] {}/{} {:3d}% {:.0f}s eta {:.0f}s {}\x1b[K", label_, bar, done, total_,
                   percent, elapsed, eta, detail);
    } else {
        // Plain lines: one every 10 percent (and for every step when there are few).
        if (percent / 10 == last_percent_ / 10 && total_ > 10 && done < total_) return;
        fmt::print(stderr, "{}: {}/{} ({}%) {:.1f}s {}\n", label_, done, total_, percent, elapsed, detail);
    }
    last_percent_ = percent;
    std::fflush(stderr);
}

void Progress::finish(const std::string& detail) {
    if (finished_) return;
    update(total_, detail);
    if (enabled_ && tty_) std::fputc('\n', stderr);
    finished_ = true;
}

std::string format_duration(double seconds) {
    const auto total = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
    if (total < 60) return fmt::format("{}s", total);
    if (total < 3600) return fmt::format("{}m{:02d}s", total / 60, total % 60);
    return fmt::format("{}h{:02d}m", total / 3600, total % 3600 / 60);
}

BlockProgress::BlockProgress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total > 0 ? total : 1),
      enabled_(enabled && Progress::enabled()),
      tty_(isatty(fileno(stderr)) != 0),
      start_(std::chrono::steady_clock::now()),
      block_start_(start_) {}

BlockProgress::~BlockProgress() {
    if (enabled_ && tty_ && open_line_) std::fputc('\n', stderr);
}

double BlockProgress::eta_seconds() const {
    if (counted_ == 0) return -1.0;
    const double mean = counted_seconds_ / static_cast<double>(counted_);
    const double in_block =
        current_block_ >= 0
            ? std::chrono::duration<double>(std::chrono::steady_clock::now() - block_start_).count()
            : 0.0;
    return std::max(0.0, mean * static_cast<double>(total_ - done_) - in_block);
}

void BlockProgress::show(const std::string& line, bool permanent) {
    open_line_ = tty_ && !permanent;
    if (tty_)
        fmt::print(stderr, "\r{}\x1b[K{}", line, permanent ? "\n" : "");
    else
        fmt::print(stderr, "{}\n", line);
    std::fflush(stderr);
}

void BlockProgress::phase(int64_t block, const std::string& phase, const std::string& detail) {
    const auto now = std::chrono::steady_clock::now();
    if (block != current_block_) {
        current_block_ = block;
        block_start_ = now;
    }
    if (!enabled_) return;
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double eta = eta_seconds();
    show(fmt::format("{}: block {}/{} {}{}{} | {} elapsed, eta {}", label_, block + 1, total_, phase,
                     detail.empty() ? "" : " ", detail, format_duration(elapsed),
                     eta < 0 ? std::string("?") : format_duration(eta)),
         false);
}

void BlockProgress::block_done(int64_t block, bool counted, const std::string& summary) {
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - block_start_).count();
    ++done_;
    if (counted) {
        ++counted_;
        counted_seconds_ += seconds;
    }
    current_block_ = -1;
    if (!enabled_) return;
    const double eta = eta_seconds();
    show(fmt::format("{}: block {}/{} done in {}{}{} | {} elapsed{}", label_, block + 1, total_,
                     format_duration(seconds), summary.empty() ? "" : ": ", summary,
                     format_duration(std::chrono::duration<double>(now - start_).count()),
                     eta < 0 || done_ >= total_ ? std::string() : ", eta " + format_duration(eta)),
         true);
}

void BlockProgress::finish() {
    if (enabled_ && tty_ && open_line_) std::fputc('\n', stderr);
    open_line_ = false;
}

}  // namespace pbs2p
