#include "core/progress.h"

#include <fmt/format.h>
#include <unistd.h>

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

}  // namespace pbs2p
