// Reading evaluation and prompt text files.
#pragma once

#include <string>

namespace pbs2p {

// Whole file as bytes; throws pbs2p::Error naming the file when it cannot be read, is empty or is not valid
// UTF-8 (naming the byte offset of the first invalid byte: text is never silently replaced).
std::string read_text_file(const std::string& path);

}  // namespace pbs2p
