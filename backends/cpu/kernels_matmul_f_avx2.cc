// kernels_matmul_f_avx2.cc — phase 2 of the F32, F16 and BF16 products on
// AVX2: weights widened to float (F16C for halves, a 16-bit shift for
// bfloat16) and FMA'd against the F32 activations, 8 lanes per accumulator.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "backends/cpu/quant_avx2.h"
#include "backends/cpu/quant_blocks.h"
#include "backends/cpu/quant_dispatch.h"
#include "hearth/hearth_plugin.h"

namespace hearth::cpu {
namespace {

using avx2::Hsum;

struct F32Format {
  static constexpr int kBytes = 4;
  static __m256 Load8(const uint8_t* p) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  }
  static float Load1(const uint8_t* p) {
    float v;
    std::memcpy(&v, p, 4);
    return v;
  }
};
struct F16Format {
  static constexpr int kBytes = 2;
  static __m256 Load8(const uint8_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static float Load1(const uint8_t* p) { return HalfToFloat(LoadU16(p)); }
};
struct BF16Format {
  static constexpr int kBytes = 2;
  static __m256 Load8(const uint8_t* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static float Load1(const uint8_t* p) { return BF16ToFloat(LoadU16(p)); }
};

template <class F>
struct FloatKernel {
  static constexpr int kMaxRw = 4;
  static constexpr int kMaxRx = 3;

  template <int RW, int RX>
  static void Run(const TileArgs& t) {
    __m256 acc[RW][RX];
    for (int i = 0; i < RW; ++i) {
      for (int j = 0; j < RX; ++j) acc[i][j] = _mm256_setzero_ps();
    }
    const uint8_t* wrow[RW];
    for (int i = 0; i < RW; ++i) wrow[i] = t.w + i * t.w_row_bytes;
    const float* xrow[RX];
    for (int j = 0; j < RX; ++j) xrow[j] = reinterpret_cast<const float*>(t.x + j * t.x_row_bytes);
    const int64_t k8 = t.k_units / 8 * 8;
    const avx2::RowPrefetcher prefetch(t, RW, F::kBytes);
    for (int64_t k = 0; k < k8; k += 8) {
      __m256 w[RW];
      for (int i = 0; i < RW; ++i) {
        const uint8_t* p = wrow[i] + k * F::kBytes;
        // One prefetch per cache line: every 64 / (8 * kBytes) steps.
        if (((k * F::kBytes) & 63) == 0) prefetch.Ahead<1>(p, k * F::kBytes);
        w[i] = F::Load8(p);
      }
      for (int j = 0; j < RX; ++j) {
        const __m256 x = _mm256_loadu_ps(xrow[j] + k);
        for (int i = 0; i < RW; ++i) acc[i][j] = _mm256_fmadd_ps(w[i], x, acc[i][j]);
      }
    }
    for (int j = 0; j < RX; ++j) {
      for (int i = 0; i < RW; ++i) {
        float s = Hsum(acc[i][j]);
        for (int64_t k = k8; k < t.k_units; ++k) {
          s += F::Load1(wrow[i] + k * F::kBytes) * xrow[j][k];
        }
        t.y[j * t.y_row_stride + i] = s;
      }
    }
  }
};

}  // namespace

TileKernel Avx2FloatTileKernel(uint32_t w_dtype) {
  switch (w_dtype) {
    case HEARTH_DTYPE_F32:
      return avx2::MakeTileKernel<FloatKernel<F32Format>>(4);
    case HEARTH_DTYPE_F16:
      return avx2::MakeTileKernel<FloatKernel<F16Format>>(4);
    case HEARTH_DTYPE_BF16:
      return avx2::MakeTileKernel<FloatKernel<BF16Format>>(4);
    default:
      return TileKernel{};
  }
}

}  // namespace hearth::cpu
