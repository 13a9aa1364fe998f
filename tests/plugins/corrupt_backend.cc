// corrupt_backend.cc — libhearth-test-corrupt.so, a backend plugin for
// tests only: it loads the real CPU plugin (HEARTH_CORRUPT_INNER, else the
// path it was built with), forwards every call, and corrupts ONE op the way
// a buggy backend would, chosen by HEARTH_CORRUPT:
//   rows    GET_ROWS reads row id+1 for the first id (an off-by-one row)
//   scale   SCALE multiplies by scale * 1.001 (a wrong constant)
//   stride  MUL_MAT treats a strided x as contiguous (an ignored row stride)
//   window  ATTENTION's sliding window one row wider (a mask off by one)
// The corruption is done by rewriting the graph before forwarding it, so
// the wrapped plugin's own code is untouched. tests/plugins/CMakeLists.txt
// runs hearth-conformance on it and expects a failure naming the op.
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "hearth/hearth_plugin.h"

#ifndef HEARTH_CORRUPT_DEFAULT_INNER
#define HEARTH_CORRUPT_DEFAULT_INNER ""
#endif

namespace {

const hearth_backend_vtable* g_in = nullptr;
hearth_backend_vtable g_vt{};
std::string g_mode, g_init_error;

int32_t Supports(hearth_pcontext* ctx, const hearth_graph* g, uint32_t i) {
  return g_in->supports(ctx, g, i);
}

// Reads ids of a GET_ROWS node and uploads ids[0] + 1 into a scratch buffer.
hearth_pstatus CorruptRows(hearth_pcontext* ctx, const hearth_graph* g, const hearth_node& n,
                           std::vector<hearth_tensor_desc>* tensors, std::vector<int32_t>* inputs,
                           std::vector<hearth_pbuffer*>* scratch) {
  const int32_t table = g->node_inputs[n.first_input], ids = g->node_inputs[n.first_input + 1];
  hearth_tensor_desc d = g->tensors[ids];
  const int64_t count = d.ne[0];
  if (count < 1) return HEARTH_P_OK;
  std::vector<int32_t> v(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    if (g_in->buffer_download(ctx, d.buffer, d.offset + i * d.nb[0], &v[i], 4) != HEARTH_P_OK) {
      return HEARTH_P_INTERNAL;
    }
  }
  const int64_t rows = g->tensors[table].ne[1];
  if (v[0] >= 0 && v[0] < rows) v[0] = static_cast<int32_t>((v[0] + 1) % rows);
  hearth_pbuffer* b = nullptr;
  if (g_in->buffer_alloc(ctx, 4 * count, &b) != HEARTH_P_OK) return HEARTH_P_INTERNAL;
  scratch->push_back(b);
  g_in->buffer_upload(ctx, b, 0, v.data(), 4 * count);
  d.buffer = b;
  d.offset = 0;
  d.nb[0] = 4;
  for (int i = 1; i < 4; ++i) d.nb[i] = 4 * count;
  tensors->push_back(d);
  (*inputs)[n.first_input + 1] = static_cast<int32_t>(tensors->size() - 1);
  return HEARTH_P_OK;
}

hearth_pstatus GraphCompute(hearth_pcontext* ctx, const hearth_graph* g) {
  if (g == nullptr || g_mode.empty()) return g_in->graph_compute(ctx, g);
  std::vector<hearth_tensor_desc> tensors(g->tensors, g->tensors + g->n_tensors);
  std::vector<int32_t> inputs(g->node_inputs, g->node_inputs + g->n_node_inputs);
  std::vector<uint64_t> params((g->params_bytes + 7) / 8 + 1, 0);
  if (g->params_bytes) std::memcpy(params.data(), g->params, g->params_bytes);
  std::vector<hearth_pbuffer*> scratch;
  for (uint32_t i = 0; i < g->n_nodes; ++i) {
    const hearth_node& n = g->nodes[i];
    uint8_t* p = reinterpret_cast<uint8_t*>(params.data()) + n.params_offset;
    if (g_mode == "rows" && n.op == HEARTH_OP_GET_ROWS && n.n_inputs >= 2) {
      if (CorruptRows(ctx, g, n, &tensors, &inputs, &scratch) != HEARTH_P_OK) {
        return g_in->graph_compute(ctx, g);
      }
    } else if (g_mode == "scale" && n.op == HEARTH_OP_SCALE && n.params_size >= 4) {
      float s;
      std::memcpy(&s, p, 4);
      s *= 1.001f;
      std::memcpy(p, &s, 4);
    } else if (g_mode == "stride" && n.op == HEARTH_OP_MUL_MAT && n.n_inputs >= 2) {
      // A kernel that assumes x is dense: rows ne[0] * 4 bytes apart.
      const int32_t x = inputs[n.first_input + 1];
      hearth_tensor_desc d = tensors[x];
      d.nb[1] = d.ne[0] * 4;
      d.nb[2] = d.nb[1] * d.ne[1];
      d.nb[3] = d.nb[2] * d.ne[2];
      tensors.push_back(d);
      inputs[n.first_input + 1] = static_cast<int32_t>(tensors.size() - 1);
    } else if (g_mode == "window" && n.op == HEARTH_OP_ATTENTION && n.params_size >= 12) {
      int32_t w;
      std::memcpy(&w, p + 8, 4);
      if (w > 0) ++w;  // a sliding-window mask off by one
      std::memcpy(p + 8, &w, 4);
    }
  }
  hearth_graph c = *g;
  c.n_tensors = static_cast<uint32_t>(tensors.size());
  c.tensors = tensors.data();
  c.node_inputs = inputs.data();
  c.params = params.data();
  c.plan_key = c.binding_key = 0;
  const hearth_pstatus st = g_in->graph_compute(ctx, &c);
  for (hearth_pbuffer* b : scratch) g_in->buffer_free(ctx, b);
  return st;
}

std::string LoadInner(const hearth_plugin_init_info& outer) {
  const char* env = std::getenv("HEARTH_CORRUPT_INNER");
  const std::string path = env && *env ? env : HEARTH_CORRUPT_DEFAULT_INNER;
  if (path.empty()) return "corrupt plugin: set HEARTH_CORRUPT_INNER to the plugin to wrap";
  const char* mode = std::getenv("HEARTH_CORRUPT");
  g_mode = mode ? mode : "";
  if (!g_mode.empty() && g_mode != "rows" && g_mode != "scale" && g_mode != "stride" &&
      g_mode != "window") {
    return "corrupt plugin: HEARTH_CORRUPT must be rows, scale, stride or window";
  }
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);  // never dlclose'd
  if (h == nullptr) return "corrupt plugin: cannot load " + path;
  auto init = reinterpret_cast<hearth_plugin_init_fn>(dlsym(h, HEARTH_PLUGIN_INIT_SYMBOL));
  if (init == nullptr) return "corrupt plugin: " + path + " has no " HEARTH_PLUGIN_INIT_SYMBOL;
  hearth_plugin_init_info info{};
  info.struct_size = sizeof(info);
  info.host_abi_major = outer.host_abi_major;
  info.host_abi_minor = outer.host_abi_minor;
  info.host = outer.host;  // errors and logs of the wrapped plugin go straight to the host
  if (init(&info) != HEARTH_P_OK || info.kind != HEARTH_PLUGIN_KIND_BACKEND) {
    return "corrupt plugin: init of " + path + " failed";
  }
  g_in = static_cast<const hearth_backend_vtable*>(info.vtable);
  g_vt = *g_in;
  g_vt.struct_size = sizeof(g_vt) < g_in->struct_size ? sizeof(g_vt) : g_in->struct_size;
  g_vt.supports = &Supports;
  g_vt.graph_compute = &GraphCompute;
  g_vt.weight_place = nullptr;
  return "";
}

}  // namespace

