// Test helpers for safetensors: a scratch directory, raw file builders for valid and corrupt files, and an
// assertion that a call throws pbs2p::Error mentioning given items.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"

namespace pbs2p::testing_fixtures {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

// A fresh directory under the test temp dir, removed with its contents on destruction.
class ScratchDir {
  public:
    ScratchDir() {
        std::string pattern = (fs::path(::testing::TempDir()) / "pbs2p-st-XXXXXX").string();
        if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
        path_ = pattern;
    }
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;

    const fs::path& path() const { return path_; }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

  private:
    fs::path path_;
};

inline void write_bytes(const std::string& path, const Bytes& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + path);
}

inline Bytes read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// u64 little-endian header length, the header text as given, then the data area.
inline Bytes raw_safetensors(const std::string& header, const Bytes& data, uint64_t header_len_field) {
    Bytes out(8);
    std::memcpy(out.data(), &header_len_field, 8);
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

inline Bytes raw_safetensors(const std::string& header, const Bytes& data) {
    return raw_safetensors(header, data, header.size());
}

inline Bytes safetensors_with_header(const nlohmann::json& header, const Bytes& data) {
    return raw_safetensors(header.dump(), data);
}

// One header entry: {"dtype": ..., "shape": ..., "data_offsets": [begin, end]}.
inline nlohmann::json entry(const std::string& dtype, std::vector<int64_t> shape, int64_t begin,
                            int64_t end) {
    return {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {begin, end}}};
}

inline Bytes f32_bytes(const std::vector<float>& values) {
    Bytes out(values.size() * 4);
    if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
    return out;
}

// Asserts that `call` throws pbs2p::Error whose message contains every string in `items`.
inline void expect_error_mentioning(const std::function<void()>& call, const std::vector<std::string>& items,
                                    const std::string& label = "") {
    try {
        call();
        ADD_FAILURE() << label << ": expected pbs2p::Error, nothing was thrown";
    } catch (const Error& e) {
        const std::string message = e.what();
        const bool one_line = std::none_of(message.begin(), message.end(),
                                           [](char c) { return static_cast<unsigned char>(c) < 0x20; });
        EXPECT_TRUE(one_line) << label << ": message is not one printable line: " << message;
        for (const std::string& item : items)
            EXPECT_NE(message.find(item), std::string::npos)
                << label << ": message lacks '" << item << "': " << message;
    } catch (const std::exception& e) {
        ADD_FAILURE() << label << ": threw a non-pbs2p exception: " << e.what();
    }
}

}  // namespace pbs2p::testing_fixtures
