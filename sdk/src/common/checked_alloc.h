// checked_alloc.h — CheckAllocatable: before a table whose size a file sets
// is built (GGUF metadata arrays and tensor infos, the vocabulary, the
// tokenizer's lookup tables), ask malloc whether that much memory can be had
// now. malloc neither throws nor calls a new-handler (the hearth CLI's ends
// the process), so running short becomes RESOURCE_EXHAUSTED naming the
// table, not an exit. A probe, not a reservation: the table is then built
// with ordinary allocations. docs/reliability.md, "Out of memory".
#ifndef HEARTH_SDK_SRC_COMMON_CHECKED_ALLOC_H_
#define HEARTH_SDK_SRC_COMMON_CHECKED_ALLOC_H_

#include <sys/sysinfo.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace hearth {

// Tables smaller than this are not probed: they are no larger than the
// allocations around them.
inline constexpr uint64_t kCheckAllocatableMin = uint64_t{64} << 10;

// The machine's memory and swap in bytes (0 when unknown).
inline uint64_t MemoryAndSwapBytes() {
  struct sysinfo si {};
  if (sysinfo(&si) != 0) return 0;
  return (static_cast<uint64_t>(si.totalram) + si.totalswap) * si.mem_unit;
}

// OK when `bytes` could be allocated now; else RESOURCE_EXHAUSTED:
// "<what>: cannot allocate <bytes> bytes". A size above the machine's memory
// and swap is refused without asking malloc (which may accept it under
// overcommit, or abort under a sanitizer's allocator).
inline absl::Status CheckAllocatable(uint64_t bytes, const std::string& what) {
  if (bytes < kCheckAllocatableMin) return absl::OkStatus();
  if (const uint64_t total = MemoryAndSwapBytes(); total != 0 && bytes > total) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": cannot allocate ", bytes,
                                                     " bytes (more than the ", total,
                                                     " bytes of memory and swap)"));
  }
  // Through volatile pointers, so the compiler cannot pair the calls away
  // and assume success.
  static void* (*volatile const probe_alloc)(size_t) = std::malloc;
  static void (*volatile const probe_free)(void*) = std::free;
  void* p = bytes <= static_cast<uint64_t>(PTRDIFF_MAX) ? probe_alloc(static_cast<size_t>(bytes))
                                                        : nullptr;
  if (p == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(what, ": cannot allocate ", bytes, " bytes"));
  }
  probe_free(p);
  return absl::OkStatus();
}

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_COMMON_CHECKED_ALLOC_H_
