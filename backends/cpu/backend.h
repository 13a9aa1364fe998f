// backend.h — the CPU backend plugin behind hearth_plugin.h: the handshake,
// the host services it keeps, its one device, contexts, buffers and the
// vtable. plugin_entry.cc only forwards the exported symbol to PluginInit(),
// so tests link all of this from the static library and drive the vtable.
#ifndef HEARTH_BACKENDS_CPU_BACKEND_H_
#define HEARTH_BACKENDS_CPU_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/cpu/ops.h"
#include "backends/cpu/ops_dnnl.h"
#include "backends/cpu/threadpool.h"
#include "hearth/hearth_plugin.h"

// A buffer: host memory, owned (buffer_alloc) or borrowed (buffer_wrap_host).
// Buffers belong to the device, not to a context (see hearth_plugin.h).
// A weight placed by weight_place may be repacked: `layout` says how,
// row_bytes is then the logical (plain) bytes of one of its rows, which
// graphs' descriptors use, and layout_row_bytes what a row takes in the
// buffer (LayoutRowBytes), which the kernels use.
struct hearth_pbuffer {
  uint8_t* data = nullptr;
  uint64_t size = 0;
  bool owned = false;
  hearth::cpu::WeightLayout layout = hearth::cpu::WeightLayout::kPlain;
  int64_t row_bytes = 0;
  int64_t layout_row_bytes = 0;
};

struct hearth_pcontext {
  int n_threads = 1;
  std::unique_ptr<hearth::cpu::ThreadPool> pool;
  std::unique_ptr<hearth::cpu::DnnlMatMul> dnnl;  // null when oneDNN is unusable
  // Scratch for ops, grown (never shrunk) before a graph runs.
  uint8_t* scratch = nullptr;
  size_t scratch_bytes = 0;
  // Per-graph working state, kept to avoid allocating on every decode step.
  std::vector<hearth::cpu::Tensor> tensors;
  std::vector<uint8_t> tensor_state;  // 0 unresolved, 1 resolved
  std::vector<hearth::cpu::Node> nodes;
};

namespace hearth::cpu {

hearth_pstatus PluginInit(hearth_plugin_init_info* info);
const hearth_backend_vtable* BackendVtable();

// Host services (backends/common): Fail() records the error of the current call through
// host->set_error and returns `code`; it is the only way errors leave.
using plugin::Fail;
using plugin::HostAlloc;
using plugin::HostFree;
using plugin::Log;

// The live-buffer registry shared by every context. graph_compute checks a
// whole graph's buffers under one shared lock.
class BufferRegistryReader {
 public:
  BufferRegistryReader();
  ~BufferRegistryReader();
  BufferRegistryReader(const BufferRegistryReader&) = delete;
  BufferRegistryReader& operator=(const BufferRegistryReader&) = delete;
  bool Contains(const hearth_pbuffer* buf) const;
};
bool BufferIsLive(const hearth_pbuffer* buf);

// vtable slots implemented in backend_graph.cc.
int32_t Supports(hearth_pcontext* ctx, const hearth_graph* graph, uint32_t index);
hearth_pstatus GraphCompute(hearth_pcontext* ctx, const hearth_graph* graph);

}  // namespace hearth::cpu

#endif  // HEARTH_BACKENDS_CPU_BACKEND_H_
