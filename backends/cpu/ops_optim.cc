// ops_optim.cc — the training ops of the CPU backend that are not the
// backward of a forward op: ADAMW_STEP (one elementwise AdamW update of p, m
// and v, in place), SUM_SQ (the squared norm of a gradient, for clipping)
// and DROPOUT (LoRA dropout, its own backward).
//
// SUM_SQ is deterministic whatever the thread count: the elements are cut
// into fixed chunks of kSumSqChunk (in ne order), each chunk is summed in
// double by one thread in a fixed order, and the chunk sums are added in
// chunk order at the end.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cpu/ops.h"

namespace hearth::cpu {
namespace {

constexpr int64_t kElemsPerThread = 16384;
constexpr int64_t kSumSqChunk = 16384;

size_t NoScratch(const Node&, int) { return 0; }

// -------------------------------------------------------------- ADAMW_STEP

constexpr int kP = 0, kGrad = 1, kM = 2, kV = 3;

bool AdamwDtypes(const Node& n, std::string* why) {
  for (int s : {-1, -2, -3, kP, kGrad, kM, kV}) {
    if (!WantDtype(n, s, HEARTH_DTYPE_F32, why)) return false;
  }
  return true;
}

bool WantParam(bool ok, const char* name, float value, const char* want, std::string* why) {
  if (ok) return true;
  *why = StrFormat("%s is %g; want %s", name, static_cast<double>(value), want);
  return false;
}

bool AdamwCheck(const Node& n, std::string* why) {
  for (int s : {-1, -2, -3, kP, kGrad, kM, kV}) {
    if (!WantRowContiguous(n, s, why)) return false;
    if (s != kP && !WantSameShape(n, s, kP, why)) return false;
  }
  const hearth_adamw_params p = n.params<hearth_adamw_params>();
  auto finite = [](float x) { return std::isfinite(x); };
  return WantParam(finite(p.lr), "lr", p.lr, "a finite value", why) &&
         WantParam(p.beta1 >= 0.0f && p.beta1 < 1.0f, "beta1", p.beta1, "a value in [0, 1)", why) &&
         WantParam(p.beta2 >= 0.0f && p.beta2 < 1.0f, "beta2", p.beta2, "a value in [0, 1)", why) &&
         WantParam(finite(p.eps) && p.eps >= 0.0f, "eps", p.eps, "a finite value >= 0", why) &&
         WantParam(finite(p.weight_decay), "weight_decay", p.weight_decay, "a finite value", why) &&
         WantParam(finite(p.bias_correction1) && p.bias_correction1 > 0.0f, "bias_correction1",
                   p.bias_correction1, "a finite value > 0 (1 - beta1^t)", why) &&
         WantParam(finite(p.bias_correction2) && p.bias_correction2 > 0.0f, "bias_correction2",
                   p.bias_correction2, "a finite value > 0 (1 - beta2^t)", why) &&
         WantParam(finite(p.grad_scale), "grad_scale", p.grad_scale,
                   "a finite value (0 reads as 1)", why);
}

bool AdamwRun(const Node& n, ExecEnv& env, std::string*) {
  const hearth_adamw_params p = n.params<hearth_adamw_params>();
  const float gs = p.grad_scale == 0.0f ? 1.0f : p.grad_scale;
  const float b1 = p.beta1, b2 = p.beta2, lr = p.lr, eps = p.eps, wd = p.weight_decay;
  const float inv_c1 = 1.0f / p.bias_correction1, inv_c2 = 1.0f / p.bias_correction2;
  const Tensor& pt = n.in[kP];
  ParallelRowPieces(env, pt.Rows(), pt.ne[0], kElemsPerThread,
                    [&](int64_t r, int64_t i0, int64_t i1) {
                      const float* pin = pt.F32Row(r);
                      const float* g = n.in[kGrad].F32Row(r);
                      const float* min = n.in[kM].F32Row(r);
                      const float* vin = n.in[kV].F32Row(r);
                      float* pout = n.out.F32Row(r);
                      float* mout = n.extra[0].F32Row(r);
                      float* vout = n.extra[1].F32Row(r);
                      for (int64_t i = i0; i < i1; ++i) {
                        const float gi = g[i] * gs;
                        const float m = b1 * min[i] + (1.0f - b1) * gi;
                        const float v = b2 * vin[i] + (1.0f - b2) * gi * gi;
                        const float pi = pin[i];
                        mout[i] = m;
                        vout[i] = v;
                        pout[i] = pi - lr * (m * inv_c1 / (std::sqrt(v * inv_c2) + eps) + wd * pi);
                      }
                    });
  return true;
}

// ------------------------------------------------------------------ SUM_SQ

bool SumSqDtypes(const Node& n, std::string* why) {
  return WantDtype(n, -1, HEARTH_DTYPE_F32, why) && WantDtype(n, 0, HEARTH_DTYPE_F32, why);
}

bool SumSqCheck(const Node& n, std::string* why) {
  if (!WantRowContiguous(n, 0, why)) return false;
  if (n.out.Elems() != 1) {
    *why = StrFormat("output %s has shape %s; want one element", SlotName(n, -1).c_str(),
                     ShapeStr(n.out).c_str());
    return false;
  }
  return true;
}

int64_t Chunks(const Tensor& x) { return (x.Elems() + kSumSqChunk - 1) / kSumSqChunk; }

size_t SumSqScratch(const Node& n, int) {
  return static_cast<size_t>(Chunks(n.in[0])) * sizeof(double);
}

// Elements [e0, e1) in ne order, summed with four accumulators in a fixed
// pattern.
double SumSqRange(const Tensor& x, int64_t e0, int64_t e1) {
  const int64_t d = x.ne[0];
  double acc[4] = {0, 0, 0, 0};
  int64_t e = e0;
  while (e < e1) {
    const int64_t r = e / d, i0 = e % d;
    const int64_t i1 = std::min(d, i0 + (e1 - e));
    const float* row = x.F32Row(r);
    int64_t i = i0;
    for (; i + 4 <= i1; i += 4) {
      for (int l = 0; l < 4; ++l) acc[l] += double{row[i + l]} * row[i + l];
    }
    for (; i < i1; ++i) acc[0] += double{row[i]} * row[i];
    e += i1 - i0;
  }
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

bool SumSqRun(const Node& n, ExecEnv& env, std::string*) {
  const Tensor& x = n.in[0];
  const int64_t n_chunks = Chunks(x), total = x.Elems();
  double* partial = reinterpret_cast<double*>(env.scratch);
  ParallelFor(env, n_chunks, 4, [&](int64_t c0, int64_t c1, int) {
    for (int64_t c = c0; c < c1; ++c) {
      partial[c] = SumSqRange(x, c * kSumSqChunk, std::min(total, (c + 1) * kSumSqChunk));
    }
  });
  double sum = 0;
  for (int64_t c = 0; c < n_chunks; ++c) sum += partial[c];
  *reinterpret_cast<float*>(n.out.data) = static_cast<float>(sum);
  return true;
}

// ----------------------------------------------------------------- DROPOUT

bool DropoutDtypes(const Node& n, std::string* why) {
  return WantDtype(n, -1, HEARTH_DTYPE_F32, why) && WantDtype(n, 0, HEARTH_DTYPE_F32, why) &&
         (!n.has[1] || WantDtype(n, 1, HEARTH_DTYPE_I32, why));
}

bool DropoutCheck(const Node& n, std::string* why) {
  if (!WantRowContiguous(n, 0, why) || !WantRowContiguous(n, -1, why) ||
      !WantSameShape(n, -1, 0, why)) {
    return false;
  }
  if (n.has[1] && (n.in[1].Elems() != 2 || !WantRowContiguous(n, 1, why))) {
    if (why->empty()) {
      *why = StrFormat("offset %s has shape %s; want 2 elements", SlotName(n, 1).c_str(),
                       ShapeStr(n.in[1]).c_str());
    }
    return false;
  }
  const hearth_dropout_params p = n.params<hearth_dropout_params>();
  return WantParam(p.p >= 0.0f && p.p < 1.0f, "p", p.p, "a probability in [0, 1)", why);
}

uint64_t SplitMix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

bool DropoutRun(const Node& n, ExecEnv& env, std::string*) {
  const hearth_dropout_params p = n.params<hearth_dropout_params>();
  const auto threshold = static_cast<uint32_t>(static_cast<double>(p.p) * 4294967296.0);
  const auto s = static_cast<float>(1.0 / (1.0 - static_cast<double>(p.p)));
  uint64_t seed = p.seed;
  if (n.has[1]) {
    uint32_t half[2];
    std::memcpy(half, n.in[1].data, sizeof(half));
    seed += uint64_t{half[0]} | (uint64_t{half[1]} << 32);
  }
  const Tensor& x = n.in[0];
  const int64_t ne0 = x.ne[0];
  ParallelRowPieces(env, x.Rows(), ne0, kElemsPerThread, [&](int64_t r, int64_t i0, int64_t i1) {
    const float* in = x.F32Row(r);
    float* out = n.out.F32Row(r);
    const uint64_t base = seed + static_cast<uint64_t>(r) * static_cast<uint64_t>(ne0);
    for (int64_t i = i0; i < i1; ++i) {
      const bool keep =
          static_cast<uint32_t>(SplitMix64(base + static_cast<uint64_t>(i)) >> 32) >= threshold;
      out[i] = keep ? in[i] * s : 0.0f;
    }
  });
  return true;
}

}  // namespace

// Outputs p, m, v: each the same view as its input (or a tensor of its
// own, which leaves the inputs unchanged).
const OpInfo kOpAdamwStep = {"ADAMW_STEP",
                             4,
                             0,
                             true,
                             AdamwDtypes,
                             AdamwCheck,
                             NoScratch,
                             AdamwRun,
                             /*n_extra_required=*/2,
                             /*n_extra_optional=*/0,
                             /*in_place_extra=*/{kM, kV}};
const OpInfo kOpSumSq = {"SUM_SQ", 1, 0, false, SumSqDtypes, SumSqCheck, SumSqScratch, SumSqRun};
const OpInfo kOpDropout = {"DROPOUT",    1,         1,         true, DropoutDtypes,
                           DropoutCheck, NoScratch, DropoutRun};

}  // namespace hearth::cpu
