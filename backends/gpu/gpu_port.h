// gpu_port.h — the one portability header of hearth's GPU kernels. The same
// sources (backends/gpu/*.cu) are compiled three ways:
//   - by nvcc for the CUDA plugin (HEARTH_GPU_CUDA),
//   - by hipcc for the ROCm plugin (HEARTH_GPU_HIP),
//   - by the host C++ compiler for the emulator (HEARTH_GPU_EMU): every
//     launch runs its blocks one after another on the calling thread, each
//     GPU thread a fiber, so the kernels' index arithmetic, block
//     reductions and barriers are checked against the CPU reference on a
//     machine without a GPU (tests only; it is never installed).
// GPU_FN marks device functions, GPU_HOST_FN ones the host calls too (launch
// geometry both sides must agree on).
// Kernels use only what is defined here: the thread/block index functions,
// SyncThreads(), GPU_SHARED arrays of a fixed size, and the runtime calls
// below (graph capture included). No kernel exchanges values between lanes by shuffles, so nothing
// assumes a warp of 32 (gfx90a runs wavefronts of 64): reductions go through
// shared memory, and the warp width is only ever read from the device.
#ifndef HEARTH_BACKENDS_GPU_GPU_PORT_H_
#define HEARTH_BACKENDS_GPU_GPU_PORT_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>

#if defined(HEARTH_GPU_CUDA)
#include <cuda_runtime.h>
#define GPU_KERNEL __global__
#define GPU_FN __device__ __forceinline__
#define GPU_HOST_FN __host__ __device__ __forceinline__
#define GPU_SHARED __shared__
#define GPU_LAUNCH(kernel, grid, block, stream, ...) \
  kernel<<<(grid), (block), 0, (stream)>>>(__VA_ARGS__)
namespace hearth::gpu {
using Stream = cudaStream_t;
using Error = cudaError_t;
using DeviceProps = cudaDeviceProp;
constexpr Error kSuccess = cudaSuccess;
constexpr const char* kApiName = "CUDA";
inline const char* ErrorString(Error e) { return cudaGetErrorString(e); }
inline const char* ErrorName(Error e) { return cudaGetErrorName(e); }
inline Error GetDeviceCount(int* n) { return cudaGetDeviceCount(n); }
inline Error GetDeviceProps(DeviceProps* p, int dev) { return cudaGetDeviceProperties(p, dev); }
inline Error SetDevice(int dev) { return cudaSetDevice(dev); }
inline Error MemGetInfo(size_t* free_b, size_t* total_b) { return cudaMemGetInfo(free_b, total_b); }
inline Error Malloc(void** p, size_t n) { return cudaMalloc(p, n); }
inline Error Free(void* p) { return cudaFree(p); }
inline Error StreamCreate(Stream* s) { return cudaStreamCreateWithFlags(s, cudaStreamNonBlocking); }
inline Error StreamDestroy(Stream s) { return cudaStreamDestroy(s); }
inline Error StreamSync(Stream s) { return cudaStreamSynchronize(s); }
inline Error CopyH2D(void* d, const void* h, size_t n, Stream s) {
  return cudaMemcpyAsync(d, h, n, cudaMemcpyHostToDevice, s);
}
inline Error CopyD2H(void* h, const void* d, size_t n, Stream s) {
  return cudaMemcpyAsync(h, d, n, cudaMemcpyDeviceToHost, s);
}
inline Error CopyD2D(void* d, const void* src, size_t n, Stream s) {
  return cudaMemcpyAsync(d, src, n, cudaMemcpyDeviceToDevice, s);
}
inline Error Memset(void* d, int v, size_t n, Stream s) { return cudaMemsetAsync(d, v, n, s); }
inline Error LastError() { return cudaGetLastError(); }
inline const char* DeviceArch(const DeviceProps& p, char* buf, size_t n) {
  std::snprintf(buf, n, "sm_%d%d", p.major, p.minor);
  return buf;
}
// Graph capture: the work enqueued on a stream between BeginCapture and
// EndCapture is recorded, not run, and GraphLaunch replays it (same kernels,
// same arguments; the memory they read may hold new contents).
using GraphExec = cudaGraphExec_t;
constexpr bool kGraphsByDefault = true;
inline Error BeginCapture(Stream s) {
  return cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal);
}
inline Error EndCapture(Stream s, GraphExec* exec) {
  cudaGraph_t g = nullptr;
  Error e = cudaStreamEndCapture(s, &g);
  if (e == cudaSuccess) e = cudaGraphInstantiate(exec, g, 0);
  if (g != nullptr) (void)cudaGraphDestroy(g);
  return e;
}
inline Error GraphLaunch(GraphExec x, Stream s) { return cudaGraphLaunch(x, s); }
inline void GraphExecDestroy(GraphExec x) { (void)cudaGraphExecDestroy(x); }
}  // namespace hearth::gpu

#elif defined(HEARTH_GPU_HIP)
#include <hip/hip_runtime.h>
#define GPU_KERNEL __global__
#define GPU_FN __device__ __forceinline__
#define GPU_HOST_FN __host__ __device__ __forceinline__
#define GPU_SHARED __shared__
#define GPU_LAUNCH(kernel, grid, block, stream, ...) \
  hipLaunchKernelGGL(kernel, (grid), (block), 0, (stream), __VA_ARGS__)
