// emu_runtime.cc — fibers, barriers and host-memory "device" calls of the GPU
// emulator (emu_runtime.h).
#include "backends/gpu/emu_runtime.h"

#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <ucontext.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define HEARTH_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HEARTH_EMU_ASAN 1
#endif
#endif
#ifdef HEARTH_EMU_ASAN
#include <sanitizer/common_interface_defs.h>
#endif

namespace hearth::gpu {
namespace emu {
namespace {

// Sanitizer-built kernels use more stack; both are far above what a kernel
// of backends/gpu needs (no recursion, small locals).
#ifdef HEARTH_EMU_ASAN
constexpr size_t kStackBytes = 256 * 1024;
#else
constexpr size_t kStackBytes = 64 * 1024;
#endif
constexpr unsigned kMaxBlockThreads = 1024;

struct Fiber {
  ucontext_t ctx;
  bool done = false;
};

// One launch's state, on the launching OS thread.
struct Scheduler {
  ucontext_t main;
  std::vector<Fiber> fibers;
  unsigned current = 0;
  const std::function<void()>* body = nullptr;
  uint8_t* stacks = nullptr;  // fibers.size() * kStackBytes, mmap'ed
  size_t stacks_bytes = 0;
#ifdef HEARTH_EMU_ASAN
  const void* main_bottom = nullptr;
  size_t main_size = 0;
#endif
};

thread_local Scheduler* t_sched = nullptr;
thread_local ThreadState t_state;

void FiberEntry() {
  Scheduler* s = t_sched;
#ifdef HEARTH_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &s->main_bottom, &s->main_size);
#endif
  (*s->body)();
  s->fibers[s->current].done = true;
#ifdef HEARTH_EMU_ASAN
  // This fiber's stack is done with: nullptr tells ASan it dies.
  __sanitizer_start_switch_fiber(nullptr, s->main_bottom, s->main_size);
#endif
  // Returning resumes uc_link (the scheduler).
}

void SwitchToFiber(Scheduler* s, unsigned i) {
  s->current = i;
  t_state.thread = Dim3(i);
#ifdef HEARTH_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, s->stacks + size_t{i} * kStackBytes, kStackBytes);
#endif
  swapcontext(&s->main, &s->fibers[i].ctx);
#ifdef HEARTH_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

}  // namespace

ThreadState& Current() { return t_state; }

void SyncThreads() {
  Scheduler* s = t_sched;
  if (s == nullptr) return;  // outside a launch: nothing to wait for
  Fiber& f = s->fibers[s->current];
#ifdef HEARTH_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, s->main_bottom, s->main_size);
#endif
  swapcontext(&f.ctx, &s->main);
#ifdef HEARTH_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, &s->main_bottom, &s->main_size);
#endif
}

void Launch(Dim3 grid, Dim3 block, const std::function<void()>& body) {
  const unsigned n = block.x * block.y * block.z;
  if (n == 0 || n > kMaxBlockThreads || block.y != 1 || block.z != 1 || grid.z != 1) {
    throw std::invalid_argument("emulator: unsupported launch shape");
  }
  if (t_sched != nullptr) throw std::logic_error("emulator: launch inside a kernel");
  Scheduler s;
  s.body = &body;
  s.fibers.resize(n);
  // Fiber stacks are mapped once per OS thread and kept (mapping and
  // faulting them in per launch cost more than the kernels).
  thread_local uint8_t* t_stacks = nullptr;
  thread_local size_t t_stacks_bytes = 0;
  if (t_stacks_bytes < size_t{n} * kStackBytes) {
    if (t_stacks != nullptr) munmap(t_stacks, t_stacks_bytes);
    t_stacks = nullptr;
    t_stacks_bytes = 0;
    void* mem = mmap(nullptr, size_t{n} * kStackBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) throw std::bad_alloc();
    t_stacks = static_cast<uint8_t*>(mem);
    t_stacks_bytes = size_t{n} * kStackBytes;
  }
  s.stacks = t_stacks;
  s.stacks_bytes = t_stacks_bytes;
  t_sched = &s;
  t_state.grid_dim = grid;
  t_state.block_dim = block;
  for (unsigned by = 0; by < grid.y; ++by) {
    for (unsigned bx = 0; bx < grid.x; ++bx) {
      t_state.block = Dim3(bx, by);
      for (unsigned i = 0; i < n; ++i) {
        Fiber& f = s.fibers[i];
        f.done = false;
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = s.stacks + size_t{i} * kStackBytes;
        f.ctx.uc_stack.ss_size = kStackBytes;
        f.ctx.uc_link = &s.main;
        makecontext(&f.ctx, FiberEntry, 0);
      }
      // Rounds: every unfinished thread runs to its next barrier or its end.
      // A thread that finished counts as arrived (as on the hardware).
      bool left = true;
      while (left) {
        left = false;
        for (unsigned i = 0; i < n; ++i) {
          if (s.fibers[i].done) continue;
          SwitchToFiber(&s, i);
          left |= !s.fibers[i].done;
        }
      }
    }
  }
  t_sched = nullptr;
}

const char* ErrorString(Error e) { return e == 0 ? "no error" : "emulator: out of memory"; }

Error MemGetInfo(size_t* free_b, size_t* total_b) {
  struct sysinfo si;
  if (sysinfo(&si) != 0) return 2;
  *total_b = static_cast<size_t>(si.totalram) * si.mem_unit;
  *free_b = static_cast<size_t>(si.freeram) * si.mem_unit;
  return 0;
}

Error Malloc(void** p, size_t n) {
  *p = std::aligned_alloc(256, (n + 255) / 256 * 256);
  return *p == nullptr && n > 0 ? 2 : 0;
}

Error Free(void* p) {
  std::free(p);
  return 0;
}

}  // namespace emu

Error GetDeviceProps(DeviceProps* p, int) {
  std::memset(p, 0, sizeof(*p));
  std::snprintf(p->name, sizeof(p->name), "hearth GPU emulator (kernels on the CPU, for tests)");
  size_t free_b = 0, total_b = 0;
  emu::MemGetInfo(&free_b, &total_b);
  p->totalGlobalMem = total_b;
  p->warpSize = 32;
  p->multiProcessorCount = 1;
  return kSuccess;
}

Error CopyH2D(void* d, const void* h, size_t n, Stream) {
  if (n > 0) std::memmove(d, h, n);
  return kSuccess;
}
Error CopyD2H(void* h, const void* d, size_t n, Stream) {
  if (n > 0) std::memmove(h, d, n);
  return kSuccess;
}
Error CopyD2D(void* d, const void* src, size_t n, Stream) {
  if (n > 0) std::memmove(d, src, n);
  return kSuccess;
}
Error Memset(void* d, int v, size_t n, Stream) {
  if (n > 0) std::memset(d, v, n);
  return kSuccess;
}

}  // namespace hearth::gpu