extern "C" HEARTH_PLUGIN_EXPORT hearth_pstatus hearth_plugin_init(hearth_plugin_init_info* info) {
  if (info == nullptr || !HEARTH_PLUGIN_HAS_SLOT(info, hearth_plugin_init_info, vtable) ||
      info->host == nullptr) {
    return HEARTH_P_INVALID_ARGUMENT;
  }
  info->plugin_abi_major = HEARTH_PLUGIN_ABI_MAJOR;
  info->plugin_abi_minor = HEARTH_PLUGIN_ABI_MINOR;
  if (info->host_abi_major != HEARTH_PLUGIN_ABI_MAJOR) {
    info->host->set_error(info->host->ctx, HEARTH_P_FAILED_PRECONDITION,
                          "corrupt plugin: built for plugin ABI 1.x");
    return HEARTH_P_FAILED_PRECONDITION;
  }
  static std::once_flag once;
  std::call_once(once, [&] { g_init_error = LoadInner(*info); });
  if (!g_init_error.empty()) {
    info->host->set_error(info->host->ctx, HEARTH_P_FAILED_PRECONDITION, g_init_error.c_str());
    return HEARTH_P_FAILED_PRECONDITION;
  }
  info->kind = HEARTH_PLUGIN_KIND_BACKEND;
  info->name = "corrupt";
  info->version = "1.0.0-test";
  info->vtable = &g_vt;
  return HEARTH_P_OK;
}
