// kernels_dequant_avx2.cc — AVX2/F16C dequantizers. Bit-exact with the
// scalar reference: every value is the same float products and differences,
// rounded at the same steps. (For finite scales the Q4_K products d*sc*q are
// exact, so an FMA would not change them either; NoContract keeps the
// rounding steps written down rather than relying on that. Q4_1's d*q is
// exact too: an 11-bit mantissa times a 4-bit integer.) The one
// difference: F16C quiets a signalling-NaN half, the reference keeps its
// payload as is.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "backends/cpu/quant_avx2.h"
#include "backends/cpu/quant_blocks.h"
#include "backends/cpu/quant_dispatch.h"
#include "hearth/hearth_plugin.h"

namespace hearth::cpu {
namespace {

inline __m256 NoContract(__m256 v) {
  __asm__("" : "+x"(v));
  return v;
}

// Eight int8 (the low 8 bytes of v) to float.
inline __m256 I8ToPs(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v)); }

// Stores d * q for 32 signed bytes q.
inline void StoreScaled(__m256i q, __m256 d, float* y) {
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  _mm256_storeu_ps(y, _mm256_mul_ps(d, I8ToPs(lo)));
  _mm256_storeu_ps(y + 8, _mm256_mul_ps(d, I8ToPs(_mm_srli_si128(lo, 8))));
  _mm256_storeu_ps(y + 16, _mm256_mul_ps(d, I8ToPs(hi)));
  _mm256_storeu_ps(y + 24, _mm256_mul_ps(d, I8ToPs(_mm_srli_si128(hi, 8))));
}

using avx2::HighBits32;
using avx2::Nibbles32;

void RowQ8_0(const uint8_t* s, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, s += kQ8_0Bytes, y += 32) {
    const __m256 d = _mm256_set1_ps(HalfToFloat(LoadU16(s)));
    StoreScaled(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 2)), d, y);
  }
}

void RowQ4_0(const uint8_t* s, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, s += kQ4_0Bytes, y += 32) {
    const __m256 d = _mm256_set1_ps(HalfToFloat(LoadU16(s)));
    StoreScaled(_mm256_sub_epi8(Nibbles32(s + 2), _mm256_set1_epi8(8)), d, y);
  }
}

void RowQ5_0(const uint8_t* s, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, s += kQ5_0Bytes, y += 32) {
    const __m256 d = _mm256_set1_ps(HalfToFloat(LoadU16(s)));
    const __m256i q = _mm256_or_si256(Nibbles32(s + 6), HighBits32(LoadU32(s + 2)));
    StoreScaled(_mm256_sub_epi8(q, _mm256_set1_epi8(16)), d, y);
  }
}

void RowQ4_1(const uint8_t* s, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, s += kQ4_1Bytes, y += 32) {
    const __m256 d = _mm256_set1_ps(HalfToFloat(LoadU16(s)));
    const __m256 m = _mm256_set1_ps(HalfToFloat(LoadU16(s + 2)));
    const __m256i q = Nibbles32(s + 4);
    const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; ++k) {
      const __m256 prod = NoContract(_mm256_mul_ps(d, I8ToPs(parts[k])));
      _mm256_storeu_ps(y + 8 * k, _mm256_add_ps(prod, m));
    }
  }
}

void RowQ4_K(const uint8_t* s, float* y, int64_t nb) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  for (int64_t i = 0; i < nb; ++i, s += kQ4_KBytes, y += 256) {
    const float d = HalfToFloat(LoadU16(s)), dmin = HalfToFloat(LoadU16(s + 2));
    uint8_t sc[8], m[8];
    UnpackQ4KScales(s + kQ4_KScales, sc, m);
    for (int p = 0; p < 4; ++p) {
      const __m256i raw =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + kQ4_KQs + 32 * p));
      const __m256i nib[2] = {_mm256_and_si256(raw, low4),
                              _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4)};
      for (int h = 0; h < 2; ++h) {
        const int sub = 2 * p + h;
        const __m256 ds = _mm256_set1_ps(Rounded(d * static_cast<float>(sc[sub])));
        const __m256 dm = _mm256_set1_ps(Rounded(dmin * static_cast<float>(m[sub])));
        const __m128i lo = _mm256_castsi256_si128(nib[h]), hi = _mm256_extracti128_si256(nib[h], 1);
        const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
        for (int k = 0; k < 4; ++k) {
          const __m256 q = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[k]));
          _mm256_storeu_ps(y + 32 * sub + 8 * k,
                           _mm256_sub_ps(NoContract(_mm256_mul_ps(ds, q)), dm));
        }
      }
    }
  }
}

