// ops_vec.h — the vector primitives the CPU graph ops are built from (dot
// products, axpy, exp-based activations, half/bfloat16 conversion), with a
// plain scalar table and an AVX2+FMA+F16C table picked once at run time.
#ifndef HEARTH_BACKENDS_CPU_OPS_VEC_H_
#define HEARTH_BACKENDS_CPU_OPS_VEC_H_

#include <cstdint>
#include <cstring>

namespace hearth::cpu {

struct VecOps {
  const char* isa;
  // sum a[i] * b[i]
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  float (*dot_f16)(const float* a, const uint16_t* b, int64_t n);
  // y[i] += a * x[i]
  void (*axpy_f32)(float a, const float* x, float* y, int64_t n);
  void (*axpy_f16)(float a, const uint16_t* x, float* y, int64_t n);
  // sum x[i]^2
  float (*sum_sq)(const float* x, int64_t n);
  // y[i] = x[i] * s * (w ? w[i] : 1)
  void (*scale_mul)(float* y, const float* x, float s, const float* w, int64_t n);
  // max x[i]; -inf for n == 0
  float (*max)(const float* x, int64_t n);
  // y[i] = exp(x[i] * scale - sub); returns the sum of the y[i]
  float (*exp_sum)(float* y, const float* x, float scale, float sub, int64_t n);
  // x[i] = cap * tanh(x[i] / cap)
  void (*softcap)(float* x, float cap, int64_t n);
  // y = silu(g) * u, y = gelu_tanh(g) * u
  void (*silu_mul)(float* y, const float* g, const float* u, int64_t n);
  void (*gelu_mul)(float* y, const float* g, const float* u, int64_t n);
  void (*f32_to_f16)(uint16_t* y, const float* x, int64_t n);
  void (*f16_to_f32)(float* y, const uint16_t* x, int64_t n);
  // bfloat16, rounded to nearest even (FloatToBf16Bits); NaN stays NaN.
  void (*f32_to_bf16)(uint16_t* y, const float* x, int64_t n);
  // c[i * ldc + j] += sum_p a[i * a_si + p * a_sp] * b[p * ldb + j] for
  // i < m, j < n, p < k: a small matrix product for tiles that sit in cache
  // (a read with any strides, so either layout of it; b and c row-major).
  void (*gemm_acc)(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_si, int64_t a_sp,
                   const float* b, int64_t ldb, float* c, int64_t ldc);
  // s[i * lds + j] = sum_p q[i * d + p] * k[j * d + p] for i < m, j < n:
  // attention scores of m packed query rows against n packed key rows, d a
  // multiple of 8 and n of 4 (callers pad with zeros). Each score is formed
  // by the same operations whatever m, n and its place in the tile, so a
  // query's scores do not depend on what else shares its tile.
  void (*qk_tile)(const float* q, int64_t m, const float* k, int64_t n, int64_t d, float* s,
                  int64_t lds);
  // o[c] += sum_j p[j] * v[j * ldv + c] for c < dv, j < n in order: the
  // attention-weighted sum of value rows into one output row.
  void (*pv_acc)(const float* p, int64_t n, const float* v, int64_t ldv, int64_t dv, float* o);
};

// The fastest table this CPU runs.
const VecOps& Vec();
// The scalar table (tests compare the two).
const VecOps& VecScalar();
// The AVX2 table, or nullptr when the CPU lacks AVX2, FMA or F16C.
const VecOps* VecAvx2();

inline uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// IEEE binary16 -> binary32, exact (subnormals, inf and NaN kept).
inline float HalfBitsToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return BitsFloat(sign | 0x7f800000u | (man << 13));
  if (exp == 0) {
    // 2^-24 * man; exact in float.
    float f = static_cast<float>(man) * 5.9604644775390625e-8f;
    return sign ? -f : f;
  }
  return BitsFloat(sign | ((exp + 112) << 23) | (man << 13));
}

// binary32 -> binary16, round to nearest even; overflow -> inf, NaN stays NaN.
inline uint16_t FloatToHalfBits(float f) {
  uint32_t u = FloatBits(f);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u | static_cast<uint16_t>((abs >> 13) & 0x3ffu);
  if (abs >= 0x477ff000u) return sign | 0x7c00u;  // rounds past 65504
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero): value / 2^-24, rounded to nearest even.
    float a = BitsFloat(abs) * 16777216.0f;  // exact scaling by 2^24
    uint32_t q = static_cast<uint32_t>(a);
    float rem = a - static_cast<float>(q);
    if (rem > 0.5f || (rem == 0.5f && (q & 1u))) ++q;
    return sign | static_cast<uint16_t>(q);
  }
  uint32_t mant_odd = (abs >> 13) & 1u;
  abs += 0xfffu + mant_odd;  // round to nearest even at bit 13
  return sign | static_cast<uint16_t>((abs - 0x38000000u) >> 13);
}

inline float Bf16BitsToFloat(uint16_t b) { return BitsFloat(static_cast<uint32_t>(b) << 16); }

// binary32 -> bfloat16, round to nearest even; NaN stays (quiet) NaN.
inline uint16_t FloatToBf16Bits(float f) {
  uint32_t u = FloatBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

}  // namespace hearth::cpu

#endif  // HEARTH_BACKENDS_CPU_OPS_VEC_H_
