// ops_loss.cc — the loss ops of the CPU backend: CROSS_ENTROPY (masked,
// per token) and CROSS_ENTROPY_BACK (its gradient with respect to the
// logits, in place allowed). One token's logits row per work item; the
// softmax takes the row max out first and sums in float with SIMD exp,
// the log-sum in double.
//
// Masking: a target < 0, or equal to ignore_index, adds nothing. Targets
// >= V are refused by check() before anything runs. CROSS_ENTROPY_BACK's
// params are hearth_scale_params, optionally followed by an int32
// ignore_index (the "ignore rule" of the contract): ignore_index is only
// used when the params block carries it (params_size >= 8), because a
// missing field reads as 0, which would mask token 0.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cpu/ops.h"
#include "backends/cpu/ops_vec.h"

namespace hearth::cpu {
namespace {

constexpr int kLogits = 0, kTargets = 1;

constexpr int64_t kElemsPerThread = 16384;

using CrossEntropyBackParams = hearth_cross_entropy_back_params;

int64_t MinRows(int64_t v) {
  return std::max<int64_t>(1, kElemsPerThread / std::max<int64_t>(v, 1));
}

bool LossDtypes(const Node& n, std::string* why) {
  return WantDtype(n, -1, HEARTH_DTYPE_F32, why) && WantDtype(n, kLogits, HEARTH_DTYPE_F32, why) &&
         WantDtype(n, kTargets, HEARTH_DTYPE_I32, why);
}

// Masked: contributes nothing. *ignore is null when no ignore_index applies.
inline bool Masked(int32_t target, const int32_t* ignore) {
  return target < 0 || (ignore != nullptr && target == *ignore);
}

// Shapes shared by both ops, then every unmasked target inside [0, V).
bool CheckTargets(const Node& n, const int32_t* ignore, std::string* why) {
  const Tensor& logits = n.in[kLogits];
  const Tensor& targets = n.in[kTargets];
  if (!WantRowContiguous(n, kLogits, why) || !WantRowContiguous(n, kTargets, why) ||
      !WantDims(n, kLogits, 2, why) || !WantDims(n, kTargets, 1, why)) {
    return false;
  }
  if (targets.ne[0] != logits.ne[1]) {
    *why = StrFormat("targets %s have %lld entries but logits %s have %lld tokens (ne[1])",
                     SlotName(n, kTargets).c_str(), static_cast<long long>(targets.ne[0]),
                     SlotName(n, kLogits).c_str(), static_cast<long long>(logits.ne[1]));
    return false;
  }
  const int32_t* tg = reinterpret_cast<const int32_t*>(targets.data);
  for (int64_t t = 0; t < targets.ne[0]; ++t) {
    if (!Masked(tg[t], ignore) && tg[t] >= logits.ne[0]) {
      *why = StrFormat("targets[%lld] = %d is out of range: logits %s have %lld classes (ne[0])",
                       static_cast<long long>(t), tg[t], SlotName(n, kLogits).c_str(),
                       static_cast<long long>(logits.ne[0]));
      return false;
    }
  }
  return true;
}

// ----------------------------------------------------------- CROSS_ENTROPY

// The ignore_index of CROSS_ENTROPY when its params carry one, else null
// (hearth_plugin.h: the field applies only when params_size covers it).
const int32_t* ForwardIgnore(const Node& n, int32_t* storage) {
  if (n.node->params_size < sizeof(hearth_cross_entropy_params)) return nullptr;
  *storage = n.params<hearth_cross_entropy_params>().ignore_index;
  return storage;
}

bool CrossEntropyCheck(const Node& n, std::string* why) {
  int32_t storage;
  if (!CheckTargets(n, ForwardIgnore(n, &storage), why) || !WantRowContiguous(n, -1, why) ||
      !WantDims(n, -1, 1, why)) {
    return false;
  }
  if (n.out.ne[0] != n.in[kLogits].ne[1]) {
    *why =
        StrFormat("output %s has %lld entries; want one per token (%lld)", SlotName(n, -1).c_str(),
                  static_cast<long long>(n.out.ne[0]), static_cast<long long>(n.in[kLogits].ne[1]));
    return false;
  }
  return true;
}

size_t CrossEntropyScratch(const Node& n, int nth) {
  return Align64(static_cast<size_t>(n.in[kLogits].ne[0]) * sizeof(float)) *
         static_cast<size_t>(nth);
}

bool CrossEntropyRun(const Node& n, ExecEnv& env, std::string* why) {
  int32_t storage;
  const int32_t* ignore = ForwardIgnore(n, &storage);
  // Targets were checked; this guard keeps a racing host from an
  // out-of-bounds read.
  if (!CheckTargets(n, ignore, why)) return false;
  const Tensor& logits = n.in[kLogits];
  const int32_t* tg = reinterpret_cast<const int32_t*>(n.in[kTargets].data);
  const int64_t V = logits.ne[0];
  float* out = reinterpret_cast<float*>(n.out.data);
  const int64_t ldo = n.out.nb[0] / static_cast<int64_t>(sizeof(float));
  const size_t per_thread = Align64(static_cast<size_t>(V) * sizeof(float));
  const VecOps& vec = Vec();
  ParallelFor(env, logits.ne[1], MinRows(V), [&](int64_t t0, int64_t t1, int ith) {
    float* tmp = reinterpret_cast<float*>(env.scratch + per_thread * ith);
    for (int64_t t = t0; t < t1; ++t) {
      if (Masked(tg[t], ignore) || V == 0) {
        out[t * ldo] = 0.0f;
        continue;
      }
      const float* row = logits.F32Row(t);
      const float m = vec.max(row, V);
      const float sum = vec.exp_sum(tmp, row, 1.0f, m, V);
      out[t * ldo] = static_cast<float>(double{m} + std::log(double{sum}) - double{row[tg[t]]});
    }
  });
  return true;
}

// ------------------------------------------------------ CROSS_ENTROPY_BACK

// The ignore_index when the params carry one, else null.
const int32_t* BackIgnore(const Node& n, int32_t* storage) {
  if (n.node->params_size < sizeof(CrossEntropyBackParams)) return nullptr;
  *storage = n.params<CrossEntropyBackParams>().ignore_index;
  return storage;
}

bool CrossEntropyBackCheck(const Node& n, std::string* why) {
  int32_t storage;
  if (!CheckTargets(n, BackIgnore(n, &storage), why) || !WantRowContiguous(n, -1, why) ||
      !WantSameShape(n, -1, kLogits, why)) {
    return false;
  }
  const float scale = n.params<CrossEntropyBackParams>().scale;
  if (!std::isfinite(scale)) {
    *why = StrFormat("scale is %g; want a finite value", static_cast<double>(scale));
    return false;
  }
  return true;
}

size_t NoScratch(const Node&, int) { return 0; }

bool CrossEntropyBackRun(const Node& n, ExecEnv& env, std::string* why) {
  int32_t storage;
  const int32_t* ignore = BackIgnore(n, &storage);
  if (!CheckTargets(n, ignore, why)) return false;
  const Tensor& logits = n.in[kLogits];
  const int32_t* tg = reinterpret_cast<const int32_t*>(n.in[kTargets].data);
  const int64_t V = logits.ne[0];
  const float scale = n.params<CrossEntropyBackParams>().scale;
  const VecOps& vec = Vec();
  ParallelFor(env, logits.ne[1], MinRows(V), [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      float* out = n.out.F32Row(t);
      if (Masked(tg[t], ignore) || V == 0) {
        std::memset(out, 0, static_cast<size_t>(V) * sizeof(float));
        continue;
      }
      // In place is fine: the max is taken before the row is overwritten,
      // and exp_sum reads each element before writing it.
      const float* row = logits.F32Row(t);
      const float m = vec.max(row, V);
      const float sum = vec.exp_sum(out, row, 1.0f, m, V);
      vec.scale_mul(out, out, scale / sum, nullptr, V);
      out[tg[t]] -= scale;
    }
  });
  return true;
}

}  // namespace

const OpInfo kOpCrossEntropy = {
    "CROSS_ENTROPY", 2, 0, false, LossDtypes, CrossEntropyCheck, CrossEntropyScratch,
    CrossEntropyRun};
const OpInfo kOpCrossEntropyBack = {
    "CROSS_ENTROPY_BACK", 2, 0, true, LossDtypes, CrossEntropyBackCheck, NoScratch,
    CrossEntropyBackRun};

}  // namespace hearth::cpu
