// regular_file.h — opening a path that must name a regular file, without
// ever blocking. Every file hearth reads (a model, an adapter's config and
// weights, training data, a prompt or text file given to the CLI) is opened
// here first.
//
// Why: open(2) of a FIFO blocks until a writer appears (forever, for a path
// someone passed by mistake or malice), and a device such as /dev/zero or
// /dev/urandom never ends, so reading it "to the end" fills memory. The open
// uses O_NONBLOCK (a FIFO opens at once), fstat refuses anything but a
// regular file naming what it is, and O_NONBLOCK is then cleared.
//
// Only the C++ standard library and POSIX, so that the CLI, which otherwise
// sees only the C ABI, compiles this one file too instead of keeping a copy.
#ifndef HEARTH_SDK_SRC_FORMAT_REGULAR_FILE_H_
#define HEARTH_SDK_SRC_FORMAT_REGULAR_FILE_H_

#include <cstdint>
#include <string>

namespace hearth::format {

// An open regular file; the descriptor is closed on destruction.
class RegularFile {
 public:
  // Opens `path` for reading. On failure returns false with *error set to
  // "<path>: <why>" and *err_no to the errno of the failing call (0 when
  // the path opened but is not a regular file: "not a regular file (a
  // FIFO)", "(a directory)", "(a character device)", …).
  static bool Open(const std::string& path, RegularFile* out, std::string* error, int* err_no);

  RegularFile() = default;
  RegularFile(RegularFile&& other) noexcept;
  RegularFile& operator=(RegularFile&& other) noexcept;
  RegularFile(const RegularFile&) = delete;
  RegularFile& operator=(const RegularFile&) = delete;
  ~RegularFile();

  int fd() const { return fd_; }
  uint64_t size() const { return size_; }  // at open time

  // Reads from the current position to the end into *out. More than
  // `max_bytes` is an error ("<path>: larger than N bytes"), as is a read
  // error (*err_no set).
  bool ReadAll(uint64_t max_bytes, std::string* out, std::string* error, int* err_no);

 private:
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string path_;
};

// RegularFile::Open, then ReadAll.
bool ReadRegularFile(const std::string& path, uint64_t max_bytes, std::string* out,
                     std::string* error, int* err_no);

}  // namespace hearth::format

#endif  // HEARTH_SDK_SRC_FORMAT_REGULAR_FILE_H_
