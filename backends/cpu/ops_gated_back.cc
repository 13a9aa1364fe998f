// ops_gated_back.cc — the backward ops of the gated activations on the CPU:
// SILU_MUL_BACK and GELU_MUL_BACK, elementwise over rows. out is d/dgate,
// the extra output d/dup. GELU is the tanh approximation GELU_MUL uses
// (ops_vec.cc): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
#include <cmath>

#include "backends/cpu/ops.h"

namespace hearth::cpu {
namespace {

constexpr int kGate = 0, kUp = 1, kDy = 2;

// exp/tanh per element: a thread per this many.
constexpr int64_t kElemsPerThread = 4096;

bool GatedBackDtypes(const Node& n, std::string* why) {
  for (int s : {-1, -2, kGate, kUp, kDy}) {
    if (!WantDtype(n, s, HEARTH_DTYPE_F32, why)) return false;
  }
  return true;
}

bool GatedBackCheck(const Node& n, std::string* why) {
  for (int s : {-1, -2, kGate, kUp, kDy}) {
    if (!WantRowContiguous(n, s, why)) return false;
  }
  return WantSameShape(n, kUp, kGate, why) && WantSameShape(n, kDy, kGate, why) &&
         WantSameShape(n, -1, kGate, why) && WantSameShape(n, -2, kGate, why);
}

size_t NoScratch(const Node&, int) { return 0; }

// act(x) and act'(x).
inline void Silu(float x, float* f, float* df) {
  const float s = 1.0f / (1.0f + std::exp(-x));
  *f = x * s;
  *df = s * (1.0f + x * (1.0f - s));
}

inline void Gelu(float x, float* f, float* df) {
  constexpr float kC = 0.7978845608028654f;  // sqrt(2/pi)
  constexpr float kA = 0.044715f;
  const float t = std::tanh(kC * (x + kA * x * x * x));
  *f = 0.5f * x * (1.0f + t);
  *df = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * kC * (1.0f + 3.0f * kA * x * x);
}

template <bool kGelu>
bool GatedBackRun(const Node& n, ExecEnv& env, std::string*) {
  const Tensor& g = n.in[kGate];
  ParallelRowPieces(env, g.Rows(), g.ne[0], kElemsPerThread,
                    [&](int64_t r, int64_t i0, int64_t i1) {
                      const float* gr = g.F32Row(r);
                      const float* ur = n.in[kUp].F32Row(r);
                      const float* dr = n.in[kDy].F32Row(r);
                      float* dg = n.out.F32Row(r);
                      float* du = n.extra[0].F32Row(r);
                      for (int64_t i = i0; i < i1; ++i) {
                        float f, df;
                        if (kGelu) {
                          Gelu(gr[i], &f, &df);
                        } else {
                          Silu(gr[i], &f, &df);
                        }
                        const float d = dr[i];
                        dg[i] = d * ur[i] * df;
                        du[i] = d * f;
                      }
                    });
  return true;
}

}  // namespace

const OpInfo kOpSiluMulBack = {
    "SILU_MUL_BACK",       3, 0, false, GatedBackDtypes, GatedBackCheck, NoScratch,
    GatedBackRun<false>,
    /*n_extra_required=*/1};
const OpInfo kOpGeluMulBack = {
    "GELU_MUL_BACK",       3, 0, false, GatedBackDtypes, GatedBackCheck, NoScratch,
    GatedBackRun<true>,
    /*n_extra_required=*/1};

}  // namespace hearth::cpu
