// format_regular_file_test.cc — every file hearth reads is opened through
// RegularFile: a FIFO, a directory or a device such as /dev/zero is refused
// by name, and never blocks (issue 17, class 3). A FIFO with no writer made
// open(2) wait forever; the tests give each call 10 seconds, then open the
// FIFO's write end themselves so a blocked reader returns and the test fails
// instead of hanging.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <future>
#include <string>

#include "absl/status/status.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/format/mapped_file.h"
#include "sdk/src/format/regular_file.h"
#include "sdk/src/format/safetensors.h"

namespace hearth::format {
namespace {

using ::testing::HasSubstr;

class RegularFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hearth_regular_file_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fifo_ = dir_ + "/f.gguf";
    ASSERT_EQ(::mkfifo(fifo_.c_str(), 0600), 0);
  }
  void TearDown() override {
    ::unlink(fifo_.c_str());
    ::rmdir(dir_.c_str());
  }

  // Runs `read` (which reads `fifo_`) and returns its status; fails the test
  // if it has not returned within 10 s (then unblocks it by opening the
  // write end, so the test ends).
  absl::Status WithoutBlocking(std::function<absl::Status()> read) {
    auto done = std::async(std::launch::async, std::move(read));
    if (done.wait_for(std::chrono::seconds(10)) == std::future_status::timeout) {
      ADD_FAILURE() << "blocked on the FIFO " << fifo_;
      const int w = ::open(fifo_.c_str(), O_WRONLY | O_NONBLOCK);
      if (w >= 0) ::close(w);
    }
    return done.get();
  }

  static void ExpectNotRegular(const absl::Status& s, const std::string& path,
                               const std::string& kind) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(path + ": not a regular file (" + kind));
  }

  std::string dir_, fifo_;
};

TEST_F(RegularFileTest, FifoIsRefusedWithoutBlocking) {
  ExpectNotRegular(WithoutBlocking([&] { return MappedFile::Map(fifo_).status(); }), fifo_,
                   "a FIFO");
  ExpectNotRegular(WithoutBlocking([&] { return ReadSmallFile(fifo_, 1 << 20).status(); }), fifo_,
                   "a FIFO");
  ExpectNotRegular(WithoutBlocking([&] { return gguf::File::Open(fifo_).status(); }), fifo_,
                   "a FIFO");
  ExpectNotRegular(WithoutBlocking([&] { return safetensors::File::Open(fifo_).status(); }), fifo_,
                   "a FIFO");
}

TEST_F(RegularFileTest, EndlessDevicesAreRefusedNotRead) {
  for (const std::string dev : {"/dev/zero", "/dev/urandom"}) {
    ExpectNotRegular(ReadSmallFile(dev, uint64_t{1} << 40).status(), dev, "a character device");
    ExpectNotRegular(MappedFile::Map(dev).status(), dev, "a character device");
  }
}

TEST_F(RegularFileTest, DirectoryIsRefusedByName) {
  ExpectNotRegular(ReadSmallFile(dir_, 1 << 20).status(), dir_, "a directory");
  ExpectNotRegular(MappedFile::Map(dir_).status(), dir_, "a directory");
  std::string text, error;
  int err_no = -1;
  EXPECT_FALSE(ReadRegularFile(dir_, 1 << 20, &text, &error, &err_no));
  EXPECT_EQ(err_no, 0);
  EXPECT_EQ(error, dir_ + ": not a regular file (a directory)");
}

TEST_F(RegularFileTest, RegularFilesReadWholeAndCapped) {
  const std::string path = dir_ + "/t.txt";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, "hello", 5), 5);
  ::close(fd);
  auto text = ReadSmallFile(path, 5);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "hello");
  auto capped = ReadSmallFile(path, 4);
  EXPECT_EQ(capped.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(capped.status().message()), HasSubstr(path + ": larger than 4 bytes"));
  auto missing = ReadSmallFile(dir_ + "/nope", 4);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr(dir_ + "/nope: cannot open"));
  ::unlink(path.c_str());
}

// Resident kB of the mapping that starts at `addr` (/proc/self/smaps), -1
// if not found.
long MappingRssKb(const void* addr) {
  std::ifstream smaps("/proc/self/smaps");
  char want[32];
  std::snprintf(want, sizeof(want), "%lx-", reinterpret_cast<unsigned long>(addr));
  std::string line;
  bool in = false;
  while (std::getline(smaps, line)) {
    if (line.rfind(want, 0) == 0) in = true;
    if (in && line.rfind("Rss:", 0) == 0) return std::strtol(line.c_str() + 4, nullptr, 10);
  }
  return -1;
}

// A repacked weight's file pages are dropped from the process; reading them
// again gives the same bytes, and ranges outside the mapping are ignored.
TEST_F(RegularFileTest, DroppedPagesLeaveMemoryAndReadBackUnchanged) {
  const long page = ::sysconf(_SC_PAGESIZE);
  const std::string path = dir_ + "/pages.bin";
  std::string bytes(static_cast<size_t>(8 * page), '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + i / 4096);
  {
    std::ofstream out(path, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  auto m = MappedFile::Map(path);
  ASSERT_TRUE(m.ok()) << m.status();
  volatile uint64_t sum = 0;
  for (size_t i = 0; i < m->size(); i += 64) sum = sum + m->data()[i];
  const long before = MappingRssKb(m->data());
  ASSERT_GE(before, 8 * page / 1024) << "all 8 pages read";
  // Pages 1..6 lie wholly inside [page / 2, 7.5 pages): 6 pages leave.
  m->DropPages(m->data() + page / 2, static_cast<size_t>(7 * page));
  const long after = MappingRssKb(m->data());
  EXPECT_LE(after, before - 6 * page / 1024);
  m->DropPages(m->data() - page, static_cast<size_t>(page));      // before the mapping
  m->DropPages(m->data() + page, static_cast<size_t>(8 * page));  // past its end
  EXPECT_EQ(MappingRssKb(m->data()), after);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(m->data()), m->size()), bytes);
  ::unlink(path.c_str());
}

}  // namespace
}  // namespace hearth::format
