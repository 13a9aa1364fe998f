// reference.h — the conformance tool's own float64 reference of every op in
// hearth_plugin.h, written from the header's contracts (never from a
// backend's code), and the element formats it needs to feed and read a
// plugin: F16/BF16 rounding and the GGUF block layouts of every weight dtype.
//
// Tensors here are dense arrays in ne order (ne[0] innermost), whatever
// strides the plugin saw; the harness (harness.h) lays them out.
#ifndef HEARTH_BACKENDS_CONFORMANCE_REFERENCE_H_
#define HEARTH_BACKENDS_CONFORMANCE_REFERENCE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hearth::conformance {

using Vec = std::vector<double>;

// ------------------------------------------------------------ element formats

double HalfToDouble(uint16_t h);
uint16_t FloatToHalf(float f);  // round to nearest even, as IEEE binary16
double Bf16ToDouble(uint16_t b);
uint16_t FloatToBf16(float f);  // round to nearest even
// The value `v` takes once stored as dtype (F32, F16, BF16).
double RoundTo(uint32_t dtype, double v);

// Row of `k` elements of a block dtype (Q8_0 … Q6_K), GGUF layout, as doubles.
void DequantizeRow(uint32_t dtype, const uint8_t* row, int64_t k, double* out);

// ------------------------------------------------------------ forward ops

// out[m, t] = sum_k w[k, m] x[k, t] for one matrix: w is [K, M], x [K, T].
Vec MatMul(const Vec& w, const Vec& x, int64_t K, int64_t M, int64_t T);
// x [D, rows] -> x / sqrt(mean(x^2) + eps) * w (w empty: 1).
Vec RmsNorm(const Vec& x, const Vec& w, int64_t D, int64_t rows, double eps);

struct RopeArgs {
  double theta_base = 10000, freq_scale = 1;
  int n_rot = 0, mode = 0;
  Vec freq_factors;  // empty: none
};
// x [hd, nh, T]; inverse = true rotates by the negated angle (ROPE_BACK).
Vec Rope(const Vec& x, const std::vector<int32_t>& pos, int64_t hd, int64_t nh, int64_t T,
         const RopeArgs& a, bool inverse);

struct AttnArgs {
  double scale = 1, softcap = 0;
  int window = 0;
};
// One query against n_keys keys of one head: scores -> softmax -> out.
// Returns the log of the softmax denominator (lse). keys/values are rows.
double AttendOne(const double* q, const std::vector<const double*>& keys,
                 const std::vector<const double*>& values, int64_t dk, int64_t dv,
                 const AttnArgs& a, double* out);
// The key set of ATTENTION_BACK and of its forward: query t sees the batch's
// own rows j with seq[j] == seq[t], pos[j] <= pos[t] (and the window).
// q [dk, nh, T], k [dk, nkv, T], v [dv, nkv, T] -> o [dv, nh, T], lse [nh, T].
void SelfAttention(const Vec& q, const Vec& k, const Vec& v, const std::vector<int32_t>& pos,
                   const std::vector<int32_t>& seq, int64_t dk, int64_t dv, int64_t nh, int64_t nkv,
                   int64_t T, const AttnArgs& a, Vec* o, Vec* lse);

double Silu(double x);
double GeluTanh(double x);
// logsumexp(logits[:, t]) - logits[target, t], 0 when masked.
Vec CrossEntropy(const Vec& logits, const std::vector<int32_t>& targets, int64_t V, int64_t T,
                 int32_t ignore_index, bool has_ignore);

// ------------------------------------------------------------ backward ops

Vec RmsNormBack(const Vec& x, const Vec& dy, const Vec& w, int64_t D, int64_t rows, double eps);
// dq, dk, dv of SelfAttention given the upstream gradient do.
void SelfAttentionBack(const Vec& q, const Vec& k, const Vec& v, const Vec& dout,
                       const std::vector<int32_t>& pos, const std::vector<int32_t>& seq, int64_t dk,
                       int64_t dv, int64_t nh, int64_t nkv, int64_t T, const AttnArgs& a, Vec* dq,
                       Vec* dkk, Vec* dvv);
double SiluGrad(double x);
double GeluTanhGrad(double x);
Vec CrossEntropyBack(const Vec& logits, const std::vector<int32_t>& targets, int64_t V, int64_t T,
                     double scale, int32_t ignore_index, bool has_ignore);

// Central finite differences of L(x) = sum(dy * f(x)) with respect to x.
template <typename F>
Vec FiniteDiffGrad(const Vec& x, const Vec& dy, F&& f, double h = 1e-5) {
  Vec g(x.size()), xp = x;
  for (size_t i = 0; i < x.size(); ++i) {
    const double keep = xp[i];
    xp[i] = keep + h;
    Vec a = f(xp);
    xp[i] = keep - h;
    Vec b = f(xp);
    xp[i] = keep;
    double s = 0;
    for (size_t j = 0; j < dy.size(); ++j) s += dy[j] * (a[j] - b[j]);
    g[i] = s / (2 * h);
  }
  return g;
}

}  // namespace hearth::conformance

#endif  // HEARTH_BACKENDS_CONFORMANCE_REFERENCE_H_
