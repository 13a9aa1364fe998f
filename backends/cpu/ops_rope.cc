// ops_rope.cc — the ROPE graph op of the CPU backend: rotary position
// embedding in the "normal" (pairs 2i, 2i+1) and "neox" (pairs i, i+n_rot/2)
// layouts, with optional per-frequency divisors (Llama 3 style scaling), and
// ROPE_BACK, its gradient: the same angles, rotated the other way (a
// rotation's transpose is its inverse).
//
// Angles are computed in double (positions reach 1e5 and more, where a float
// theta loses the low bits) once per token per thread and reused for every
// head of that token.
#include <algorithm>
#include <cmath>

#include "backends/cpu/ops.h"

namespace hearth::cpu {
namespace {

size_t TableBytes(int64_t n_rot) {
  size_t bytes = static_cast<size_t>(n_rot) * sizeof(float);  // n_rot/2 cos + n_rot/2 sin
  return (bytes + 63) & ~static_cast<size_t>(63);
}

bool RopeDtypes(const Node& n, std::string* why) {
  return WantDtype(n, -1, HEARTH_DTYPE_F32, why) && WantDtype(n, 0, HEARTH_DTYPE_F32, why) &&
         WantDtype(n, 1, HEARTH_DTYPE_I32, why) &&
         (!n.has[2] || WantDtype(n, 2, HEARTH_DTYPE_F32, why));
}

bool RopeCheck(const Node& n, std::string* why) {
  const Tensor& x = n.in[0];
  const Tensor& pos = n.in[1];
  if (!WantRowContiguous(n, -1, why) || !WantRowContiguous(n, 0, why) ||
      !WantSameShape(n, -1, 0, why) || !WantDims(n, 0, 3, why) || !WantDims(n, 1, 1, why) ||
      !WantRowContiguous(n, 1, why)) {
    return false;
  }
  if (pos.ne[0] != x.ne[2]) {
    *why = StrFormat("positions %s have %lld entries but x %s has %lld tokens (ne[2])",
                     SlotName(n, 1).c_str(), static_cast<long long>(pos.ne[0]), ShapeStr(x).c_str(),
                     static_cast<long long>(x.ne[2]));
    return false;
  }
  const hearth_rope_params p = n.params<hearth_rope_params>();
  const int32_t n_rot = p.n_rot;
  const int32_t mode = p.mode;
  if (n_rot < 2 || n_rot % 2 != 0 || n_rot > x.ne[0]) {
    *why = StrFormat("n_rot is %d; want an even number in [2, head_dim = %lld]", n_rot,
                     static_cast<long long>(x.ne[0]));
    return false;
  }
  if (mode != HEARTH_ROPE_NORMAL && mode != HEARTH_ROPE_NEOX) {
    *why = StrFormat("mode is %d; want %d (normal) or %d (neox)", mode, HEARTH_ROPE_NORMAL,
                     HEARTH_ROPE_NEOX);
    return false;
  }
  const float base = p.theta_base, freq_scale = p.freq_scale;
  if (!(base > 0.0f) || !std::isfinite(base)) {
    *why = StrFormat("theta_base is %g; want a finite value > 0", static_cast<double>(base));
    return false;
  }
  if (!(freq_scale > 0.0f) || !std::isfinite(freq_scale)) {
    *why = StrFormat("freq_scale is %g; want a finite value > 0", static_cast<double>(freq_scale));
    return false;
  }
  if (n.has[2]) {
    if (!WantDims(n, 2, 1, why) || !WantRowContiguous(n, 2, why)) return false;
    if (n.in[2].ne[0] != n_rot / 2) {
      *why = StrFormat("freq_factors %s have %lld entries; want n_rot/2 = %d",
                       SlotName(n, 2).c_str(), static_cast<long long>(n.in[2].ne[0]), n_rot / 2);
      return false;
    }
  }
  return true;
}

size_t RopeScratch(const Node& n, int nth) {
  return TableBytes(n.params<hearth_rope_params>().n_rot) * static_cast<size_t>(nth);
}

// kInverse rotates by -theta (ROPE_BACK): the sines change sign.
template <bool kInverse>
bool RopeRun(const Node& n, ExecEnv& env, std::string*) {
  const Tensor& x = n.in[0];
  const int32_t* pos = reinterpret_cast<const int32_t*>(n.in[1].data);
  const float* ff = n.has[2] ? reinterpret_cast<const float*>(n.in[2].data) : nullptr;
  const int64_t head_dim = x.ne[0], n_head = x.ne[1], n_tok = x.ne[2];
  const hearth_rope_params p = n.params<hearth_rope_params>();
  const int64_t n_rot = p.n_rot, half = n_rot / 2;
  const bool neox = p.mode == HEARTH_ROPE_NEOX;
  const double freq_scale = p.freq_scale;
  // base^(-2/n_rot): theta_i uses its i-th power.
  const double step = std::pow(static_cast<double>(p.theta_base), -2.0 / n_rot);
  const size_t table_bytes = TableBytes(n_rot);

  // At least a few heads per thread: each thread recomputes the angle table.
  const int64_t min_heads = std::max<int64_t>(4, 16384 / std::max<int64_t>(head_dim, 1));
  ParallelFor(env, n_tok * n_head, min_heads, [&](int64_t begin, int64_t end, int ith) {
    float* cos_t = reinterpret_cast<float*>(env.scratch + table_bytes * ith);
    float* sin_t = cos_t + half;
    int64_t table_tok = -1;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / n_head, h = item % n_head;
      if (t != table_tok) {
        double inv_freq = 1.0;
        for (int64_t i = 0; i < half; ++i) {
          double theta = pos[t] * freq_scale * inv_freq;
          if (ff) theta /= ff[i];
          cos_t[i] = static_cast<float>(std::cos(theta));
          sin_t[i] = static_cast<float>(kInverse ? -std::sin(theta) : std::sin(theta));
          inv_freq *= step;
        }
        table_tok = t;
      }
      const float* src = reinterpret_cast<const float*>(x.Row(h, t));
      float* dst = reinterpret_cast<float*>(n.out.Row(h, t));
      for (int64_t i = 0; i < half; ++i) {
        const int64_t i0 = neox ? i : 2 * i;
        const int64_t i1 = neox ? i + half : 2 * i + 1;
        const float a = src[i0], b = src[i1];
        dst[i0] = a * cos_t[i] - b * sin_t[i];
        dst[i1] = a * sin_t[i] + b * cos_t[i];
      }
      if (dst != src) {
        for (int64_t i = n_rot; i < head_dim; ++i) dst[i] = src[i];
      }
    }
  });
  return true;
}

}  // namespace

const OpInfo kOpRope = {"ROPE", 2, 1, true, RopeDtypes, RopeCheck, RopeScratch, RopeRun<false>};
// Inputs dy, pos, freq_factors in ROPE's slots; in place as ROPE.
const OpInfo kOpRopeBack = {"ROPE_BACK", 2,         1,           true,
                            RopeDtypes,  RopeCheck, RopeScratch, RopeRun<true>};

}  // namespace hearth::cpu
