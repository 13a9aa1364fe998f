// ops_matmul.cc — the weight-reading graph ops of the CPU backend: GET_ROWS
// (embedding gather from a table in any format) and MUL_MAT.
//
// MUL_MAT picks one of four paths per node:
//   - F32 weights, N >= kDnnlMinN activation rows: oneDNN matmul, directly.
//   - F16/BF16 weights, N >= kDnnlMinN: weights dequantized by the pool into
//     a scratch slab of rows (bounded size), then oneDNN on each slab.
//   - HEARTH_MUL_MAT_BF16 where oneDNN has native BF16 (AVX512-BF16, AMX):
//     x rounded to BF16 once, weights of any format dequantized and rounded
//     a slab at a time, oneDNN BF16 x BF16 -> F32 on each slab.
//   - everything else (decode, every quantized format): the two-phase kernels
//     of kernels.h (prepare activations, then compute), split over the pool.
#include <algorithm>
#include <cstring>

#include "backends/cpu/kernels.h"
#include "backends/cpu/ops.h"
#include "backends/cpu/ops_bf16.h"
#include "backends/cpu/ops_dnnl.h"
#include "backends/cpu/ops_vec.h"

namespace hearth::cpu {

void RowToF32(uint32_t dtype, const uint8_t* src, float* dst, int64_t n, const VecOps& vec) {
  switch (dtype) {
    case HEARTH_DTYPE_F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      break;
    case HEARTH_DTYPE_F16:
      vec.f16_to_f32(dst, reinterpret_cast<const uint16_t*>(src), n);
      break;
    case HEARTH_DTYPE_BF16: {
      const uint16_t* b = reinterpret_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = Bf16BitsToFloat(b[i]);
      break;
    }
    default:
      DequantizeRow(dtype, src, dst, n);
  }
}

void WeightRowToF32(uint32_t dtype, WeightLayout layout, const uint8_t* w, int64_t row_bytes,
                    int64_t m, float* dst, int64_t n, const VecOps& vec) {
  if (layout == WeightLayout::kPlain) {
    RowToF32(dtype, w + m * row_bytes, dst, n, vec);
  } else {
    WeightRow(dtype, layout, w, row_bytes, m, dst, n);
  }
}

namespace {

// Below this many activation rows the kernels' dot products win (decode).
constexpr int64_t kDnnlMinN = 16;
// Size of one dequantized F16/BF16 weight slab handed to oneDNN.
constexpr int64_t kSlabBytes = 2 << 20;
// One BF16 weight slab: AMX tiles want long products, so larger.
constexpr int64_t kBf16SlabBytes = 4 << 20;

// ----------------------------------------------------------------- GET_ROWS

bool GetRowsDtypes(const Node& n, std::string* why) {
  return WantDtype(n, -1, HEARTH_DTYPE_F32, why) && WantDtypeIn(n, 0, kWeightDtypes, why) &&
         WantDtype(n, 1, HEARTH_DTYPE_I32, why);
}

bool GetRowsCheck(const Node& n, std::string* why) {
  const Tensor& table = n.in[0];
  const Tensor& ids = n.in[1];
  if (!WantRowContiguous(n, -1, why) || !WantRowContiguous(n, 0, why) ||
      !WantRowContiguous(n, 1, why) || !WantDims(n, 0, 2, why) || !WantDims(n, 1, 1, why) ||
      !WantDims(n, -1, 2, why)) {
    return false;
  }
  if (n.out.ne[0] != table.ne[0] || n.out.ne[1] != ids.ne[0]) {
    *why = StrFormat("output %s has shape %s; want [%lld, %lld] (table row length, number of ids)",
                     SlotName(n, -1).c_str(), ShapeStr(n.out).c_str(),
                     static_cast<long long>(table.ne[0]), static_cast<long long>(ids.ne[0]));
    return false;
  }
  const int32_t* id = reinterpret_cast<const int32_t*>(ids.data);
  for (int64_t t = 0; t < ids.ne[0]; ++t) {
    if (id[t] < 0 || id[t] >= table.ne[1]) {
      *why = StrFormat("ids[%lld] = %d is out of range: table %s has %lld rows",
                       static_cast<long long>(t), id[t], SlotName(n, 0).c_str(),
                       static_cast<long long>(table.ne[1]));
      return false;
    }
  }
  return true;
}

size_t NoScratch(const Node&, int) { return 0; }

bool GetRowsRun(const Node& n, ExecEnv& env, std::string* why) {
  const Tensor& table = n.in[0];
  const int32_t* id = reinterpret_cast<const int32_t*>(n.in[1].data);
  const int64_t n_ids = n.in[1].ne[0], d = table.ne[0];
  for (int64_t t = 0; t < n_ids; ++t) {
    if (id[t] < 0 || id[t] >= table.ne[1]) {
      *why = StrFormat("ids[%lld] = %d is out of range: table has %lld rows",
                       static_cast<long long>(t), id[t], static_cast<long long>(table.ne[1]));
      return false;
    }
  }
  const VecOps& vec = Vec();
  int64_t min_rows = 16384 / (d > 0 ? d : 1);
  ParallelFor(env, n_ids, min_rows > 0 ? min_rows : 1, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      WeightRowToF32(table.dtype, table.layout, table.data, table.nb[1], id[t], n.out.F32Row(t), d,
                     vec);
    }
  });
  return true;
}

