// ops_matmul_back.cc — the matrix-product backward ops of the CPU backend:
// MUL_MAT_T (the input gradient through a frozen weight of any format) and
// OUTER (sums of outer products: the LoRA factor gradients).
//
// MUL_MAT_T: out[t, :] = sum_m dy[t, m] w[m, :] with w's rows in any
// format. Rows of w are dequantized a slab at a time into scratch (never
// the whole matrix), and each slab is one oneDNN product accumulated into
// out (row-major slab [rows, K] read as the weights, so no transposition is
// copied). F32 weights are read in place. Without oneDNN, or for fewer than
// kDnnlMinT tokens, the own path splits out's columns over the pool and
// adds slab rows with axpy, in a fixed order of m for every element. With
// HEARTH_MUL_MAT_BF16 and a CPU oneDNN runs BF16 on natively, dy is rounded
// to BF16 once and each slab is rounded too (ops_bf16.h): BF16 x BF16 -> F32.
//
// OUTER: out[p, :] = acc[p, :] + sum_t b[t, p] a[t, :]: one oneDNN product
// with b read transposed, or the same axpy loop split over p.
#include <algorithm>
#include <cstring>

#include "backends/cpu/ops.h"
#include "backends/cpu/ops_bf16.h"
#include "backends/cpu/ops_dnnl.h"
#include "backends/cpu/ops_vec.h"

