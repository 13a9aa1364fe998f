// Tables whose size a file sets are checked before they are built
// (sdk/src/common/checked_alloc.h): running short is RESOURCE_EXHAUSTED
// naming the table, never a std::bad_alloc thrown through half-built
// containers. docs/reliability.md, "Out of memory".
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "sdk/src/common/checked_alloc.h"
#include "sdk/src/format/gguf.h"
#include "tests/unit/gguf_builder.h"

namespace hearth {
namespace {

TEST(CheckAllocatable, SmallAndAvailableSizesPassAnImpossibleOneIsNamed) {
  EXPECT_TRUE(CheckAllocatable(100, "a small table").ok());
  EXPECT_TRUE(CheckAllocatable(uint64_t{1} << 20, "a table of 1 MiB").ok());
  const absl::Status s = CheckAllocatable(uint64_t{1} << 62, "the table of 42 things");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(
      s.message().rfind("the table of 42 things: cannot allocate 4611686018427387904 bytes", 0), 0u)
      << s.message();
  EXPECT_GT(MemoryAndSwapBytes(), uint64_t{1} << 20);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HEARTH_UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define HEARTH_UNDER_SANITIZER 1
#endif
#endif

#ifndef HEARTH_UNDER_SANITIZER
uint64_t AddressSpaceInUse() {
  unsigned long pages = 0;
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  if (std::fscanf(f, "%lu", &pages) != 1) pages = 0;
  std::fclose(f);
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}
#endif

// A GGUF whose string array needs more memory than is left: the old code
// reserved it with operator new, whose std::bad_alloc escaped FromMemory
// (std::terminate in this child); now it is an error naming the key.
TEST(CheckAllocatable, AGgufArrayLargerThanTheMemoryLeftIsRefusedNamingTheKey) {
#ifdef HEARTH_UNDER_SANITIZER
  GTEST_SKIP() << "sanitizer runtimes reserve the address space themselves";
#else
  // 1,000,000 empty strings: 8 MB of file, 16 MB of string_views to hold.
  const std::vector<std::string> empty(1000000);
  std::vector<uint8_t> img = ::hearth::testing::GgufBuilder()
                                 .AddString("general.architecture", "llama")
                                 .AddStringArray("tokenizer.ggml.tokens", empty)
                                 .Build();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // 4 MiB more address space than is in use: enough to parse, too
    // little for the array.
    const uint64_t limit = AddressSpaceInUse() + (uint64_t{4} << 20);
    const rlimit rl{limit, limit};
    if (AddressSpaceInUse() == 0 || setrlimit(RLIMIT_AS, &rl) != 0) _exit(2);
    auto f = gguf::File::FromMemory(img.data(), img.size(), "big.gguf");
    const bool named =
        !f.ok() && f.status().code() == absl::StatusCode::kResourceExhausted &&
        f.status().message().find("'tokenizer.ggml.tokens': an array of 1000000 strings") !=
            std::string::npos;
    if (!named) {
      std::fprintf(stderr, "child: %s\n",
                   f.ok() ? "parsed" : std::string(f.status().ToString()).c_str());
    }
    _exit(named ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << "the child was killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
#endif
}

}  // namespace
}  // namespace hearth
