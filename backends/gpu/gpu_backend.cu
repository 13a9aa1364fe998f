// gpu_backend.cu — the backend vtable shared by the CUDA and ROCm plugins
// (and the test emulator): devices, contexts, device buffers, and
// graph_compute/supports over the ops of gpu_kernels.cu. Each plugin adds
// only its entry point (backends/cuda, backends/rocm). Every descriptor and
// node is checked on the host before anything is enqueued; ids that only the
// device reads (GET_ROWS) are checked there and reported after the graph.
// No exception leaves a vtable slot.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "backends/common/plugin_common.h"
#include "backends/gpu/gpu_backend.h"
#include "backends/gpu/gpu_kernels.h"
#include "backends/gpu/gpu_ops.h"

struct hearth_pbuffer {
  uint8_t* dev = nullptr;
  uint64_t size = 0;
  uint32_t device = 0;
};

namespace hearth::gpu {

// Captured graphs of a context, by hearth_graph.binding_key. Decode brings
// the same graph step after step (same nodes, params, buffers and offsets;
// only the contents of token ids, positions and caches change), so the
// second time a key comes its work is captured, and from the third on it is
// replayed with one launch: no node checks, no per-kernel launch cost.
// Keys whose capture failed are run node by node from then on.
class GraphCache {
 public:
  static constexpr size_t kMaxGraphs = 16;  // least recently used ones go
  static constexpr size_t kRemembered = 64;  // keys seen once, and refused ones

  GraphCache() = default;
  GraphCache(const GraphCache&) = delete;
  GraphCache& operator=(const GraphCache&) = delete;
  ~GraphCache() { Clear(); }

  // The captured graph of key, or null.
  const GraphExec* Find(uint64_t key) {
    for (Entry& e : graphs_) {
      if (e.key == key) {
        e.used = ++clock_;
        return &e.exec;
      }
    }
    return nullptr;
  }
  // Whether key came before (and may be captured now); remembers it if not.
  bool SeenBefore(uint64_t key) {
    if (Contains(refused_, key)) return false;
    if (Contains(seen_, key)) return true;
    Remember(&seen_, key);
    return false;
  }
  void Refuse(uint64_t key) { Remember(&refused_, key); }
  void Add(uint64_t key, GraphExec exec) {
    if (graphs_.size() == kMaxGraphs) {
      auto lru = std::min_element(graphs_.begin(), graphs_.end(),
                                  [](const Entry& a, const Entry& b) { return a.used < b.used; });
      GraphExecDestroy(lru->exec);
      graphs_.erase(lru);
    }
    graphs_.push_back({key, exec, ++clock_});
  }
  // Drops every captured graph (they name the old workspace, or the context
  // goes); the device must be current.
  void Clear() {
    for (Entry& e : graphs_) GraphExecDestroy(e.exec);
    graphs_.clear();
  }

 private:
  struct Entry {
    uint64_t key;
    GraphExec exec;
    uint64_t used;
  };
  static bool Contains(const std::vector<uint64_t>& v, uint64_t key) {
    return std::find(v.begin(), v.end(), key) != v.end();
  }
  static void Remember(std::vector<uint64_t>* v, uint64_t key) {
    if (v->size() == kRemembered) v->erase(v->begin());
    v->push_back(key);
  }
  std::vector<Entry> graphs_;
  std::vector<uint64_t> seen_, refused_;
  uint64_t clock_ = 0;
};

}  // namespace hearth::gpu

struct hearth_pcontext {
  uint32_t device = 0;
  hearth::gpu::Stream stream{};
  int* flag = nullptr;  // device int: GET_ROWS' bad-id report
  // Device workspace of the nodes that need one (split-K attention), grown
  // to the largest need and kept.
  void* work = nullptr;
  int64_t work_bytes = 0;
  // The nodes of the graph being run, kept between calls so a decode step
  // does not allocate (and fault in) a fresh array of them each time.
  std::vector<hearth::gpu::Prepared> prepared;
  hearth::gpu::GraphCache graphs;
};