namespace hearth::cpu {
namespace {

// Below this many tokens the axpy path beats a oneDNN call per slab.
constexpr int64_t kDnnlMinT = 16;
// One dequantized slab of weight rows; large enough that oneDNN runs long
// GEMMs and out (re-read once per slab) is not read too often.
constexpr int64_t kSlabBytes = 8 << 20;
// OUTER products smaller than this many multiply-adds skip oneDNN.
constexpr int64_t kOuterDnnlMinMacs = int64_t{1} << 16;

int64_t Ld(const Tensor& t) { return t.nb[1] / static_cast<int64_t>(sizeof(float)); }

// ---------------------------------------------------------------- MUL_MAT_T

constexpr int kW = 0, kDy = 1;

int64_t SlabRows(const Tensor& w) {
  const int64_t k = w.ne[0], m = w.ne[1];
  const int64_t rows = std::max<int64_t>(16, kSlabBytes / std::max<int64_t>(k * 4, 4));
  return std::min(rows, m);
}

bool Bf16Allowed(const Node& n) {
  return (n.params<hearth_mul_mat_params>().flags & HEARTH_MUL_MAT_BF16) != 0;
}

// BF16 path scratch: dy in BF16 [T, M], one BF16 slab [rows, K] (as many
// bytes as an F32 slab, so twice the rows), a float row per thread.
struct Bf16Layout {
  int64_t slab_rows;
  size_t dy_bytes, slab_bytes, row_bytes, total;
};

Bf16Layout Bf16LayoutFor(const Tensor& w, int64_t T, int nth) {
  const int64_t k = w.ne[0], m = w.ne[1];
  Bf16Layout l;
  l.slab_rows = std::min(m, std::max<int64_t>(16, kSlabBytes / std::max<int64_t>(k * 2, 2)));
  l.dy_bytes = Align64(static_cast<size_t>(T * m) * sizeof(uint16_t));
  l.slab_bytes = Align64(static_cast<size_t>(l.slab_rows * k) * sizeof(uint16_t));
  l.row_bytes = Align64(static_cast<size_t>(k) * sizeof(float));
  l.total = l.dy_bytes + l.slab_bytes + l.row_bytes * static_cast<size_t>(std::max(nth, 1));
  return l;
}

bool MulMatTDtypes(const Node& n, std::string* why) {
  return WantDtype(n, -1, HEARTH_DTYPE_F32, why) && WantDtypeIn(n, kW, kWeightDtypes, why) &&
         WantDtype(n, kDy, HEARTH_DTYPE_F32, why);
}

bool MulMatTCheck(const Node& n, std::string* why) {
  const Tensor& w = n.in[kW];
  const Tensor& dy = n.in[kDy];
  const Tensor& out = n.out;
  for (int s : {-1, kW, kDy}) {
    if (!WantRowContiguous(n, s, why)) return false;
  }
  if (dy.ne[0] != w.ne[1]) {
    *why = StrFormat("dy %s has M = %lld (ne[0]) but weights %s have M = %lld rows (ne[1])",
                     SlotName(n, kDy).c_str(), static_cast<long long>(dy.ne[0]),
                     SlotName(n, kW).c_str(), static_cast<long long>(w.ne[1]));
    return false;
  }
  if (out.ne[0] != w.ne[0] || out.ne[1] != dy.ne[1] || out.ne[2] != dy.ne[2] ||
      out.ne[3] != dy.ne[3]) {
    *why = StrFormat(
        "output %s has shape %s; want [%lld, %lld, %lld, %lld] (w ne[0], dy ne[1], dy ne[2], "
        "dy ne[3])",
        SlotName(n, -1).c_str(), ShapeStr(out).c_str(), static_cast<long long>(w.ne[0]),
        static_cast<long long>(dy.ne[1]), static_cast<long long>(dy.ne[2]),
        static_cast<long long>(dy.ne[3]));
    return false;
  }
  for (int d = 2; d < 4; ++d) {
    if (w.ne[d] != 1 && w.ne[d] != dy.ne[d]) {
      *why = StrFormat("weights %s have shape %s, dy %s; w ne[%d] must be 1 or %lld",
                       SlotName(n, kW).c_str(), ShapeStr(w).c_str(), ShapeStr(dy).c_str(), d,
                       static_cast<long long>(dy.ne[d]));
      return false;
    }
  }
  const int64_t be = hearth_dtype_block_elems(w.dtype);
  if (be > 1 && w.ne[0] % be != 0) {
    *why = StrFormat("weights %s have K = %lld, not a multiple of the %s block size (%lld)",
                     SlotName(n, kW).c_str(), static_cast<long long>(w.ne[0]), DtypeName(w.dtype),
                     static_cast<long long>(be));
    return false;
  }
  return true;
}

size_t MulMatTScratch(const Node& n, int nth) {
  const Tensor& w = n.in[kW];
  // Room for the BF16 path too; whether it runs is known at run time.
  const size_t bf16 = Bf16Allowed(n) ? Bf16LayoutFor(w, n.in[kDy].ne[1], nth).total : 0;
  if (w.dtype == HEARTH_DTYPE_F32) return bf16;
  return std::max(bf16, Align64(static_cast<size_t>(SlabRows(w) * w.ne[0]) * sizeof(float)));
}

// One (i2, i3) matrix of the batch.
struct MatT {
  const uint8_t* w;  // row m at w + m * w_row_bytes
  int64_t w_row_bytes;
  uint32_t w_dtype;
  WeightLayout w_layout;
  const float* dy;  // dy[t, m] at dy[t * ldd + m]
  int64_t ldd;
  float* out;  // out[t, k] at out[t * ldo + k]
  int64_t ldo;
  int64_t K, M, T;
};

// Rows [m0, m0 + rows) of w as F32: in place for F32, else dequantized into
// slab by the pool. Returns the rows and sets *ld to their stride.
const float* SlabOf(const MatT& a, int64_t m0, int64_t rows, float* slab, ExecEnv& env,
                    int64_t* ld) {
  if (a.w_dtype == HEARTH_DTYPE_F32 && a.w_layout == WeightLayout::kPlain) {
    *ld = a.w_row_bytes / static_cast<int64_t>(sizeof(float));
    return reinterpret_cast<const float*>(a.w + m0 * a.w_row_bytes);
  }
  const VecOps& vec = Vec();
  ParallelFor(env, rows, 4, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      WeightRowToF32(a.w_dtype, a.w_layout, a.w, a.w_row_bytes, m0 + r, slab + r * a.K, a.K, vec);
    }
  });
  *ld = a.K;
  return slab;
}

// The own path: columns of out split over the pool, slab rows added in
// order of m.
void MulMatTAxpy(const MatT& a, const float* rows_f32, int64_t ld, int64_t m0, int64_t rows,
                 bool first, ExecEnv& env) {
  const VecOps& vec = Vec();
  const int64_t min_cols = std::max<int64_t>(64, 16384 / std::max<int64_t>(rows * a.T, 1));
  ParallelFor(env, (a.K + 15) / 16, (min_cols + 15) / 16, [&](int64_t c0, int64_t c1, int) {
    const int64_t k0 = c0 * 16, k1 = std::min(c1 * 16, a.K);
    for (int64_t t = 0; t < a.T; ++t) {
      float* o = a.out + t * a.ldo + k0;
      if (first) std::memset(o, 0, static_cast<size_t>(k1 - k0) * sizeof(float));
      const float* d = a.dy + t * a.ldd + m0;
      for (int64_t r = 0; r < rows; ++r) {
        vec.axpy_f32(d[r], rows_f32 + r * ld + k0, o, k1 - k0);
      }
    }
  });
}

