// emu_runtime.h — the GPU emulator behind gpu_port.h's HEARTH_GPU_EMU mode:
// kernels run on the CPU, one block after another, each GPU thread a fiber
// (ucontext) that runs until it finishes or reaches SyncThreads(); a barrier
// resumes once every thread of the block reached it. Device memory is host
// memory. It exists so the GPU kernels are checked op by op against the CPU
// reference on machines without a GPU (tests/, never installed); it says
// nothing about speed, and nothing about races between blocks (blocks never
// overlap here).
#ifndef HEARTH_BACKENDS_GPU_EMU_RUNTIME_H_
#define HEARTH_BACKENDS_GPU_EMU_RUNTIME_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace hearth::gpu {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
  Dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace emu {

struct ThreadState {
  Dim3 thread, block, block_dim, grid_dim;
};
// The GPU thread running on this OS thread (inside a launch).
ThreadState& Current();
// Runs body once per GPU thread of every block of grid x block (x and y of
// the grid; x of the block). Threads of one block interleave only at
// SyncThreads().
void Launch(Dim3 grid, Dim3 block, const std::function<void()>& body);
// The barrier of the running block.
void SyncThreads();

// The runtime calls of gpu_port.h, on host memory.
using Stream = void*;
using Error = int;

// GPU_LAUNCH: the arguments become the kernel's parameters now; the launch
// runs now, or is recorded while this OS thread captures a graph.
template <typename... P, typename... A>
void LaunchKernel(Dim3 grid, Dim3 block, Stream, void (*kernel)(P...), A&&... args) {
  static_assert((!std::is_reference_v<P> && ...), "kernel parameters are values, as on a GPU");
  std::tuple<P...> params(std::forward<A>(args)...);
  Launch(grid, block, [kernel, params] { std::apply(kernel, params); });
}

// Graph capture on the OS thread that calls BeginCapture: launches and
// memory operations are recorded in order until EndCapture, and GraphLaunch
// runs the recording again.
struct Recording;
using GraphExec = Recording*;
Error BeginCapture(Stream s);
Error EndCapture(Stream s, GraphExec* exec);
Error GraphLaunch(GraphExec exec, Stream s);
void GraphExecDestroy(GraphExec exec);

struct DeviceProps {
  char name[256];
  size_t totalGlobalMem;
  int warpSize;
  int multiProcessorCount;
};
const char* ErrorString(Error e);
Error MemGetInfo(size_t* free_b, size_t* total_b);
Error Malloc(void** p, size_t n);
Error Free(void* p);

}  // namespace emu

using Stream = emu::Stream;
using Error = emu::Error;
using DeviceProps = emu::DeviceProps;
using GraphExec = emu::GraphExec;
constexpr bool kGraphsByDefault = true;
using emu::BeginCapture;
using emu::EndCapture;
using emu::GraphExecDestroy;
using emu::GraphLaunch;
constexpr Error kSuccess = 0;
constexpr const char* kApiName = "emulator";
inline const char* ErrorString(Error e) { return emu::ErrorString(e); }
inline const char* ErrorName(Error e) { return emu::ErrorString(e); }
// One emulated device, always present.
inline Error GetDeviceCount(int* n) {
  *n = 1;
  return kSuccess;
}
Error GetDeviceProps(DeviceProps* p, int dev);
inline Error SetDevice(int) { return kSuccess; }
inline Error MemGetInfo(size_t* free_b, size_t* total_b) {
  return emu::MemGetInfo(free_b, total_b);
}
inline Error Malloc(void** p, size_t n) { return emu::Malloc(p, n); }
inline Error Free(void* p) { return emu::Free(p); }
inline Error StreamCreate(Stream* s) {
  *s = nullptr;
  return kSuccess;
}
inline Error StreamDestroy(Stream) { return kSuccess; }
inline Error StreamSync(Stream) { return kSuccess; }
Error CopyH2D(void* d, const void* h, size_t n, Stream s);
Error CopyD2H(void* h, const void* d, size_t n, Stream s);
Error CopyD2D(void* d, const void* src, size_t n, Stream s);
Error Memset(void* d, int v, size_t n, Stream s);
inline Error LastError() { return kSuccess; }
inline const char* DeviceArch(const DeviceProps&, char* buf, size_t n) {
  if (n > 0) {
    const char* a = "emu";
    size_t i = 0;
    for (; i + 1 < n && a[i] != '\0'; ++i) buf[i] = a[i];
    buf[i] = '\0';
  }
  return buf;
}

inline unsigned ThreadX() { return emu::Current().thread.x; }
inline unsigned BlockX() { return emu::Current().block.x; }
inline unsigned BlockY() { return emu::Current().block.y; }
inline unsigned BlockDimX() { return emu::Current().block_dim.x; }
inline unsigned GridDimX() { return emu::Current().grid_dim.x; }
inline void SyncThreads() { emu::SyncThreads(); }
inline void RaiseFlag(int* flag, int v) {
  if (*flag < v) *flag = v;
}

}  // namespace hearth::gpu

#endif  // HEARTH_BACKENDS_GPU_EMU_RUNTIME_H_