// ------------------------------------------------------------------ MUL_MAT

// kFloatRows: float activations without oneDNN (HEARTH_MUL_MAT_FLOAT_ACTIVATIONS
// on a context whose oneDNN engine is unusable): each weight row dequantized,
// then plain float dot products.
enum class MatMulPath { kKernels, kDnnlF32, kDnnlSlabs, kFloatRows, kDnnlBf16 };

bool Bf16Allowed(const Node& n) {
  return (n.params<hearth_mul_mat_params>().flags & HEARTH_MUL_MAT_BF16) != 0;
}

bool FloatActivations(const Node& n) {
  // BF16 products never round x coarser than BF16: without a fast BF16 path
  // they take the float-activation one.
  return (n.params<hearth_mul_mat_params>().flags &
          (HEARTH_MUL_MAT_FLOAT_ACTIVATIONS | HEARTH_MUL_MAT_BF16)) != 0;
}

MatMulPath ChoosePath(const Node& n) {
  const uint32_t w = n.in[0].dtype;
  // The kernels round x (to F16/BF16, or to Q8 blocks for block formats);
  // float activations go through oneDNN on dequantized slabs at any size.
  if (FloatActivations(n)) {
    return w == HEARTH_DTYPE_F32 ? MatMulPath::kDnnlF32 : MatMulPath::kDnnlSlabs;
  }
  if (n.in[1].ne[1] < kDnnlMinN) return MatMulPath::kKernels;
  if (w == HEARTH_DTYPE_F32) return MatMulPath::kDnnlF32;
  if (w == HEARTH_DTYPE_F16 || w == HEARTH_DTYPE_BF16) return MatMulPath::kDnnlSlabs;
  return MatMulPath::kKernels;
}

int64_t SlabRows(const Node& n) {
  int64_t k = n.in[0].ne[0], m = n.in[0].ne[1];
  int64_t rows = kSlabBytes / (k > 0 ? k * 4 : 4);
  if (rows < 16) rows = 16;
  return rows < m ? rows : m;
}

// BF16 path scratch: x in BF16 [N, K], one BF16 slab [rows, K], and a float
// row per thread (a weight row dequantized before rounding).
struct Bf16Scratch {
  size_t x_bytes, slab_bytes, row_bytes, total;
};

int64_t Bf16SlabRows(int64_t k, int64_t m) {
  const int64_t rows = std::max<int64_t>(16, kBf16SlabBytes / std::max<int64_t>(k * 2, 2));
  return std::min(rows, m);
}

