// ops.h — the CPU backend's graph operations: a registry with one entry per
// hearth_op holding its contract check, its scratch needs and its parallel
// kernel, plus the resolved tensor/node views the entries work on.
//
// graph_compute (backend_graph.cc) resolves every descriptor into a Tensor,
// checks what is common to all ops (indices, dtypes known, bytes inside the
// buffer, alignment, output overlap) and then asks the op's entry to check
// its own contract. Only after the whole graph passed does anything run.
#ifndef HEARTH_BACKENDS_CPU_OPS_H_
#define HEARTH_BACKENDS_CPU_OPS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "backends/common/plugin_common.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/threadpool.h"
#include "hearth/hearth_plugin.h"

namespace hearth::cpu {

using plugin::DtypeName;
using plugin::StrFormat;

// The most inputs and extra outputs an op of this plugin has.
constexpr int kMaxSlots = 8;
constexpr int kMaxExtraOutputs = 2;

// A descriptor resolved to an address. Dims past n_dims have ne = 1.
struct Tensor {
  uint8_t* data = nullptr;  // element 0: buffer base + offset
  uint32_t dtype = 0;
  // kPlain but for a weight weight_place repacked (only GET_ROWS, MUL_MAT
  // and MUL_MAT_T take one, and only as their weight input): Row() and
  // FlatRow() are then meaningless; read rows with WeightRowToF32.
  WeightLayout layout = WeightLayout::kPlain;
  int64_t ne[4] = {1, 1, 1, 1};
  int64_t nb[4] = {0, 0, 0, 0};

  int64_t Rows() const { return ne[1] * ne[2] * ne[3]; }
  int64_t Elems() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  uint8_t* Row(int64_t i1, int64_t i2 = 0, int64_t i3 = 0) const {
    return data + i1 * nb[1] + i2 * nb[2] + i3 * nb[3];
  }
  // Row r of the ne[1] x ne[2] x ne[3] rows, in order.
  uint8_t* FlatRow(int64_t r) const {
    int64_t i1 = r % ne[1];
    int64_t i23 = r / ne[1];
    return Row(i1, i23 % ne[2], i23 / ne[2]);
  }
  float* F32Row(int64_t r) const { return reinterpret_cast<float*>(FlatRow(r)); }
};

// A node with its tensors resolved.
struct Node {
  const hearth_graph* graph = nullptr;
  const hearth_node* node = nullptr;
  uint32_t index = 0;
  int32_t out_id = -1;
  Tensor out;
  int32_t in_id[kMaxSlots] = {-1, -1, -1, -1, -1, -1, -1, -1};
  bool has[kMaxSlots] = {};
  Tensor in[kMaxSlots];
  // Outputs after the first (ATTENTION's lse, the backward ops' second and
  // third gradients); has_extra says which the host asked for.
  int32_t extra_id[kMaxExtraOutputs] = {-1, -1};
  bool has_extra[kMaxExtraOutputs] = {};
  Tensor extra[kMaxExtraOutputs];

