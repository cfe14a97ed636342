// UTF-8 decoding/encoding and the few Unicode properties the pre-tokenizer patterns need
// (\p{L}, \p{N}, \s as Unicode White_Space).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pbs2p {

struct CodepointRange {
    uint32_t first, last;  // inclusive
};

namespace unicode_tables {
extern const CodepointRange letter_ranges[];
extern const size_t letter_ranges_count;
extern const CodepointRange number_ranges[];
extern const size_t number_ranges_count;
}  // namespace unicode_tables

enum class CharClass : uint8_t { other = 0, letter = 1, number = 2, space = 3 };

// Class of a code point: letter (\p{L}), number (\p{N}), Unicode White_Space, or anything else.
CharClass char_class(uint32_t cp);

// Length in bytes of the UTF-8 sequence starting with `lead` (1 for invalid lead bytes).
inline size_t utf8_length(unsigned char lead) {
    if (lead < 0x80) return 1;
    if ((lead & 0xE0) == 0xC0) return 2;
    if ((lead & 0xF0) == 0xE0) return 3;
    if ((lead & 0xF8) == 0xF0) return 4;
    return 1;
}

// Decodes the code point at text[pos], setting `length` to the bytes it spans. Invalid or truncated
// sequences decode as U+FFFD spanning one byte, so every byte of the input is covered exactly once.
uint32_t utf8_decode(std::string_view text, size_t pos, size_t& length);

void utf8_append(std::string& out, uint32_t cp);

// Byte offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF, no truncated sequence), or std::string_view::npos when all is.
size_t utf8_invalid_offset(std::string_view text);

// `text` with every control character and every byte outside well-formed UTF-8 written as \xNN, for
// messages that quote input (a message never carries raw bytes of a file).
std::string printable_utf8(std::string_view text);

// Throws pbs2p::Error "<what>: not valid UTF-8 at byte offset N (byte 0xNN)" when text is not UTF-8.
void require_utf8(std::string_view text, const std::string& what);

// A UTF-8 string as code points with the byte offset of each (offsets has one extra entry: the end).
struct Codepoints {
    std::vector<uint32_t> cps;
    std::vector<uint32_t> offsets;
};
Codepoints utf8_codepoints(std::string_view text);

}  // namespace pbs2p
