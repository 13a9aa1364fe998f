// terminal_text.cc — escaping control characters for the terminal (see
// terminal_text.h).
#include "terminal_text.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace hearth::cli {
namespace {

// The code point of the well-formed UTF-8 sequence (no overlongs, no
// surrogates, at most U+10FFFF) that starts `s`, and its length; length 0
// when there is none.
uint32_t DecodeUtf8(std::string_view s, size_t* len) {
  const auto b = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t c = b(0);
  uint32_t cp = 0;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    *len = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    *len = 3;
    cp = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    *len = 4;
    cp = c & 0x07;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    *len = 0;
    return 0;
  }
  if (s.size() < *len || b(1) < lo || b(1) > hi) {
    *len = 0;
    return 0;
  }
  for (size_t i = 1; i < *len; ++i) {
    if ((b(i) & 0xC0) != 0x80) {
      *len = 0;
      return 0;
    }
    cp = (cp << 6) | (b(i) & 0x3F);
  }
  return cp;
}

bool IsEscapedCodePoint(uint32_t cp) {
  return (cp >= 0x80 && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069);
}

std::string Escape(std::string_view s, bool keep_newlines) {
  std::string out;
  out.reserve(s.size());
  char buf[16];
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      const bool control = c < 0x20 || c == 0x7F;
      if (control && !(keep_newlines && (c == '\n' || c == '\t'))) {
        std::snprintf(buf, sizeof(buf), "\\x%02x", c);
        out += buf;
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    size_t len = 0;
    const uint32_t cp = DecodeUtf8(s.substr(i), &len);
    if (len == 0) {  // not UTF-8: a lone byte, 0x9B included, which is CSI to some terminals
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
      ++i;
    } else if (IsEscapedCodePoint(cp)) {
      std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(cp));
      out += buf;
      i += len;
    } else {
      out.append(s.data() + i, len);
      i += len;
    }
  }
  return out;
}

}  // namespace

std::string Printable(std::string_view s) { return Escape(s, /*keep_newlines=*/false); }

std::string PrintableText(std::string_view s) { return Escape(s, /*keep_newlines=*/true); }

std::string PrintableOrDash(const char* s) {
  return (s != nullptr && *s != '\0') ? Printable(s) : std::string("-");
}

}  // namespace hearth::cli