Bf16Scratch Bf16ScratchFor(int64_t k, int64_t slab_rows, int64_t x_rows, int nth) {
  Bf16Scratch s;
  s.x_bytes = Align64(static_cast<size_t>(x_rows * k) * sizeof(uint16_t));
  s.slab_bytes = Align64(static_cast<size_t>(slab_rows * k) * sizeof(uint16_t));
  s.row_bytes = Align64(static_cast<size_t>(k) * sizeof(float));
  s.total = s.x_bytes + s.slab_bytes + s.row_bytes * static_cast<size_t>(std::max(nth, 1));
  return s;
}

bool MulMatDtypes(const Node& n, std::string* why) {
  return WantDtype(n, -1, HEARTH_DTYPE_F32, why) && WantDtypeIn(n, 0, kWeightDtypes, why) &&
         WantDtype(n, 1, HEARTH_DTYPE_F32, why);
}

MatMulArgs ArgsFor(const Node& n, int64_t i2, int64_t i3) {
  const Tensor& w = n.in[0];
  const Tensor& x = n.in[1];
  MatMulArgs a;
  a.w_dtype = w.dtype;
  a.w_layout = w.layout;
  a.w = w.Row(0, w.ne[2] == 1 ? 0 : i2, w.ne[3] == 1 ? 0 : i3);
  a.w_row_bytes = w.nb[1];
  a.x = reinterpret_cast<const float*>(x.Row(0, i2, i3));
  a.x_row_stride = x.nb[1] / static_cast<int64_t>(sizeof(float));
  a.y = reinterpret_cast<float*>(n.out.Row(0, i2, i3));
  a.y_row_stride = n.out.nb[1] / static_cast<int64_t>(sizeof(float));
  a.K = w.ne[0];
  a.M = w.ne[1];
  a.N = x.ne[1];
  return a;
}

bool MulMatCheck(const Node& n, std::string* why) {
  const Tensor& w = n.in[0];
  const Tensor& x = n.in[1];
  const Tensor& out = n.out;
  if (!WantRowContiguous(n, -1, why) || !WantRowContiguous(n, 0, why) ||
      !WantRowContiguous(n, 1, why)) {
    return false;
  }
  if (w.ne[0] != x.ne[0]) {
    *why = StrFormat("weights %s have K = %lld (ne[0]) but activations %s have K = %lld",
                     SlotName(n, 0).c_str(), static_cast<long long>(w.ne[0]),
                     SlotName(n, 1).c_str(), static_cast<long long>(x.ne[0]));
    return false;
  }
  if (out.ne[0] != w.ne[1] || out.ne[1] != x.ne[1] || out.ne[2] != x.ne[2] ||
      out.ne[3] != x.ne[3]) {
    *why = StrFormat(
        "output %s has shape %s; want [%lld, %lld, %lld, %lld] "
        "(w ne[1], x ne[1], x ne[2], x ne[3])",
        SlotName(n, -1).c_str(), ShapeStr(out).c_str(), static_cast<long long>(w.ne[1]),
        static_cast<long long>(x.ne[1]), static_cast<long long>(x.ne[2]),
        static_cast<long long>(x.ne[3]));
    return false;
  }
  for (int d = 2; d < 4; ++d) {
    if (w.ne[d] != 1 && w.ne[d] != x.ne[d]) {
      *why = StrFormat("weights %s have shape %s, activations %s; w ne[%d] must be 1 or %lld",
                       SlotName(n, 0).c_str(), ShapeStr(w).c_str(), ShapeStr(x).c_str(), d,
                       static_cast<long long>(x.ne[d]));
      return false;
    }
  }
  if (w.ne[0] > 0 && w.ne[1] > 0 && x.ne[1] > 0) {
    std::string bad = MatMulCheck(ArgsFor(n, 0, 0));
    if (!bad.empty()) {
      *why = SlotName(n, 0) + ": " + bad;
      return false;
    }
  }
  return true;
}

