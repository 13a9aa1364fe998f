// alloc_fault.cc — libhearth-alloc-fault.so, an LD_PRELOAD shim that makes
// exactly one allocation of a process fail: the Nth, counted from the
// shim's load. scripts/alloc_sweep.sh runs a command once per N to prove
// that hearth never corrupts its heap when memory runs out (docs/reliability.md,
// "Out of memory").
//
// Environment:
//   HEARTH_ALLOC_FAIL_AT=N      the Nth counted allocation fails (unset or 0: none)
//   HEARTH_ALLOC_FAIL_KINDS=K   what is counted: "new" (every operator new
//                               variant; the default) or "new,malloc" (also
//                               malloc, calloc, realloc, posix_memalign,
//                               aligned_alloc, memalign)
//   HEARTH_ALLOC_COUNT_OUT=F    at a normal exit, write the number of counted
//                               allocations to file F (the sweep's range)
//   HEARTH_ALLOC_FAULT_VERBOSE=1  say on stderr which allocation failed
//   HEARTH_ALLOC_ARM=call       count nothing until the program calls
//                               hearth_alloc_fault_arm() (exported here; a
//                               program finds it with dlsym): the C ABI sweep
//                               (capi_alloc.c) arms it once the plugins are
//                               loaded, whose libraries' static constructors
//                               (oneDNN's) cannot survive a failure;
//                               hearth_alloc_fault_disarm() stops counting
//
// A failed operator new behaves as the real one does: it calls the installed
// new-handler, if any, and retries, else throws std::bad_alloc (the nothrow
// forms return nullptr). A failed malloc-family call returns NULL with ENOMEM.
// Every operator new and delete is implemented here on the next malloc/free
// in the lookup order (libc's, or a sanitizer's when the shim is preloaded
// ahead of it with verify_asan_link_order=0), so memory from one family is
// never released by the other's allocator.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <new>

namespace {

using MallocFn = void* (*)(size_t);
using CallocFn = void* (*)(size_t, size_t);
using ReallocFn = void* (*)(void*, size_t);
using FreeFn = void (*)(void*);
using PosixMemalignFn = int (*)(void**, size_t, size_t);
using AlignedAllocFn = void* (*)(size_t, size_t);

MallocFn real_malloc;
CallocFn real_calloc;
ReallocFn real_realloc;
FreeFn real_free;
PosixMemalignFn real_posix_memalign;
AlignedAllocFn real_aligned_alloc;
AlignedAllocFn real_memalign;

// dlsym may allocate while the real functions are being looked up; those
// few requests come from here and are never freed.
alignas(64) char bootstrap[64 * 1024];
size_t bootstrap_used;
bool resolving;

bool InBootstrap(const void* p) {
  return p >= static_cast<const void*>(bootstrap) &&
         p < static_cast<const void*>(bootstrap + sizeof(bootstrap));
}

void* BootstrapAlloc(size_t size, size_t align) {
  if (align < 16) align = 16;
  size_t at = (bootstrap_used + align - 1) & ~(align - 1);
  if (at + size > sizeof(bootstrap)) return nullptr;
  bootstrap_used = at + size;
  return bootstrap + at;  // static storage: already zero
}

void Resolve() {
  if (real_malloc != nullptr || resolving) return;
  resolving = true;
  real_calloc = reinterpret_cast<CallocFn>(dlsym(RTLD_NEXT, "calloc"));
  real_realloc = reinterpret_cast<ReallocFn>(dlsym(RTLD_NEXT, "realloc"));
  real_free = reinterpret_cast<FreeFn>(dlsym(RTLD_NEXT, "free"));
  real_posix_memalign = reinterpret_cast<PosixMemalignFn>(dlsym(RTLD_NEXT, "posix_memalign"));
  real_aligned_alloc = reinterpret_cast<AlignedAllocFn>(dlsym(RTLD_NEXT, "aligned_alloc"));
  real_memalign = reinterpret_cast<AlignedAllocFn>(dlsym(RTLD_NEXT, "memalign"));
  real_malloc = reinterpret_cast<MallocFn>(dlsym(RTLD_NEXT, "malloc"));
  resolving = false;
}

// Configuration, read once; until then nothing is counted.
std::atomic<bool> configured{false};
uint64_t fail_at;
bool count_malloc;
bool verbose;
std::atomic<uint64_t> counted{0};

enum Kind { kNew, kMalloc };

bool ShouldFail(Kind kind, size_t size) {
  if (!configured.load(std::memory_order_acquire)) return false;
  if (kind == kMalloc && !count_malloc) return false;
  const uint64_t n = counted.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n != fail_at) return false;
  if (verbose) {
    char line[128];
    int len = snprintf(line, sizeof line, "alloc_fault: failing allocation %llu (%s, %zu bytes)\n",
                       static_cast<unsigned long long>(n), kind == kNew ? "operator new" : "malloc",
                       size);
    if (len > 0) (void)!write(2, line, static_cast<size_t>(len));
  }
  return true;
}

