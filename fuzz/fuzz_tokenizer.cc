// fuzz_tokenizer.cc — libFuzzer target for one tokenizer kind. The
// vocabulary named by HEARTH_FUZZ_VOCAB (a real GGUF vocab file, set per
// target in CMakeLists.txt) is loaded once; each input is
//  - encoded with and without parse_special (and add_special), the ids
//    decoded again (ids from Encode must always decode), and
//  - read as little-endian int32 ids (mostly folded into the vocabulary,
//    some left out of range) for Decode and StreamDecoder, whose output
//    must be valid UTF-8 whatever the ids.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_vocab.h"
#include "sdk/src/tokenizer/tokenizer.h"

#ifndef HEARTH_FUZZ_VOCAB
#error "HEARTH_FUZZ_VOCAB must name the vocabulary GGUF"
#endif

namespace {

const hearth::tok::Tokenizer& Tok() {
  static const hearth::tok::Tokenizer* tok = hearth_fuzz::LoadVocabFile(HEARTH_FUZZ_VOCAB);
  return *tok;
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    size_t n;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
    else return false;
    if (i + n >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      const unsigned char cc = s[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const hearth::tok::Tokenizer& tok = Tok();
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  for (int mode = 0; mode < 4; ++mode) {
    const bool add_special = mode & 1, parse_special = mode & 2;
    auto ids = tok.Encode(text, add_special, parse_special);
    if (!ids.ok()) continue;  // invalid UTF-8 is an error, not a crash
    for (int32_t id : *ids) {
      if (id < 0 || id >= tok.n_vocab()) __builtin_trap();
    }
    for (bool render : {false, true}) {
      if (!tok.Decode(*ids, render).ok()) __builtin_trap();
    }
  }

  // The same bytes as token ids.
  const int32_t n_vocab = tok.n_vocab();
  std::vector<int32_t> ids(size / 4);
  for (size_t i = 0; i < ids.size(); ++i) {
    uint32_t raw;
    std::memcpy(&raw, data + 4 * i, 4);
    // Top bit set: keep as is (negative or huge); else fold into [0, n_vocab + 4).
    ids[i] = (raw & 0x80000000u) ? static_cast<int32_t>(raw ^ 0x40000000u)
                                 : static_cast<int32_t>(raw % (static_cast<uint32_t>(n_vocab) + 4));
  }
  for (bool render : {false, true}) (void)tok.Decode(ids, render);
  hearth::tok::StreamDecoder stream(tok);
  std::string out;
  for (int32_t id : ids) {
    (void)tok.TokenToPiece(id, true);
    (void)tok.IsEog(id);
    out += stream.Push(id);
  }
  out += stream.Flush();
  if (!IsValidUtf8(out)) __builtin_trap();
  return 0;
}