size_t MulMatScratch(const Node& n, int nth) {
  const int64_t k = n.in[0].ne[0];
  if (FloatActivations(n)) {  // also room for kFloatRows, should oneDNN be unusable
    const size_t rows = Align64(static_cast<size_t>(k) * sizeof(float)) * static_cast<size_t>(nth);
    const size_t slabs = n.in[0].dtype == HEARTH_DTYPE_F32
                             ? 0
                             : Align64(static_cast<size_t>(SlabRows(n) * k) * sizeof(float));
    // Room for the BF16 path too; whether it runs is known at run time.
    const size_t bf16 =
        Bf16Allowed(n) ? Bf16ScratchFor(k, Bf16SlabRows(k, n.in[0].ne[1]), n.in[1].ne[1], nth).total
                       : 0;
    return std::max({rows, slabs, bf16});
  }
  switch (ChoosePath(n)) {
    case MatMulPath::kDnnlF32:
      return 0;
    case MatMulPath::kDnnlSlabs:
      return Align64(static_cast<size_t>(SlabRows(n) * k) * sizeof(float));
    case MatMulPath::kKernels:
    case MatMulPath::kFloatRows:
    case MatMulPath::kDnnlBf16:
      break;
  }
  return Align64(MatMulScratchBytes(n.in[0].dtype, k, n.in[1].ne[1]));
}

bool RunFloatRows(const MatMulArgs& a, ExecEnv& env) {
  const size_t per_thread = Align64(static_cast<size_t>(a.K) * sizeof(float));
  const VecOps& vec = Vec();
  ParallelFor(env, a.M, 1, [&](int64_t m0, int64_t m1, int ith) {
    float* row = reinterpret_cast<float*>(env.scratch + per_thread * ith);
    for (int64_t m = m0; m < m1; ++m) {
      WeightRowToF32(a.w_dtype, a.w_layout, a.w, a.w_row_bytes, m, row, a.K, vec);
      for (int64_t t = 0; t < a.N; ++t) {
        a.y[t * a.y_row_stride + m] = vec.dot_f32(row, a.x + t * a.x_row_stride, a.K);
      }
    }
  });
  return true;
}

bool RunKernels(const MatMulArgs& a, ExecEnv& env) {
  // Phase 1 only exists for block formats, and quantizing one decode row is
  // cheaper than waking the pool for it.
  if (MatMulScratchBytes(a.w_dtype, a.K, a.N) > 0) {
    const int64_t want = a.K * a.N / 16384;
    const int nth = static_cast<int>(want < 1 ? 1 : (want > env.n_threads ? env.n_threads : want));
    env.pool->Run(nth, [&](int ith, int nt) { MatMulPrepare(a, env.scratch, ith, nt); });
  }
  env.pool->Run(env.n_threads, [&](int ith, int nth) { MatMulCompute(a, env.scratch, ith, nth); });
  return true;
}

bool RunDnnlSlabs(const MatMulArgs& a, ExecEnv& env, int64_t slab_rows, std::string* why) {
  float* slab = reinterpret_cast<float*>(env.scratch);
  const VecOps& vec = Vec();
  for (int64_t m0 = 0; m0 < a.M; m0 += slab_rows) {
    const int64_t rows = a.M - m0 < slab_rows ? a.M - m0 : slab_rows;
    ParallelFor(env, rows, 4, [&](int64_t r0, int64_t r1, int) {
      for (int64_t r = r0; r < r1; ++r) {
        WeightRowToF32(a.w_dtype, a.w_layout, a.w, a.w_row_bytes, m0 + r, slab + r * a.K, a.K, vec);
      }
    });
    env.pool->Park();
    if (!env.dnnl->Run(a.x, a.x_row_stride, slab, a.K, a.y + m0, a.y_row_stride, a.K, rows, a.N,
                       env.n_threads, why)) {
      return false;
    }
  }
  return true;
}

