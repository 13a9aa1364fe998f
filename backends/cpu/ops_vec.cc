// ops_vec.cc — the scalar vector primitives and the run-time choice between
// them and the AVX2 table (ops_vec_avx2.cc).
#include "backends/cpu/ops_vec.h"

#include <cmath>
#include <cstdlib>
#include <limits>

#include "backends/cpu/quant_dispatch.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace hearth::cpu {

// Defined in ops_vec_avx2.cc, compiled with -mavx2 -mfma -mf16c.
const VecOps& VecAvx2Table();

namespace {

float DotF32(const float* a, const float* b, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

float DotF16(const float* a, const uint16_t* b, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += a[i] * HalfBitsToFloat(b[i]);
  return s;
}

void AxpyF32(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void AxpyF16(float a, const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * HalfBitsToFloat(x[i]);
}

float SumSq(const float* x, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) s += x[i] * x[i];
  return s;
}

void ScaleMul(float* y, const float* x, float s, const float* w, int64_t n) {
  if (w) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s;
  }
}

float Max(const float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

float ExpSum(float* y, const float* x, float scale, float sub, int64_t n) {
  float s = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = std::exp(x[i] * scale - sub);
    s += y[i];
  }
  return s;
}

void Softcap(float* x, float cap, int64_t n) {
  float inv = 1.0f / cap;
  for (int64_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] * inv);
}

void SiluMul(float* y, const float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void GeluMul(float* y, const float* g, const float* u, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t i = 0; i < n; ++i) {
    float x = g[i];
    float t = std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x));
    y[i] = 0.5f * x * (1.0f + t) * u[i];
  }
}

void F32ToF16(uint16_t* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = FloatToHalfBits(x[i]);
}

void F16ToF32(float* y, const uint16_t* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = HalfBitsToFloat(x[i]);
}

void F32ToBf16(uint16_t* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = FloatToBf16Bits(x[i]);
}

void GemmAcc(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_si, int64_t a_sp,
             const float* b, int64_t ldb, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    for (int64_t p = 0; p < k; ++p) {
      const float x = a[i * a_si + p * a_sp];
      const float* bp = b + p * ldb;
      for (int64_t j = 0; j < n; ++j) ci[j] += x * bp[j];
    }
  }
}

void QkTile(const float* q, int64_t m, const float* k, int64_t n, int64_t d, float* s,
            int64_t lds) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) s[i * lds + j] = DotF32(q + i * d, k + j * d, d);
  }
}

void PvAcc(const float* p, int64_t n, const float* v, int64_t ldv, int64_t dv, float* o) {
  for (int64_t j = 0; j < n; ++j) AxpyF32(p[j], v + j * ldv, o, dv);
}

const VecOps kScalar = {
    "scalar", DotF32,  DotF16,  AxpyF32,  AxpyF16,  SumSq,     ScaleMul, Max,    ExpSum,
    Softcap,  SiluMul, GeluMul, F32ToF16, F16ToF32, F32ToBf16, GemmAcc,  QkTile, PvAcc,
};

// AVX2, FMA and F16C, and an OS that saves the YMM registers. Read from
// CPUID directly: not every compiler's __builtin_cpu_supports knows "f16c".
bool CpuRunsAvx2Table() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28),
             f16c = c & (1u << 29);
  if (!(fma && osxsave && avx && f16c)) return false;
  unsigned xcr0_lo, xcr0_hi;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & 6u) != 6u) return false;  // XMM and YMM state enabled
  if (__get_cpuid_max(0, nullptr) < 7) return false;
  __cpuid_count(7, 0, a, b, c, d);
  return b & (1u << 5);  // AVX2
#else
  return false;
#endif
}

}  // namespace

const VecOps& VecScalar() { return kScalar; }

const VecOps* VecAvx2() {
  static const bool has = CpuRunsAvx2Table();
  return has ? &VecAvx2Table() : nullptr;
}

const VecOps& Vec() {
  static const VecOps* best = [] {
    // HEARTH_CPU_ISA=scalar puts these on the scalar table too.
    const char* isa = std::getenv("HEARTH_CPU_ISA");
    const bool scalar = IsaFromEnvValue(isa, Isa::kAvx2) == Isa::kScalar;
    return VecAvx2() != nullptr && !scalar ? VecAvx2() : &kScalar;
  }();
  return *best;
}

}  // namespace hearth::cpu
