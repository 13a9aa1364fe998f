// gguf_file.cc — the life of a GGUF File: mapping a path read-only (or
// wrapping a caller's buffer), unmapping, and the typed metadata getters.
//
// The mapping (mapped_file.h) is private and read-only and holds no fd, so
// tensor data is never copied. Getters say which key was missing or which
// type it had instead of the one wanted.
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/format/gguf_cursor.h"
#include "sdk/src/format/gguf_internal.h"

namespace hearth::gguf {
namespace {

bool IsInteger(ValueType t) {
  switch (t) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kUint16:
    case ValueType::kInt16:
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kUint64:
    case ValueType::kInt64:
      return true;
    default:
      return false;
  }
}

bool IsSigned(ValueType t) {
  return t == ValueType::kInt8 || t == ValueType::kInt16 || t == ValueType::kInt32 ||
         t == ValueType::kInt64;
}

std::string TypeDescription(const Value& v) {
  if (v.type != ValueType::kArray) return ValueTypeName(v.type);
  return absl::StrCat("array of ", ValueTypeName(v.array_type));
}

}  // namespace

absl::StatusOr<std::unique_ptr<File>> File::Open(const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(format::MappedFile mapping, format::MappedFile::Map(path));
  std::unique_ptr<File> f(new File());
  f->name_ = path;
  f->base_ = mapping.data();
  f->size_ = mapping.size();
  f->mapping_ = std::move(mapping);
  HEARTH_RETURN_IF_ERROR(f->Parse());  // ~File unmaps on failure
  return f;
}

absl::StatusOr<std::unique_ptr<File>> File::FromMemory(const uint8_t* bytes, size_t size,
                                                       std::string name) {
  if (bytes == nullptr && size != 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": null buffer of ", size, " bytes"));
  }
  std::unique_ptr<File> f(new File());
  f->name_ = std::move(name);
  f->base_ = bytes;
  f->size_ = size;
  HEARTH_RETURN_IF_ERROR(f->Parse());
  return f;
}

File::~File() = default;

const Value* File::Find(std::string_view key) const {
  auto it = kv_index_.find(Absl(key));
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const TensorInfo* File::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(Absl(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

// Finds `key` or says, naming the file, that it is missing.
absl::StatusOr<const Value*> Lookup(const File& f, std::string_view key) {
  const Value* v = f.Find(key);
  if (v == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(f.name(), ": metadata key '", Printable(key), "' not found"));
  }
  return v;
}

absl::Status WrongType(const File& f, std::string_view key, const Value& v, std::string_view want) {
  return absl::InvalidArgumentError(absl::StrCat(f.name(), ": metadata key '", Printable(key),
                                                 "' is ", TypeDescription(v), ", expected ",
                                                 Absl(want)));
}

}  // namespace

absl::StatusOr<std::string> File::GetString(std::string_view key) const {
  HEARTH_ASSIGN_OR_RETURN(const Value* v, Lookup(*this, key));
  if (v->type != ValueType::kString) return WrongType(*this, key, *v, "a string");
  return std::string(v->str);
}

absl::StatusOr<int64_t> File::GetInt(std::string_view key) const {
  HEARTH_ASSIGN_OR_RETURN(const Value* v, Lookup(*this, key));
  if (!IsInteger(v->type)) return WrongType(*this, key, *v, "an integer");
  if (!IsSigned(v->type) && v->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return absl::InvalidArgumentError(absl::StrCat(name_, ": metadata key '", Printable(key),
                                                   "' = ", v->u, " does not fit in int64"));
  }
  return v->i;
}

absl::StatusOr<double> File::GetFloat(std::string_view key) const {
  HEARTH_ASSIGN_OR_RETURN(const Value* v, Lookup(*this, key));
  if (v->type != ValueType::kFloat32 && v->type != ValueType::kFloat64) {
    return WrongType(*this, key, *v, "f32 or f64");
  }
  return v->f;
}

absl::StatusOr<bool> File::GetBool(std::string_view key) const {
  HEARTH_ASSIGN_OR_RETURN(const Value* v, Lookup(*this, key));
  if (v->type != ValueType::kBool) return WrongType(*this, key, *v, "a bool");
  return v->u != 0;
}

absl::StatusOr<std::vector<std::string_view>> File::GetStringArray(std::string_view key) const {
  HEARTH_ASSIGN_OR_RETURN(const Value* v, Lookup(*this, key));
  if (v->type != ValueType::kArray || v->array_type != ValueType::kString) {
    return WrongType(*this, key, *v, "an array of strings");
  }
  return v->array_strings;
}

absl::StatusOr<std::vector<float>> File::GetFloatArray(std::string_view key) const {
  HEARTH_ASSIGN_OR_RETURN(const Value* v, Lookup(*this, key));
  if (v->type != ValueType::kArray || v->array_type != ValueType::kFloat32) {
    return WrongType(*this, key, *v, "an array of f32");
  }
  std::vector<float> out(v->array_count);
  for (uint64_t j = 0; j < v->array_count; ++j) {
    const uint32_t bits = static_cast<uint32_t>(LoadLE(v->array_data + 4 * j, 4));
    std::memcpy(&out[j], &bits, sizeof(float));
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> File::GetIntArray(std::string_view key) const {
  HEARTH_ASSIGN_OR_RETURN(const Value* v, Lookup(*this, key));
  if (v->type != ValueType::kArray || !IsInteger(v->array_type)) {
    return WrongType(*this, key, *v, "an array of integers");
  }
  const unsigned n = ScalarBytes(v->array_type);
  const bool is_signed = IsSigned(v->array_type);
  std::vector<int64_t> out(v->array_count);
  for (uint64_t j = 0; j < v->array_count; ++j) {
    const uint64_t raw = LoadLE(v->array_data + n * j, n);
    if (is_signed) {
      // Sign-extend from n bytes.
      const unsigned shift = 64 - 8 * n;
      out[j] = static_cast<int64_t>(raw << shift) >> shift;
    } else if (raw > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(absl::StrCat(name_, ": metadata key '", Printable(key),
                                                     "' element #", j, " = ", raw,
                                                     " does not fit in int64"));
    } else {
      out[j] = static_cast<int64_t>(raw);
    }
  }
  return out;
}

}  // namespace hearth::gguf
