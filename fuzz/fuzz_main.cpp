// libFuzzer entry point of one target, chosen at compile time (PBS2P_FUZZ_TARGET).
#include <cstdio>
#include <cstdlib>

#include "fuzz_targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const pbs2p::fuzz::FuzzTarget* target = [] {
        const pbs2p::fuzz::FuzzTarget* t = pbs2p::fuzz::find_fuzz_target(PBS2P_FUZZ_TARGET);
        if (!t) {
            std::fprintf(stderr, "fuzz: no target named %s\n", PBS2P_FUZZ_TARGET);
            std::abort();
        }
        return t;
    }();
    target->run(data, size);
    return 0;
}
