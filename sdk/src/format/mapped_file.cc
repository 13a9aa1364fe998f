// mapped_file.cc — mapping and unmapping a whole file read-only (see
// mapped_file.h).
#include "sdk/src/format/mapped_file.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"

namespace hearth::format {

absl::StatusOr<RegularFile> OpenRegularFile(const std::string& path) {
  RegularFile file;
  std::string error;
  int err_no = 0;
  if (!RegularFile::Open(path, &file, &error, &err_no)) {
    return err_no == 0 ? absl::InvalidArgumentError(error)
                       : absl::Status(absl::ErrnoToStatusCode(err_no), error);
  }
  return file;
}

absl::StatusOr<MappedFile> MappedFile::Map(const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(RegularFile file, OpenRegularFile(path));
  if (file.size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": file is empty (0 bytes)"));
  }
  const uint64_t size = file.size();
  if (size > std::numeric_limits<size_t>::max()) {
    return absl::ResourceExhaustedError(
        absl::StrCat(path, ": file of ", size, " bytes does not fit in the address space"));
  }
  void* map = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_PRIVATE, file.fd(), 0);
  const int map_err = errno;
  // `file` closes the descriptor on return; the mapping keeps the file alive.
  if (map == MAP_FAILED) {
    return absl::ErrnoToStatus(map_err, absl::StrCat(path, ": cannot mmap"));
  }
  return MappedFile(map, static_cast<size_t>(size));
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, uint64_t max_bytes) {
  HEARTH_ASSIGN_OR_RETURN(RegularFile file, OpenRegularFile(path));
  std::string text, error;
  int err_no = 0;
  if (!file.ReadAll(max_bytes, &text, &error, &err_no)) {
    return err_no == 0 ? absl::InvalidArgumentError(error)
                       : absl::Status(absl::ErrnoToStatusCode(err_no), error);
  }
  return text;
}
MappedFile::MappedFile(MappedFile&& other) noexcept
    : addr_(std::exchange(other.addr_, nullptr)), size_(std::exchange(other.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    Reset();
    addr_ = std::exchange(other.addr_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() { Reset(); }

void MappedFile::DropPages(const uint8_t* p, size_t n) const {
  const uintptr_t base = reinterpret_cast<uintptr_t>(addr_);
  const uintptr_t lo = reinterpret_cast<uintptr_t>(p);
  if (addr_ == nullptr || lo < base || n > size_ || lo - base > size_ - n) return;
  const long page_size = ::sysconf(_SC_PAGESIZE);
  if (page_size <= 0) return;
  const uintptr_t page = static_cast<uintptr_t>(page_size);
  const uintptr_t first = (lo + page - 1) / page * page, end = (lo + n) / page * page;
  // A private, read-only mapping never written: dropping its pages loses
  // nothing. Advice only; a failure changes nothing.
  if (first < end) ::madvise(reinterpret_cast<void*>(first), end - first, MADV_DONTNEED);
}

void MappedFile::Reset() {
  if (addr_ != nullptr) ::munmap(addr_, size_);
  addr_ = nullptr;
  size_ = 0;
}

}  // namespace hearth::format
