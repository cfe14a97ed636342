#include "core/memory.h"

#include <cstdio>
#include <cstring>
#include <ctime>

namespace pbs2p {

namespace {
int64_t read_status_kb(const char* key) {
    FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    int64_t kb = 0;
    size_t key_len = std::strlen(key);
    while (std::fgets(line, sizeof line, f)) {
        if (std::strncmp(line, key, key_len) == 0) {
            std::sscanf(line + key_len, "%ld", &kb);
            break;
        }
    }
    std::fclose(f);
    return kb;
}
}  // namespace

int64_t peak_rss_bytes() { return read_status_kb("VmHWM:") * 1024; }
int64_t current_rss_bytes() { return read_status_kb("VmRSS:") * 1024; }

double process_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace pbs2p