__attribute__((constructor)) void Configure() {
  Resolve();
  const char* at = getenv("HEARTH_ALLOC_FAIL_AT");
  fail_at = at != nullptr ? strtoull(at, nullptr, 10) : 0;
  const char* kinds = getenv("HEARTH_ALLOC_FAIL_KINDS");
  count_malloc = kinds != nullptr && strstr(kinds, "malloc") != nullptr;
  const char* v = getenv("HEARTH_ALLOC_FAULT_VERBOSE");
  verbose = v != nullptr && v[0] == '1';
  const char* arm = getenv("HEARTH_ALLOC_ARM");
  if (arm == nullptr || strcmp(arm, "call") != 0) configured.store(true, std::memory_order_release);
}

__attribute__((destructor)) void Report() {
  const char* out = getenv("HEARTH_ALLOC_COUNT_OUT");
  if (out == nullptr) return;
  configured.store(false, std::memory_order_release);
  int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return;
  char line[32];
  int len = snprintf(line, sizeof line, "%llu\n",
                     static_cast<unsigned long long>(counted.load(std::memory_order_relaxed)));
  if (len > 0) (void)!write(fd, line, static_cast<size_t>(len));
  close(fd);
}

void* RawAlloc(size_t size, size_t align) {
  Resolve();
  if (resolving) return BootstrapAlloc(size, align);
  if (align <= alignof(std::max_align_t)) return real_malloc(size);
  void* p = nullptr;
  return real_posix_memalign(&p, align, size) == 0 ? p : nullptr;
}

void RawFree(void* p) {
  if (p == nullptr || InBootstrap(p)) return;
  Resolve();
  real_free(p);
}

// What the real operator new does, with one injected failure.
void* NewImpl(size_t size, size_t align, bool nothrow) {
  if (size == 0) size = 1;
  for (;;) {
    void* p = ShouldFail(kNew, size) ? nullptr : RawAlloc(size, align);
    if (p != nullptr) return p;
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      if (nothrow) return nullptr;
      throw std::bad_alloc();
    }
    if (nothrow) {
      try {
        handler();
      } catch (...) {
        return nullptr;
      }
    } else {
      handler();
    }
  }
}

}  // namespace

// ---- operator new / delete, every replaceable form -------------------------
void* operator new(size_t n) { return NewImpl(n, 0, false); }
void* operator new[](size_t n) { return NewImpl(n, 0, false); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return NewImpl(n, 0, true); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return NewImpl(n, 0, true); }
void* operator new(size_t n, std::align_val_t a) {
  return NewImpl(n, static_cast<size_t>(a), false);
}
void* operator new[](size_t n, std::align_val_t a) {
  return NewImpl(n, static_cast<size_t>(a), false);
}
void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return NewImpl(n, static_cast<size_t>(a), true);
}
void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return NewImpl(n, static_cast<size_t>(a), true);
}
void operator delete(void* p) noexcept { RawFree(p); }
void operator delete[](void* p) noexcept { RawFree(p); }
void operator delete(void* p, size_t) noexcept { RawFree(p); }
void operator delete[](void* p, size_t) noexcept { RawFree(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { RawFree(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { RawFree(p); }
void operator delete(void* p, std::align_val_t) noexcept { RawFree(p); }
void operator delete[](void* p, std::align_val_t) noexcept { RawFree(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { RawFree(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { RawFree(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { RawFree(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { RawFree(p); }

// ---- the C allocator ------------------------------------------------------
extern "C" {

// Starts counting (HEARTH_ALLOC_ARM=call); a no-op otherwise.
__attribute__((visibility("default"))) void hearth_alloc_fault_arm() {
  configured.store(true, std::memory_order_release);
}

// Stops counting and failing for good (what follows is not swept).
__attribute__((visibility("default"))) void hearth_alloc_fault_disarm() {
  configured.store(false, std::memory_order_release);
}

void* malloc(size_t size) {
  if (ShouldFail(kMalloc, size)) {
    errno = ENOMEM;
    return nullptr;
  }
  return RawAlloc(size, 0);
}

void* calloc(size_t n, size_t size) {
  Resolve();
  if (resolving) return BootstrapAlloc(n * size, 16);
  if (ShouldFail(kMalloc, n * size)) {
    errno = ENOMEM;
    return nullptr;
  }
  return real_calloc(n, size);
}

void* realloc(void* p, size_t size) {
  Resolve();
  if (InBootstrap(p)) {  // never freed; copy out what fits
    void* q = RawAlloc(size, 0);
    if (q != nullptr) {
      const size_t avail =
          static_cast<size_t>(bootstrap + sizeof(bootstrap) - static_cast<char*>(p));
      memcpy(q, p, size < avail ? size : avail);
    }
    return q;
  }
  if (ShouldFail(kMalloc, size)) {
    errno = ENOMEM;
    return nullptr;
  }
  return real_realloc(p, size);
}

void free(void* p) { RawFree(p); }

int posix_memalign(void** out, size_t align, size_t size) {
  Resolve();
  if (ShouldFail(kMalloc, size)) return ENOMEM;
  return real_posix_memalign(out, align, size);
}

void* aligned_alloc(size_t align, size_t size) {
  Resolve();
  if (ShouldFail(kMalloc, size)) {
    errno = ENOMEM;
    return nullptr;
  }
  return real_aligned_alloc(align, size);
}

void* memalign(size_t align, size_t size) {
  Resolve();
  if (ShouldFail(kMalloc, size)) {
    errno = ENOMEM;
    return nullptr;
  }
  return real_memalign(align, size);
}

}  // extern "C"
