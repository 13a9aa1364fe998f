// gguf.cc — parses and validates a GGUF v2/v3 image held in memory.
//
// The image is hostile until proven otherwise: every count, length, type,
// dimension and offset is checked against the bytes that remain before it
// is used to size an allocation or move a pointer, and every rejection names
// the field (and the key or tensor) and the numbers that were wrong. Reads go
// through the bounds-checked Cursor, so the parser is safe to fuzz. Opening
// files and the typed getters live in gguf_file.cc.
#include "sdk/src/format/gguf.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sdk/src/common/checked_alloc.h"
#include "sdk/src/common/status.h"
#include "sdk/src/format/gguf_cursor.h"
#include "sdk/src/format/gguf_internal.h"

namespace hearth::gguf {
namespace {

// ggml itself caps tensor names at 64 bytes; 64 KiB leaves room for other
// writers while still refusing a name that is really a misread length.
constexpr uint64_t kMaxNameBytes = 64 * 1024;
constexpr uint32_t kMaxDims = 4;
// The smallest possible encodings, used to bound the header counts by the
// bytes that follow before anything is allocated: a pair is a key length, a
// 1-byte key, a value type and a 1-byte value; a tensor info is a name length,
// a 1-byte name, n_dims, one dimension, the type and the offset.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;
constexpr uint64_t kStringLengthBytes = 8;
constexpr uint32_t kValueTypeCount = 13;
constexpr uint64_t kMaxInt64 = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

bool CheckedMul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

uint32_t ByteSwap32(uint32_t v) {
  return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}

// Widens a scalar read as raw little-endian bits into the Value fields.
void SetScalar(ValueType type, uint64_t raw, Value* v) {
  switch (type) {
    case ValueType::kUint8:
    case ValueType::kUint16:
    case ValueType::kUint32:
    case ValueType::kUint64:
    case ValueType::kBool:
      v->u = raw;
      if (raw <= kMaxInt64) v->i = static_cast<int64_t>(raw);
      break;
    case ValueType::kInt8:
      v->i = static_cast<int8_t>(static_cast<uint8_t>(raw));
      break;
    case ValueType::kInt16:
      v->i = static_cast<int16_t>(static_cast<uint16_t>(raw));
      break;
    case ValueType::kInt32:
      v->i = static_cast<int32_t>(static_cast<uint32_t>(raw));
      break;
    case ValueType::kInt64:
      v->i = static_cast<int64_t>(raw);
      break;
    case ValueType::kFloat32: {
      uint32_t bits = static_cast<uint32_t>(raw);
      float f;
      std::memcpy(&f, &bits, sizeof(f));
      v->f = f;
      break;
    }
    case ValueType::kFloat64:
      std::memcpy(&v->f, &raw, sizeof(v->f));
      break;
    case ValueType::kString:
    case ValueType::kArray:
      break;
  }
}

}  // namespace

class Parser {
 public:
  explicit Parser(File* f) : f_(f), cur_(f->base_, f->size_) {}

  absl::Status Run() {
    uint64_t n_tensors = 0, n_kv = 0;
    HEARTH_RETURN_IF_ERROR(ReadHeader(&n_tensors, &n_kv));
    // Both counts are bounded by the bytes left (ReadHeader); each entry
    // also has an index slot and, usually, a heap-allocated name.
    HEARTH_RETURN_IF_ERROR(CheckAllocatable(n_kv * (sizeof(f_->kv_[0]) + 64),
                                            absl::StrCat("the table of ", n_kv, " metadata keys")));
    f_->kv_.reserve(n_kv);
    for (uint64_t i = 0; i < n_kv; ++i) HEARTH_RETURN_IF_ERROR(ReadKv(i));
    HEARTH_RETURN_IF_ERROR(
        CheckAllocatable(n_tensors * (sizeof(f_->tensors_[0]) + 64),
                         absl::StrCat("the table of ", n_tensors, " tensor infos")));
    f_->tensors_.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) HEARTH_RETURN_IF_ERROR(ReadTensorInfo(i));
    return PlaceTensors();
  }

