// kernels_xquant_avx2.cc — phase 1 of the quantized products on AVX2: x rows
// to 8-bit blocks (the same bytes the scalar quantizer writes: same max, same
// scale arithmetic, same round-to-nearest-even), and the AVX2 kernel choice.
#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/quant_avx2.h"
#include "backends/cpu/quant_blocks.h"
#include "backends/cpu/quant_dispatch.h"
#include "hearth/hearth_plugin.h"

namespace hearth::cpu {
namespace {

using avx2::Hmax;
using avx2::HsumI32;

// max|x| over n (a multiple of 8) floats, and whether any is NaN.
float AbsMax(const float* x, int n, bool* has_nan) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 amax = _mm256_setzero_ps();
  __m256 nan = _mm256_setzero_ps();
  for (int i = 0; i < n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    // max_ps returns its second operand when either is NaN: NaNs never enter
    // amax, matching std::fmax in the scalar quantizer.
    amax = _mm256_max_ps(_mm256_andnot_ps(sign, v), amax);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  *has_nan = _mm256_movemask_ps(nan) != 0;
  return Hmax(amax);
}

// round(x * id) for 8 floats as int32.
inline __m256i Round8(const float* x, __m256 id) {
  return _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), id));
}

// Packs four vectors of 8 int32 (elements 0-7, 8-15, 16-23, 24-31) into 32
// saturated int8 in element order.
inline __m256i PackI8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
  const __m256i abcd = _mm256_packs_epi16(ab, cd);
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

void QuantizeBlock32(const float* x, XBlock32* out) {
  bool has_nan;
  const float amax = AbsMax(x, 32, &has_nan);
  float d, id;
  XBlockScale(amax, has_nan, &d, &id);
  const __m256 idv = _mm256_set1_ps(id);
  const __m256i a = Round8(x, idv), b = Round8(x + 8, idv);
  const __m256i c = Round8(x + 16, idv), e = Round8(x + 24, idv);
  const __m256i q = PackI8(a, b, c, e);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out->q), q);
  // Sum the saturated bytes, as the scalar quantizer does.
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1), q);
  const int sum = HsumI32(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  out->d = d;
  out->dsum = d * static_cast<float>(sum);
}

void QuantizeBlock256(const float* x, XBlock256* out) {
  bool has_nan;
  const float amax = AbsMax(x, 256, &has_nan);
  float d, id;
  XBlockScale(amax, has_nan, &d, &id);
  const __m256 idv = _mm256_set1_ps(id);
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
  for (int c = 0; c < 8; ++c) {
    const float* xc = x + 32 * c;
    const __m256i q =
        PackI8(Round8(xc, idv), Round8(xc + 8, idv), Round8(xc + 16, idv), Round8(xc + 24, idv));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out->q + 32 * c), q);
    // Sums of 4 bytes in each int32 lane; lanes 0-3 are the first 16 elements.
    const __m256i s4 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, q), ones16);
    const __m128i lo = _mm256_castsi256_si128(s4), hi = _mm256_extracti128_si256(s4, 1);
    const __m128i s = _mm_hadd_epi32(_mm_hadd_epi32(lo, hi), _mm_setzero_si128());
    out->bsums[2 * c] = static_cast<int16_t>(_mm_cvtsi128_si32(s));
    out->bsums[2 * c + 1] = static_cast<int16_t>(_mm_extract_epi32(s, 1));
  }
  out->d = d;
}

}  // namespace

void Avx2QuantizeX(XFormat fmt, const float* x, int64_t b0, int64_t b1, uint8_t* dst) {
  for (int64_t b = b0; b < b1; ++b) {
    if (fmt == XFormat::kQ8Block32) {
      QuantizeBlock32(x + 32 * b, reinterpret_cast<XBlock32*>(dst) + b);
    } else if (fmt == XFormat::kQ8Block256) {
      QuantizeBlock256(x + 256 * b, reinterpret_cast<XBlock256*>(dst) + b);
    }
  }
}

TileKernel Avx2TileKernel(uint32_t w_dtype) {
  switch (XFormatFor(w_dtype)) {
    case XFormat::kF32:
      return Avx2FloatTileKernel(w_dtype);
    case XFormat::kQ8Block32:
      return Avx2Q0TileKernel(w_dtype);
    case XFormat::kQ8Block256:
      return Avx2QKTileKernel(w_dtype);
  }
  return TileKernel{};
}

}  // namespace hearth::cpu
