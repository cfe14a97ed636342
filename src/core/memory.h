// Process memory statistics (Linux /proc) and CPU time.
#pragma once

#include <cstdint>

namespace pbs2p {

// Peak resident set size of this process in bytes (VmHWM), 0 if unknown.
int64_t peak_rss_bytes();
// Current resident set size in bytes (VmRSS), 0 if unknown.
int64_t current_rss_bytes();
// CPU time of this process so far (all threads, user + system), in seconds.
double process_cpu_seconds();

}  // namespace pbs2p
