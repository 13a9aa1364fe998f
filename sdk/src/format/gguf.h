// gguf.h — a GGUF v2/v3 reader that validates before it trusts.
//
// Every length, count, type, dimension and offset read from the file is
// checked against the bytes that remain before it is used; an error names the
// field (and the tensor or key) that was wrong. Tensor data is memory-mapped
// and never copied.
#ifndef HEARTH_SDK_SRC_FORMAT_GGUF_H_
#define HEARTH_SDK_SRC_FORMAT_GGUF_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sdk/src/common/tables.h"
#include "sdk/src/format/mapped_file.h"

namespace hearth::gguf {

// GGUF metadata value types (the file's own numbering).
enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// ggml tensor type ids as stored in GGUF files.
enum GgmlType : uint32_t {
  kGgmlF32 = 0,
  kGgmlF16 = 1,
  kGgmlQ4_0 = 2,
  kGgmlQ4_1 = 3,
  kGgmlQ5_0 = 6,
  kGgmlQ5_1 = 7,
  kGgmlQ8_0 = 8,
  kGgmlQ8_1 = 9,
  kGgmlQ2_K = 10,
  kGgmlQ3_K = 11,
  kGgmlQ4_K = 12,
  kGgmlQ5_K = 13,
  kGgmlQ6_K = 14,
  kGgmlQ8_K = 15,
  kGgmlI8 = 24,
  kGgmlI16 = 25,
  kGgmlI32 = 26,
  kGgmlI64 = 27,
  kGgmlF64 = 28,
  kGgmlBF16 = 30,
  kGgmlTypeCount = 64,  // ids >= this are rejected as out of range
};

// Block geometry of a ggml type: elements per block and bytes per block.
// Returns false for ids that are unknown or unused (gaps in the numbering).
bool GgmlTypeGeometry(uint32_t type, int64_t* block_elems, int64_t* block_bytes);
// "Q4_K", "F32", … or "type 17" for ids without a name.
std::string GgmlTypeName(uint32_t type);
// The hearth_dtype for a ggml type, or -1 if hearth cannot compute with it.
int32_t GgmlTypeToHearthDtype(uint32_t type);

// One metadata value. Scalars are stored widened; arrays keep a pointer into
// the mapped file (element type `array_type`, `array_count` elements).
struct Value {
  ValueType type = ValueType::kUint8;
  uint64_t u = 0;   // unsigned integers and bool
  int64_t i = 0;    // signed integers (also set for unsigned ones that fit)
  double f = 0;     // floats
  std::string_view str;  // kString: points into the mapping
  ValueType array_type = ValueType::kUint8;
  uint64_t array_count = 0;
  const uint8_t* array_data = nullptr;  // kArray of non-strings: raw LE elements
  std::vector<std::string_view> array_strings;  // kArray of strings
};

struct TensorInfo {
  std::string name;
  uint32_t type = 0;       // ggml type id (validated: known geometry)
  uint32_t n_dims = 0;     // 1..4
  int64_t ne[4] = {1, 1, 1, 1};
  uint64_t offset = 0;     // absolute file offset of the data
  uint64_t size = 0;       // bytes
  const uint8_t* data = nullptr;  // into the mapping
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class File {
 public:
  // Maps and validates `path`. Errors name the path and the bad field.
  static absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path);
  // Validates an in-memory image (for fuzzing and tests). `bytes` must
  // outlive the File; `name` is used in error messages.
  static absl::StatusOr<std::unique_ptr<File>> FromMemory(const uint8_t* bytes, size_t size,
                                                          std::string name);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t file_size() const { return size_; }
  const std::string& name() const { return name_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* Find(std::string_view key) const;

  // Typed getters. NOT_FOUND if absent; INVALID_ARGUMENT naming the key if
  // the stored type does not fit (any integer type is accepted for integers
  // when the value is in range; f32 and f64 for floats).
  absl::StatusOr<std::string> GetString(std::string_view key) const;
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  absl::StatusOr<double> GetFloat(std::string_view key) const;
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  // Arrays: element type checked, count returned.
  absl::StatusOr<std::vector<std::string_view>> GetStringArray(std::string_view key) const;
  absl::StatusOr<std::vector<float>> GetFloatArray(std::string_view key) const;  // f32 only
  absl::StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;  // any int type

  // Tensors in file order.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* FindTensor(std::string_view name) const;

  // Base of the mapping (for wrapping as one host buffer) and its size.
  const uint8_t* data() const { return base_; }
  // Start and size of the tensor-data section.
  uint64_t data_offset() const { return data_offset_; }
  // [offset, offset + size) of the file is held elsewhere now (a weight the
  // backend repacked): its mapped pages may leave memory (MappedFile::
  // DropPages); reading them again still works. Nothing for an in-memory
  // image.
  void DropPages(uint64_t offset, uint64_t size) const {
    if (offset <= size_ && size <= size_ - offset) mapping_.DropPages(base_ + offset, size);
  }

 private:
  friend class Parser;  // gguf.cc: fills the fields below while validating
  File() = default;
  absl::Status Parse();

  std::string name_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  format::MappedFile mapping_;  // empty unless Open mapped the file
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  StringMap<size_t> kv_index_;
  std::vector<TensorInfo> tensors_;
  StringMap<size_t> tensor_index_;
};

}  // namespace hearth::gguf

#endif  // HEARTH_SDK_SRC_FORMAT_GGUF_H_