 private:
  template <typename... A>
  static absl::Status Invalid(const A&... a) {
    return absl::InvalidArgumentError(absl::StrCat(a...));
  }
  template <typename... A>
  absl::Status Truncated(uint64_t need, const A&... what) const {
    return Invalid("truncated: ", what..., " needs ", need, " bytes at offset ", cur_.pos(),
                   " but only ", cur_.left(), " remain");
  }

  absl::Status ReadHeader(uint64_t* n_tensors, uint64_t* n_kv) {
    const uint8_t* magic = nullptr;
    if (!cur_.Take(4, &magic)) return Truncated(4, "magic");
    if (std::memcmp(magic, "GGUF", 4) != 0) {
      return Invalid("bad magic ", HexBytes(magic, 4), " (\"",
                     absl::CHexEscape(absl::string_view(reinterpret_cast<const char*>(magic), 4)),
                     "\"); a GGUF file starts with 47 47 55 46 (\"GGUF\")");
    }
    uint32_t version = 0;
    if (!cur_.ReadU32(&version)) return Truncated(4, "version");
    const uint32_t swapped = ByteSwap32(version);
    if (version == 0) return Invalid("version 0 is not a GGUF version (2 and 3 are supported)");
    if (version == 1) {
      return absl::UnimplementedError(
          "GGUF version 1 is not supported (2 and 3 are); convert the model again");
    }
    if (version > 3 && swapped >= 1 && swapped <= 3) {
      return absl::UnimplementedError(
          absl::StrCat("version field reads ", version, " (0x", absl::Hex(version, absl::kZeroPad8),
                       "), which is version ", swapped,
                       " byte-swapped: big-endian GGUF files are not supported"));
    }
    if (version > 3) {
      return absl::UnimplementedError(absl::StrCat(
          "GGUF version ", version, " is newer than this reader (2 and 3 are supported)"));
    }
    f_->version_ = version;

    if (!cur_.ReadU64(n_tensors)) return Truncated(8, "tensor_count");
    if (!cur_.ReadU64(n_kv)) return Truncated(8, "kv_count");
    // Bound both counts by the bytes that follow, so a corrupt count fails
    // here instead of driving a huge reserve() or a long loop.
    const uint64_t left = cur_.left();
    if (*n_kv > left / kMinKvBytes) {
      return Invalid("kv_count ", *n_kv, " cannot fit: each key-value pair needs at least ",
                     kMinKvBytes, " bytes and only ", left, " bytes follow the header");
    }
    const uint64_t left_for_tensors = left - *n_kv * kMinKvBytes;
    if (*n_tensors > left_for_tensors / kMinTensorInfoBytes) {
      return Invalid("tensor_count ", *n_tensors, " cannot fit: each tensor info needs at least ",
                     kMinTensorInfoBytes, " bytes and only ", left_for_tensors,
                     " bytes follow the header and the minimum for kv_count ", *n_kv);
    }
    return absl::OkStatus();
  }

  // Reads a GGUF string (uint64 length + bytes) that stays in the image.
  // `describe` names the string for messages; it runs only on failure.
  template <typename Describe>
  absl::Status ReadString(uint64_t max_len, const Describe& describe, std::string_view* out) {
    uint64_t len = 0;
    if (!cur_.ReadU64(&len)) return Truncated(kStringLengthBytes, describe(), " length");
    if (len > cur_.left()) {
      return Invalid(describe(), ": string length ", len, " is past the end of the file (offset ",
                     cur_.pos(), ", ", cur_.left(), " bytes left)");
    }
    if (len > max_len) {
      return Invalid(describe(), ": length ", len, " exceeds the limit of ", max_len, " bytes");
    }
    const uint8_t* p = nullptr;
    cur_.Take(len, &p);  // cannot fail: checked above
    *out = std::string_view(reinterpret_cast<const char*>(p), len);
    return absl::OkStatus();
  }

