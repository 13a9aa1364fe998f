// gpu_ops.h — a graph node as the GPU plugin checks and launches it, and the
// contract checks every op file shares. gpu_backend.cu resolves a node's
// tensors (live buffers of the context's device, plugin::CheckDesc, the
// overlap rules of hearth_plugin.h) into a Prepared; each op family then
// checks its own contract and launches its kernels:
//   - gpu_backend.cu: inference ops (ops_forward),
//   - gpu_ops_train.cu: LORA_MUL_MAT and the backward ops (training).
#ifndef HEARTH_BACKENDS_GPU_GPU_OPS_H_
#define HEARTH_BACKENDS_GPU_GPU_OPS_H_

#include <cstdint>
#include <cstring>
#include <string>

#include "backends/common/plugin_common.h"
#include "backends/gpu/gpu_kernels.h"

namespace hearth::gpu {

constexpr int kMaxInputs = 8;
constexpr int kMaxExtra = 2;

// A node with its tensors resolved and checked against their buffers.
struct Prepared {
  uint32_t op = 0;
  uint32_t index = 0;  // in the graph
  TRef out;
  TRef in[kMaxInputs];
  bool has[kMaxInputs] = {};
  TRef extra[kMaxExtra];  // outputs after the first
  bool has_extra[kMaxExtra] = {};
  uint8_t params[64] = {};  // the node's params, zero past params_size
  uint32_t params_size = 0;
  // Set for supports(): descriptors checked for dtype and shape only (the
  // host may ask over placeholder buffers); checks of where tensors lie in
  // memory (overlaps) are skipped, graph_compute makes them.
  bool shapes_only = false;

  template <typename P>
  P Params() const {
    static_assert(sizeof(P) <= sizeof(params), "params block too large");
    P p;
    std::memcpy(&p, params, sizeof(P));
    return p;
  }
};

// Arity of an op (hearth_plugin.h): required and optional inputs, required
// and optional extra outputs, and which inputs an output may be the same
// view of (in place).
struct OpArity {
  int n_in = 0, n_opt = 0, n_extra = 0, n_extra_opt = 0;
  bool in_place = false;                     // the output may be the same view as any input
  int in_place_extra[kMaxExtra] = {-1, -1};  // extra output i may be input [i]
};
// false for an op this plugin does not know.
bool ArityOf(uint32_t op, OpArity* a);

namespace ops {

std::string Shape(const TRef& t);
bool IsFloat(uint32_t dtype);   // F32, F16, BF16
bool IsWeight(uint32_t dtype);  // any dtype MUL_MAT reads
int64_t Rows(const TRef& t);    // ne[1] * ne[2] * ne[3]
bool SameShape(const TRef& a, const TRef& b);
// The byte ranges of a and b intersect.
bool Overlap(const TRef& a, const TRef& b);
// Each sets *why as "<OP>: <what> …" and returns false on a mismatch.
bool WantF32(const Prepared& p, const TRef& t, const char* what, std::string* why);
bool WantI32(const Prepared& p, const TRef& t, const char* what, std::string* why);
bool WantSame(const Prepared& p, const TRef& a, const TRef& b, const char* what, std::string* why);
// t is [n] (ne[1..3] == 1).
bool WantVector(const Prepared& p, const TRef& t, int64_t n, const char* what, std::string* why);
// The op's name, for messages.
const char* Name(const Prepared& p);

}  // namespace ops

// The inference family (gpu_ops_forward.cu), as the training one below.
bool CheckForward(const Prepared& p, std::string* why);
// Device workspace the node's launch needs (0: none); `work` holds at least
// that many bytes.
int64_t ForwardWorkBytes(const Prepared& p);
Error LaunchForward(Stream s, const Prepared& p, void* work, int* flag, int flag_value);

// The training family (gpu_ops_train.cu). Check: false with *why when the
// node breaks its contract; Launch enqueues it (flag: device int raised to
// flag_value by data errors only the device sees, e.g. a target >= V).
bool IsTrainOp(uint32_t op);
bool CheckTrainOp(const Prepared& p, std::string* why);
Error LaunchTrainOp(Stream s, const Prepared& p, int* flag, int flag_value);

}  // namespace hearth::gpu

#endif  // HEARTH_BACKENDS_GPU_GPU_OPS_H_
