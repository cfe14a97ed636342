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

}  // namespace pbs2p
