// ggml_types.cc — what the reader knows about ggml tensor types: block
// geometry (so tensor sizes can be checked), names for messages, and the
// mapping onto the hearth_dtype values that cross the plugin boundary.
//
// One table is the single source of truth. A type is "known" only if its
// geometry is here; ids in the gaps of ggml's numbering (4 and 5 were removed,
// the IQ* and later types are not read by hearth) are unknown on purpose, so
// a file that uses them is refused instead of being mis-sized.
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "hearth/hearth_plugin.h"
#include "sdk/src/format/gguf.h"

namespace hearth::gguf {
namespace {

struct TypeTraits {
  uint32_t id;
  const char* name;
  int64_t block_elems;
  int64_t block_bytes;
  int32_t hearth_dtype;  // -1: hearth does not compute with this type
};

// Block sizes follow the block structs of ggml-common.h: e.g. Q4_K is
// f16 d + f16 dmin + 12 bytes of scales + 128 bytes of nibbles = 144 bytes per
// 256 elements. Q8_1 is f16 d + f16 s + 32 int8 = 36 (older ggml used two
// floats, 40; current ggml and the files it writes use 36).
constexpr TypeTraits kTypes[] = {
    {kGgmlF32, "F32", 1, 4, HEARTH_DTYPE_F32},
    {kGgmlF16, "F16", 1, 2, HEARTH_DTYPE_F16},
    {kGgmlQ4_0, "Q4_0", 32, 18, HEARTH_DTYPE_Q4_0},
    {kGgmlQ4_1, "Q4_1", 32, 20, HEARTH_DTYPE_Q4_1},
    {kGgmlQ5_0, "Q5_0", 32, 22, HEARTH_DTYPE_Q5_0},
    {kGgmlQ5_1, "Q5_1", 32, 24, -1},
    {kGgmlQ8_0, "Q8_0", 32, 34, HEARTH_DTYPE_Q8_0},
    {kGgmlQ8_1, "Q8_1", 32, 36, -1},
    {kGgmlQ2_K, "Q2_K", 256, 84, -1},
    {kGgmlQ3_K, "Q3_K", 256, 110, -1},
    {kGgmlQ4_K, "Q4_K", 256, 144, HEARTH_DTYPE_Q4_K},
    {kGgmlQ5_K, "Q5_K", 256, 176, -1},
    {kGgmlQ6_K, "Q6_K", 256, 210, HEARTH_DTYPE_Q6_K},
    {kGgmlQ8_K, "Q8_K", 256, 292, -1},
    {kGgmlI8, "I8", 1, 1, -1},
    {kGgmlI16, "I16", 1, 2, -1},
    {kGgmlI32, "I32", 1, 4, HEARTH_DTYPE_I32},
    {kGgmlI64, "I64", 1, 8, -1},
    {kGgmlF64, "F64", 1, 8, -1},
    {kGgmlBF16, "BF16", 1, 2, HEARTH_DTYPE_BF16},
};

const TypeTraits* FindType(uint32_t type) {
  for (const TypeTraits& t : kTypes) {
    if (t.id == type) return &t;
  }
  return nullptr;
}

}  // namespace

bool GgmlTypeGeometry(uint32_t type, int64_t* block_elems, int64_t* block_bytes) {
  const TypeTraits* t = FindType(type);
  if (t == nullptr) return false;
  if (block_elems != nullptr) *block_elems = t->block_elems;
  if (block_bytes != nullptr) *block_bytes = t->block_bytes;
  return true;
}

std::string GgmlTypeName(uint32_t type) {
  const TypeTraits* t = FindType(type);
  if (t == nullptr) return absl::StrCat("type ", type);
  return t->name;
}

int32_t GgmlTypeToHearthDtype(uint32_t type) {
  const TypeTraits* t = FindType(type);
  return t == nullptr ? -1 : t->hearth_dtype;
}

}  // namespace hearth::gguf
