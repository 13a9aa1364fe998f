// plugin_common.cc — host services, handshake, names and graph checks shared
// by every backend plugin (see plugin_common.h).
#include "backends/common/plugin_common.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace hearth::plugin {
namespace {

std::atomic<const hearth_host_services *> g_host{nullptr};

#define HOST_HAS(h, member) \
  ((h) && HEARTH_PLUGIN_HAS_SLOT(h, hearth_host_services, member) && (h)->member)

}  // namespace

void SetHost(const hearth_host_services *host) {
  if (host != nullptr && host->struct_size >= sizeof(uint32_t)) {
    g_host.store(host, std::memory_order_release);
  }
}

hearth_pstatus Fail(hearth_pstatus code, const std::string &message) {
  const hearth_host_services *h = g_host.load(std::memory_order_acquire);
  if (HOST_HAS(h, set_error)) h->set_error(h->ctx, code, message.c_str());
  return code;
}

void Log(int level, const std::string &message) {
  const hearth_host_services *h = g_host.load(std::memory_order_acquire);
  if (HOST_HAS(h, log)) h->log(h->ctx, level, message.c_str());
}

void *HostAlloc(size_t size, size_t alignment) {
  const hearth_host_services *h = g_host.load(std::memory_order_acquire);
  if (HOST_HAS(h, alloc) && HOST_HAS(h, free)) return h->alloc(h->ctx, size, alignment);
  size = (size + alignment - 1) / alignment * alignment;
  return std::aligned_alloc(alignment, size);
}

void HostFree(void *ptr) {
  if (ptr == nullptr) return;
  const hearth_host_services *h = g_host.load(std::memory_order_acquire);
  if (HOST_HAS(h, alloc) && HOST_HAS(h, free)) {
    h->free(h->ctx, ptr);
  } else {
    std::free(ptr);
  }
}

std::string StrFormat(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list ap2;
  va_copy(ap2, ap);
  const int n = std::vsnprintf(nullptr, 0, fmt, ap);
  va_end(ap);
  std::string out;
  if (n > 0) {
    out.resize(static_cast<size_t>(n) + 1);
    std::vsnprintf(&out[0], out.size(), fmt, ap2);
    out.resize(static_cast<size_t>(n));
  }
  va_end(ap2);
  return out;
}

hearth_pstatus Handshake(hearth_plugin_init_info *info, const PluginIdentity &id) {
  if (info == nullptr) return HEARTH_P_INVALID_ARGUMENT;
  const hearth_host_services *host =
      HEARTH_PLUGIN_HAS_SLOT(info, hearth_plugin_init_info, host) ? info->host : nullptr;
  SetHost(host);
  if (!HEARTH_PLUGIN_HAS_SLOT(info, hearth_plugin_init_info, plugin_abi_minor)) {
    return Fail(HEARTH_P_INVALID_ARGUMENT,
                StrFormat("%s plugin init: info->struct_size %u is too small to hold the "
                          "plugin's ABI version",
                          id.name, info->struct_size));
  }
  // First, so a host that we refuse can still say which ABI we speak.
  info->plugin_abi_major = HEARTH_PLUGIN_ABI_MAJOR;
  info->plugin_abi_minor = HEARTH_PLUGIN_ABI_MINOR;
  if (info->host_abi_major != HEARTH_PLUGIN_ABI_MAJOR) {
    return Fail(HEARTH_P_FAILED_PRECONDITION,
                StrFormat("%s plugin speaks plugin ABI %d.%d but the host speaks %u.%u; the "
                          "major versions must match",
                          id.name, HEARTH_PLUGIN_ABI_MAJOR, HEARTH_PLUGIN_ABI_MINOR,
                          info->host_abi_major, info->host_abi_minor));
  }
  if (!HEARTH_PLUGIN_HAS_SLOT(info, hearth_plugin_init_info, vtable)) {
    return Fail(HEARTH_P_INVALID_ARGUMENT,
                StrFormat("%s plugin init: info->struct_size %u is smaller "
                          "than ABI %d.0's %zu",
                          id.name, info->struct_size, HEARTH_PLUGIN_ABI_MAJOR,
                          sizeof(hearth_plugin_init_info)));
  }
  if (host == nullptr) return HEARTH_P_INVALID_ARGUMENT;  // nowhere to say why
  info->kind = id.kind;
  info->name = id.name;
  info->version = id.version;
  info->vtable = id.vtable;
  return HEARTH_P_OK;
}