  absl::Status ReadKv(uint64_t index) {
    std::string_view key;
    HEARTH_RETURN_IF_ERROR(ReadString(
        kMaxNameBytes, [&] { return absl::StrCat("key of metadata pair #", index); }, &key));
    if (key.empty()) return Invalid("metadata pair #", index, ": key is empty");
    if (key.find('\0') != std::string_view::npos) {
      return Invalid("metadata key '", Printable(key), "' (pair #", index, ") contains a NUL byte");
    }
    if (auto it = f_->kv_index_.find(key); it != f_->kv_index_.end()) {
      return Invalid("metadata key '", Printable(key), "' appears twice (pairs #", it->second,
                     " and #", index, ")");
    }
    uint32_t type = 0;
    if (!cur_.ReadU32(&type))
      return Truncated(4, "value type of metadata key '", Printable(key), "'");
    if (type >= kValueTypeCount) {
      return Invalid("metadata key '", Printable(key), "': value type ", type,
                     " is out of range (0..", kValueTypeCount - 1, ")");
    }
    Value v;
    v.type = static_cast<ValueType>(type);
    HEARTH_RETURN_IF_ERROR(ReadValue(key, &v));
    if (key == "general.alignment") HEARTH_RETURN_IF_ERROR(ApplyAlignment(v));
    f_->kv_index_.emplace(std::string(key), f_->kv_.size());
    f_->kv_.emplace_back(std::string(key), std::move(v));
    return absl::OkStatus();
  }

  absl::Status ApplyAlignment(const Value& v) {
    if (v.type != ValueType::kUint32) {
      return Invalid("metadata key 'general.alignment' has type ", ValueTypeName(v.type),
                     "; it must be u32");
    }
    if (v.u == 0 || (v.u & (v.u - 1)) != 0) {
      return Invalid("metadata key 'general.alignment' is ", v.u,
                     "; it must be a nonzero power of two");
    }
    f_->alignment_ = v.u;
    return absl::OkStatus();
  }

  absl::Status ReadValue(std::string_view key, Value* v) {
    if (v->type == ValueType::kString) {
      return ReadString(
          std::numeric_limits<uint64_t>::max(),
          [&] { return absl::StrCat("string value of metadata key '", Printable(key), "'"); },
          &v->str);
    }
    if (v->type == ValueType::kArray) return ReadArray(key, v);
    const unsigned n = ScalarBytes(v->type);
    uint64_t raw = 0;
    if (!cur_.ReadLE(n, &raw)) {
      return Truncated(n, ValueTypeName(v->type), " value of metadata key '", Printable(key), "'");
    }
    if (v->type == ValueType::kBool && raw > 1) {
      return Invalid("metadata key '", Printable(key), "': bool value is ", raw,
                     "; it must be 0 or 1");
    }
    SetScalar(v->type, raw, v);
    return absl::OkStatus();
  }

