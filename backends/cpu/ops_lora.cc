// ops_lora.cc — LORA_MUL_MAT on the CPU: out = y + s_t * B (A x), a LoRA pair
// applied beside the base projection, as one node so that decode pays one
// pool wake-up per adapter and target rather than the four nodes (matmul,
// matmul, scale, add) the composed form costs.
//
// Phase 1 runs the matmul kernels with A as the weight: t[R, T] = A x, into
// scratch. Phase 2 splits the M outputs over the pool in column ranges; B
// arrives transposed ([M, R]: each rank's M outputs contiguous), so a
// token's term is R full-width axpys, out += s_t t[r] B^T[r], in place of M
// tiny R-long dot products. For decode-sized A x every thread computes t
// itself, so the node costs one wake-up, not two.
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
  if (a.ne[0] != x.ne[0] || b.ne[1] != a.ne[1] || b.ne[0] != y.ne[0] || x.ne[1] != y.ne[1]) {
    *why = StrFormat(
        "shapes do not chain: a %s, b %s, x %s, y %s; want a [K, "
        "R], b [M, R], x [K, T], "
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
  if (!std::isfinite(n.params<hearth_scale_params>().scale)) {
    *why = StrFormat("scale = %g is not finite",
                     static_cast<double>(n.params<hearth_scale_params>().scale));
    return false;
  }
  return true;
}

// Below this many multiply-adds in A x (decode), every thread computes all
// of t itself: cheaper than a second pool wake-up and barrier per node.
constexpr int64_t kRedundantAxMacs = int64_t{1} << 18;

// BF16 rows of B are converted in blocks of this many values.
constexpr int64_t kConvBlock = 1024;

// Scratch: the shared t [T][R] F32, then per thread a private t and a
// conversion block for BF16.
size_t SharedBytes(int64_t R, int64_t T) { return Align64(static_cast<size_t>(R * T) * 4); }
size_t PerThreadBytes(int64_t R, int64_t T) {
  return Align64(static_cast<size_t>(R * T) * 4) + Align64(kConvBlock * 4);
}

size_t LoraScratch(const Node& n, int nth) {
  const int64_t R = n.in[kA].ne[1], T = n.in[kX].ne[1];
  return SharedBytes(R, T) + static_cast<size_t>(nth) * PerThreadBytes(R, T);
}

MatMulArgs AxArgs(const Node& n, float* t) {
  const Tensor& a = n.in[kA];
  const Tensor& x = n.in[kX];
  MatMulArgs ax;
  ax.w_dtype = a.dtype;
  ax.w = a.data;
  ax.w_row_bytes = a.nb[1];
  ax.x = reinterpret_cast<const float*>(x.data);
  ax.x_row_stride = x.nb[1] / static_cast<int64_t>(sizeof(float));
  ax.y = t;
  ax.y_row_stride = a.ne[1];
  ax.K = a.ne[0];
  ax.M = a.ne[1];
  ax.N = x.ne[1];
  return ax;
}

// Outputs [m0, m1) of every token: out = y + s_t * sum_r t[r] B^T[r].
void OutputColumns(const Node& n, const float* t, float* conv, int64_t m0, int64_t m1) {
  const Tensor& b = n.in[kB];
  const Tensor& y = n.in[kY];
  const int64_t R = b.ne[1], T = n.in[kX].ne[1], width = m1 - m0;
  const float base = n.params<hearth_scale_params>().scale;
  const float* scales =
      n.has[kScales] ? reinterpret_cast<const float*>(n.in[kScales].data) : nullptr;
  const VecOps& vec = Vec();
  for (int64_t tok = 0; tok < T; ++tok) {
    const float* yr = reinterpret_cast<const float*>(y.Row(tok)) + m0;
    float* out = reinterpret_cast<float*>(n.out.Row(tok)) + m0;
    if (out != yr) std::memcpy(out, yr, static_cast<size_t>(width) * sizeof(float));
    const float s = scales ? base * scales[tok] : base;
    if (s == 0.0f) continue;  // a batch row without this adapter: y as it is
    const float* tt = t + tok * R;
    for (int64_t r = 0; r < R; ++r) {
      const float c = s * tt[r];
      const uint8_t* row = b.Row(r);
      switch (b.dtype) {
        case HEARTH_DTYPE_F32:
          vec.axpy_f32(c, reinterpret_cast<const float*>(row) + m0, out, width);
          break;
        case HEARTH_DTYPE_F16:
          vec.axpy_f16(c, reinterpret_cast<const uint16_t*>(row) + m0, out, width);
          break;
        default: {  // BF16
          const uint16_t* h = reinterpret_cast<const uint16_t*>(row) + m0;
          for (int64_t i0 = 0; i0 < width; i0 += kConvBlock) {
            const int64_t len = width - i0 < kConvBlock ? width - i0 : kConvBlock;
            for (int64_t i = 0; i < len; ++i) conv[i] = Bf16BitsToFloat(h[i0 + i]);
            vec.axpy_f32(c, conv, out + i0, len);
          }
        }
      }
    }
  }
}

// Column ranges in multiples of 16 outputs (64-byte lines of F32).
int64_t Cut(int64_t M, int i, int n) {
  if (i >= n) return M;
  const int64_t c = M * i / n / 16 * 16;
  return c < M ? c : M;
}

bool LoraRun(const Node& n, ExecEnv& env, std::string*) {
  const int64_t K = n.in[kA].ne[0], R = n.in[kA].ne[1], M = n.in[kB].ne[0];
  const int64_t T = n.in[kX].ne[1];
  if (M == 0 || T == 0) return true;
  float* shared = reinterpret_cast<float*>(env.scratch);
  uint8_t* per_thread = env.scratch + SharedBytes(R, T);
  const size_t stride = PerThreadBytes(R, T);
  auto private_t = [&](int ith) { return reinterpret_cast<float*>(per_thread + ith * stride); };
  auto conv = [&](int ith) {
    return reinterpret_cast<float*>(per_thread + ith * stride + Align64(R * T * 4));
  };

  // Rows whose per-token scale is 0 (batch rows of requests without this
  // adapter) add nothing: OutputColumns copies y for them, and when few rows
  // remain, A x is formed for those rows only.
  const float* scales =
      n.has[kScales] ? reinterpret_cast<const float*>(n.in[kScales].data) : nullptr;
  int64_t active = T;
  if (scales != nullptr) {
    active = 0;
    for (int64_t tok = 0; tok < T; ++tok) active += scales[tok] != 0.0f;
  }
  const int64_t want = M * (R + 1) * active / kMacsPerThread;
  const int nth = static_cast<int>(want < 1 ? 1 : (want > env.n_threads ? env.n_threads : want));
  if (active < T && R > 0 && K > 0 && K * R * active <= kRedundantAxMacs) {
    // One wake-up: each thread forms t of the active rows on its own, one
    // row at a time (A is small), then its outputs.
    env.pool->Run(nth, [&](int ith, int nt) {
      float* t = private_t(ith);
      for (int64_t tok = 0; tok < T; ++tok) {
        if (scales[tok] == 0.0f) continue;
        MatMulArgs ax = AxArgs(n, t + tok * R);
        ax.x += tok * ax.x_row_stride;
        ax.N = 1;
        MatMulCompute(ax, nullptr, 0, 1);
      }
      OutputColumns(n, t, conv(ith), Cut(M, ith, nt), Cut(M, ith + 1, nt));
    });
    return true;
  }
  if (R == 0 || K == 0) {
    std::memset(shared, 0, static_cast<size_t>(R * T) * sizeof(float));
  } else if (K * R * T <= kRedundantAxMacs) {
    // One wake-up: each thread forms t on its own, then its outputs.
    env.pool->Run(nth, [&](int ith, int nt) {
      float* t = private_t(ith);
      MatMulCompute(AxArgs(n, t), nullptr, 0, 1);
      OutputColumns(n, t, conv(ith), Cut(M, ith, nt), Cut(M, ith + 1, nt));
    });
    return true;
  } else {
    // Float weights need no prepared activations (MatMulScratchBytes is 0).
    const MatMulArgs ax = AxArgs(n, shared);
    env.pool->Run(env.n_threads,
                  [&](int ith, int nt) { MatMulCompute(ax, nullptr, ith, nt); });
  }
  env.pool->Run(nth, [&](int ith, int nt) {
    OutputColumns(n, shared, conv(ith), Cut(M, ith, nt), Cut(M, ith + 1, nt));
  });
  return true;
}

}  // namespace

const OpInfo kOpLoraMulMat = {"LORA_MUL_MAT", 4,          1,         true, LoraDtypes,
                              LoraCheck,      LoraScratch, LoraRun};

}  // namespace hearth::cpu
