// backend.cc — the CPU plugin's handshake, host services, device info,
// contexts and buffers, and its static vtable. Graph work is in
// backend_graph.cc. No exception leaves a vtable slot: each catches and
// turns what it caught into a status.
#include "backends/cpu/backend.h"

#include <sched.h>
#include <sys/sysinfo.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <thread>
#include <unordered_set>

#include "backends/cpu/kernels.h"
#include "backends/cpu/quant_dispatch.h"

#ifndef HEARTH_CPU_PLUGIN_VERSION
#define HEARTH_CPU_PLUGIN_VERSION "0.0.0"
#endif

namespace hearth::cpu {
namespace {

constexpr uint32_t kMaxThreads = 1024;

bool RepackAllowed();

// ------------------------------------------------------------ buffer registry

std::shared_mutex g_buffers_mu;
std::unordered_set<const hearth_pbuffer*>* g_buffers = nullptr;  // under g_buffers_mu

void RegisterBuffer(const hearth_pbuffer* buf) {
  std::unique_lock<std::shared_mutex> lock(g_buffers_mu);
  if (!g_buffers) g_buffers = new std::unordered_set<const hearth_pbuffer*>();
  g_buffers->insert(buf);
}

bool UnregisterBuffer(const hearth_pbuffer* buf) {
  std::unique_lock<std::shared_mutex> lock(g_buffers_mu);
  return g_buffers && g_buffers->erase(buf) == 1;
}

// ------------------------------------------------------------------ device

struct CpuInfo {
  std::string vendor = "unknown";
  std::string model = "unknown CPU";
  int cores = 1;
  std::string description;
  std::string arch;  // "x86-64" plus the ISA level the kernels use
};

int AvailableCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) {
    return CPU_COUNT(&set);
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

std::string CpuinfoField(const std::string& line) {
  size_t colon = line.find(':');
  if (colon == std::string::npos) return "";
  size_t b = line.find_first_not_of(" \t", colon + 1);
  return b == std::string::npos ? "" : line.substr(b);
}

const CpuInfo& GetCpuInfo() {
  static const CpuInfo info = [] {
    CpuInfo ci;
    std::ifstream f("/proc/cpuinfo");
    std::string line;
    bool have_vendor = false, have_model = false;
    while ((!have_vendor || !have_model) && std::getline(f, line)) {
      if (!have_vendor && line.rfind("vendor_id", 0) == 0) {
        std::string v = CpuinfoField(line);
        ci.vendor = v == "AuthenticAMD" ? "AMD" : v == "GenuineIntel" ? "Intel" : v;
        have_vendor = !v.empty();
      } else if (!have_model && line.rfind("model name", 0) == 0) {
        ci.model = CpuinfoField(line);
        have_model = !ci.model.empty();
      }
    }
    ci.cores = AvailableCpus();
    ci.arch = std::string("x86-64+") + KernelIsa();
    ci.description = ci.model + ", " + KernelIsa() + " kernels" +
                     (RepackAllowed() ? ", Q4_0/Q8_0/Q4_K/Q6_K repacked by 8 rows, " : ", ") +
                     std::to_string(ci.cores) + (ci.cores == 1 ? " CPU" : " CPUs");
    return ci;
  }();
  return info;
}

// ------------------------------------------------------------- vtable slots

int32_t Probe(const char** reason) {
  if (reason != nullptr) *reason = "";
  return 1;
}

uint32_t DeviceCount() { return 1; }

hearth_pstatus DeviceInfo(uint32_t device, hearth_pdevice_info* out) try {
  if (out == nullptr) return Fail(HEARTH_P_INVALID_ARGUMENT, "cpu device_info: out is NULL");
  if (device != 0) {
    return Fail(HEARTH_P_NOT_FOUND, StrFormat("cpu device_info: device %u does not exist (the cpu "
                                              "plugin has 1 device, index 0)",
                                              device));
  }
  const CpuInfo& ci = GetCpuInfo();
  struct sysinfo si;
  uint64_t total = 0, free_bytes = 0;
  if (sysinfo(&si) == 0) {
    total = static_cast<uint64_t>(si.totalram) * si.mem_unit;
    free_bytes = (static_cast<uint64_t>(si.freeram) + si.bufferram) * si.mem_unit;
  }
  hearth_pdevice_info info{};
  info.struct_size = sizeof(info);
  info.name = "cpu";
  info.vendor = ci.vendor.c_str();
  info.description = ci.description.c_str();
  info.memory_total = total;
  info.memory_free = free_bytes;
  info.host_visible = 1;
  info.simd_width = KernelSimdWidth();
  info.arch = ci.arch.c_str();
  info.compute_units = static_cast<uint32_t>(ci.cores);
  // The caller's struct may be older (smaller) than ours: fill what it has.
  uint32_t n = out->struct_size < sizeof(info) ? out->struct_size : sizeof(info);
  if (n <= sizeof(uint32_t)) {
    return Fail(HEARTH_P_INVALID_ARGUMENT,
                StrFormat("cpu device_info: out->struct_size is %u; set it to "
                          "sizeof(hearth_pdevice_info)",
                          out->struct_size));
  }
  std::memcpy(reinterpret_cast<uint8_t*>(out) + sizeof(uint32_t),
              reinterpret_cast<const uint8_t*>(&info) + sizeof(uint32_t), n - sizeof(uint32_t));
  return HEARTH_P_OK;
} catch (const std::exception& e) {
  return Fail(HEARTH_P_INTERNAL, std::string("cpu device_info: ") + e.what());
}

void ContextFree(hearth_pcontext* ctx) {
  if (ctx == nullptr) return;
  HostFree(ctx->scratch);
  delete ctx;  // joins the pool's workers
}

hearth_pstatus ContextCreate(const hearth_pcontext_options* options, hearth_pcontext** out) try {
  if (out == nullptr) return Fail(HEARTH_P_INVALID_ARGUMENT, "cpu context_create: out is NULL");
  uint32_t device = 0, n_threads = 0;
  if (options != nullptr) {
    if (HEARTH_PLUGIN_HAS_SLOT(options, hearth_pcontext_options, device)) device = options->device;
    if (HEARTH_PLUGIN_HAS_SLOT(options, hearth_pcontext_options, n_threads)) {
      n_threads = options->n_threads;
    }
  }
  if (device != 0) {
    return Fail(HEARTH_P_NOT_FOUND, StrFormat("cpu context_create: device %u does not exist (the "
                                              "cpu plugin has 1 device, index 0)",
                                              device));
  }
  if (n_threads > kMaxThreads) {
    return Fail(HEARTH_P_INVALID_ARGUMENT,
                StrFormat("cpu context_create: n_threads %u is more than the %u supported",
                          n_threads, kMaxThreads));
  }
  if (n_threads == 0) n_threads = static_cast<uint32_t>(AvailableCpus());
  auto ctx = std::make_unique<hearth_pcontext>();
  ctx->n_threads = static_cast<int>(n_threads);
  std::string error;
  ctx->pool = ThreadPool::Create(ctx->n_threads, &error);
  if (!ctx->pool) return Fail(HEARTH_P_RESOURCE_EXHAUSTED, "cpu context_create: " + error);
  ctx->dnnl = DnnlMatMul::Create(&error);
  if (!ctx->dnnl) {
    Log(HEARTH_LOG_WARN, "cpu: " + error + "; dense products fall back to the built-in kernels");
  }
  Log(HEARTH_LOG_INFO,
      StrFormat("cpu: context with %d threads, %s kernels", ctx->n_threads, KernelIsa()));
  *out = ctx.release();
  return HEARTH_P_OK;
} catch (const std::bad_alloc&) {
  return Fail(HEARTH_P_RESOURCE_EXHAUSTED, "cpu context_create: out of memory");
} catch (const std::exception& e) {
  return Fail(HEARTH_P_INTERNAL, std::string("cpu context_create: ") + e.what());
}

hearth_pstatus BufferAlloc(hearth_pcontext* ctx, uint64_t size, hearth_pbuffer** out) try {
  if (ctx == nullptr || out == nullptr) {
    return Fail(HEARTH_P_INVALID_ARGUMENT, "cpu buffer_alloc: ctx or out is NULL");
  }
  if (size > (uint64_t{1} << 48)) {
    return Fail(HEARTH_P_RESOURCE_EXHAUSTED,
                StrFormat("cpu buffer_alloc: %llu bytes is more than any CPU can hold",
                          static_cast<unsigned long long>(size)));
  }
  // Round up to whole cache lines so SIMD tails never touch a neighbour.
  size_t bytes = static_cast<size_t>((size + 63) & ~uint64_t{63});
  if (bytes == 0) bytes = 64;
  void* mem = HostAlloc(bytes, 64);
  if (mem == nullptr) {
    return Fail(HEARTH_P_RESOURCE_EXHAUSTED,
                StrFormat("cpu buffer_alloc: cannot allocate %llu bytes",
                          static_cast<unsigned long long>(size)));
  }
  auto* buf = new hearth_pbuffer;
  buf->data = static_cast<uint8_t*>(mem);
  buf->size = size;
  buf->owned = true;
  RegisterBuffer(buf);
  *out = buf;
  return HEARTH_P_OK;
} catch (const std::bad_alloc&) {
  return Fail(HEARTH_P_RESOURCE_EXHAUSTED, "cpu buffer_alloc: out of memory");
}

void BufferFree(hearth_pcontext*, hearth_pbuffer* buf) {
  if (buf == nullptr) return;
  if (!UnregisterBuffer(buf)) {
    Log(HEARTH_LOG_ERROR,
        StrFormat("cpu buffer_free: %p is not a live buffer; ignored", static_cast<void*>(buf)));
    return;
  }
  if (buf->owned) HostFree(buf->data);
  delete buf;
}

hearth_pstatus BufferWrapHost(hearth_pcontext* ctx, void* ptr, uint64_t size,
                              hearth_pbuffer** out) try {
  if (ctx == nullptr || out == nullptr) {
    return Fail(HEARTH_P_INVALID_ARGUMENT, "cpu buffer_wrap_host: ctx or out is NULL");
  }
  if (ptr == nullptr && size > 0) {
    return Fail(HEARTH_P_INVALID_ARGUMENT,
                StrFormat("cpu buffer_wrap_host: ptr is NULL but size is %llu",
                          static_cast<unsigned long long>(size)));
  }
  if (size > UINTPTR_MAX - reinterpret_cast<uintptr_t>(ptr)) {
    return Fail(HEARTH_P_INVALID_ARGUMENT,
                StrFormat("cpu buffer_wrap_host: %p + %llu bytes wraps around "
                          "the address space",
                          ptr, static_cast<unsigned long long>(size)));
  }
  auto* buf = new hearth_pbuffer;
  buf->data = static_cast<uint8_t*>(ptr);
  buf->size = size;
  buf->owned = false;
  RegisterBuffer(buf);
  *out = buf;
  return HEARTH_P_OK;
} catch (const std::bad_alloc&) {
  return Fail(HEARTH_P_RESOURCE_EXHAUSTED, "cpu buffer_wrap_host: out of memory");
}

// Checks buf, data and [offset, offset + size) for upload/download.
hearth_pstatus CheckTransfer(const char* what, hearth_pcontext* ctx, const hearth_pbuffer* buf,
                             uint64_t offset, const void* data, uint64_t size) {
  if (ctx == nullptr)
    return Fail(HEARTH_P_INVALID_ARGUMENT, StrFormat("cpu %s: ctx is NULL", what));
  if (buf == nullptr || !BufferIsLive(buf)) {
    return Fail(HEARTH_P_INVALID_ARGUMENT,
                StrFormat("cpu %s: %p is not a live buffer", what, static_cast<const void*>(buf)));
  }
  if (data == nullptr && size > 0) {
    return Fail(HEARTH_P_INVALID_ARGUMENT, StrFormat("cpu %s: data is NULL but size is %llu", what,
                                                     static_cast<unsigned long long>(size)));
  }
  if (offset > UINT64_MAX - size) {
    return Fail(HEARTH_P_OUT_OF_RANGE, StrFormat("cpu %s: offset %llu + size %llu overflows", what,
                                                 static_cast<unsigned long long>(offset),
                                                 static_cast<unsigned long long>(size)));
  }
  if (buf->layout != WeightLayout::kPlain) {
    return Fail(HEARTH_P_INVALID_ARGUMENT,
                StrFormat("cpu %s: buffer %p holds a weight repacked by weight_place; it cannot "
                          "be read, written or copied",
                          what, static_cast<const void*>(buf)));
  }
  if (offset + size > buf->size) {
    return Fail(HEARTH_P_OUT_OF_RANGE,
                StrFormat("cpu %s: offset %llu + size %llu is past the end of the buffer "
                          "(%llu bytes)",
                          what, static_cast<unsigned long long>(offset),
                          static_cast<unsigned long long>(size),
                          static_cast<unsigned long long>(buf->size)));
  }
  return HEARTH_P_OK;
}

hearth_pstatus BufferUpload(hearth_pcontext* ctx, hearth_pbuffer* buf, uint64_t offset,
                            const void* data, uint64_t size) {
  hearth_pstatus st = CheckTransfer("buffer_upload", ctx, buf, offset, data, size);
  if (st != HEARTH_P_OK) return st;
  if (size > 0) std::memmove(buf->data + offset, data, static_cast<size_t>(size));
  return HEARTH_P_OK;
}

hearth_pstatus BufferDownload(hearth_pcontext* ctx, const hearth_pbuffer* buf, uint64_t offset,
                              void* data, uint64_t size) {
  hearth_pstatus st = CheckTransfer("buffer_download", ctx, buf, offset, data, size);
  if (st != HEARTH_P_OK) return st;
  if (size > 0) std::memmove(data, buf->data + offset, static_cast<size_t>(size));
  return HEARTH_P_OK;
}

void* BufferHostPtr(hearth_pcontext*, hearth_pbuffer* buf) {
  return buf != nullptr && BufferIsLive(buf) && buf->layout == WeightLayout::kPlain ? buf->data
                                                                                    : nullptr;
}

hearth_pstatus BufferCopy(hearth_pcontext* ctx, const hearth_pbuffer* src, uint64_t src_offset,
                          hearth_pbuffer* dst, uint64_t dst_offset, uint64_t size) {
  hearth_pstatus st = CheckTransfer("buffer_copy (source)", ctx, src, src_offset, src, size);
  if (st != HEARTH_P_OK) return st;
  st = CheckTransfer("buffer_copy (destination)", ctx, dst, dst_offset, dst, size);
  if (st != HEARTH_P_OK) return st;
  if (size > 0) std::memmove(dst->data + dst_offset, src->data + src_offset, size);
  return HEARTH_P_OK;
}

// Whether weight_place may repack: the active kernels read the repacked
// layouts natively from AVX2 up (a scalar fallback exists for tests that
// lower the ISA later), and HEARTH_CPU_REPACK=0 keeps every weight plain.
bool RepackAllowed() {
  static const bool allowed = [] {
    const char* v = std::getenv("HEARTH_CPU_REPACK");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return allowed && ActiveIsa() >= Isa::kAvx2;
}

// Weights stay where the host mapped them when it lets us (zero copy) or
// are copied once; a 2-D Q4_0, Q8_0, Q4_K or Q6_K matrix whose rows come in
// whole groups of 8 (the multiplied ones: every projection, a tied
// embedding) is repacked into its x8 layout (kernels.h) instead, unless
// HEARTH_CPU_REPACK=0. Q4_0, Q8_0 and Q6_K keep their size; Q4_K takes 148
// bytes per 256 elements instead of 144.
hearth_pstatus WeightPlace(hearth_pcontext* ctx, const hearth_pweight* w, hearth_pbuffer** out,
                           uint32_t* repacked) try {
  if (ctx == nullptr || w == nullptr || out == nullptr || repacked == nullptr) {
    return Fail(HEARTH_P_INVALID_ARGUMENT, "cpu weight_place: an argument is NULL");
  }
  if (!HEARTH_PLUGIN_HAS_SLOT(w, hearth_pweight, data_outlives)) {
    return Fail(HEARTH_P_INVALID_ARGUMENT,
                StrFormat("cpu weight_place: w->struct_size is %u; want %zu", w->struct_size,
                          sizeof(hearth_pweight)));
  }
  const char* name = w->name != nullptr ? w->name : "(unnamed)";
  plugin::DescView v;
  std::string why;
  hearth_tensor_desc d = w->desc;
  d.offset = 0;
  if (!plugin::CheckDesc(d, w->size, &v, &why)) {
    return Fail(HEARTH_P_INVALID_ARGUMENT,
                StrFormat("cpu weight_place: %s: %s", name, why.c_str()));
  }
  *repacked = 0;
  const int64_t rows = v.ne[1] * v.ne[2] * v.ne[3];
  const WeightLayout layout =
      (w->usage & HEARTH_WEIGHT_USE_MATMUL) != 0 && v.ne[2] == 1 && v.ne[3] == 1 && RepackAllowed()
          ? RepackLayoutFor(v.dtype, v.ne[0], rows, v.nb[1])
          : WeightLayout::kPlain;
  if (layout != WeightLayout::kPlain &&
      static_cast<uint64_t>(rows) * static_cast<uint64_t>(v.nb[1]) == w->size) {
    const int64_t layout_row_bytes = LayoutRowBytes(layout, v.dtype, v.ne[0]);
    hearth_pbuffer* buf = nullptr;
    hearth_pstatus st = BufferAlloc(
        ctx, static_cast<uint64_t>(rows) * static_cast<uint64_t>(layout_row_bytes), &buf);
    if (st != HEARTH_P_OK) return st;
    // Groups of rows split over the context's threads (an 8B model's
    // matrices are gigabytes).
    const int64_t groups = rows / kX8Rows;
    const int nth =
        static_cast<int>(std::min<int64_t>(ctx->n_threads, std::max<int64_t>(groups / 64, 1)));
    ctx->pool->Run(nth, [&](int ith, int n) {
      const int64_t g0 = groups * ith / n, g1 = groups * (ith + 1) / n;
      RepackWeight(layout, v.dtype, static_cast<const uint8_t*>(w->data) + g0 * kX8Rows * v.nb[1],
                   v.nb[1], (g1 - g0) * kX8Rows, buf->data + g0 * kX8Rows * layout_row_bytes);
    });
    buf->layout = layout;
    buf->row_bytes = v.nb[1];
    buf->layout_row_bytes = layout_row_bytes;
    *repacked = 1;
    *out = buf;
    return HEARTH_P_OK;
  }
  if (w->data_outlives) {
    return BufferWrapHost(ctx, const_cast<void*>(w->data), w->size, out);
  }
  hearth_pbuffer* buf = nullptr;
  hearth_pstatus st = BufferAlloc(ctx, w->size, &buf);
  if (st != HEARTH_P_OK) return st;
  if (w->size > 0) std::memcpy(buf->data, w->data, w->size);
  *out = buf;
  return HEARTH_P_OK;
} catch (const std::bad_alloc&) {
  return Fail(HEARTH_P_RESOURCE_EXHAUSTED, "cpu weight_place: out of memory");
}

const hearth_backend_vtable kVtable = {
    sizeof(hearth_backend_vtable),
    Probe,
    DeviceCount,
    DeviceInfo,
    ContextCreate,
    ContextFree,
    BufferAlloc,
    BufferFree,
    BufferWrapHost,
    BufferUpload,
    BufferDownload,
    BufferHostPtr,
    Supports,
    GraphCompute,
    BufferCopy,
    WeightPlace,
};

}  // namespace

BufferRegistryReader::BufferRegistryReader() { g_buffers_mu.lock_shared(); }
BufferRegistryReader::~BufferRegistryReader() { g_buffers_mu.unlock_shared(); }
bool BufferRegistryReader::Contains(const hearth_pbuffer* buf) const {
  return g_buffers && g_buffers->count(buf) == 1;
}

bool BufferIsLive(const hearth_pbuffer* buf) {
  BufferRegistryReader reader;
  return reader.Contains(buf);
}

const hearth_backend_vtable* BackendVtable() { return &kVtable; }

hearth_pstatus PluginInit(hearth_plugin_init_info* info) {
  return plugin::Handshake(
      info, {"cpu", HEARTH_CPU_PLUGIN_VERSION, HEARTH_PLUGIN_KIND_BACKEND, &kVtable});
}

}  // namespace hearth::cpu
