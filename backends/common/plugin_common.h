// plugin_common.h — what every backend plugin needs besides its kernels: the
// host services it was lent (errors, logs, memory), the version handshake,
// op and dtype names, reading a node's inputs, outputs and params, and the
// checks every descriptor and graph must pass before anything runs. It
// depends on hearth_plugin.h alone (never on libhearth), so a CPU, CUDA or
// ROCm plugin links it statically and none of them copies another's.
#ifndef HEARTH_BACKENDS_COMMON_PLUGIN_COMMON_H_
#define HEARTH_BACKENDS_COMMON_PLUGIN_COMMON_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "hearth/hearth_plugin.h"

namespace hearth::plugin {

// ------------------------------------------------------------ host services

// Remembers the host's services table (the handshake calls it).
void SetHost(const hearth_host_services *host);
// Records the error of the current call through host->set_error and
// returns `code`: the only way a plugin's errors leave it.
hearth_pstatus Fail(hearth_pstatus code, const std::string &message);
void Log(int level, const std::string &message);
// Aligned memory from the host (or the C library before the handshake).
void *HostAlloc(size_t size, size_t alignment);
void HostFree(void *ptr);

// printf into a std::string.
std::string StrFormat(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// -------------------------------------------------------------- handshake

struct PluginIdentity {
  const char *name;     // static, e.g. "cpu"
  const char *version;  // static
  uint32_t kind;        // HEARTH_PLUGIN_KIND_*
  const void *vtable;   // static
};

// The plugin side of hearth_plugin_init: keeps the host's services, answers
// this ABI's version even when it refuses, refuses another major or a
// too-small info struct with a message, then fills in `id`.
hearth_pstatus Handshake(hearth_plugin_init_info *info, const PluginIdentity &id);

// ------------------------------------------------------------------ names

// "F32", "Q4_K", … ; "unknown" for values this build does not know.
const char *DtypeName(uint32_t dtype);
// "MUL_MAT", "ATTENTION_BACK", … ; "unknown" likewise.
const char *OpName(uint32_t op);

// --------------------------------------------------------------- graphs

// The arrays of `g` are consistent: struct_size covers every field, arrays
// are non-NULL where counts are non-zero, each node's inputs and extra
// outputs lie inside node_inputs and its params inside params (8-byte
// aligned). Tensor indices are checked where they are used.
bool CheckGraphLayout(const hearth_graph *g, std::string *why);

// Input i of node n (-1 when absent or past n_inputs). After CheckGraphLayout.
inline int32_t NodeInput(const hearth_graph *g, const hearth_node &n, uint32_t i) {
  return i < n.n_inputs ? g->node_inputs[n.first_input + i] : -1;
}
// Output i of node n: 0 is n.output, 1.. the extra outputs; -1 past them.
inline int32_t NodeOutput(const hearth_graph *g, const hearth_node &n, uint32_t i) {
  if (i == 0) return n.output;
  return i - 1 < n.n_extra_outputs ? g->node_inputs[n.first_input + n.n_inputs + i - 1] : -1;
}
// The node's params as P: the bytes the host wrote, zeros for the rest
// (the append-only rule of hearth_plugin.h).
template <typename P>
P NodeParams(const hearth_graph *g, const hearth_node &n) {
  P p;
  std::memset(&p, 0, sizeof(p));
  const size_t size = n.params_size < sizeof(P) ? n.params_size : sizeof(P);
  if (size > 0) {
    std::memcpy(&p, static_cast<const uint8_t *>(g->params) + n.params_offset, size);
  }
  return p;
}

// A descriptor checked against the buffer it points into.
struct DescView {
  uint32_t dtype = 0;
  int64_t ne[4] = {1, 1, 1, 1};
  int64_t nb[4] = {0, 0, 0, 0};  // dims past n_dims: ne 1, nb 0
  uint64_t offset = 0;
  uint64_t span = 0;  // bytes from offset the view touches (0 when empty)
};

// Checks what holds for every backend: a known dtype, 1..4 dims, ne and nb
// >= 0, ne[0] a whole number of blocks, at most 2^48 elements, every byte
// the strides reach inside [0, buffer_size), offset and strides aligned to
// the element (2 bytes for block formats, whose blocks start with an f16).
// Fills *out; false with *why otherwise.
bool CheckDesc(const hearth_tensor_desc &d, uint64_t buffer_size, DescView *out, std::string *why);

// "[4096, 32, 7, 1]"
std::string ShapeStr(const int64_t ne[4]);

// Bytes of one F32/F16/BF16/I32 element; 0 for block formats (and unknown
// dtypes).
inline int64_t PlainElemBytes(uint32_t dtype) {
  return hearth_dtype_block_elems(dtype) == 1 ? hearth_dtype_block_bytes(dtype) : 0;
}

// True when no two elements of a view share a byte, so each element of an
// output may be written by its own thread: the strides, taken in increasing
// order, each step over everything the smaller dims span. Else false with
// *dim the first dim whose stride does not and *covered the bytes the
// smaller dims span. ne and nb as in a checked view (DescView).
bool ElementsApart(uint32_t dtype, const int64_t ne[4], const int64_t nb[4], int *dim,
                   int64_t *covered);

}  // namespace hearth::plugin

#endif  // HEARTH_BACKENDS_COMMON_PLUGIN_COMMON_H_
