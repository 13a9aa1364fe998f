// ops_vec_avx2.cc — the AVX2+FMA+F16C vector primitives. Compiled with those
// ISA flags; only reached after ops_vec.cc checked the CPU has them.
#include <immintrin.h>

#include <cmath>
#include <limits>

#include "backends/cpu/ops_vec.h"

namespace hearth::cpu {
namespace {

inline float HorizontalSum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

inline float HorizontalMax(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_max_ps(lo, hi);
  lo = _mm_max_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_max_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

inline __m256 LoadHalf8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// exp(x) for 8 lanes: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two for
// an exact product), e^r by its degree-6 Taylor polynomial (truncation error
// below 1.2e-7 relative), 2^n put straight into the exponent bits. Inputs are
// clamped to where 2^n stays a normal float; NaN passes through.
inline __m256 Exp8(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.0f);
  const __m256 lo = _mm256_set1_ps(-87.33f);
  // min/max return their second operand when either is NaN: keep x there.
  x = _mm256_min_ps(hi, x);
  x = _mm256_max_ps(lo, x);
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720.0f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// tanh(y) = sign(y) (1 - t) / (1 + t) with t = exp(-2|y|); absolute error
// about 1e-7, which is what the callers (gelu, softcap) can see.
inline __m256 Tanh8(__m256 y) {
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  __m256 sign = _mm256_and_ps(y, sign_mask);
  __m256 a = _mm256_andnot_ps(sign_mask, y);
  __m256 t = Exp8(_mm256_mul_ps(a, _mm256_set1_ps(-2.0f)));
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 r = _mm256_div_ps(_mm256_sub_ps(one, t), _mm256_add_ps(one, t));
  return _mm256_or_ps(r, sign);
}

float DotF32(const float* a, const float* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  }
  float s = HorizontalSum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

float DotF16(const float* a, const uint16_t* b, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), LoadHalf8(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), LoadHalf8(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), LoadHalf8(b + i), s0);
  float s = HorizontalSum(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) s += a[i] * HalfBitsToFloat(b[i]);
  return s;
}

void AxpyF32(float a, const float* x, float* y, int64_t n) {
  __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * x[i];
}

void AxpyF16(float a, const uint16_t* x, float* y, int64_t n) {
  __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, LoadHalf8(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * HalfBitsToFloat(x[i]);
}

float SumSq(const float* x, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
    s0 = _mm256_fmadd_ps(a, a, s0);
    s1 = _mm256_fmadd_ps(b, b, s1);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 a = _mm256_loadu_ps(x + i);
    s0 = _mm256_fmadd_ps(a, a, s0);
  }
  float s = HorizontalSum(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) s += x[i] * x[i];
  return s;
}

void ScaleMul(float* y, const float* x, float s, const float* w, int64_t n) {
  __m256 vs = _mm256_set1_ps(s);
  int64_t i = 0;
  if (w) {
    for (; i + 8 <= n; i += 8) {
      __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
      _mm256_storeu_ps(y + i, _mm256_mul_ps(v, _mm256_loadu_ps(w + i)));
    }
    for (; i < n; ++i) y[i] = x[i] * s * w[i];
  } else {
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vs));
    for (; i < n; ++i) y[i] = x[i] * s;
  }
}

float Max(const float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  int64_t i = 0;
  if (n >= 8) {
    __m256 vm = _mm256_set1_ps(m);
    for (; i + 8 <= n; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    m = HorizontalMax(vm);
  }
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

float ExpSum(float* y, const float* x, float scale, float sub, int64_t n) {
  __m256 vscale = _mm256_set1_ps(scale), vsub = _mm256_set1_ps(sub);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 e = Exp8(_mm256_fmsub_ps(_mm256_loadu_ps(x + i), vscale, vsub));
    _mm256_storeu_ps(y + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  float s = HorizontalSum(acc);
  for (; i < n; ++i) {
    y[i] = std::exp(x[i] * scale - sub);
    s += y[i];
  }
  return s;
}

void Softcap(float* x, float cap, int64_t n) {
  float inv = 1.0f / cap;
  __m256 vcap = _mm256_set1_ps(cap), vinv = _mm256_set1_ps(inv);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(x + i,
                     _mm256_mul_ps(vcap, Tanh8(_mm256_mul_ps(_mm256_loadu_ps(x + i), vinv))));
  }
  for (; i < n; ++i) x[i] = cap * std::tanh(x[i] * inv);
}

void SiluMul(float* y, const float* g, const float* u, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 neg = _mm256_set1_ps(-0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 x = _mm256_loadu_ps(g + i);
    __m256 d = _mm256_add_ps(one, Exp8(_mm256_xor_ps(x, neg)));
    _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_div_ps(x, d), _mm256_loadu_ps(u + i)));
  }
  for (; i < n; ++i) y[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void GeluMul(float* y, const float* g, const float* u, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  const __m256 c0 = _mm256_set1_ps(kSqrt2OverPi), c1 = _mm256_set1_ps(0.044715f);
  const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 x = _mm256_loadu_ps(g + i);
    __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    __m256 t = Tanh8(_mm256_mul_ps(c0, _mm256_fmadd_ps(c1, x3, x)));
    __m256 r = _mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(one, t));
    _mm256_storeu_ps(y + i, _mm256_mul_ps(r, _mm256_loadu_ps(u + i)));
  }
  for (; i < n; ++i) {
    float x = g[i];
    float t = std::tanh(kSqrt2OverPi * (x + 0.044715f * x * x * x));
    y[i] = 0.5f * x * (1.0f + t) * u[i];
  }
}