// y[N, M] = bf16(x)[N, K] . bf16(w)[M, K]^T, accumulated in F32.
bool RunDnnlBf16(const MatMulArgs& a, ExecEnv& env, std::string* why) {
  const int64_t slab_rows = Bf16SlabRows(a.K, a.M);
  const Bf16Scratch s = Bf16ScratchFor(a.K, slab_rows, a.N, env.n_threads);
  uint16_t* xb = reinterpret_cast<uint16_t*>(env.scratch);
  uint16_t* slab = reinterpret_cast<uint16_t*>(env.scratch + s.x_bytes);
  uint8_t* rows_f32 = env.scratch + s.x_bytes + s.slab_bytes;
  const VecOps& vec = Vec();
  ParallelFor(env, a.N, 4, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) vec.f32_to_bf16(xb + t * a.K, a.x + t * a.x_row_stride, a.K);
  });
  for (int64_t m0 = 0; m0 < a.M; m0 += slab_rows) {
    const int64_t rows = std::min(slab_rows, a.M - m0);
    ParallelFor(env, rows, 4, [&](int64_t r0, int64_t r1, int ith) {
      RowsToBf16(a.w_dtype, a.w_layout, a.w, a.w_row_bytes, m0 + r0, slab + r0 * a.K, a.K, r1 - r0,
                 a.K, reinterpret_cast<float*>(rows_f32 + s.row_bytes * ith), vec);
    });
    env.pool->Park();
    if (!env.dnnl->RunStridedBf16(xb, a.K, 1, slab, 1, a.K, a.y + m0, a.y_row_stride, a.K, rows,
                                  a.N, false, env.n_threads, why)) {
      return false;
    }
  }
  return true;
}

bool MulMatRun(const Node& n, ExecEnv& env, std::string* why) {
  const Tensor& x = n.in[1];
  const int64_t K = n.in[0].ne[0], M = n.in[0].ne[1], N = x.ne[1];
  if (M == 0 || N == 0) return true;
  MatMulPath path = ChoosePath(n);
  // Without a oneDNN engine the kernels cover every dtype, just slower; float
  // activations then take plain float rows.
  if (env.dnnl == nullptr) {
    path = FloatActivations(n) ? MatMulPath::kFloatRows : MatMulPath::kKernels;
  } else if (Bf16Allowed(n) && env.dnnl->bf16_fast()) {
    path = MatMulPath::kDnnlBf16;
  }
  for (int64_t i3 = 0; i3 < x.ne[3]; ++i3) {
    for (int64_t i2 = 0; i2 < x.ne[2]; ++i2) {
      MatMulArgs a = ArgsFor(n, i2, i3);
      if (K == 0) {
        for (int64_t r = 0; r < N; ++r) std::memset(a.y + r * a.y_row_stride, 0, M * sizeof(float));
        continue;
      }
      bool ok = true;
      switch (path) {
        case MatMulPath::kKernels:
          ok = RunKernels(a, env);
          break;
        case MatMulPath::kDnnlF32:
          env.pool->Park();
          ok = env.dnnl->Run(a.x, a.x_row_stride, reinterpret_cast<const float*>(a.w),
                             a.w_row_bytes / static_cast<int64_t>(sizeof(float)), a.y,
                             a.y_row_stride, K, M, N, env.n_threads, why);
          break;
        case MatMulPath::kDnnlSlabs:
          ok = RunDnnlSlabs(a, env, SlabRows(n), why);
          break;
        case MatMulPath::kFloatRows:
          ok = RunFloatRows(a, env);
          break;
        case MatMulPath::kDnnlBf16:
          ok = RunDnnlBf16(a, env, why);
          break;
      }
      if (!ok) return false;
    }
  }
  return true;
}

}  // namespace

const OpInfo kOpGetRows = {"GET_ROWS",   2,         0,         false, GetRowsDtypes,
                           GetRowsCheck, NoScratch, GetRowsRun};
const OpInfo kOpMulMat = {"MUL_MAT",     2,        0, false, MulMatDtypes, MulMatCheck,
                          MulMatScratch, MulMatRun};

}  // namespace hearth::cpu
