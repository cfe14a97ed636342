#include "compress/pattern_codebook.h"

#include <algorithm>

#include "core/error.h"

namespace pbs2p {

namespace {

constexpr int kAllPatterns = 6561;  // 3^8

std::array<int8_t, kPatternWidth> pattern_of_index(int32_t index) {
    std::array<int8_t, kPatternWidth> p{};
    for (int j = 0; j < kPatternWidth; ++j) {
        p[j] = static_cast<int8_t>(index % 3 - 1);
        index /= 3;
    }
    return p;
}

int nonzeros(const std::array<int8_t, kPatternWidth>& p) {
    int n = 0;
    for (int8_t v : p) n += v != 0;
    return n;
}

// Sign changes between consecutive non-zero entries.
int sign_changes(const std::array<int8_t, kPatternWidth>& p) {
    int changes = 0, last = 0;
    for (int8_t v : p) {
        if (v == 0) continue;
        if (last != 0 && v != last) ++changes;
        last = v;
    }
    return changes;
}

PatternCodebook finish(std::string name, int code_bits, std::vector<int32_t> indices) {
    PatternCodebook book;
    book.name = std::move(name);
    book.code_bits = code_bits;
    book.code_of.assign(kAllPatterns, -1);
    for (int32_t idx : indices) {
        book.code_of[static_cast<size_t>(idx)] = book.size();
        book.patterns.push_back(pattern_of_index(idx));
    }
    return book;
}

PatternCodebook make_tern13() {
    std::vector<int32_t> all(kAllPatterns);
    for (int32_t i = 0; i < kAllPatterns; ++i) all[i] = i;
    return finish("tern13", 13, all);
}

PatternCodebook make_tern11() {
    std::vector<int32_t> chosen, five;
    for (int32_t i = 0; i < kAllPatterns; ++i) {
        const int n = nonzeros(pattern_of_index(i));
        if (n <= 4)
            chosen.push_back(i);
        else if (n == 5)
            five.push_back(i);
    }
    std::stable_sort(five.begin(), five.end(), [](int32_t a, int32_t b) {
        return sign_changes(pattern_of_index(a)) < sign_changes(pattern_of_index(b));
    });
    const size_t room = 2048 - chosen.size();
    chosen.insert(chosen.end(), five.begin(), five.begin() + static_cast<std::ptrdiff_t>(room));
    return finish("tern11", 11, chosen);
}

}  // namespace

int32_t ternary_index(const int8_t* values) {
    int32_t index = 0;
    for (int j = kPatternWidth - 1; j >= 0; --j) index = index * 3 + (values[j] + 1);
    return index;
}

int32_t PatternCodebook::find(const int8_t* values) const {
    return code_of[static_cast<size_t>(ternary_index(values))];
}

const PatternCodebook& pattern_codebook(const std::string& name) {
    static const PatternCodebook tern11 = make_tern11();
    static const PatternCodebook tern13 = make_tern13();
    if (name == "tern11") return tern11;
    if (name == "tern13") return tern13;
    fail("unknown pattern codebook '{}' (expected tern11 | tern13)", name);
}

std::vector<std::string> pattern_codebook_names() {
    return {"tern11", "tern13"};
}

void pattern_masks(const int8_t* values, uint8_t& keep_mask, uint8_t& sign_mask) {
    keep_mask = sign_mask = 0;
    for (int j = 0; j < kPatternWidth; ++j) {
        if (values[j] != 0) keep_mask |= static_cast<uint8_t>(1u << j);
        if (values[j] > 0) sign_mask |= static_cast<uint8_t>(1u << j);
    }
}

}  // namespace pbs2p
