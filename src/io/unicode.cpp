// Unicode properties from the range tables in unicode_tables.cpp, with a flat table for the BMP.
#include "io/unicode.h"

#include <algorithm>
#include <array>

#include "core/error.h"

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

size_t utf8_invalid_offset(std::string_view text) {
    const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
    size_t pos = 0;
    while (pos < text.size()) {
        const unsigned char lead = byte(pos);
        if (lead < 0x80) {
            ++pos;
            continue;
        }
        // Sequence length and the allowed range of the second byte (excludes overlongs, surrogates and
        // code points above U+10FFFF); later bytes are 0x80..0xBF.
        size_t n = 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (lead >= 0xC2 && lead <= 0xDF) {
            n = 2;
        } else if (lead >= 0xE0 && lead <= 0xEF) {
            n = 3;
            if (lead == 0xE0) lo = 0xA0;
            if (lead == 0xED) hi = 0x9F;
        } else if (lead >= 0xF0 && lead <= 0xF4) {
            n = 4;
            if (lead == 0xF0) lo = 0x90;
            if (lead == 0xF4) hi = 0x8F;
        } else {
            return pos;  // continuation byte without a lead, or a byte that never occurs in UTF-8
        }
        if (pos + n > text.size()) return pos;
        if (byte(pos + 1) < lo || byte(pos + 1) > hi) return pos;
        for (size_t i = 2; i < n; ++i)
            if ((byte(pos + i) & 0xC0) != 0x80) return pos;
        pos += n;
    }
    return std::string_view::npos;
}

std::string printable_utf8(std::string_view text) {
    std::string out;
    size_t pos = 0;
    while (pos < text.size()) {
        const size_t bad = utf8_invalid_offset(text.substr(pos));
        const size_t good_end = bad == std::string_view::npos ? text.size() : pos + bad;
        for (; pos < good_end; ++pos) {
            const unsigned char c = static_cast<unsigned char>(text[pos]);
            if (c < 0x20 || c == 0x7F)
                out += fmt::format("\\x{:02x}", c);
            else
                out += static_cast<char>(c);
        }
        if (pos < text.size()) out += fmt::format("\\x{:02x}", static_cast<unsigned char>(text[pos++]));
    }
    return out;
}

void require_utf8(std::string_view text, const std::string& what) {
    const size_t at = utf8_invalid_offset(text);
    PBS2P_CHECK(at == std::string_view::npos, "{}: not valid UTF-8 at byte offset {} (byte 0x{:02x})", what,
                at, static_cast<unsigned>(static_cast<unsigned char>(text[at])));
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