void F32ToF16(uint16_t* y, const float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), h);
  }
  for (; i < n; ++i) y[i] = FloatToHalfBits(x[i]);
}

void F16ToF32(float* y, const uint16_t* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, LoadHalf8(x + i));
  for (; i < n; ++i) y[i] = HalfBitsToFloat(x[i]);
}

// FloatToBf16Bits on 8 lanes: add 0x7fff plus the lowest kept bit, keep the
// high half; NaNs (|u| > inf) become quiet instead.
void F32ToBf16(uint16_t* y, const float* x, int64_t n) {
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
  const __m256i bias = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1);
  const __m256i quiet = _mm256_set1_epi32(0x40);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i));
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(u, _mm256_add_epi32(bias, lsb)), 16);
    const __m256i nan_bits = _mm256_or_si256(_mm256_srli_epi32(u, 16), quiet);
    const __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
    const __m256i r = _mm256_blendv_epi8(rounded, nan_bits, is_nan);
    // Values are 0..0xffff: packus keeps them; it packs per 128-bit lane, so
    // the permute puts the two lanes' results side by side.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_castsi256_si128(packed));
  }
  for (; i < n; ++i) y[i] = FloatToBf16Bits(x[i]);
}

// R rows x 16 (W = 2) or 8 (W = 1) columns of c, the accumulators in
// registers for the whole k loop (6 x 16 keeps 12 of the 16 ymm registers).
template <int R, int W>
inline void GemmBlock(int64_t k, const float* a, int64_t a_si, int64_t a_sp, const float* b,
                      int64_t ldb, float* c, int64_t ldc) {
  __m256 acc[R][W];
  for (int r = 0; r < R; ++r) {
    for (int w = 0; w < W; ++w) acc[r][w] = _mm256_setzero_ps();
  }
  for (int64_t p = 0; p < k; ++p) {
    __m256 bv[W];
    for (int w = 0; w < W; ++w) bv[w] = _mm256_loadu_ps(b + p * ldb + 8 * w);
    for (int r = 0; r < R; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + r * a_si + p * a_sp);
      for (int w = 0; w < W; ++w) acc[r][w] = _mm256_fmadd_ps(x, bv[w], acc[r][w]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int w = 0; w < W; ++w) {
      float* cp = c + r * ldc + 8 * w;
      _mm256_storeu_ps(cp, _mm256_add_ps(_mm256_loadu_ps(cp), acc[r][w]));
    }
  }
}

template <int R>
void GemmRows(int64_t n, int64_t k, const float* a, int64_t a_si, int64_t a_sp, const float* b,
              int64_t ldb, float* c, int64_t ldc) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) GemmBlock<R, 2>(k, a, a_si, a_sp, b + j, ldb, c + j, ldc);
  for (; j + 8 <= n; j += 8) GemmBlock<R, 1>(k, a, a_si, a_sp, b + j, ldb, c + j, ldc);
  if (j == n) return;
  for (int r = 0; r < R; ++r) {
    for (int64_t p = 0; p < k; ++p) {
      const float x = a[r * a_si + p * a_sp];
      for (int64_t jj = j; jj < n; ++jj) c[r * ldc + jj] += x * b[p * ldb + jj];
    }
  }
}

