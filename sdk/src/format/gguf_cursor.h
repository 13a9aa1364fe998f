// gguf_cursor.h — a bounds-checked little-endian reader over a byte range.
//
// The GGUF parser reads every field through this cursor, so no length or
// offset taken from a file can move a read outside [base, base + size): a
// read that does not fit returns false and leaves the position unchanged.
// The caller turns that into an error naming the field. Values are assembled
// byte by byte, so the result is the same on any host byte order and no
// unaligned load is ever made.
#ifndef HEARTH_SDK_SRC_FORMAT_GGUF_CURSOR_H_
#define HEARTH_SDK_SRC_FORMAT_GGUF_CURSOR_H_

#include <cstdint>

namespace hearth::gguf {

class Cursor {
 public:
  Cursor(const uint8_t* base, uint64_t size) : base_(base), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t size() const { return size_; }
  uint64_t left() const { return size_ - pos_; }

  // Reads an n-byte (n <= 8) little-endian unsigned integer.
  bool ReadLE(unsigned n, uint64_t* out) {
    if (n > 8 || left() < n) return false;
    uint64_t v = 0;
    for (unsigned i = 0; i < n; ++i) v |= static_cast<uint64_t>(base_[pos_ + i]) << (8 * i);
    pos_ += n;
    *out = v;
    return true;
  }
  bool ReadU32(uint32_t* out) {
    uint64_t v = 0;
    if (!ReadLE(4, &v)) return false;
    *out = static_cast<uint32_t>(v);
    return true;
  }
  bool ReadU64(uint64_t* out) { return ReadLE(8, out); }

  // Hands out a pointer to the next n bytes and steps over them.
  bool Take(uint64_t n, const uint8_t** out) {
    if (left() < n) return false;
    *out = base_ + pos_;
    pos_ += n;
    return true;
  }

 private:
  const uint8_t* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

// Decodes an n-byte little-endian unsigned integer from memory already
// bounds-checked by a Cursor (array elements).
inline uint64_t LoadLE(const uint8_t* p, unsigned n) {
  uint64_t v = 0;
  for (unsigned i = 0; i < n; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace hearth::gguf

#endif  // HEARTH_SDK_SRC_FORMAT_GGUF_CURSOR_H_
