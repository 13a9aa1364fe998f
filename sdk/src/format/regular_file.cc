// regular_file.cc — the non-blocking open and the regular-file check (see
// regular_file.h).
#include "sdk/src/format/regular_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace hearth::format {
namespace {

const char* KindOf(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "of an unknown kind";
}

bool Fail(const std::string& path, const char* what, int err, std::string* error, int* err_no) {
  *error = path + ": " + what + " (" + std::strerror(err) + ")";
  *err_no = err;
  return false;
}

}  // namespace

bool RegularFile::Open(const std::string& path, RegularFile* out, std::string* error, int* err_no) {
  // O_NONBLOCK: opening a FIFO (or a tty, or some devices) must not wait
  // for the other side. O_NOCTTY: a terminal path must not become ours.
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Fail(path, "cannot open", errno, error, err_no);
  RegularFile f;
  f.fd_ = fd;
  f.path_ = path;
  struct stat st;
  if (::fstat(fd, &st) != 0) return Fail(path, "cannot stat", errno, error, err_no);
  if (!S_ISREG(st.st_mode)) {
    *error = path + ": not a regular file (" + KindOf(st.st_mode) + ")";
    *err_no = 0;
    return false;
  }
  // A regular file reads the same either way; clear the flag so that the
  // descriptor behaves as an ordinary one for whoever reads it.
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return Fail(path, "cannot clear O_NONBLOCK", errno, error, err_no);
  }
  f.size_ = static_cast<uint64_t>(st.st_size);
  *out = std::move(f);
  return true;
}

RegularFile::RegularFile(RegularFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      size_(std::exchange(other.size_, 0)),
      path_(std::move(other.path_)) {}

RegularFile& RegularFile::operator=(RegularFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = std::exchange(other.size_, 0);
    path_ = std::move(other.path_);
  }
  return *this;
}

RegularFile::~RegularFile() {
  if (fd_ >= 0) ::close(fd_);
}

bool RegularFile::ReadAll(uint64_t max_bytes, std::string* out, std::string* error, int* err_no) {
  std::string text;
  if (size_ <= max_bytes) text.reserve(static_cast<size_t>(size_));
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd_, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(path_, "read error", errno, error, err_no);
    }
    if (n == 0) break;
    if (static_cast<uint64_t>(n) > max_bytes - text.size()) {
      *error = path_ + ": larger than " + std::to_string(max_bytes) + " bytes";
      *err_no = 0;
      return false;
    }
    text.append(buf, static_cast<size_t>(n));
  }
  *out = std::move(text);
  return true;
}

bool ReadRegularFile(const std::string& path, uint64_t max_bytes, std::string* out,
                     std::string* error, int* err_no) {
  RegularFile f;
  return RegularFile::Open(path, &f, error, err_no) && f.ReadAll(max_bytes, out, error, err_no);
}

}  // namespace hearth::format
