// Thread configuration shared by OpenMP loops and OpenBLAS (one pool, no oversubscription).
#pragma once

namespace pbs2p {

// Sets the thread count for OpenMP and OpenBLAS; n <= 0 means all hardware threads.
void set_num_threads(int n);
int num_threads();

}  // namespace pbs2p
