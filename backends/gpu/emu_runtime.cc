// emu_runtime.cc — fibers, barriers and host-memory "device" calls of the GPU
// emulator (emu_runtime.h).
#include "backends/gpu/emu_runtime.h"

#include <setjmp.h>
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

// Fibers live as long as their OS thread and serve every block of every
// launch: fiber i runs thread i of the current block, then waits for the
// next. The first entry goes through makecontext/swapcontext; every switch
// after that is a _setjmp/_longjmp pair (swapcontext saves the signal mask
// with a system call each time, which made the emulator 10x slower).
struct Fiber {
  jmp_buf ctx;
  ucontext_t start;
  bool started = false;
  bool done = false;  // finished the current block's work
};

struct Pool {
  Fiber fibers[kMaxBlockThreads];
  uint8_t* stacks = nullptr;  // kMaxBlockThreads * kStackBytes, mapped lazily
  jmp_buf main;
  unsigned current = 0;
  const std::function<void()>* body = nullptr;
  bool in_launch = false;
#ifdef HEARTH_EMU_ASAN
  const void* main_bottom = nullptr;
  size_t main_size = 0;
#endif
};

thread_local Pool* t_pool = nullptr;
thread_local ThreadState t_state;

// Error codes of the emulator (0 is success).
constexpr Error kOutOfMemory = 2;
constexpr Error kNotCapturable = 3;
constexpr Error kCaptureState = 4;

}  // namespace

// A captured graph: what the stream received, in order.
struct Recording {
  std::vector<std::function<void()>> ops;
};

namespace {

// The recording this OS thread is capturing into, or null.
thread_local Recording* t_capture = nullptr;

// From a fiber back to the scheduler.
void YieldToMain(Pool* p) {
  Fiber& f = p->fibers[p->current];
#ifdef HEARTH_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, p->main_bottom, p->main_size);
#endif
  if (_setjmp(f.ctx) == 0) _longjmp(p->main, 1);
#ifdef HEARTH_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, &p->main_bottom, &p->main_size);
#endif
}

void FiberMain() {
  Pool* p = t_pool;
#ifdef HEARTH_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &p->main_bottom, &p->main_size);
#endif
  for (;;) {
    (*p->body)();
    p->fibers[p->current].done = true;
    YieldToMain(p);
  }
}

// From the scheduler into fiber i, until it reaches a barrier or its end.
void Resume(Pool* p, unsigned i) {
  p->current = i;
  t_state.thread = Dim3(i);
  Fiber& f = p->fibers[i];
#ifdef HEARTH_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, p->stacks + size_t{i} * kStackBytes, kStackBytes);
#endif
  if (_setjmp(p->main) == 0) {
    if (!f.started) {
      f.started = true;
      ucontext_t here;
      swapcontext(&here, &f.start);  // never returns here: the fiber longjmps to main
    }
    _longjmp(f.ctx, 1);
  }
#ifdef HEARTH_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
}

Pool* GetPool(unsigned n) {
  if (t_pool == nullptr) {
    auto* p = new Pool();
    void* mem = mmap(nullptr, size_t{kMaxBlockThreads} * kStackBytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) {
      delete p;
      throw std::bad_alloc();
    }
    p->stacks = static_cast<uint8_t*>(mem);
    t_pool = p;
  }
  Pool* p = t_pool;
  for (unsigned i = 0; i < n; ++i) {
    Fiber& f = p->fibers[i];
    if (f.started) continue;
    getcontext(&f.start);
    f.start.uc_stack.ss_sp = p->stacks + size_t{i} * kStackBytes;
    f.start.uc_stack.ss_size = kStackBytes;
    f.start.uc_link = nullptr;  // FiberMain never returns
    makecontext(&f.start, FiberMain, 0);
  }
  return p;
}

}  // namespace

ThreadState& Current() { return t_state; }

void SyncThreads() {
  Pool* p = t_pool;
  if (p == nullptr || !p->in_launch) return;  // outside a launch: nothing to wait for
  YieldToMain(p);
}

