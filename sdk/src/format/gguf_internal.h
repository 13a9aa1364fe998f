// gguf_internal.h — small helpers shared by the GGUF parser (gguf.cc) and
// the file/getter code (gguf_file.cc): value-type names and sizes, and the
// quoting of file-supplied names in error messages.
#ifndef HEARTH_SDK_SRC_FORMAT_GGUF_INTERNAL_H_
#define HEARTH_SDK_SRC_FORMAT_GGUF_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"
#include "sdk/src/format/gguf.h"

namespace hearth::gguf {

// Names as in the GGUF spec's type list, for messages.
inline const char* ValueTypeName(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
      return "u8";
    case ValueType::kInt8:
      return "i8";
    case ValueType::kUint16:
      return "u16";
    case ValueType::kInt16:
      return "i16";
    case ValueType::kUint32:
      return "u32";
    case ValueType::kInt32:
      return "i32";
    case ValueType::kFloat32:
      return "f32";
    case ValueType::kBool:
      return "bool";
    case ValueType::kString:
      return "string";
    case ValueType::kArray:
      return "array";
    case ValueType::kUint64:
      return "u64";
    case ValueType::kInt64:
      return "i64";
    case ValueType::kFloat64:
      return "f64";
  }
  return "unknown";
}

// Bytes of one scalar of type `t`; 0 for strings and arrays.
inline unsigned ScalarBytes(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool:
      return 1;
    case ValueType::kUint16:
    case ValueType::kInt16:
      return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32:
      return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64:
      return 8;
    case ValueType::kString:
    case ValueType::kArray:
      return 0;
  }
  return 0;
}

// Names and keys come from the file: escape them (NUL, control bytes) and
// cap their length so an error message stays one readable line.
inline std::string Printable(std::string_view s) {
  constexpr size_t kMaxShown = 120;
  if (s.size() > kMaxShown) {
    return absl::StrCat(absl::CHexEscape(Absl(s.substr(0, kMaxShown))), "... (", s.size(),
                        " bytes)");
  }
  return absl::CHexEscape(Absl(s));
}

// "47 47 55 46" for messages about raw bytes.
inline std::string HexBytes(const uint8_t* p, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += ' ';
    absl::StrAppend(&out, absl::Hex(p[i], absl::kZeroPad2));
  }
  return out;
}

}  // namespace hearth::gguf

#endif  // HEARTH_SDK_SRC_FORMAT_GGUF_INTERNAL_H_