  // The op's params block (hearth_plugin.h: missing bytes read as zero).
  template <typename P>
  P params() const {
    return plugin::NodeParams<P>(graph, *node);
  }
};

class DnnlMatMul;

// What a running op may use. Scratch is 64-byte aligned, sized by the op's
// scratch() answer, and lives as long as the context: compute allocates
// nothing.
struct ExecEnv {
  ThreadPool* pool = nullptr;
  int n_threads = 1;
  uint8_t* scratch = nullptr;
  size_t scratch_bytes = 0;
  DnnlMatMul* dnnl = nullptr;
};

struct OpInfo {
  const char* name;
  int n_required;  // inputs 0..n_required-1 must be present
  int n_optional;  // the next n_optional may be -1
  // The output may be exactly the same view as an input (in-place); other
  // overlaps of output and inputs are always refused.
  bool in_place_ok;
  // dtype combination implemented (supports()); *why says which is not.
  bool (*dtypes_ok)(const Node& n, std::string* why);
  // The op's whole contract: shapes, strides, params, and index data read
  // up front (ids, positions: no op produces I32, so they are graph inputs).
  bool (*check)(const Node& n, std::string* why);
  // Scratch bytes (all threads together) for a pool of nth threads.
  size_t (*scratch)(const Node& n, int nth);
  // Runs the op. Returns false with *why only for a data error that slipped
  // past check(); nothing is read or written out of bounds either way.
  bool (*run)(const Node& n, ExecEnv& env, std::string* why);
  // Extra outputs: the first n_extra_required must be given, the next
  // n_extra_optional may be. Each may be the identical view of the input of
  // the same index in in_place_extra (-1: must not overlap any input).
  int n_extra_required = 0;
  int n_extra_optional = 0;
  int in_place_extra[kMaxExtraOutputs] = {-1, -1};
};

// nullptr for HEARTH_OP_NONE and unknown values.
const OpInfo* FindOp(uint32_t op);
// Every weight format the matrix products read (a bit per hearth_dtype).
constexpr uint32_t kWeightDtypes =
    (1u << HEARTH_DTYPE_F32) | (1u << HEARTH_DTYPE_F16) | (1u << HEARTH_DTYPE_BF16) |
    (1u << HEARTH_DTYPE_Q8_0) | (1u << HEARTH_DTYPE_Q4_0) | (1u << HEARTH_DTYPE_Q5_0) |
    (1u << HEARTH_DTYPE_Q4_K) | (1u << HEARTH_DTYPE_Q6_K) | (1u << HEARTH_DTYPE_Q4_1);
// Bytes rounded up to whole 64-byte cache lines (scratch slices).
inline size_t Align64(size_t n) { return (n + 63) & ~static_cast<size_t>(63); }
// hearth_attention_params of ATTENTION and ATTENTION_BACK: a finite scale,
// softcap 0 or finite > 0, window >= 0; *why names the bad one.
bool CheckAttentionParams(const Node& n, std::string* why);
// Bytes of one element for F32/F16/BF16/I32, else 0.
using plugin::PlainElemBytes;
// Bytes that ne0 elements of dtype occupy laid out contiguously (whole
// blocks for quantized dtypes; ne0 must be a multiple of the block).
int64_t RowBytes(uint32_t dtype, int64_t ne0);
// The address range [*lo, *hi) a checked tensor touches; empty when any ne is
// 0. For quantized dtypes nb[0] is ignored (a row is its blocks, in order).
void ByteSpan(const Tensor& t, uintptr_t* lo, uintptr_t* hi);

// "input 1 (tensor 7)" / "output (tensor 9)"; slot -1 is the output and
// -2, -3 the extra outputs.
std::string SlotName(const Node& n, int slot);
// "[4096, 32, 7, 1]"
std::string ShapeStr(const Tensor& t);

// Shared contract checks; each sets *why naming the slot on failure.
bool WantDtype(const Node& n, int slot, uint32_t dtype, std::string* why);
bool WantDtypeIn(const Node& n, int slot, uint32_t mask, std::string* why);  // bit per dtype
bool WantRowContiguous(const Node& n, int slot, std::string* why);           // nb[0] == elem
bool WantSameShape(const Node& n, int slot_a, int slot_b, std::string* why);
bool WantDims(const Node& n, int slot, int max_dims, std::string* why);  // ne[d] == 1 for d >= max
const Tensor& SlotTensor(const Node& n, int slot);

// Splits [0, n_items) over up to env.n_threads threads, at least min_items
// per thread, calling f(begin, end, ith) on each (ith indexes scratch).
template <typename F>
void ParallelFor(ExecEnv& env, int64_t n_items, int64_t min_items, F&& f) {
  if (n_items <= 0) return;
  int64_t want = min_items > 0 ? n_items / min_items : n_items;
  int nth = static_cast<int>(want < 1 ? 1 : (want > env.n_threads ? env.n_threads : want));
  env.pool->Run(nth, [&](int ith, int nt) {
    int64_t chunk = (n_items + nt - 1) / nt;
    int64_t begin = chunk * ith;
    int64_t end = begin + chunk < n_items ? begin + chunk : n_items;
    if (begin < end) f(begin, end, ith);
  });
}

// For row-wise elementwise ops: splits rows x ne0 elements over the threads,
// cutting rows into column chunks (multiples of 64 elements) when there are
// fewer rows than threads (decode has one row per op), at least min_elems
// per thread. Calls f(row, i0, i1) for each piece.
template <typename F>
void ParallelRowPieces(ExecEnv& env, int64_t rows, int64_t ne0, int64_t min_elems, F&& f) {
  if (rows <= 0 || ne0 <= 0) return;
  const int64_t total = rows * ne0;
  int64_t want = min_elems > 0 ? total / min_elems : total;
  const int nth = static_cast<int>(want < 1 ? 1 : (want > env.n_threads ? env.n_threads : want));
  int64_t per_row = rows >= nth ? 1 : (nth + rows - 1) / rows;
  int64_t chunk = (ne0 + per_row - 1) / per_row;
  chunk = (chunk + 63) / 64 * 64;
  per_row = (ne0 + chunk - 1) / chunk;
  const int64_t n_pieces = rows * per_row;
  env.pool->Run(nth, [&](int ith, int nt) {
    const int64_t begin = n_pieces * ith / nt, end = n_pieces * (ith + 1) / nt;
    for (int64_t p = begin; p < end; ++p) {
      const int64_t row = p / per_row, i0 = p % per_row * chunk;
      f(row, i0, i0 + chunk < ne0 ? i0 + chunk : ne0);
    }
  });
}

// Converts one contiguous row of n elements of any weight dtype (F32, F16,
// BF16 or a block format, n a multiple of its block) to F32 (ops_matmul.cc).
struct VecOps;
void RowToF32(uint32_t dtype, const uint8_t* src, float* dst, int64_t n, const VecOps& vec);
// Row m of a weight in any layout (kernels.h) whose row 0 is at w, rows
// row_bytes apart when plain, as n floats.
void WeightRowToF32(uint32_t dtype, WeightLayout layout, const uint8_t* w, int64_t row_bytes,
                    int64_t m, float* dst, int64_t n, const VecOps& vec);

// Registry entries, one per file of ops.
extern const OpInfo kOpGetRows, kOpMulMat, kOpAdd, kOpMul, kOpScale, kOpRmsNorm, kOpRope,
    kOpAttention, kOpSiluMul, kOpGeluMul, kOpSoftmax, kOpCopy, kOpLoraMulMat;
// The backward ops (training).
extern const OpInfo kOpMulMatT, kOpOuter, kOpRmsNormBack, kOpRopeBack, kOpAttentionBack,
    kOpSiluMulBack, kOpGeluMulBack, kOpCrossEntropy, kOpCrossEntropyBack, kOpAdamwStep, kOpSumSq,
    kOpDropout;

}  // namespace hearth::cpu

#endif  // HEARTH_BACKENDS_CPU_OPS_H_