const char *DtypeName(uint32_t dtype) {
  static const char *const kNames[] = {"F32",  "F16",  "BF16", "I32",  "Q8_0",
                                       "Q4_0", "Q5_0", "Q4_K", "Q6_K", "Q4_1"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == HEARTH_DTYPE_COUNT_, "name every dtype");
  return dtype < HEARTH_DTYPE_COUNT_ ? kNames[dtype] : "unknown";
}

const char *OpName(uint32_t op) {
  static const char *const kNames[] = {"NONE",
                                       "GET_ROWS",
                                       "MUL_MAT",
                                       "ADD",
                                       "MUL",
                                       "SCALE",
                                       "RMS_NORM",
                                       "ROPE",
                                       "ATTENTION",
                                       "SILU_MUL",
                                       "GELU_MUL",
                                       "SOFTMAX",
                                       "COPY",
                                       "LORA_MUL_MAT",
                                       "MUL_MAT_T",
                                       "OUTER",
                                       "RMS_NORM_BACK",
                                       "ROPE_BACK",
                                       "ATTENTION_BACK",
                                       "SILU_MUL_BACK",
                                       "GELU_MUL_BACK",
                                       "CROSS_ENTROPY",
                                       "CROSS_ENTROPY_BACK",
                                       "ADAMW_STEP",
                                       "SUM_SQ",
                                       "DROPOUT"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == HEARTH_OP_COUNT_, "name every op");
  return op < HEARTH_OP_COUNT_ ? kNames[op] : "unknown";
}

bool CheckGraphLayout(const hearth_graph *g, std::string *why) {
  if (g == nullptr) {
    *why = "graph is NULL";
    return false;
  }
  if (!HEARTH_PLUGIN_HAS_SLOT(g, hearth_graph, binding_key)) {
    *why = StrFormat("graph->struct_size is %u; want at least %zu", g->struct_size,
                     sizeof(hearth_graph));
    return false;
  }
  if ((g->n_tensors > 0 && g->tensors == nullptr) || (g->n_nodes > 0 && g->nodes == nullptr) ||
      (g->n_node_inputs > 0 && g->node_inputs == nullptr) ||
      (g->params_bytes > 0 && g->params == nullptr)) {
    *why = StrFormat(
        "graph has %u tensors, %u nodes, %u node inputs and %u "
        "params bytes but a NULL array",
        g->n_tensors, g->n_nodes, g->n_node_inputs, g->params_bytes);
    return false;
  }
  if (g->params_bytes > 0 && reinterpret_cast<uintptr_t>(g->params) % 8 != 0) {
    *why = "graph->params is not 8-byte aligned";
    return false;
  }
  for (uint32_t i = 0; i < g->n_nodes; ++i) {
    const hearth_node &n = g->nodes[i];
    const uint64_t end = uint64_t{n.first_input} + n.n_inputs + n.n_extra_outputs;
    if (end > g->n_node_inputs) {
      *why = StrFormat(
          "node %u (%s): inputs [%u, %u) and %u extra outputs run "
          "past the %u node_inputs",
          i, OpName(n.op), n.first_input, n.first_input + n.n_inputs, n.n_extra_outputs,
          g->n_node_inputs);
      return false;
    }
    if (n.params_size > 0 &&
        (uint64_t{n.params_offset} + n.params_size > g->params_bytes || n.params_offset % 8 != 0)) {
      *why = StrFormat(
          "node %u (%s): params [%u, +%u) are not 8-byte aligned "
          "inside the %u params bytes",
          i, OpName(n.op), n.params_offset, n.params_size, g->params_bytes);
      return false;
    }
  }
  return true;
}

std::string ShapeStr(const int64_t ne[4]) {
  return StrFormat("[%lld, %lld, %lld, %lld]", static_cast<long long>(ne[0]),
                   static_cast<long long>(ne[1]), static_cast<long long>(ne[2]),
                   static_cast<long long>(ne[3]));
}

bool ElementsApart(uint32_t dtype, const int64_t ne[4], const int64_t nb[4], int *dim,
                   int64_t *covered) {
  int dims[4];
  int n = 0;
  for (int i = 0; i < 4; ++i) {
    if (ne[i] > 1) dims[n++] = i;
  }
  for (int i = 1; i < n; ++i) {  // insertion sort by stride; n <= 4
    for (int k = i; k > 0 && nb[dims[k]] < nb[dims[k - 1]]; --k) {
      const int tmp = dims[k];
      dims[k] = dims[k - 1];
      dims[k - 1] = tmp;
    }
  }
  int64_t spanned = PlainElemBytes(dtype);
  for (int k = 0; k < n; ++k) {
    const int d = dims[k];
    if (nb[d] < spanned) {
      *dim = d;
      *covered = spanned;
      return false;
    }
    spanned = nb[d] * ne[d];
  }
  return true;
}

