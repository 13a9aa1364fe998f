// ops_common.h — what the op generators of the conformance tool share:
// dtype lists and names, weight inputs of any dtype, shape choices.
#ifndef HEARTH_BACKENDS_CONFORMANCE_OPS_COMMON_H_
#define HEARTH_BACKENDS_CONFORMANCE_OPS_COMMON_H_

#include <string>
#include <vector>

#include "backends/common/plugin_common.h"
#include "backends/conformance/conformance.h"

namespace hearth::conformance {

inline const std::vector<uint32_t>& WeightDtypes() {
  static const std::vector<uint32_t> v = {HEARTH_DTYPE_F32,  HEARTH_DTYPE_F16,  HEARTH_DTYPE_BF16,
                                          HEARTH_DTYPE_Q8_0, HEARTH_DTYPE_Q4_0, HEARTH_DTYPE_Q5_0,
                                          HEARTH_DTYPE_Q4_1, HEARTH_DTYPE_Q4_K, HEARTH_DTYPE_Q6_K};
  return v;
}
inline const std::vector<uint32_t>& FloatDtypes() {
  static const std::vector<uint32_t> v = {HEARTH_DTYPE_F32, HEARTH_DTYPE_F16, HEARTH_DTYPE_BF16};
  return v;
}
inline std::string DN(uint32_t dtype) { return plugin::DtypeName(dtype); }
inline bool IsBlockDtype(uint32_t dtype) { return hearth_dtype_block_elems(dtype) > 1; }

// A weight input of any dtype with ne = {K, rows, n2, n3}: random values
// (random valid blocks for block formats); *vals gets the values the
// plugin must see, in ne order.
int WeightInput(Case& c, Rng& rng, uint32_t dtype, const Shape& ne, Case::Layout layout, Vec* vals);

// The relative error a MUL_MAT-like product of dtype weights may carry:
// float accumulation, plus the rounding of the activations a backend may
// apply to match the weights (F16/BF16, or Q8 blocks for block formats).
struct ProductTol {
  double rel_sum;   // times sum_k |w_k x_k|
  double rel_amax;  // times sum_k |w_k| * max |x| over x's 256-block of k
};
ProductTol ProductTolFor(uint32_t weight_dtype);
// Expects out = MUL_MAT(w, x) with ProductTolFor's tolerance; w [K, M, wb2,
// wb3] broadcast over x [K, T, b2, b3] (values in ne order).
void AddProductCheck(Case& c, int out, const Vec& w, const Vec& x, int64_t K, int64_t M, int64_t T,
                     int64_t b2, int64_t b3, int64_t wb2, int64_t wb3, uint32_t wdt,
                     const ProductTol* tol = nullptr);  // tol: instead of ProductTolFor(wdt)

// The forward and backward generators.
void AddForwardOps(std::vector<OpEntry>* ops);
void GenRopeBack(Suite& s);  // ops_forward.cc: ROPE and ROPE_BACK share their cases
void AddBackwardOps(std::vector<OpEntry>* ops);
void AddDeviceChecks(std::vector<OpEntry>* ops);  // ops_device.cc: buffer_copy, weight_place

// Several values, fewer in --quick.
template <typename T>
std::vector<T> Pick(const Suite& s, std::vector<T> quick, std::vector<T> full) {
  return s.quick() ? quick : full;
}

}  // namespace hearth::conformance

#endif  // HEARTH_BACKENDS_CONFORMANCE_OPS_COMMON_H_