  absl::Status ReadArray(std::string_view key, Value* v) {
    uint32_t et = 0;
    if (!cur_.ReadU32(&et)) {
      return Truncated(4, "array element type of metadata key '", Printable(key), "'");
    }
    if (et >= kValueTypeCount) {
      return Invalid("metadata key '", Printable(key), "': array element type ", et,
                     " is out of range (0..", kValueTypeCount - 1, ")");
    }
    const auto elem = static_cast<ValueType>(et);
    if (elem == ValueType::kArray) {
      return absl::UnimplementedError(
          absl::StrCat("metadata key '", Printable(key), "': arrays of arrays are not supported"));
    }
    uint64_t count = 0;
    if (!cur_.ReadU64(&count)) {
      return Truncated(8, "array count of metadata key '", Printable(key), "'");
    }
    v->array_type = elem;
    v->array_count = count;
    if (elem == ValueType::kString) {
      if (count > cur_.left() / kStringLengthBytes) {
        return Invalid("metadata key '", Printable(key), "': array of ", count,
                       " strings cannot fit in the ", cur_.left(), " bytes left (each needs ",
                       kStringLengthBytes, " at least)");
      }
      HEARTH_RETURN_IF_ERROR(CheckAllocatable(
          count * sizeof(std::string_view),
          absl::StrCat("metadata key '", Printable(key), "': an array of ", count, " strings")));
      v->array_strings.reserve(count);
      for (uint64_t j = 0; j < count; ++j) {
        std::string_view s;
        HEARTH_RETURN_IF_ERROR(ReadString(
            std::numeric_limits<uint64_t>::max(),
            [&] { return absl::StrCat("metadata key '", Printable(key), "' element #", j); }, &s));
        v->array_strings.push_back(s);
      }
      return absl::OkStatus();
    }
    const unsigned n = ScalarBytes(elem);
    uint64_t bytes = 0;
    if (!CheckedMul(count, n, &bytes)) {
      return Invalid("metadata key '", Printable(key), "': array of ", count, " ",
                     ValueTypeName(elem), " elements x ", n, " bytes overflows 64 bits");
    }
    if (bytes > cur_.left()) {
      return Invalid("metadata key '", Printable(key), "': array of ", count, " ",
                     ValueTypeName(elem), " elements (", bytes,
                     " bytes) is past the end of the file (offset ", cur_.pos(), ", ", cur_.left(),
                     " bytes left)");
    }
    cur_.Take(bytes, &v->array_data);  // cannot fail: checked above
    if (elem == ValueType::kBool) {
      for (uint64_t j = 0; j < count; ++j) {
        if (v->array_data[j] > 1) {
          return Invalid("metadata key '", Printable(key), "': bool element #", j, " is ",
                         v->array_data[j], "; it must be 0 or 1");
        }
      }
    }
    return absl::OkStatus();
  }

