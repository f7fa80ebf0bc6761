#pragma once
// Paths are bytes, not text: a file name need not be UTF-8, but JSON strings must be. These
// helpers store any bytes in a JSON string losslessly.

#include <string>
#include <string_view>

namespace vvae {

// Whether `s` is well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or values past
// U+10FFFF), which JSON strings require.
bool is_utf8(std::string_view s);

// Any bytes as UTF-8: every byte outside a valid UTF-8 sequence becomes `\xNN` (two lowercase
// hex digits) and every backslash `\\`; unescape_bytes() gives back the bytes exactly.
std::string escape_bytes(std::string_view s);
// The inverse of escape_bytes().
std::string unescape_bytes(std::string_view s);
// `s` itself when it is UTF-8, else escape_bytes(s): readable, and never refused by a JSON
// writer (lossless only where the reader knows which strings were escaped).
std::string utf8_or_escaped(std::string_view s);

}  // namespace vvae
