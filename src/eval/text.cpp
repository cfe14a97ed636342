#include "eval/text.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/unicode.h"

namespace pbs2p {

std::string read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    PBS2P_CHECK(in, "{}: cannot open text file: {}", path, std::strerror(errno));
    std::ostringstream buffer;
    buffer << in.rdbuf();
    PBS2P_CHECK(!in.bad(), "{}: read error", path);
    std::string text = buffer.str();
    PBS2P_CHECK(!text.empty(), "{}: text file is empty", path);
    require_utf8(text, path);
    return text;
}

}  // namespace pbs2p
