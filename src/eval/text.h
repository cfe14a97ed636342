// Reading evaluation and prompt text files.
#pragma once

#include <string>

namespace pbs2p {

// Whole file as bytes (UTF-8 expected); throws pbs2p::Error naming the file when it cannot be read or is empty.
std::string read_text_file(const std::string& path);

}  // namespace pbs2p
