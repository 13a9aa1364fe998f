// bandwidth.cc — the streaming-read bandwidth probe of bandwidth.h.
#include "bandwidth.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "run_together.h"

namespace hearth::cli {
namespace {

constexpr uint64_t kGiB = 1ull << 30;

// Keeps the sums alive so the compiler cannot drop the reads.
std::atomic<uint64_t> g_sink{0};

// Eight independent accumulators let the loads run (and vectorize) in
// parallel instead of waiting on one add chain.
uint64_t SumWords(const uint64_t* p, size_t n) {
  uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    a0 += p[i];
    a1 += p[i + 1];
    a2 += p[i + 2];
    a3 += p[i + 3];
    a4 += p[i + 4];
    a5 += p[i + 5];
    a6 += p[i + 6];
    a7 += p[i + 7];
  }
  for (; i < n; ++i) a0 += p[i];
  return a0 ^ a1 ^ a2 ^ a3 ^ a4 ^ a5 ^ a6 ^ a7;
}

}  // namespace

uint64_t AvailableMemoryBytes() {
  std::FILE* f = std::fopen("/proc/meminfo", "r");
  if (f != nullptr) {
    char line[256];
    unsigned long long kb = 0;
    bool found = false;
    while (std::fgets(line, sizeof(line), f)) {
      if (std::sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
        found = true;
        break;
      }
    }
    std::fclose(f);
    if (found) return static_cast<uint64_t>(kb) * 1024;
  }
  const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return (pages > 0 && page > 0) ? static_cast<uint64_t>(pages) * page : 0;
}

uint64_t LastLevelCacheBytes() {
  long bytes = 0;
#ifdef _SC_LEVEL3_CACHE_SIZE
  bytes = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
#ifdef _SC_LEVEL2_CACHE_SIZE
  if (bytes <= 0) bytes = sysconf(_SC_LEVEL2_CACHE_SIZE);
#endif
  return bytes > 0 ? static_cast<uint64_t>(bytes) : 0;
}

uint64_t DefaultBandwidthBufferBytes(uint64_t model_file_bytes) {
  uint64_t bytes =
      std::max({kGiB, 4 * LastLevelCacheBytes(), std::min(4 * model_file_bytes, 4 * kGiB)});
  const uint64_t avail = AvailableMemoryBytes();
  if (avail > 0) bytes = std::min(bytes, avail / 2);
  return std::max<uint64_t>(bytes, 64ull << 20);
}

bool MeasureReadBandwidth(int threads, uint64_t buffer_bytes, int passes, BandwidthResult* out,
                          std::string* error) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  passes = std::max(passes, 1);
  const size_t n_words = buffer_bytes / sizeof(uint64_t);
  if (n_words < static_cast<size_t>(threads) * 8) {
    *error = "bandwidth buffer of " + std::to_string(buffer_bytes) + " bytes is too small";
    return false;
  }
  void* mem = mmap(nullptr, n_words * sizeof(uint64_t), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    *error = "cannot allocate a " + std::to_string(buffer_bytes) +
             "-byte bandwidth buffer: " + std::strerror(errno);
    return false;
  }
#ifdef MADV_HUGEPAGE
  madvise(mem, n_words * sizeof(uint64_t), MADV_HUGEPAGE);  // fewer TLB misses; optional
#endif
  auto* words = static_cast<uint64_t*>(mem);
  const size_t per_thread = n_words / threads;
  auto slice = [&](int t, size_t* begin, size_t* count) {
    *begin = per_thread * t;
    *count = (t == threads - 1) ? n_words - *begin : per_thread;
  };

  // First touch by the thread that will read the slice commits the pages
  // near it; the pattern keeps the pages from being shared zero pages.
  double secs = RunTogether(
      threads, "bandwidth",
      [&](int t) {
        size_t b, c;
        slice(t, &b, &c);
        for (size_t i = 0; i < c; ++i) words[b + i] = (b + i) * 0x9E3779B97F4A7C15ull;
      },
      error);
  double best = 0;
  for (int pass = 0; secs >= 0 && pass < passes; ++pass) {
    secs = RunTogether(
        threads, "bandwidth",
        [&](int t) {
          size_t b, c;
          slice(t, &b, &c);
          g_sink.fetch_xor(SumWords(words + b, c), std::memory_order_relaxed);
        },
        error);
    if (secs > 0) best = std::max(best, double(n_words * sizeof(uint64_t)) / secs);
  }
  munmap(mem, n_words * sizeof(uint64_t));
  if (secs < 0) return false;
  out->bytes_per_second = best;
  out->buffer_bytes = n_words * sizeof(uint64_t);
  out->threads = threads;
  out->passes = passes;
  return true;
}

}  // namespace hearth::cli
