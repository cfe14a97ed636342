// Shared helpers for the model tests: golden checkpoints under tests/model/golden and scratch folders.
#pragma once

#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace pbs2p::test {

inline std::string golden_dir(const std::string& name) {
    return std::string(PBS2P_SOURCE_DIR) + "/tests/model/golden/" + name;
}

struct Golden {
    std::vector<int32_t> tokens;
    Matrix logits;
};

inline Golden load_golden(const std::string& name) {
    std::ifstream in(golden_dir(name) + "/golden.json");
    nlohmann::json j = nlohmann::json::parse(in);
    Golden g;
    g.tokens = j["tokens"].get<std::vector<int32_t>>();
    const auto& rows = j["logits"];
    g.logits = Matrix(static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size()));
    for (int64_t i = 0; i < g.logits.rows; ++i)
        for (int64_t k = 0; k < g.logits.cols; ++k) g.logits(i, k) = rows[static_cast<size_t>(i)][static_cast<size_t>(k)].get<float>();
    return g;
}

inline float max_abs(const Matrix& m) {
    float mx = 0.0f;
    for (float v : m.data) mx = std::max(mx, std::abs(v));
    return mx;
}

inline float max_abs_diff(const Matrix& a, const Matrix& b) {
    float mx = 0.0f;
    for (size_t i = 0; i < a.data.size(); ++i) mx = std::max(mx, std::abs(a.data[i] - b.data[i]));
    return mx;
}

// A fresh empty directory under the system temp dir, removed on destruction.
class ScratchDir {
public:
    explicit ScratchDir(const std::string& tag) {
        path_ = std::filesystem::temp_directory_path() /
                ("pbs2p_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
        std::filesystem::remove_all(path_);
        std::filesystem::create_directories(path_);
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    std::string str() const { return path_.string(); }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    static int& counter() {
        static int n = 0;
        return n;
    }
    std::filesystem::path path_;
};

}  // namespace pbs2p::test
