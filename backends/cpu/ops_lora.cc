// ops_lora.cc — LORA_MUL_MAT on the CPU: out = y + s_t * B (A x), a LoRA pair
// applied beside the base projection, as one node so that decode pays two
// pool wake-ups per adapter and target rather than the four nodes (matmul,
// matmul, scale, add) the composed form costs.
//
// Phase 1 runs the matmul kernels with A as the weight: t[R, T] = A x, into
// scratch. Phase 2 splits the M output rows over the pool; each row m takes
// R-long dot products of B's row m with every token's t. R is small (4..64),
// so phase 2 reads B once and t stays in L1.
#include <cmath>
#include <cstring>

#include "backends/cpu/kernels.h"
#include "backends/cpu/ops.h"
#include "backends/cpu/ops_vec.h"

namespace hearth::cpu {
namespace {

constexpr uint32_t kPairDtypes =
    (1u << HEARTH_DTYPE_F32) | (1u << HEARTH_DTYPE_F16) | (1u << HEARTH_DTYPE_BF16);
constexpr int kY = 0, kA = 1, kB = 2, kX = 3, kScales = 4;
// Phase 2 gets a thread per this many multiply-adds.
constexpr int64_t kMacsPerThread = 16384;

size_t Align64(size_t n) { return (n + 63) & ~static_cast<size_t>(63); }

bool LoraDtypes(const Node& n, std::string* why) {
  return WantDtype(n, -1, HEARTH_DTYPE_F32, why) && WantDtype(n, kY, HEARTH_DTYPE_F32, why) &&
         WantDtypeIn(n, kA, kPairDtypes, why) && WantDtypeIn(n, kB, kPairDtypes, why) &&
         WantDtype(n, kX, HEARTH_DTYPE_F32, why) &&
         (!n.has[kScales] || WantDtype(n, kScales, HEARTH_DTYPE_F32, why));
}

bool LoraCheck(const Node& n, std::string* why) {
  for (int s = -1; s <= kScales; ++s) {
    if (s == kScales && !n.has[kScales]) break;
    if (!WantRowContiguous(n, s, why) || !WantDims(n, s, s == kScales ? 1 : 2, why)) return false;
  }
  if (!WantSameShape(n, -1, kY, why)) return false;
  const Tensor& a = n.in[kA];
  const Tensor& b = n.in[kB];
  const Tensor& x = n.in[kX];
  const Tensor& y = n.in[kY];
  if (a.ne[0] != x.ne[0] || b.ne[0] != a.ne[1] || b.ne[1] != y.ne[0] || x.ne[1] != y.ne[1]) {
    *why = StrFormat(
        "shapes do not chain: a %s, b %s, x %s, y %s; want a [K, R], b [R, M], x [K, T], "
        "y [M, T]",
        ShapeStr(a).c_str(), ShapeStr(b).c_str(), ShapeStr(x).c_str(), ShapeStr(y).c_str());
    return false;
  }
  if (n.has[kScales] && n.in[kScales].ne[0] != x.ne[1]) {
    *why = StrFormat("scales %s has %lld entries; want one per token (%lld)",
                     SlotName(n, kScales).c_str(),
                     static_cast<long long>(n.in[kScales].ne[0]),
                     static_cast<long long>(x.ne[1]));
    return false;
  }
  if (!std::isfinite(n.node->fparams[0])) {
    *why = StrFormat("fparams[0] (scale) = %g is not finite",
                     static_cast<double>(n.node->fparams[0]));
    return false;
  }
  return true;
}

// Scratch: t [T][R] F32, then one R-float row per thread for BF16 rows of B.
size_t LoraScratch(const Node& n, int nth) {
  const int64_t R = n.in[kA].ne[1], T = n.in[kX].ne[1];
  size_t bytes = Align64(static_cast<size_t>(R * T) * sizeof(float));
  bytes += static_cast<size_t>(nth) * Align64(static_cast<size_t>(R) * sizeof(float));
  return bytes;
}

bool LoraRun(const Node& n, ExecEnv& env, std::string*) {
  const Tensor& a = n.in[kA];
  const Tensor& b = n.in[kB];
  const Tensor& x = n.in[kX];
  const Tensor& y = n.in[kY];
  const int64_t K = a.ne[0], R = a.ne[1], M = b.ne[1], T = x.ne[1];
  if (M == 0 || T == 0) return true;
  float* t = reinterpret_cast<float*>(env.scratch);
  uint8_t* row_scratch = env.scratch + Align64(static_cast<size_t>(R * T) * sizeof(float));
  const size_t row_stride = Align64(static_cast<size_t>(R) * sizeof(float));

  if (R > 0 && K > 0) {
    MatMulArgs ax;
    ax.w_dtype = a.dtype;
    ax.w = a.data;
    ax.w_row_bytes = a.nb[1];
    ax.x = reinterpret_cast<const float*>(x.data);
    ax.x_row_stride = x.nb[1] / static_cast<int64_t>(sizeof(float));
    ax.y = t;
    ax.y_row_stride = R;
    ax.K = K;
    ax.M = R;
    ax.N = T;
    // Float weights need no prepared activations (MatMulScratchBytes is 0).
    env.pool->Run(env.n_threads,
                  [&](int ith, int nth) { MatMulCompute(ax, nullptr, ith, nth); });
  } else {
    std::memset(t, 0, static_cast<size_t>(R * T) * sizeof(float));
  }

  const float base = n.node->fparams[0];
  const float* scales = n.has[kScales] ? reinterpret_cast<const float*>(n.in[kScales].data)
                                       : nullptr;
  const VecOps& vec = Vec();
  const int64_t min_rows = kMacsPerThread / (R * T > 0 ? R * T : 1);
  ParallelFor(env, M, min_rows > 0 ? min_rows : 1, [&](int64_t m0, int64_t m1, int ith) {
    float* conv = reinterpret_cast<float*>(row_scratch + static_cast<size_t>(ith) * row_stride);
    for (int64_t m = m0; m < m1; ++m) {
      const uint8_t* brow = b.Row(m);
      const float* bf = nullptr;
      if (b.dtype == HEARTH_DTYPE_F32) {
        bf = reinterpret_cast<const float*>(brow);
      } else if (b.dtype == HEARTH_DTYPE_BF16) {
        const uint16_t* h = reinterpret_cast<const uint16_t*>(brow);
        for (int64_t r = 0; r < R; ++r) conv[r] = Bf16BitsToFloat(h[r]);
        bf = conv;
      }
      for (int64_t tok = 0; tok < T; ++tok) {
        const float* tt = t + tok * R;
        const float d = bf ? vec.dot_f32(bf, tt, R)
                           : vec.dot_f16(tt, reinterpret_cast<const uint16_t*>(brow), R);
        const float s = scales ? base * scales[tok] : base;
        const float yv = reinterpret_cast<const float*>(y.Row(tok))[m];
        reinterpret_cast<float*>(n.out.Row(tok))[m] = yv + s * d;
      }
    }
  });
  return true;
}

}  // namespace

const OpInfo kOpLoraMulMat = {"LORA_MUL_MAT", 4,          1,         true, LoraDtypes,
                              LoraCheck,      LoraScratch, LoraRun};

}  // namespace hearth::cpu