// out[T, K] = bf16(dy)[T, M] . bf16(w)[M, K], slab by slab, accumulated in
// F32 by oneDNN.
bool MulMatTBf16(const MatT& a, const Bf16Layout& l, ExecEnv& env, std::string* why) {
  uint16_t* dyb = reinterpret_cast<uint16_t*>(env.scratch);
  uint16_t* slab = reinterpret_cast<uint16_t*>(env.scratch + l.dy_bytes);
  uint8_t* rows_f32 = env.scratch + l.dy_bytes + l.slab_bytes;
  const VecOps& vec = Vec();
  ParallelFor(env, a.T, 4, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) vec.f32_to_bf16(dyb + t * a.M, a.dy + t * a.ldd, a.M);
  });
  for (int64_t m0 = 0; m0 < a.M; m0 += l.slab_rows) {
    const int64_t rows = std::min(l.slab_rows, a.M - m0);
    ParallelFor(env, rows, 4, [&](int64_t r0, int64_t r1, int ith) {
      RowsToBf16(a.w_dtype, a.w_layout, a.w, a.w_row_bytes, m0 + r0, slab + r0 * a.K, a.K, r1 - r0,
                 a.K, reinterpret_cast<float*>(rows_f32 + l.row_bytes * ith), vec);
    });
    env.pool->Park();
    if (!env.dnnl->RunStridedBf16(dyb + m0, a.M, 1, slab, a.K, 1, a.out, a.ldo, rows, a.K, a.T,
                                  m0 > 0, env.n_threads, why)) {
      return false;
    }
  }
  return true;
}

bool MulMatTRun(const Node& n, ExecEnv& env, std::string* why) {
  const Tensor& w = n.in[kW];
  const Tensor& dy = n.in[kDy];
  const int64_t K = w.ne[0], M = w.ne[1], T = dy.ne[1];
  if (K == 0 || T == 0) return true;
  const bool dnnl = env.dnnl != nullptr && T >= kDnnlMinT;
  // BF16 at any T, as MUL_MAT does: the flag's results do not depend on T.
  const bool bf16 = env.dnnl != nullptr && Bf16Allowed(n) && env.dnnl->bf16_fast();
  const int64_t slab_rows = std::max<int64_t>(SlabRows(w), 1);
  float* slab = reinterpret_cast<float*>(env.scratch);
  for (int64_t i3 = 0; i3 < dy.ne[3]; ++i3) {
    for (int64_t i2 = 0; i2 < dy.ne[2]; ++i2) {
      MatT a;
      a.w = w.Row(0, w.ne[2] == 1 ? 0 : i2, w.ne[3] == 1 ? 0 : i3);
      a.w_row_bytes = w.nb[1];
      a.w_dtype = w.dtype;
      a.w_layout = w.layout;
      a.dy = reinterpret_cast<const float*>(dy.Row(0, i2, i3));
      a.ldd = Ld(dy);
      a.out = reinterpret_cast<float*>(n.out.Row(0, i2, i3));
      a.ldo = Ld(n.out);
      a.K = K;
      a.M = M;
      a.T = T;
      if (M == 0) {
        for (int64_t t = 0; t < T; ++t) {
          std::memset(a.out + t * a.ldo, 0, static_cast<size_t>(K) * sizeof(float));
        }
        continue;
      }
      if (bf16) {
        if (!MulMatTBf16(a, Bf16LayoutFor(w, T, env.n_threads), env, why)) return false;
        continue;
      }
      // F32 weights need no slab: one product over all of M.
      const int64_t step = dnnl && w.dtype == HEARTH_DTYPE_F32 ? M : slab_rows;
      for (int64_t m0 = 0; m0 < M; m0 += step) {
        const int64_t rows = std::min(step, M - m0);
        int64_t ld = 0;
        const float* src = SlabOf(a, m0, rows, slab, env, &ld);
        if (!dnnl) {
          MulMatTAxpy(a, src, ld, m0, rows, m0 == 0, env);
          continue;
        }
        // out[t, k] (+)= sum_r dy[t, m0 + r] * src[r, k].
        env.pool->Park();
        if (!env.dnnl->RunStrided(a.dy + m0, a.ldd, 1, src, ld, 1, a.out, a.ldo, rows, K, T, m0 > 0,
                                  env.n_threads, why)) {
          return false;
        }
      }
    }
  }
  return true;
}