void Launch(Dim3 grid, Dim3 block, const std::function<void()>& body) {
  const unsigned n = block.x * block.y * block.z;
  if (n == 0 || n > kMaxBlockThreads || block.y != 1 || block.z != 1 || grid.z != 1) {
    throw std::invalid_argument("emulator: unsupported launch shape");
  }
  if (t_capture != nullptr) {
    t_capture->ops.push_back([grid, block, body] { Launch(grid, block, body); });
    return;
  }
  Pool* p = GetPool(n);
  if (p->in_launch) throw std::logic_error("emulator: launch inside a kernel");
  p->in_launch = true;
  p->body = &body;
  t_state.grid_dim = grid;
  t_state.block_dim = block;
  for (unsigned by = 0; by < grid.y; ++by) {
    for (unsigned bx = 0; bx < grid.x; ++bx) {
      t_state.block = Dim3(bx, by);
      for (unsigned i = 0; i < n; ++i) p->fibers[i].done = false;
      // Rounds: every unfinished thread runs to its next barrier or its end.
      // A thread that finished counts as arrived (as on the hardware).
      bool left = true;
      while (left) {
        left = false;
        for (unsigned i = 0; i < n; ++i) {
          if (p->fibers[i].done) continue;
          Resume(p, i);
          left |= !p->fibers[i].done;
        }
      }
    }
  }
  p->in_launch = false;
  p->body = nullptr;
}

const char* ErrorString(Error e) {
  switch (e) {
    case 0:
      return "no error";
    case kOutOfMemory:
      return "emulator: out of memory";
    case kNotCapturable:
      return "emulator: a copy between host and device while a graph is captured";
    case kCaptureState:
      return "emulator: capture begun twice, or ended without a begin";
    default:
      return "emulator: unknown error";
  }
}

Error BeginCapture(Stream) {
  if (t_capture != nullptr) return kCaptureState;
  t_capture = new Recording;
  return 0;
}

Error EndCapture(Stream, GraphExec* exec) {
  if (t_capture == nullptr) return kCaptureState;
  *exec = t_capture;
  t_capture = nullptr;
  return 0;
}

Error GraphLaunch(GraphExec exec, Stream) {
  if (t_capture != nullptr) return kCaptureState;
  for (const std::function<void()>& op : exec->ops) op();
  return 0;
}

void GraphExecDestroy(GraphExec exec) { delete exec; }

Error MemGetInfo(size_t* free_b, size_t* total_b) {
  struct sysinfo si;
  if (sysinfo(&si) != 0) return kOutOfMemory;
  *total_b = static_cast<size_t>(si.totalram) * si.mem_unit;
  *free_b = static_cast<size_t>(si.freeram) * si.mem_unit;
  return 0;
}

Error Malloc(void** p, size_t n) {
  *p = std::aligned_alloc(256, (n + 255) / 256 * 256);
  return *p == nullptr && n > 0 ? kOutOfMemory : 0;
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

// Host memory takes no part in a captured graph (CUDA refuses pageable
// copies during capture); device-side copies and memsets are recorded.
Error CopyH2D(void* d, const void* h, size_t n, Stream) {
  if (emu::t_capture != nullptr) return emu::kNotCapturable;
  if (n > 0) std::memmove(d, h, n);
  return kSuccess;
}
Error CopyD2H(void* h, const void* d, size_t n, Stream) {
  if (emu::t_capture != nullptr) return emu::kNotCapturable;
  if (n > 0) std::memmove(h, d, n);
  return kSuccess;
}
Error CopyD2D(void* d, const void* src, size_t n, Stream) {
  if (emu::t_capture != nullptr) {
    emu::t_capture->ops.push_back([d, src, n] { std::memmove(d, src, n); });
  } else if (n > 0) {
    std::memmove(d, src, n);
  }
  return kSuccess;
}
Error Memset(void* d, int v, size_t n, Stream) {
  if (emu::t_capture != nullptr) {
    emu::t_capture->ops.push_back([d, v, n] { std::memset(d, v, n); });
  } else if (n > 0) {
    std::memset(d, v, n);
  }
  return kSuccess;
}

}  // namespace hearth::gpu
