// Fuzz target bodies, shared by the libFuzzer executables (fuzz/fuzz_main.cpp, clang) and the corpus
// replay in the ordinary test suite (tests/fuzz, any compiler). Each body feeds one input through a
// parser's public entry point the way the CLI does; a pbs2p::Error is the expected answer to bad input,
// anything else (another exception, a crash, a sanitizer report) is a finding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace pbs2p::fuzz {

struct FuzzTarget {
    const char* name;         // fuzz/corpus/<name>, fuzz/regressions/<name>, build-fuzz/fuzz/fuzz_<name>
    const char* description;  // what one input is
    void (*run)(const uint8_t* data, size_t size);
};

std::span<const FuzzTarget> fuzz_targets();
// nullptr when no target has this name.
const FuzzTarget* find_fuzz_target(const std::string& name);

}  // namespace pbs2p::fuzz
