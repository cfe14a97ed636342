// Unicode properties from the range tables in unicode_tables.cpp, with a flat table for the BMP.
#include "io/unicode.h"

#include <algorithm>
#include <array>

namespace pbs2p {
namespace {

bool in_ranges(const CodepointRange* ranges, size_t count, uint32_t cp) {
    const CodepointRange* end = ranges + count;
    const CodepointRange* it =
        std::upper_bound(ranges, end, cp, [](uint32_t c, const CodepointRange& r) { return c < r.first; });
    return it != ranges && cp <= (it - 1)->last;
}

bool is_white_space(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

CharClass classify(uint32_t cp) {
    if (is_white_space(cp)) return CharClass::space;
    if (in_ranges(unicode_tables::letter_ranges, unicode_tables::letter_ranges_count, cp)) return CharClass::letter;
    if (in_ranges(unicode_tables::number_ranges, unicode_tables::number_ranges_count, cp)) return CharClass::number;
    return CharClass::other;
}

// Classes of the Basic Multilingual Plane, built once.
const std::array<CharClass, 0x10000>& bmp_classes() {
    static const auto table = [] {
        std::array<CharClass, 0x10000> t{};
        for (uint32_t cp = 0; cp < 0x10000; ++cp) t[cp] = classify(cp);
        return t;
    }();
    return table;
}

}  // namespace

CharClass char_class(uint32_t cp) {
    if (cp < 0x10000) return bmp_classes()[cp];
    return classify(cp);
}

uint32_t utf8_decode(std::string_view text, size_t pos, size_t& length) {
    const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
    const unsigned char lead = byte(pos);
    length = 1;
    if (lead < 0x80) return lead;
    const size_t n = utf8_length(lead);
    if (n == 1 || pos + n > text.size()) return 0xFFFD;
    uint32_t cp = lead & (0x7F >> n);
    for (size_t i = 1; i < n; ++i) {
        if ((byte(pos + i) & 0xC0) != 0x80) return 0xFFFD;
        cp = (cp << 6) | (byte(pos + i) & 0x3F);
    }
    length = n;
    return cp;
}

void utf8_append(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

Codepoints utf8_codepoints(std::string_view text) {
    Codepoints out;
    out.cps.reserve(text.size());
    out.offsets.reserve(text.size() + 1);
    for (size_t pos = 0; pos < text.size();) {
        size_t length = 0;
        out.cps.push_back(utf8_decode(text, pos, length));
        out.offsets.push_back(static_cast<uint32_t>(pos));
        pos += length;
    }
    out.offsets.push_back(static_cast<uint32_t>(text.size()));
    return out;
}

}  // namespace pbs2p
