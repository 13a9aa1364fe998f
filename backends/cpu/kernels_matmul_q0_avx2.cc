// kernels_matmul_q0_avx2.cc — phase 2 of the Q8_0, Q4_0 and Q5_0 products on
// AVX2: 32-element weight blocks against XBlock32 activations.
//
// Per block pair the integer dot product is maddubs (u8 x s8 -> pairs of
// s16) then madd with ones (-> 8 s32 lanes), scaled by d_w * d_x into a float
// accumulator. Q8_0 weights are signed, so they go through the sign trick
// (|w| times x with w's sign). Q4_0/Q5_0 weights are used unsigned (0..15,
// 0..31) and their offset is taken off as maddubs(offset, x), one product per
// x block shared by all w rows of the tile. No step can saturate: |pair| <=
// 2 * 128 * 127 < 32768.
#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/quant_avx2.h"
#include "backends/cpu/quant_blocks.h"
#include "backends/cpu/quant_dispatch.h"
#include "hearth/hearth_plugin.h"

namespace hearth::cpu {
namespace {

using avx2::Half;
using avx2::HighBits32;
using avx2::Hsum;
using avx2::Load256;
using avx2::Nibbles32;

// Weight formats differ in block size and in how 32 weights become bytes.
struct Q8_0Format {
  static constexpr int kBytes = kQ8_0Bytes;
  static constexpr int kOffset = 0;  // signed weights: sign trick
  static __m256i Weights(const uint8_t* blk) { return Load256(blk + 2); }
};
struct Q4_0Format {
  static constexpr int kBytes = kQ4_0Bytes;
  static constexpr int kOffset = 8;
  static __m256i Weights(const uint8_t* blk) { return Nibbles32(blk + 2); }
};
struct Q5_0Format {
  static constexpr int kBytes = kQ5_0Bytes;
  static constexpr int kOffset = 16;
  static __m256i Weights(const uint8_t* blk) {
    return _mm256_or_si256(Nibbles32(blk + 6), HighBits32(LoadU32(blk + 2)));
  }
};

template <class F>
struct Q0Kernel {
  static constexpr int kMaxRw = 4;
  static constexpr int kMaxRx = 3;

  // Adds block b of the tile's rows into acc.
  template <int RW, int RX, bool kPrefetch = true>
  static inline void Block(const uint8_t* const (&wrow)[RW], const XBlock32* const (&xrow)[RX],
                           int64_t b, const avx2::RowPrefetcher& prefetch, __m256 (&acc)[RW][RX]) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i wq[RW], wabs[RW];
    __m256 dw[RW];
    for (int i = 0; i < RW; ++i) {
      const uint8_t* blk = wrow[i] + b * F::kBytes;
      if constexpr (kPrefetch) prefetch.Ahead<F::kBytes>(blk, b * F::kBytes);
      wq[i] = F::Weights(blk);
      if constexpr (F::kOffset == 0) wabs[i] = _mm256_abs_epi8(wq[i]);
      dw[i] = _mm256_set1_ps(Half(blk));
    }
    for (int j = 0; j < RX; ++j) {
      const XBlock32& xb = xrow[j][b];
      const __m256i xq = Load256(xb.q);
      const __m256 dx = _mm256_set1_ps(xb.d);
      __m256i corr = _mm256_setzero_si256();
      if constexpr (F::kOffset != 0) {
        corr = _mm256_maddubs_epi16(_mm256_set1_epi8(F::kOffset), xq);
      }
      for (int i = 0; i < RW; ++i) {
        __m256i p16;
        if constexpr (F::kOffset == 0) {
          p16 = _mm256_maddubs_epi16(wabs[i], _mm256_sign_epi8(xq, wq[i]));
        } else {
          p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(wq[i], xq), corr);
        }
        const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
        acc[i][j] = _mm256_fmadd_ps(p, _mm256_mul_ps(dw[i], dx), acc[i][j]);
      }
    }
  }

  // kSplit (1 or 2) accumulator sets take alternate blocks, so that a lone
  // row (the decode tile) is not bound by the latency of one FMA chain. With
  // two, blocks smaller than half a cache line prefetch every other block.
  template <int RW, int RX, int kSplit = 1>
  static void Run(const TileArgs& t) {
    static_assert(kSplit == 1 || kSplit == 2, "kSplit");
    __m256 acc[kSplit][RW][RX];
    for (int s = 0; s < kSplit; ++s) {
      for (int i = 0; i < RW; ++i) {
        for (int j = 0; j < RX; ++j) acc[s][i][j] = _mm256_setzero_ps();
      }
    }
    const uint8_t* wrow[RW];
    for (int i = 0; i < RW; ++i) wrow[i] = t.w + i * t.w_row_bytes;
    const XBlock32* xrow[RX];
    for (int j = 0; j < RX; ++j) {
      xrow[j] = reinterpret_cast<const XBlock32*>(t.x + j * t.x_row_bytes);
    }
    const avx2::RowPrefetcher prefetch(t, RW, F::kBytes);
    int64_t b = 0;
    for (; b + kSplit <= t.k_units; b += kSplit) {
      Block<RW, RX>(wrow, xrow, b, prefetch, acc[0]);
      if constexpr (kSplit == 2) {
        Block<RW, RX, (2 * F::kBytes > 64)>(wrow, xrow, b + 1, prefetch, acc[kSplit - 1]);
      }
    }
    for (; b < t.k_units; ++b) Block<RW, RX>(wrow, xrow, b, prefetch, acc[0]);
    for (int s = 1; s < kSplit; ++s) {
      for (int i = 0; i < RW; ++i) {
        for (int j = 0; j < RX; ++j) acc[0][i][j] = _mm256_add_ps(acc[0][i][j], acc[s][i][j]);
      }
    }
    for (int j = 0; j < RX; ++j) {
      for (int i = 0; i < RW; ++i) t.y[j * t.y_row_stride + i] = Hsum(acc[0][i][j]);
    }
  }
};

template <class F>
TileKernel MakeQ0Kernel() {
  TileKernel k = avx2::MakeTileKernel<Q0Kernel<F>>(1);
  k.decode_fn = Q0Kernel<F>::template Run<1, 1, 2>;
  return k;
}

}  // namespace

TileKernel Avx2Q0TileKernel(uint32_t w_dtype) {
  switch (w_dtype) {
    case HEARTH_DTYPE_Q8_0:
      return MakeQ0Kernel<Q8_0Format>();
    case HEARTH_DTYPE_Q4_0:
      return MakeQ0Kernel<Q4_0Format>();
    case HEARTH_DTYPE_Q5_0:
      return MakeQ0Kernel<Q5_0Format>();
    default:
      return TileKernel{};
  }
}

}  // namespace hearth::cpu
