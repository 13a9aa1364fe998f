// ops_norm_back.cc — RMS_NORM_BACK on the CPU: the input gradient of
// y = x r w with r = 1 / sqrt(mean(x^2) + eps), row by row:
//   dx = r g - (r^3 / D) x sum_j(g_j x_j),  g = dy * w.
// The two row sums are accumulated in double (they are differences of
// large terms when the gradient is nearly orthogonal to x).
#include <algorithm>
#include <cmath>

#include "backends/cpu/ops.h"

namespace hearth::cpu {
namespace {

constexpr int kX = 0, kDy = 1, kW = 2;

constexpr int64_t kElemsPerThread = 8192;

bool RmsNormBackDtypes(const Node& n, std::string* why) {
  return WantDtype(n, -1, HEARTH_DTYPE_F32, why) && WantDtype(n, kX, HEARTH_DTYPE_F32, why) &&
         WantDtype(n, kDy, HEARTH_DTYPE_F32, why) &&
         (!n.has[kW] || WantDtype(n, kW, HEARTH_DTYPE_F32, why));
}

bool RmsNormBackCheck(const Node& n, std::string* why) {
  for (int s : {-1, kX, kDy}) {
    if (!WantRowContiguous(n, s, why)) return false;
  }
  if (!WantSameShape(n, kDy, kX, why) || !WantSameShape(n, -1, kX, why)) return false;
  if (n.has[kW]) {
    if (!WantRowContiguous(n, kW, why) || !WantDims(n, kW, 1, why)) return false;
    if (n.in[kW].ne[0] != n.in[kX].ne[0]) {
      *why = StrFormat("weight %s has %lld elements but rows of x %s have %lld",
                       SlotName(n, kW).c_str(), static_cast<long long>(n.in[kW].ne[0]),
                       SlotName(n, kX).c_str(), static_cast<long long>(n.in[kX].ne[0]));
      return false;
    }
  }
  const float eps = n.params<hearth_rms_norm_params>().eps;
  if (!(eps >= 0.0f) || !std::isfinite(eps)) {
    *why = StrFormat("eps is %g; want a finite value >= 0", static_cast<double>(eps));
    return false;
  }
  return true;
}

size_t NoScratch(const Node&, int) { return 0; }

bool RmsNormBackRun(const Node& n, ExecEnv& env, std::string*) {
  const Tensor& x = n.in[kX];
  const float* w = n.has[kW] ? reinterpret_cast<const float*>(n.in[kW].data) : nullptr;
  const double eps = n.params<hearth_rms_norm_params>().eps;
  const int64_t d = x.ne[0];
  if (d == 0) return true;
  const int64_t min_rows = std::max<int64_t>(1, kElemsPerThread / d);
  ParallelFor(env, x.Rows(), min_rows, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x.F32Row(r);
      const float* dy = n.in[kDy].F32Row(r);
      double ss = 0, gx = 0;
      for (int64_t i = 0; i < d; ++i) {
        const double g = w ? double{dy[i]} * w[i] : dy[i];
        ss += double{xr[i]} * xr[i];
        gx += g * xr[i];
      }
      const double rr = 1.0 / std::sqrt(ss / d + eps);
      const float a = static_cast<float>(rr);
      const float b = static_cast<float>(rr * rr * rr * gx / d);
      float* dx = n.out.F32Row(r);
      for (int64_t i = 0; i < d; ++i) {
        const float g = w ? dy[i] * w[i] : dy[i];
        dx[i] = a * g - b * xr[i];
      }
    }
  });
  return true;
}

}  // namespace

const OpInfo kOpRmsNormBack = {
    "RMS_NORM_BACK", 2, 1, false, RmsNormBackDtypes, RmsNormBackCheck, NoScratch, RmsNormBackRun};

}  // namespace hearth::cpu
