// mapped_file.h — a read-only, private memory mapping of a whole regular
// file, shared by the GGUF, safetensors and JSONL readers, and ReadSmallFile
// for config files. Both open through RegularFile (regular_file.h): a FIFO or
// a device is refused without blocking.
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
#include "sdk/src/format/regular_file.h"

namespace hearth::format {

class MappedFile {
 public:
  // Maps `path`. An empty file, a directory or anything that is not a
  // regular file (a FIFO, /dev/zero) is INVALID_ARGUMENT, decided without
  // blocking (mmap cannot map 0 bytes).
  static absl::StatusOr<MappedFile> Map(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return static_cast<const uint8_t*>(addr_); }
  size_t size() const { return size_; }
  // Lets the pages wholly inside [p, p + n) leave this process (a copy of
  // those bytes lives elsewhere now, e.g. a repacked weight); a later read
  // maps them in again from the file, unchanged. Nothing for a range that is
  // not inside the mapping.
  void DropPages(const uint8_t* p, size_t n) const;

 private:
  MappedFile(void* addr, size_t size) : addr_(addr), size_(size) {}
  void Reset();

  void* addr_ = nullptr;
  size_t size_ = 0;
};

// RegularFile::Open as a Status: the errno's code (NOT_FOUND, …), or
// INVALID_ARGUMENT for a path that is not a regular file; the message names
// the path.
absl::StatusOr<RegularFile> OpenRegularFile(const std::string& path);

// The whole of the regular file `path`, at most `max_bytes` (more is
// INVALID_ARGUMENT); the errors of MappedFile::Map otherwise.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path, uint64_t max_bytes);

}  // namespace hearth::format

#endif  // HEARTH_SDK_SRC_FORMAT_MAPPED_FILE_H_