void RowQ6_K(const uint8_t* s, float* y, int64_t nb) {
  const __m256i low4 = _mm256_set1_epi8(0x0f), low2 = _mm256_set1_epi8(3);
  for (int64_t i = 0; i < nb; ++i, s += kQ6_KBytes, y += 256) {
    const float d = HalfToFloat(LoadU16(s + kQ6_KD));
    const int8_t* scales = reinterpret_cast<const int8_t*>(s + kQ6_KScales);
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 64 * h));
      const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + 64 * h + 32));
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + kQ6_KQh + 32 * h));
      const __m256i lo[4] = {_mm256_and_si256(ql0, low4), _mm256_and_si256(ql1, low4),
                             _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                             _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4)};
      const __m256i hi[4] = {_mm256_and_si256(qh, low2),
                             _mm256_and_si256(_mm256_srli_epi16(qh, 2), low2),
                             _mm256_and_si256(_mm256_srli_epi16(qh, 4), low2),
                             _mm256_and_si256(_mm256_srli_epi16(qh, 6), low2)};
      for (int t = 0; t < 4; ++t) {
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(lo[t], _mm256_slli_epi16(hi[t], 4)),
                                          _mm256_set1_epi8(32));
        const int e = 128 * h + 32 * t;
        const __m256 d0 = _mm256_set1_ps(Rounded(d * static_cast<float>(scales[e / 16])));
        const __m256 d1 = _mm256_set1_ps(Rounded(d * static_cast<float>(scales[e / 16 + 1])));
        const __m128i a = _mm256_castsi256_si128(q), b = _mm256_extracti128_si256(q, 1);
        _mm256_storeu_ps(y + e, _mm256_mul_ps(d0, I8ToPs(a)));
        _mm256_storeu_ps(y + e + 8, _mm256_mul_ps(d0, I8ToPs(_mm_srli_si128(a, 8))));
        _mm256_storeu_ps(y + e + 16, _mm256_mul_ps(d1, I8ToPs(b)));
        _mm256_storeu_ps(y + e + 24, _mm256_mul_ps(d1, I8ToPs(_mm_srli_si128(b, 8))));
      }
    }
  }
}

}  // namespace

void Avx2DequantizeRow(uint32_t dtype, const void* src, float* dst, int64_t n) {
  const uint8_t* s = static_cast<const uint8_t*>(src);
  switch (dtype) {
    case HEARTH_DTYPE_F32:
      std::memcpy(dst, s, static_cast<size_t>(n) * 4);
      return;
    case HEARTH_DTYPE_F16: {
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 2 * i));
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
      }
      for (; i < n; ++i) dst[i] = HalfToFloat(LoadU16(s + 2 * i));
      return;
    }
    case HEARTH_DTYPE_BF16: {
      int64_t i = 0;
      for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 2 * i));
        const __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16);
        _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(w));
      }
      for (; i < n; ++i) dst[i] = BF16ToFloat(LoadU16(s + 2 * i));
      return;
    }
    case HEARTH_DTYPE_Q8_0:
      RowQ8_0(s, dst, n / 32);
      return;
    case HEARTH_DTYPE_Q4_0:
      RowQ4_0(s, dst, n / 32);
      return;
    case HEARTH_DTYPE_Q5_0:
      RowQ5_0(s, dst, n / 32);
      return;
    case HEARTH_DTYPE_Q4_1:
      RowQ4_1(s, dst, n / 32);
      return;
    case HEARTH_DTYPE_Q4_K:
      RowQ4_K(s, dst, n / 256);
      return;
    case HEARTH_DTYPE_Q6_K:
      RowQ6_K(s, dst, n / 256);
      return;
    default:
      return;
  }
}

}  // namespace hearth::cpu
