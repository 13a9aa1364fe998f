// mapped_file.h — a read-only, private memory mapping of a whole regular
// file, shared by the GGUF and safetensors readers.
//
// The descriptor is closed right after mmap (the mapping keeps the file
// alive), so an open model holds no fd. Errors name the path and map errno to
// the matching absl code (NOT_FOUND, PERMISSION_DENIED, …).
#ifndef HEARTH_SDK_SRC_FORMAT_MAPPED_FILE_H_
#define HEARTH_SDK_SRC_FORMAT_MAPPED_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace hearth::format {

class MappedFile {
 public:
  // Maps `path`. An empty file, a directory or anything that is not a
  // regular file is INVALID_ARGUMENT (mmap cannot map 0 bytes).
  static absl::StatusOr<MappedFile> Map(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return static_cast<const uint8_t*>(addr_); }
  size_t size() const { return size_; }

 private:
  MappedFile(void* addr, size_t size) : addr_(addr), size_(size) {}
  void Reset();

  void* addr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace hearth::format

#endif  // HEARTH_SDK_SRC_FORMAT_MAPPED_FILE_H_