  absl::Status ReadTensorInfo(uint64_t index) {
    std::string_view name;
    HEARTH_RETURN_IF_ERROR(ReadString(
        kMaxNameBytes, [&] { return absl::StrCat("name of tensor #", index); }, &name));
    if (name.empty()) return Invalid("tensor #", index, ": name is empty");
    if (name.find('\0') != std::string_view::npos) {
      return Invalid("tensor #", index, " name '", Printable(name), "' contains a NUL byte");
    }
    if (auto it = f_->tensor_index_.find(name); it != f_->tensor_index_.end()) {
      return Invalid("tensor '", Printable(name), "' appears twice (tensors #", it->second,
                     " and #", index, ")");
    }
    const std::string what = absl::StrCat("tensor '", Printable(name), "'");
    TensorInfo t;
    t.name = std::string(name);
    if (!cur_.ReadU32(&t.n_dims)) return Truncated(4, what, " n_dims");
    if (t.n_dims == 0 || t.n_dims > kMaxDims) {
      return Invalid(what, ": n_dims is ", t.n_dims, "; it must be 1..", kMaxDims);
    }
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      uint64_t ne = 0;
      if (!cur_.ReadU64(&ne)) return Truncated(8, what, " ne[", d, "]");
      if (ne == 0) return Invalid(what, ": ne[", d, "] is 0; every dimension must be at least 1");
      if (ne > kMaxInt64 || !CheckedMul(n_elements, ne, &n_elements) || n_elements > kMaxInt64) {
        return Invalid(what, ": ne[", d, "] = ", ne,
                       " makes the element count overflow a signed 64-bit integer");
      }
      t.ne[d] = static_cast<int64_t>(ne);
    }
    if (!cur_.ReadU32(&t.type)) return Truncated(4, what, " type");
    int64_t block_elems = 0, block_bytes = 0;
    if (t.type >= kGgmlTypeCount) {
      return Invalid(what, ": ggml type ", t.type, " is out of range (ids are below ",
                     static_cast<uint32_t>(kGgmlTypeCount), ")");
    }
    if (!GgmlTypeGeometry(t.type, &block_elems, &block_bytes)) {
      return absl::UnimplementedError(absl::StrCat(
          what, ": ggml type ", t.type, " is unknown to this reader (removed or unsupported)"));
    }
    if (t.ne[0] % block_elems != 0) {
      return Invalid(what, ": ne[0] = ", t.ne[0], " is not a multiple of the ",
                     GgmlTypeName(t.type), " block size (", block_elems, " elements)");
    }
    uint64_t size = static_cast<uint64_t>(t.ne[0] / block_elems);
    bool fits = CheckedMul(size, static_cast<uint64_t>(block_bytes), &size);
    for (int d = 1; d < 4 && fits; ++d) fits = CheckedMul(size, t.ne[d], &size);
    if (!fits) {
      return Invalid(what, ": byte size of ", n_elements, " ", GgmlTypeName(t.type),
                     " elements overflows 64 bits");
    }
    t.size = size;
    if (!cur_.ReadU64(&t.offset)) return Truncated(8, what, " offset");
    if (t.offset % f_->alignment_ != 0) {
      return Invalid(what, ": offset ", t.offset, " is not a multiple of the alignment (",
                     f_->alignment_, ")");
    }
    f_->tensor_index_.emplace(t.name, f_->tensors_.size());
    f_->tensors_.push_back(std::move(t));
    return absl::OkStatus();
  }

  // Turns relative offsets into absolute ones once the data section is
  // known, and checks each tensor lies inside the file and apart from others.
  absl::Status PlaceTensors() {
    const uint64_t end_of_infos = cur_.pos();
    const uint64_t a = f_->alignment_;
    const uint64_t pad = (a - end_of_infos % a) % a;
    const uint64_t file_size = f_->size_;
    if (f_->tensors_.empty()) {
      // A vocab-only file may end right after its metadata, without padding.
      f_->data_offset_ = std::min(end_of_infos + pad, file_size);
      return absl::OkStatus();
    }
    if (pad > file_size - end_of_infos) {
      return Invalid("the tensor data section would start at offset ", end_of_infos + pad,
                     " (end of tensor infos ", end_of_infos, " padded to alignment ", a,
                     "), past the end of the file (", file_size, " bytes)");
    }
    const uint64_t data_offset = end_of_infos + pad;
    const uint64_t avail = file_size - data_offset;
    f_->data_offset_ = data_offset;
    for (TensorInfo& t : f_->tensors_) {
      if (t.offset > avail || t.size > avail - t.offset) {
        return Invalid("tensor '", Printable(t.name), "': offset ", t.offset, " + size ", t.size,
                       " is past the end of the tensor data (", avail, " bytes from file offset ",
                       data_offset, "; the file is ", file_size, " bytes)");
      }
      t.offset += data_offset;
      t.data = f_->base_ + t.offset;
    }
    std::vector<size_t> order(f_->tensors_.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
      return f_->tensors_[x].offset < f_->tensors_[y].offset;
    });
    // Track the tensor reaching furthest so far: a large tensor can cover
    // several that start after it.
    const TensorInfo* reach = &f_->tensors_[order[0]];
    for (size_t k = 1; k < order.size(); ++k) {
      const TensorInfo& t = f_->tensors_[order[k]];
      if (t.offset < reach->offset + reach->size) {
        return Invalid("tensor '", Printable(t.name), "' (file bytes [", t.offset, ", ",
                       t.offset + t.size, ")) overlaps tensor '", Printable(reach->name),
                       "' (file bytes [", reach->offset, ", ", reach->offset + reach->size, "))");
      }
      if (t.offset + t.size > reach->offset + reach->size) reach = &t;
    }
    return absl::OkStatus();
  }

  File* f_;
  Cursor cur_;
};

absl::Status File::Parse() {
  absl::Status s = Parser(this).Run();
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat(name_, ": ", s.message()));
  return s;
}

}  // namespace hearth::gguf