bool CheckDesc(const hearth_tensor_desc &d, uint64_t buffer_size, DescView *t, std::string *why) {
  const int64_t be = hearth_dtype_block_elems(d.dtype);
  if (be == 0) {
    *why = StrFormat("dtype %u is unknown", d.dtype);
    return false;
  }
  if (d.n_dims < 1 || d.n_dims > 4) {
    *why = StrFormat("n_dims is %u; want 1..4", d.n_dims);
    return false;
  }
  t->dtype = d.dtype;
  t->offset = d.offset;
  for (int i = 0; i < 4; ++i) {
    if (i < static_cast<int>(d.n_dims)) {
      if (d.ne[i] < 0 || d.nb[i] < 0) {
        *why = StrFormat("ne[%d] = %lld, nb[%d] = %lld; both must be >= 0", i,
                         static_cast<long long>(d.ne[i]), i, static_cast<long long>(d.nb[i]));
        return false;
      }
      t->ne[i] = d.ne[i];
      t->nb[i] = d.nb[i];
    } else {
      t->ne[i] = 1;  // the header's rule; whatever the host left there is ignored
      t->nb[i] = 0;
    }
  }
  if (t->ne[0] % be != 0) {
    *why =
        StrFormat("ne[0] = %lld is not a multiple of the %s block (%lld elements)",
                  static_cast<long long>(t->ne[0]), DtypeName(d.dtype), static_cast<long long>(be));
    return false;
  }
  // No device holds 2^48 elements; the bound keeps every later product exact.
  unsigned __int128 count = 1;
  for (int i = 0; i < 4; ++i) count *= static_cast<unsigned __int128>(t->ne[i]);
  if (count > (static_cast<unsigned __int128>(1) << 48)) {
    *why = "shape " + ShapeStr(t->ne) + " has more than 2^48 elements";
    return false;
  }
  const int64_t bb = hearth_dtype_block_bytes(d.dtype);
  const int64_t elem = be == 1 ? bb : 0;  // plain element bytes; 0 for block formats
  // The extent, with every product checked: hostile strides must not wrap.
  unsigned __int128 span = 0;
  bool empty = false;
  for (int i = 0; i < 4; ++i) empty = empty || t->ne[i] == 0;
  if (!empty) {
    span = elem > 0 ? static_cast<unsigned __int128>(t->ne[0] - 1) * t->nb[0] + elem
                    : static_cast<unsigned __int128>(t->ne[0] / be) * bb;
    for (int i = 1; i < 4; ++i) span += static_cast<unsigned __int128>(t->ne[i] - 1) * t->nb[i];
  }
  const unsigned __int128 end = static_cast<unsigned __int128>(d.offset) + span;
  if (end > buffer_size) {
    if (end > UINT64_MAX) {
      *why = StrFormat("offset %llu plus the bytes its strides span is past 2^64; shape %s",
                       static_cast<unsigned long long>(d.offset), ShapeStr(t->ne).c_str());
    } else {
      *why = StrFormat(
          "bytes [%llu, %llu) are past the end of its buffer "
          "(%llu bytes); shape %s",
          static_cast<unsigned long long>(d.offset), static_cast<unsigned long long>(end),
          static_cast<unsigned long long>(buffer_size), ShapeStr(t->ne).c_str());
    }
    return false;
  }
  t->span = static_cast<uint64_t>(span);
  // Plain elements are read as their type, quantized blocks start with an f16.
  const int64_t align = elem > 0 ? elem : 2;
  if (d.offset % static_cast<uint64_t>(align) != 0) {
    *why = StrFormat("offset %llu is not aligned to %lld bytes for %s",
                     static_cast<unsigned long long>(d.offset), static_cast<long long>(align),
                     DtypeName(d.dtype));
    return false;
  }
  for (int i = elem > 0 ? 0 : 1; i < 4; ++i) {
    if (t->ne[i] > 1 && t->nb[i] % align != 0) {
      *why = StrFormat("nb[%d] = %lld is not a multiple of %lld bytes for %s", i,
                       static_cast<long long>(t->nb[i]), static_cast<long long>(align),
                       DtypeName(d.dtype));
      return false;
    }
  }
  return true;
}

}  // namespace hearth::plugin