void GemmAcc(int64_t m, int64_t n, int64_t k, const float* a, int64_t a_si, int64_t a_sp,
             const float* b, int64_t ldb, float* c, int64_t ldc) {
  int64_t i = 0;
  for (; i + 6 <= m; i += 6) GemmRows<6>(n, k, a + i * a_si, a_si, a_sp, b, ldb, c + i * ldc, ldc);
  const float* ai = a + i * a_si;
  float* ci = c + i * ldc;
  switch (m - i) {
    case 5:
      GemmRows<5>(n, k, ai, a_si, a_sp, b, ldb, ci, ldc);
      break;
    case 4:
      GemmRows<4>(n, k, ai, a_si, a_sp, b, ldb, ci, ldc);
      break;
    case 3:
      GemmRows<3>(n, k, ai, a_si, a_sp, b, ldb, ci, ldc);
      break;
    case 2:
      GemmRows<2>(n, k, ai, a_si, a_sp, b, ldb, ci, ldc);
      break;
    case 1:
      GemmRows<1>(n, k, ai, a_si, a_sp, b, ldb, ci, ldc);
      break;
    default:
      break;
  }
}

// The sums of a0..a3's lanes, in that order, by one fixed tree: pairs, then
// quads, then the two halves.
inline __m128 Sum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// R query rows against 4 key rows: 4R lane-wise FMA chains over d, then Sum4.
template <int R>
inline void QkBlock(const float* q, const float* k, int64_t d, float* s, int64_t lds) {
  __m256 acc[R][4];
  for (int r = 0; r < R; ++r) {
    for (int j = 0; j < 4; ++j) acc[r][j] = _mm256_setzero_ps();
  }
  for (int64_t p = 0; p < d; p += 8) {
    __m256 kv[4];
    for (int j = 0; j < 4; ++j) kv[j] = _mm256_loadu_ps(k + j * d + p);
    for (int r = 0; r < R; ++r) {
      const __m256 qv = _mm256_loadu_ps(q + r * d + p);
      for (int j = 0; j < 4; ++j) acc[r][j] = _mm256_fmadd_ps(qv, kv[j], acc[r][j]);
    }
  }
  for (int r = 0; r < R; ++r) {
    _mm_storeu_ps(s + r * lds, Sum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
  }
}

void QkTile(const float* q, int64_t m, const float* k, int64_t n, int64_t d, float* s,
            int64_t lds) {
  int64_t i = 0;
  for (; i + 2 <= m; i += 2) {
    for (int64_t j = 0; j < n; j += 4) QkBlock<2>(q + i * d, k + j * d, d, s + i * lds + j, lds);
  }
  if (i < m) {
    for (int64_t j = 0; j < n; j += 4) QkBlock<1>(q + i * d, k + j * d, d, s + i * lds + j, lds);
  }
}

// 8 x 8 columns of o stay in registers over all n value rows.
template <int W>
inline void PvBlock(const float* p, int64_t n, const float* v, int64_t ldv, float* o) {
  __m256 acc[W];
  for (int w = 0; w < W; ++w) acc[w] = _mm256_loadu_ps(o + 8 * w);
  for (int64_t j = 0; j < n; ++j) {
    const __m256 pj = _mm256_broadcast_ss(p + j);
    for (int w = 0; w < W; ++w) {
      acc[w] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + j * ldv + 8 * w), acc[w]);
    }
  }
  for (int w = 0; w < W; ++w) _mm256_storeu_ps(o + 8 * w, acc[w]);
}

void PvAcc(const float* p, int64_t n, const float* v, int64_t ldv, int64_t dv, float* o) {
  int64_t c = 0;
  for (; c + 64 <= dv; c += 64) PvBlock<8>(p, n, v + c, ldv, o + c);
  for (; c + 8 <= dv; c += 8) PvBlock<1>(p, n, v + c, ldv, o + c);
  for (; c < dv; ++c) {
    float acc = o[c];
    for (int64_t j = 0; j < n; ++j) acc = std::fma(p[j], v[j * ldv + c], acc);
    o[c] = acc;
  }
}

const VecOps kAvx2 = {
    "avx2",  DotF32,  DotF16,  AxpyF32,  AxpyF16,  SumSq,     ScaleMul, Max,    ExpSum,
    Softcap, SiluMul, GeluMul, F32ToF16, F16ToF32, F32ToBf16, GemmAcc,  QkTile, PvAcc,
};

}  // namespace

const VecOps& VecAvx2Table() { return kAvx2; }

}  // namespace hearth::cpu
