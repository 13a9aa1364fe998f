// ops_norm.cc — the row-normalizing graph ops of the CPU backend: RMS_NORM
// and SOFTMAX, both over ne[0], one row per work item.
#include <cmath>

#include "backends/cpu/ops.h"
#include "backends/cpu/ops_vec.h"

namespace hearth::cpu {
namespace {

constexpr int64_t kElemsPerThread = 8192;

int64_t MinRows(const Tensor& t) {
  int64_t rows = kElemsPerThread / (t.ne[0] > 0 ? t.ne[0] : 1);
  return rows > 0 ? rows : 1;
}

size_t NoScratch(const Node&, int) { return 0; }

// ----------------------------------------------------------------- RMS_NORM

bool RmsNormDtypes(const Node& n, std::string* why) {
  return WantDtype(n, -1, HEARTH_DTYPE_F32, why) && WantDtype(n, 0, HEARTH_DTYPE_F32, why) &&
         (!n.has[1] || WantDtype(n, 1, HEARTH_DTYPE_F32, why));
}

bool RmsNormCheck(const Node& n, std::string* why) {
  if (!WantRowContiguous(n, -1, why) || !WantRowContiguous(n, 0, why) ||
      !WantSameShape(n, -1, 0, why)) {
    return false;
  }
  if (n.has[1]) {
    const Tensor& w = n.in[1];
    if (!WantRowContiguous(n, 1, why) || !WantDims(n, 1, 1, why)) return false;
    if (w.ne[0] != n.in[0].ne[0]) {
      *why = StrFormat("weight %s has %lld elements but rows of input 0 have %lld",
                       SlotName(n, 1).c_str(), static_cast<long long>(w.ne[0]),
                       static_cast<long long>(n.in[0].ne[0]));
      return false;
    }
  }
  float eps = n.params<hearth_rms_norm_params>().eps;
  if (!(eps >= 0.0f) || !std::isfinite(eps)) {
    *why = StrFormat("eps is %g; want a finite value >= 0", static_cast<double>(eps));
    return false;
  }
  return true;
}

bool RmsNormRun(const Node& n, ExecEnv& env, std::string*) {
  const Tensor& x = n.in[0];
  const float* w = n.has[1] ? reinterpret_cast<const float*>(n.in[1].data) : nullptr;
  const float eps = n.params<hearth_rms_norm_params>().eps;
  const int64_t d = x.ne[0];
  if (d == 0) return true;
  const VecOps& vec = Vec();
  ParallelFor(env, x.Rows(), MinRows(x), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = x.F32Row(r);
      float mean = vec.sum_sq(row, d) / static_cast<float>(d);
      vec.scale_mul(n.out.F32Row(r), row, 1.0f / std::sqrt(mean + eps), w, d);
    }
  });
  return true;
}

// ------------------------------------------------------------------ SOFTMAX

bool SoftmaxDtypes(const Node& n, std::string* why) {
  return WantDtype(n, -1, HEARTH_DTYPE_F32, why) && WantDtype(n, 0, HEARTH_DTYPE_F32, why);
}

bool SoftmaxCheck(const Node& n, std::string* why) {
  if (!WantRowContiguous(n, -1, why) || !WantRowContiguous(n, 0, why) ||
      !WantSameShape(n, -1, 0, why)) {
    return false;
  }
  if (!std::isfinite(n.params<hearth_scale_params>().scale)) {
    *why = StrFormat("scale is %g; want a finite value",
                     static_cast<double>(n.params<hearth_scale_params>().scale));
    return false;
  }
  return true;
}

bool SoftmaxRun(const Node& n, ExecEnv& env, std::string*) {
  const Tensor& x = n.in[0];
  const float scale = n.params<hearth_scale_params>().scale;
  const int64_t d = x.ne[0];
  if (d == 0) return true;
  const VecOps& vec = Vec();
  ParallelFor(env, x.Rows(), MinRows(x), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* in = x.F32Row(r);
      float* out = n.out.F32Row(r);
      // max of x*scale: the scale may be negative, so take it from both ends.
      float m = vec.max(in, d);
      if (scale < 0.0f) {
        float lo = in[0];
        for (int64_t i = 1; i < d; ++i) lo = in[i] < lo ? in[i] : lo;
        m = lo;
      }
      float sum = vec.exp_sum(out, in, scale, m * scale, d);
      vec.scale_mul(out, out, 1.0f / sum, nullptr, d);
    }
  });
  return true;
}

}  // namespace

const OpInfo kOpRmsNorm = {"RMS_NORM",   1,         1,         true, RmsNormDtypes,
                           RmsNormCheck, NoScratch, RmsNormRun};
const OpInfo kOpSoftmax = {"SOFTMAX",    1,         0,         true, SoftmaxDtypes,
                           SoftmaxCheck, NoScratch, SoftmaxRun};

}  // namespace hearth::cpu