// -------------------------------------------------------------------- OUTER

constexpr int kA = 0, kB = 1, kAcc = 2;

bool OuterDtypes(const Node& n, std::string* why) {
  return WantDtype(n, -1, HEARTH_DTYPE_F32, why) && WantDtype(n, kA, HEARTH_DTYPE_F32, why) &&
         WantDtype(n, kB, HEARTH_DTYPE_F32, why) &&
         (!n.has[kAcc] || WantDtype(n, kAcc, HEARTH_DTYPE_F32, why));
}

bool OuterCheck(const Node& n, std::string* why) {
  for (int s = -1; s <= kAcc; ++s) {
    if (s == kAcc && !n.has[kAcc]) break;
    if (!WantRowContiguous(n, s, why) || !WantDims(n, s, 2, why)) return false;
  }
  const Tensor& a = n.in[kA];
  const Tensor& b = n.in[kB];
  if (a.ne[1] != b.ne[1]) {
    *why = StrFormat("a %s has %lld tokens (ne[1]) but b %s has %lld", SlotName(n, kA).c_str(),
                     static_cast<long long>(a.ne[1]), SlotName(n, kB).c_str(),
                     static_cast<long long>(b.ne[1]));
    return false;
  }
  if (n.out.ne[0] != a.ne[0] || n.out.ne[1] != b.ne[0]) {
    *why = StrFormat("output %s has shape %s; want [%lld, %lld] (a ne[0], b ne[0])",
                     SlotName(n, -1).c_str(), ShapeStr(n.out).c_str(),
                     static_cast<long long>(a.ne[0]), static_cast<long long>(b.ne[0]));
    return false;
  }
  return !n.has[kAcc] || WantSameShape(n, kAcc, -1, why);
}

size_t NoScratch(const Node&, int) { return 0; }

bool OuterRun(const Node& n, ExecEnv& env, std::string* why) {
  const Tensor& a = n.in[kA];
  const Tensor& b = n.in[kB];
  const int64_t N = a.ne[0], P = b.ne[0], T = a.ne[1];
  if (N == 0 || P == 0) return true;
  const float* acc = n.has[kAcc] ? reinterpret_cast<const float*>(n.in[kAcc].data) : nullptr;
  const int64_t lda = Ld(a), ldb = Ld(b), ldo = Ld(n.out);
  const int64_t ldacc = n.has[kAcc] ? Ld(n.in[kAcc]) : 0;
  float* out = reinterpret_cast<float*>(n.out.data);
  const float* pa = reinterpret_cast<const float*>(a.data);
  const float* pb = reinterpret_cast<const float*>(b.data);
  const bool dnnl = env.dnnl != nullptr && T > 0 && N * P * T >= kOuterDnnlMinMacs;
  const VecOps& vec = Vec();
  // Rows of out start as acc (or 0), unless they already are acc (in place)
  // or oneDNN overwrites them.
  const bool start_needed = !(acc == out && ldacc == ldo) && !(dnnl && acc == nullptr);
  const int64_t min_rows = std::max<int64_t>(1, 16384 / std::max<int64_t>(N * (T + 1), 1));
  if (start_needed || !dnnl) {
    ParallelFor(env, P, min_rows, [&](int64_t p0, int64_t p1, int) {
      for (int64_t p = p0; p < p1; ++p) {
        float* o = out + p * ldo;
        if (start_needed) {
          if (acc) {
            std::memcpy(o, acc + p * ldacc, static_cast<size_t>(N) * sizeof(float));
          } else {
            std::memset(o, 0, static_cast<size_t>(N) * sizeof(float));
          }
        }
        if (dnnl) continue;
        for (int64_t t = 0; t < T; ++t) {
          vec.axpy_f32(pb[t * ldb + p], pa + t * lda, o, N);
        }
      }
    });
  }
  if (!dnnl) return true;
  // out[p, n] (+)= sum_t b[t, p] a[t, n]: b read transposed as the source.
  env.pool->Park();
  return env.dnnl->RunStrided(pb, 1, ldb, pa, lda, 1, out, ldo, T, N, P, acc != nullptr,
                              env.n_threads, why);
}

}  // namespace

const OpInfo kOpMulMatT = {"MUL_MAT_T",    2,         0, false, MulMatTDtypes, MulMatTCheck,
                           MulMatTScratch, MulMatTRun};
const OpInfo kOpOuter = {"OUTER", 2, 1, true, OuterDtypes, OuterCheck, NoScratch, OuterRun};

}  // namespace hearth::cpu