namespace hearth::gpu {
using Stream = hipStream_t;
using Error = hipError_t;
using DeviceProps = hipDeviceProp_t;
constexpr Error kSuccess = hipSuccess;
constexpr const char* kApiName = "HIP";
inline const char* ErrorString(Error e) { return hipGetErrorString(e); }
inline const char* ErrorName(Error e) { return hipGetErrorName(e); }
inline Error GetDeviceCount(int* n) { return hipGetDeviceCount(n); }
inline Error GetDeviceProps(DeviceProps* p, int dev) { return hipGetDeviceProperties(p, dev); }
inline Error SetDevice(int dev) { return hipSetDevice(dev); }
inline Error MemGetInfo(size_t* free_b, size_t* total_b) { return hipMemGetInfo(free_b, total_b); }
inline Error Malloc(void** p, size_t n) { return hipMalloc(p, n); }
inline Error Free(void* p) { return hipFree(p); }
inline Error StreamCreate(Stream* s) { return hipStreamCreateWithFlags(s, hipStreamNonBlocking); }
inline Error StreamDestroy(Stream s) { return hipStreamDestroy(s); }
inline Error StreamSync(Stream s) { return hipStreamSynchronize(s); }
inline Error CopyH2D(void* d, const void* h, size_t n, Stream s) {
  return hipMemcpyAsync(d, h, n, hipMemcpyHostToDevice, s);
}
inline Error CopyD2H(void* h, const void* d, size_t n, Stream s) {
  return hipMemcpyAsync(h, d, n, hipMemcpyDeviceToHost, s);
}
inline Error CopyD2D(void* d, const void* src, size_t n, Stream s) {
  return hipMemcpyAsync(d, src, n, hipMemcpyDeviceToDevice, s);
}
inline Error Memset(void* d, int v, size_t n, Stream s) { return hipMemsetAsync(d, v, n, s); }
inline Error LastError() { return hipGetLastError(); }
inline const char* DeviceArch(const DeviceProps& p, char* buf, size_t n) {
  // gcnArchName is e.g. "gfx90a:sramecc+:xnack-"; the part before ':' names it.
  size_t i = 0;
  for (; i + 1 < n && p.gcnArchName[i] != '\0' && p.gcnArchName[i] != ':'; ++i) {
    buf[i] = p.gcnArchName[i];
  }
  buf[i] = '\0';
  return buf;
}
// Graph capture as on CUDA. Off unless HEARTH_GPU_GRAPHS=1: HIP 5.2 marks
// its graph API beta, and no AMD device has run this plugin yet.
using GraphExec = hipGraphExec_t;
constexpr bool kGraphsByDefault = false;
inline Error BeginCapture(Stream s) {
  return hipStreamBeginCapture(s, hipStreamCaptureModeThreadLocal);
}
inline Error EndCapture(Stream s, GraphExec* exec) {
  hipGraph_t g = nullptr;
  Error e = hipStreamEndCapture(s, &g);
  if (e == hipSuccess) e = hipGraphInstantiate(exec, g, nullptr, nullptr, 0);
  if (g != nullptr) (void)hipGraphDestroy(g);
  return e;
}
inline Error GraphLaunch(GraphExec x, Stream s) { return hipGraphLaunch(x, s); }
inline void GraphExecDestroy(GraphExec x) { (void)hipGraphExecDestroy(x); }
}  // namespace hearth::gpu

#elif defined(HEARTH_GPU_EMU)
#include "backends/gpu/emu_runtime.h"
#define GPU_KERNEL static
#define GPU_FN inline
#define GPU_HOST_FN inline
// All fibers of a block run on one OS thread, blocks one after another: a
// function-level static per OS thread is exactly a block's shared memory.
#define GPU_SHARED static thread_local
// The arguments are converted to the kernel's parameters at the launch, as
// on a GPU, so a recorded launch (graph capture) replays with them.
#define GPU_LAUNCH(kernel, grid, block, stream, ...) \
  ::hearth::gpu::emu::LaunchKernel((grid), (block), (stream), kernel, __VA_ARGS__)

#else
#error "compile backends/gpu with HEARTH_GPU_CUDA, HEARTH_GPU_HIP or HEARTH_GPU_EMU"
#endif

#if defined(HEARTH_GPU_CUDA) || defined(HEARTH_GPU_HIP)
namespace hearth::gpu {
using Dim3 = dim3;
GPU_FN unsigned ThreadX() { return threadIdx.x; }
GPU_FN unsigned BlockX() { return blockIdx.x; }
GPU_FN unsigned BlockY() { return blockIdx.y; }
GPU_FN unsigned BlockDimX() { return blockDim.x; }
GPU_FN unsigned GridDimX() { return gridDim.x; }
GPU_FN void SyncThreads() { __syncthreads(); }
// Raises *flag to at least v (device-side error reporting).
GPU_FN void RaiseFlag(int* flag, int v) { atomicMax(flag, v); }
}  // namespace hearth::gpu
#endif

#endif  // HEARTH_BACKENDS_GPU_GPU_PORT_H_
