// bandwidth.h — the machine's memory read bandwidth, measured in-process so
// `hearth bench` can say what fraction of it token generation reaches.
//
// A streaming, multi-threaded read of a buffer far larger than the last-level
// cache; each thread sums its own slice (which it also first-touched, so its
// pages sit on its NUMA node); the best of a few passes counts.
#ifndef HEARTH_SDK_CLI_BANDWIDTH_H_
#define HEARTH_SDK_CLI_BANDWIDTH_H_

#include <cstdint>
#include <string>

namespace hearth::cli {

struct BandwidthResult {
  double bytes_per_second = 0;  // best pass
  uint64_t buffer_bytes = 0;
  int threads = 0;
  int passes = 0;
};

// Buffer size for MeasureReadBandwidth: the largest of 1 GiB, 4x the
// last-level cache and 4x the model file (that one capped at 4 GiB), but
// never more than half the available memory.
uint64_t DefaultBandwidthBufferBytes(uint64_t model_file_bytes);

// `threads` <= 0 means one per hardware thread. False with `error` set when
// the buffer cannot be allocated or a thread cannot start.
bool MeasureReadBandwidth(int threads, uint64_t buffer_bytes, int passes, BandwidthResult* out,
                          std::string* error);

// The size of one last-level (L3, else L2) cache as the C library reports it,
// or 0 when unknown. On chips with several L3 slices this is one slice.
uint64_t LastLevelCacheBytes();

// The host's bytes of memory available to a new allocation (/proc/meminfo
// MemAvailable), or 0 when unknown.
uint64_t AvailableMemoryBytes();

}  // namespace hearth::cli

#endif  // HEARTH_SDK_CLI_BANDWIDTH_H_