namespace hearth::gpu {
namespace {

using plugin::Fail;
using plugin::StrFormat;

// ------------------------------------------------------------------ devices

struct DeviceRecord {
  std::string name, description, arch;
  uint64_t memory = 0;
  uint32_t simd_width = 0, compute_units = 0;
};

struct Devices {
  std::vector<DeviceRecord> list;
  std::string reason;  // why there are none
};

const char* g_plugin_name = "gpu";

const Devices& GetDevices() {
  static const Devices* devices = [] {
    auto* d = new Devices();
    int n = 0;
    const Error e = GetDeviceCount(&n);
    if (e != kSuccess) {
      d->reason = StrFormat("%s runtime found no usable device (%s: %s)", kApiName, ErrorName(e),
                            ErrorString(e));
      (void)LastError();  // clear the sticky error for later calls
      return d;
    }
    if (n <= 0) {
      d->reason = StrFormat("%s runtime loaded, 0 devices", kApiName);
      return d;
    }
    for (int i = 0; i < n; ++i) {
      DeviceProps p;
      if (GetDeviceProps(&p, i) != kSuccess) continue;
      DeviceRecord r;
      r.name = StrFormat("%s:%d", g_plugin_name, i);
      char arch[64];
      r.arch = DeviceArch(p, arch, sizeof(arch));
      r.description = p.name;
      r.memory = p.totalGlobalMem;
      r.simd_width = static_cast<uint32_t>(p.warpSize);
      r.compute_units = static_cast<uint32_t>(p.multiProcessorCount);
      d->list.push_back(r);
    }
    if (d->list.empty()) d->reason = StrFormat("%s: no device answered", kApiName);
    return d;
  }();
  return *devices;
}

int32_t Probe(const char** reason) {
  const Devices& d = GetDevices();
  if (d.list.empty()) {
    if (reason != nullptr) *reason = d.reason.c_str();
    return 0;
  }
  return 10;  // a GPU beats the CPU plugin (1) when one is there
}

uint32_t DeviceCount() { return static_cast<uint32_t>(GetDevices().list.size()); }

hearth_pstatus DeviceInfo(uint32_t device, hearth_pdevice_info* out) {
  const Devices& d = GetDevices();
  if (out == nullptr) return Fail(HEARTH_P_INVALID_ARGUMENT, "device_info: out is NULL");
  if (device >= d.list.size()) {
    return Fail(HEARTH_P_NOT_FOUND, StrFormat("%s device_info: device %u does not exist (%zu)",
                                              g_plugin_name, device, d.list.size()));
  }
  const DeviceRecord& r = d.list[device];
  const uint32_t size = out->struct_size;
  hearth_pdevice_info info{};
  info.struct_size = sizeof(info);
  info.name = r.name.c_str();
  info.vendor = kApiName[0] == 'C' ? "NVIDIA" : kApiName[0] == 'H' ? "AMD" : "hearth";
  info.description = r.description.c_str();
  info.memory_total = r.memory;
  size_t free_b = 0, total_b = 0;
  if (SetDevice(static_cast<int>(device)) == kSuccess &&
      MemGetInfo(&free_b, &total_b) == kSuccess) {
    info.memory_free = free_b;
  }
  info.host_visible = 0;
  info.simd_width = r.simd_width;
  info.arch = r.arch.c_str();
  info.compute_units = r.compute_units;
  std::memcpy(out, &info, size < sizeof(info) ? size : sizeof(info));
  out->struct_size = size;
  return HEARTH_P_OK;
}

// ------------------------------------------------------------------ buffers

std::shared_mutex g_buffers_mu;
std::unordered_set<const hearth_pbuffer*>* g_buffers = nullptr;  // under g_buffers_mu

bool BufferIsLive(const hearth_pbuffer* b) {
  std::shared_lock<std::shared_mutex> lock(g_buffers_mu);
  return b != nullptr && g_buffers != nullptr && g_buffers->count(b) == 1;
}

hearth_pstatus RuntimeFail(const char* what, uint32_t device, Error e) {
  (void)LastError();
  const hearth_pstatus code =
      std::strstr(ErrorName(e), "Memory") != nullptr || std::strstr(ErrorName(e), "OutOfMemory")
          ? HEARTH_P_RESOURCE_EXHAUSTED
          : HEARTH_P_UNAVAILABLE;
  return Fail(code, StrFormat("%s:%u %s: %s (%s)", g_plugin_name, device, what, ErrorString(e),
                              ErrorName(e)));
}

void ContextFree(hearth_pcontext* ctx) {
  if (ctx == nullptr) return;
  (void)SetDevice(static_cast<int>(ctx->device));
  ctx->graphs.Clear();
  if (ctx->flag != nullptr) (void)Free(ctx->flag);
  if (ctx->work != nullptr) (void)Free(ctx->work);
  (void)StreamDestroy(ctx->stream);
  delete ctx;
}

hearth_pstatus ContextCreate(const hearth_pcontext_options* options, hearth_pcontext** out) try {
  if (out == nullptr) return Fail(HEARTH_P_INVALID_ARGUMENT, "context_create: out is NULL");
  uint32_t device = 0;
  if (options != nullptr && HEARTH_PLUGIN_HAS_SLOT(options, hearth_pcontext_options, device)) {
    device = options->device;
  }
  if (device >= DeviceCount()) {
    return Fail(
        HEARTH_P_NOT_FOUND,
        StrFormat("%s context_create: device %u does not exist (%u devices%s%s)", g_plugin_name,
                  device, DeviceCount(), DeviceCount() ? "" : ": ", GetDevices().reason.c_str()));
  }
  auto ctx = std::make_unique<hearth_pcontext>();
  ctx->device = device;
  Error e = SetDevice(static_cast<int>(device));
  if (e != kSuccess) return RuntimeFail("context_create (set device)", device, e);
  e = StreamCreate(&ctx->stream);
  if (e != kSuccess) return RuntimeFail("context_create (stream)", device, e);
  void* flag = nullptr;
  e = Malloc(&flag, sizeof(int));
  if (e != kSuccess) {
    (void)StreamDestroy(ctx->stream);
    return RuntimeFail("context_create (flag)", device, e);
  }
  ctx->flag = static_cast<int*>(flag);
  *out = ctx.release();
  return HEARTH_P_OK;
} catch (const std::bad_alloc&) {
  return Fail(HEARTH_P_RESOURCE_EXHAUSTED, "context_create: out of memory");
}

hearth_pstatus BufferAlloc(hearth_pcontext* ctx, uint64_t size, hearth_pbuffer** out) try {
  if (ctx == nullptr || out == nullptr) {
    return Fail(HEARTH_P_INVALID_ARGUMENT, "buffer_alloc: ctx or out is NULL");
  }
  if (size > (uint64_t{1} << 48)) {
    return Fail(HEARTH_P_RESOURCE_EXHAUSTED,
                StrFormat("%s:%u buffer_alloc: %llu bytes is more than any device holds",
                          g_plugin_name, ctx->device, static_cast<unsigned long long>(size)));
  }
  (void)SetDevice(static_cast<int>(ctx->device));
  void* mem = nullptr;
  const uint64_t bytes = size == 0 ? 256 : (size + 255) / 256 * 256;
  const Error e = Malloc(&mem, static_cast<size_t>(bytes));
  if (e != kSuccess || mem == nullptr) {
    (void)LastError();
    return Fail(HEARTH_P_RESOURCE_EXHAUSTED,
                StrFormat("%s:%u buffer_alloc: cannot allocate %llu bytes of device memory (%s)",
                          g_plugin_name, ctx->device, static_cast<unsigned long long>(size),
                          ErrorString(e)));
  }
  auto buf = std::make_unique<hearth_pbuffer>();
  buf->dev = static_cast<uint8_t*>(mem);
  buf->size = size;
  buf->device = ctx->device;
  {
    std::unique_lock<std::shared_mutex> lock(g_buffers_mu);
    if (g_buffers == nullptr) g_buffers = new std::unordered_set<const hearth_pbuffer*>();
    g_buffers->insert(buf.get());
  }
  *out = buf.release();
  return HEARTH_P_OK;
} catch (const std::bad_alloc&) {
  return Fail(HEARTH_P_RESOURCE_EXHAUSTED, "buffer_alloc: out of host memory");
}

void BufferFree(hearth_pcontext*, hearth_pbuffer* buf) {
  if (buf == nullptr) return;
  {
    std::unique_lock<std::shared_mutex> lock(g_buffers_mu);
    if (g_buffers == nullptr || g_buffers->erase(buf) != 1) {
      plugin::Log(HEARTH_LOG_ERROR, StrFormat("%s buffer_free: %p is not a live buffer; ignored",
                                              g_plugin_name, static_cast<void*>(buf)));
      return;
    }
  }
  (void)SetDevice(static_cast<int>(buf->device));
  (void)Free(buf->dev);
  delete buf;
}

hearth_pstatus CheckRange(const char* what, hearth_pcontext* ctx, const hearth_pbuffer* buf,
                          uint64_t offset, const void* data, uint64_t size) {
  if (ctx == nullptr) return Fail(HEARTH_P_INVALID_ARGUMENT, StrFormat("%s: ctx is NULL", what));
  if (!BufferIsLive(buf)) {
    return Fail(HEARTH_P_INVALID_ARGUMENT,
                StrFormat("%s %s: %p is not a live buffer", g_plugin_name, what,
                          static_cast<const void*>(buf)));
  }
  if (buf->device != ctx->device) {
    return Fail(HEARTH_P_INVALID_ARGUMENT,
                StrFormat("%s %s: the buffer lives on device %u, the context on %u", g_plugin_name,
                          what, buf->device, ctx->device));
  }
  if (data == nullptr && size > 0) {
    return Fail(HEARTH_P_INVALID_ARGUMENT, StrFormat("%s: data is NULL but size is %llu", what,
                                                     static_cast<unsigned long long>(size)));
  }
  if (offset > UINT64_MAX - size || offset + size > buf->size) {
    return Fail(
        HEARTH_P_OUT_OF_RANGE,
        StrFormat("%s: offset %llu + size %llu is past the end of the buffer (%llu bytes)", what,
                  static_cast<unsigned long long>(offset), static_cast<unsigned long long>(size),
                  static_cast<unsigned long long>(buf->size)));
  }
  return HEARTH_P_OK;
}

hearth_pstatus Finish(hearth_pcontext* ctx, const char* what, Error e) {
  if (e == kSuccess) e = StreamSync(ctx->stream);
  return e == kSuccess ? HEARTH_P_OK : RuntimeFail(what, ctx->device, e);
}

hearth_pstatus BufferUpload(hearth_pcontext* ctx, hearth_pbuffer* buf, uint64_t offset,
                            const void* data, uint64_t size) {
  hearth_pstatus st = CheckRange("buffer_upload", ctx, buf, offset, data, size);
  if (st != HEARTH_P_OK || size == 0) return st;
  (void)SetDevice(static_cast<int>(ctx->device));
  return Finish(ctx, "buffer_upload", CopyH2D(buf->dev + offset, data, size, ctx->stream));
}

hearth_pstatus BufferDownload(hearth_pcontext* ctx, const hearth_pbuffer* buf, uint64_t offset,
                              void* data, uint64_t size) {
  hearth_pstatus st = CheckRange("buffer_download", ctx, buf, offset, data, size);
  if (st != HEARTH_P_OK || size == 0) return st;
  (void)SetDevice(static_cast<int>(ctx->device));
  return Finish(ctx, "buffer_download", CopyD2H(data, buf->dev + offset, size, ctx->stream));
}

void* BufferHostPtr(hearth_pcontext*, hearth_pbuffer*) { return nullptr; }

hearth_pstatus BufferCopy(hearth_pcontext* ctx, const hearth_pbuffer* src, uint64_t src_offset,
                          hearth_pbuffer* dst, uint64_t dst_offset, uint64_t size) {
  hearth_pstatus st = CheckRange("buffer_copy (source)", ctx, src, src_offset, src, size);
  if (st != HEARTH_P_OK) return st;
  st = CheckRange("buffer_copy (destination)", ctx, dst, dst_offset, dst, size);
  if (st != HEARTH_P_OK || size == 0) return st;
  (void)SetDevice(static_cast<int>(ctx->device));
  const uint8_t* s = src->dev + src_offset;
  uint8_t* d = dst->dev + dst_offset;
  if (s == d) return HEARTH_P_OK;
  if (s < d + size && d < s + size) {
    // Overlapping ranges of one buffer copy as memmove: through a bounce
    // buffer of the device.
    void* tmp = nullptr;
    Error e = Malloc(&tmp, static_cast<size_t>(size));
    if (e != kSuccess) return RuntimeFail("buffer_copy (bounce buffer)", ctx->device, e);
    e = CopyD2D(tmp, s, size, ctx->stream);
    if (e == kSuccess) e = CopyD2D(d, tmp, size, ctx->stream);
    const hearth_pstatus r = Finish(ctx, "buffer_copy", e);
    (void)Free(tmp);
    return r;
  }
  return Finish(ctx, "buffer_copy", CopyD2D(d, s, size, ctx->stream));
}

// ------------------------------------------------------------------- graphs

// shapes_only (supports()): dtype and shape alone, as the host asks about
// graphs over placeholder descriptors; buffers are not looked at.
bool Resolve(const hearth_graph* g, int32_t id, uint32_t device, TRef* t, std::string* why,
             bool shapes_only) {
  if (id < 0 || static_cast<uint32_t>(id) >= g->n_tensors) {
    *why = StrFormat("tensor index %d is out of range (graph has %u tensors)", id, g->n_tensors);
    return false;
  }
  const hearth_tensor_desc& d = g->tensors[id];
  if (shapes_only) {
    plugin::DescView v;
    if (!plugin::CheckDesc(d, UINT64_MAX, &v, why)) {
      *why = StrFormat("tensor %d: ", id) + *why;
      return false;
    }
    t->data = nullptr;
    t->dtype = v.dtype;
    for (int i = 0; i < 4; ++i) {
      t->ne[i] = v.ne[i];
      t->nb[i] = v.nb[i];
    }
    t->span = v.span;
    return true;
  }
  if (!BufferIsLive(d.buffer)) {
    *why = StrFormat("tensor %d: buffer %p is not a live buffer of the %s plugin", id,
                     static_cast<void*>(d.buffer), g_plugin_name);
    return false;
  }
  if (d.buffer->device != device) {
    *why = StrFormat("tensor %d lives on device %u; the context runs device %u", id,
                     d.buffer->device, device);
    return false;
  }
  plugin::DescView v;
  if (!plugin::CheckDesc(d, d.buffer->size, &v, why)) {
    *why = StrFormat("tensor %d: ", id) + *why;
    return false;
  }
  t->data = d.buffer->dev + d.offset;
  t->dtype = v.dtype;
  for (int i = 0; i < 4; ++i) {
    t->ne[i] = v.ne[i];
    t->nb[i] = v.nb[i];
  }
  t->span = v.span;
  return true;
}

using ops::Overlap;

bool SameView(const TRef& a, const TRef& b) {
  if (a.data != b.data || a.dtype != b.dtype) return false;
  for (int i = 0; i < 4; ++i) {
    if (a.ne[i] != b.ne[i] || (a.ne[i] > 1 && a.nb[i] != b.nb[i])) return false;
  }
  return true;
}

// Checks node `index` and fills *p: its tensors resolved, the overlap rules,
// then its op family's contract. false with *why (the contract, or what this
// plugin does not implement yet).
bool Prepare(hearth_pcontext* ctx, const hearth_graph* g, uint32_t index, Prepared* p,
             std::string* why, bool shapes_only) {
  const hearth_node& n = g->nodes[index];
  const char* name = plugin::OpName(n.op);
  OpArity ar;
  if (!ArityOf(n.op, &ar)) {
    *why = StrFormat("op %u (%s) is not implemented by the %s plugin", n.op, name, g_plugin_name);
    return false;
  }
  if (n.n_inputs < ar.n_in || n.n_inputs > ar.n_in + ar.n_opt || n.n_extra_outputs < ar.n_extra ||
      n.n_extra_outputs > ar.n_extra + ar.n_extra_opt) {
    *why = StrFormat(
        "%s: %u inputs and %u extra outputs given; it takes %d to %d inputs and %d "
        "to %d extra outputs",
        name, n.n_inputs, n.n_extra_outputs, ar.n_in, ar.n_in + ar.n_opt, ar.n_extra,
        ar.n_extra + ar.n_extra_opt);
    return false;
  }
  p->op = n.op;
  p->index = index;
  if (!Resolve(g, n.output, ctx->device, &p->out, why, shapes_only)) return false;
  for (int i = 0; i < ar.n_in + ar.n_opt; ++i) {
    const int32_t id = plugin::NodeInput(g, n, static_cast<uint32_t>(i));
    if (id < 0) {
      if (i < ar.n_in) {
        *why = StrFormat("%s: input %d is required", name, i);
        return false;
      }
      continue;
    }
    if (!Resolve(g, id, ctx->device, &p->in[i], why, shapes_only)) return false;
    p->has[i] = true;
  }
  for (int i = 0; i < n.n_extra_outputs; ++i) {
    const int32_t id = plugin::NodeOutput(g, n, static_cast<uint32_t>(i + 1));
    if (id < 0) continue;
    if (!Resolve(g, id, ctx->device, &p->extra[i], why, shapes_only)) return false;
    p->has_extra[i] = true;
  }
  p->params_size = n.params_size;
  const size_t ps = n.params_size < sizeof(p->params) ? n.params_size : sizeof(p->params);
  if (ps > 0) std::memcpy(p->params, static_cast<const uint8_t*>(g->params) + n.params_offset, ps);
  // Outputs: no element written twice; an output overlaps an input only as
  // the same view where the op allows it in place, and never another output.
  p->shapes_only = shapes_only;
  TRef outs[1 + kMaxExtra] = {p->out, p->extra[0], p->extra[1]};
  const bool has_out[1 + kMaxExtra] = {true, p->has_extra[0], p->has_extra[1]};
  for (int o = 0; o < 1 + kMaxExtra && !shapes_only; ++o) {
    if (!has_out[o]) continue;
    int dim = 0;
    int64_t covered = 0;
    if (!plugin::ElementsApart(outs[o].dtype, outs[o].ne, outs[o].nb, &dim, &covered)) {
      *why = StrFormat(
          "%s: output %d's strides make its elements overlap (nb[%d] = %lld < %lld "
          "bytes spanned by the smaller dims)",
          name, o, dim, static_cast<long long>(outs[o].nb[dim]), static_cast<long long>(covered));
      return false;
    }
    for (int i = 0; i < kMaxInputs; ++i) {
      if (!p->has[i] || !Overlap(outs[o], p->in[i])) continue;
      const bool allowed = o == 0 ? ar.in_place : ar.in_place_extra[o - 1] == i;
      if (!(allowed && SameView(outs[o], p->in[i]))) {
        *why = StrFormat("%s: output %d overlaps input %d%s", name, o, i,
                         allowed ? " without being the same view" : "");
        return false;
      }
    }
    for (int o2 = 0; o2 < o; ++o2) {
      if (has_out[o2] && Overlap(outs[o], outs[o2])) {
        *why = StrFormat("%s: outputs %d and %d overlap", name, o2, o);
        return false;
      }
    }
  }
  if (IsTrainOp(n.op)) return CheckTrainOp(*p, why);
  return CheckForward(*p, why);
}

Error Launch(hearth_pcontext* ctx, const Prepared& p, int flag_value) {
  if (IsTrainOp(p.op)) return LaunchTrainOp(ctx->stream, p, ctx->flag, flag_value);
  return LaunchForward(ctx->stream, p, ctx->work, ctx->flag, flag_value);
}

int32_t Supports(hearth_pcontext* ctx, const hearth_graph* g, uint32_t index) try {
  std::string why;
  if (ctx == nullptr || !plugin::CheckGraphLayout(g, &why) || index >= g->n_nodes) return 0;
  Prepared p;
  return Prepare(ctx, g, index, &p, &why, /*shapes_only=*/true) ? 1 : 0;
} catch (...) {
  return 0;
}

// HEARTH_GPU_GRAPHS=0 runs every graph node by node, =1 captures graphs
// even where this build does not by default (ROCm); read once.
bool GraphsEnabled() {
  static const bool on = [] {
    const char* v = std::getenv("HEARTH_GPU_GRAPHS");
    if (v != nullptr && std::strcmp(v, "0") == 0) return false;
    if (v != nullptr && std::strcmp(v, "1") == 0) return true;
    return kGraphsByDefault;
  }();
  return on;
}

// The flag reset, then every node's launch, on ctx's stream. On a launch
// error, *failed is the node's index.
Error Enqueue(hearth_pcontext* ctx, const std::vector<Prepared>& nodes, uint32_t* failed) {
  Error e = Memset(ctx->flag, 0, sizeof(int), ctx->stream);
  for (uint32_t i = 0; e == kSuccess && i < nodes.size(); ++i) {
    e = Launch(ctx, nodes[i], static_cast<int>(i) + 1);
    if (e != kSuccess) *failed = i;
  }
  return e;
}

// Waits for the graph's work, then reads the flag that kernels raise on
// index data breaking an op's contract.
hearth_pstatus FinishCompute(hearth_pcontext* ctx, const hearth_graph* g, Error e) {
  int flag = 0;
  if (e == kSuccess) e = CopyD2H(&flag, ctx->flag, sizeof(int), ctx->stream);
  const hearth_pstatus st = Finish(ctx, "graph_compute", e);
  if (st != HEARTH_P_OK) return st;
  if (flag > 0) {
    return Fail(HEARTH_P_INVALID_ARGUMENT,
                StrFormat("%s graph_compute: node %d (%s): index data the device read breaks the "
                          "op's contract (a row id, target, sequence, position or page out of "
                          "range, or a (sequence, position) pair given twice)",
                          g_plugin_name, flag - 1, plugin::OpName(g->nodes[flag - 1].op)));
  }
  return HEARTH_P_OK;
}

hearth_pstatus GraphCompute(hearth_pcontext* ctx, const hearth_graph* g) try {
  if (ctx == nullptr) return Fail(HEARTH_P_INVALID_ARGUMENT, "graph_compute: ctx is NULL");
  std::string why;
  if (!plugin::CheckGraphLayout(g, &why)) {
    return Fail(HEARTH_P_INVALID_ARGUMENT,
                StrFormat("%s graph_compute: %s", g_plugin_name, why.c_str()));
  }
  (void)SetDevice(static_cast<int>(ctx->device));
  // A graph with a binding key seen and captured before: its nodes passed
  // every check then, and nothing the checks read has changed.
  const uint64_t key = GraphsEnabled() ? g->binding_key : 0;
  if (key != 0) {
    if (const GraphExec* exec = ctx->graphs.Find(key)) {
      return FinishCompute(ctx, g, GraphLaunch(*exec, ctx->stream));
    }
  }
  std::vector<Prepared>& nodes = ctx->prepared;
  nodes.assign(g->n_nodes, Prepared());  // reuses the capacity of earlier graphs
  for (uint32_t i = 0; i < g->n_nodes; ++i) {
    if (!Prepare(ctx, g, i, &nodes[i], &why, /*shapes_only=*/false)) {
      return Fail(
          g->nodes[i].op < HEARTH_OP_COUNT_ ? HEARTH_P_INVALID_ARGUMENT : HEARTH_P_UNIMPLEMENTED,
          StrFormat("%s graph_compute: node %u: %s", g_plugin_name, i, why.c_str()));
    }
  }
  int64_t work = 0;
  for (const Prepared& p : nodes) {
    if (!IsTrainOp(p.op)) work = std::max(work, ForwardWorkBytes(p));
  }
  if (work > ctx->work_bytes) {
    ctx->graphs.Clear();  // they use the old workspace
    if (ctx->work != nullptr) (void)Free(ctx->work);
    ctx->work = nullptr;
    ctx->work_bytes = 0;
    void* mem = nullptr;
    const Error me = Malloc(&mem, static_cast<size_t>(work));
    if (me != kSuccess) {
      return RuntimeFail(StrFormat("graph_compute: workspace of %lld bytes",
                                   static_cast<long long>(work))
                             .c_str(),
                         ctx->device, me);
    }
    ctx->work = mem;
    ctx->work_bytes = work;
  }
  bool capture = key != 0 && ctx->graphs.SeenBefore(key);
  if (capture && BeginCapture(ctx->stream) != kSuccess) {
    (void)LastError();
    ctx->graphs.Refuse(key);
    capture = false;
  }
  // Ends a capture that an exception leaves open (the stream would go on
  // recording instead of running).
  struct CaptureGuard {
    Stream stream;
    bool open;
    ~CaptureGuard() {
      GraphExec exec{};
      if (open && EndCapture(stream, &exec) == kSuccess) GraphExecDestroy(exec);
    }
  } guard{ctx->stream, capture};
  uint32_t failed = g->n_nodes;
  Error e = Enqueue(ctx, nodes, &failed);
  if (capture) {
    GraphExec exec{};
    guard.open = false;
    const Error ce = EndCapture(ctx->stream, &exec);
    if (e == kSuccess && ce == kSuccess) {
      ctx->graphs.Add(key, exec);
      plugin::Log(HEARTH_LOG_INFO,
                  StrFormat("%s:%u graph of %u nodes captured (binding key %016llx); replayed "
                            "from now on",
                            g_plugin_name, ctx->device, g->n_nodes,
                            static_cast<unsigned long long>(key)));
      e = GraphLaunch(exec, ctx->stream);
    } else {
      // Nothing ran: run the nodes one by one, as for any graph.
      if (ce == kSuccess) GraphExecDestroy(exec);
      (void)LastError();
      ctx->graphs.Refuse(key);
      failed = g->n_nodes;
      e = Enqueue(ctx, nodes, &failed);
    }
  }
  if (e != kSuccess && failed < g->n_nodes) {
    return RuntimeFail(
        StrFormat("graph_compute: node %u (%s)", failed, plugin::OpName(nodes[failed].op)).c_str(),
        ctx->device, e);
  }
  return FinishCompute(ctx, g, e);
} catch (const std::bad_alloc&) {
  return Fail(HEARTH_P_RESOURCE_EXHAUSTED, "graph_compute: out of host memory");
} catch (const std::exception& e) {
  // Nothing a kernel launcher calls throws otherwise; the emulator refuses
  // a launch shape it does not model this way. Never let it leave the slot.
  return Fail(HEARTH_P_INTERNAL, StrFormat("%s graph_compute: %s", g_plugin_name, e.what()));
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
    nullptr,  // buffer_wrap_host: device memory is never the host's
    BufferUpload,
    BufferDownload,
    BufferHostPtr,
    Supports,
    GraphCompute,
    BufferCopy,
    nullptr,  // weight_place: the host uploads; no repacked layout yet
};

}  // namespace

hearth_pstatus PluginInit(hearth_plugin_init_info* info, const char* name, const char* version) {
  g_plugin_name = name;
  return plugin::Handshake(info, {name, version, HEARTH_PLUGIN_KIND_BACKEND, &kVtable});
}

}  // namespace hearth::gpu
