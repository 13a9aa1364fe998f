// safetensors.h — a safetensors reader that validates before it trusts.
//
// Layout: an 8-byte little-endian header length N, N bytes of JSON
//   {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [..],
//    "data_offsets": [begin, end]}, ...}
// and then the data; offsets are relative to the first byte after the JSON.
// The JSON is checked against that schema while it is parsed (a streaming
// parser: memory grows with the number of tensors, never with nesting or
// junk), and every shape, size and offset is checked against the file before
// a TensorInfo points into it. Errors start with the file name and name the
// tensor or field. Data is memory-mapped and never copied.
//
// Alignment: the format promises none. A tensor's data pointer may be at any
// byte (an F32 tensor at an odd address is valid), so consumers must read it
// with memcpy or copy it, never through a cast `const float*`.
#ifndef HEARTH_SDK_SRC_FORMAT_SAFETENSORS_H_
#define HEARTH_SDK_SRC_FORMAT_SAFETENSORS_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sdk/src/format/mapped_file.h"

namespace hearth::safetensors {

// Limits. The header cap matches the reference implementation's; 8 dims is
// more than any model tensor has; 2^53 per dimension keeps shapes exact in
// the JSON doubles some writers go through.
inline constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;
inline constexpr size_t kMaxDims = 8;
inline constexpr uint64_t kMaxDim = uint64_t{1} << 53;

// hearth_dtype value for tensors hearth cannot compute with (I64, U8, F8_*, …).
// F32, F16, BF16 and I32 map to their HEARTH_DTYPE_*.
inline constexpr uint32_t kNoHearthDtype = UINT32_MAX;

struct TensorInfo {
  std::string name;
  std::string dtype_name;                  // as in the file: "F32", "BF16", "I64", …
  uint32_t hearth_dtype = kNoHearthDtype;  // HEARTH_DTYPE_* or kNoHearthDtype
  int64_t elem_bytes = 0;
  std::vector<int64_t> shape;     // outermost first (row-major), as in the file
  uint64_t offset = 0;            // absolute file offset of the data
  uint64_t size = 0;              // bytes
  const uint8_t* data = nullptr;  // into the mapping; any alignment; null if size is 0
  int64_t n_elements() const;
};

class File {
 public:
  // Maps and validates `path`. Errors name the path and the bad field.
  static absl::StatusOr<std::unique_ptr<File>> Open(const std::string& path);
  // Validates an in-memory image (tests, fuzzing). `bytes` must outlive the
  // File; `name` is used in error messages.
  static absl::StatusOr<std::unique_ptr<File>> FromMemory(const uint8_t* bytes, size_t size,
                                                          std::string name);
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& name() const { return name_; }
  // Sorted by name (byte order), so iteration is deterministic.
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* Find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  uint64_t file_size() const { return size_; }
  // First byte after the JSON header: where data_offsets count from.
  uint64_t data_offset() const { return data_offset_; }
  const uint8_t* data() const { return base_; }

 private:
  File() = default;
  absl::Status Parse();

  std::string name_;
  const uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  uint64_t data_offset_ = 0;
  format::MappedFile mapping_;  // empty unless Open mapped the file
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Bytes per element of a safetensors dtype name and its hearth_dtype
// (kNoHearthDtype when hearth cannot compute with it). False for names the
// format does not define, and for sub-byte types (F4, F6_*), which have no
// whole number of bytes per element.
bool DtypeInfo(std::string_view dtype, int64_t* elem_bytes, uint32_t* hearth_dtype);

}  // namespace hearth::safetensors

#endif  // HEARTH_SDK_SRC_FORMAT_SAFETENSORS_H_
