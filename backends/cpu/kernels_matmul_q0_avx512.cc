// kernels_matmul_q0_avx512.cc — phase 2 of the Q8_0 and Q4_0 products on
// AVX-512 VNNI: 32-element weight blocks against XBlock32 activations, two
// blocks per 512-bit register (block b in bytes 0-31, b + 1 in bytes 32-63,
// so s32 lanes 0-7 belong to b and 8-15 to b + 1).
//
// vpdpbusd multiplies unsigned bytes by signed bytes and adds each group of
// four products into an s32 lane, exactly (|lane step| <= 4 * 255 * 128). Per
// pair of blocks and per (w row, x row) it is one vpdpbusd, one conversion
// and two float operations (scale d_w * d_x per half, FMA):
//   Q8_0: both signed. x is made unsigned as x + 128 (xor 0x80) once per x
//         block; the excess 128 * sum(w), one vpdpbusd per w block, is the
//         starting value of the dot product, negated.
//   Q4_0: weights 0..15 are the unsigned operand; the offset 8 is taken off
//         as -8 * sum(x) per lane group, one vpdpbusd per x block, again as
//         the starting value.
// The same tile code serves decode (N = 1: tiles of 4 w rows by 1 x row,
// sharing the x loads) and prompts (4 by 3); every output is summed in the
// same order whatever the tile, so results do not depend on the thread count.
#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/quant_avx512.h"
#include "backends/cpu/quant_blocks.h"
#include "backends/cpu/quant_dispatch.h"
#include "hearth/hearth_plugin.h"

namespace hearth::cpu {
namespace {

using avx512::Join;
using avx512::Load128;
using avx512::Load256;

// Lanes 0-7 get element 0 of v, lanes 8-15 element 1.
inline __m512 SpreadPair(__m128 v) {
  const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(v));
}

// The f16 scales at p0 and p1 as floats 0 and 1 (0 for a missing p1).
inline __m128 HalfPair(const uint8_t* p0, const uint8_t* p1) {
  const uint32_t hi = p1 != nullptr ? LoadU16(p1) : 0u;
  return _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(LoadU16(p0) | hi << 16)));
}

// Weight formats: bytes per block, and 32 weights of one block (the upper
// half zero) or of two blocks as bytes, in the order of the XBlock32 bytes.
struct Q8_0Format {
  static constexpr int kBytes = kQ8_0Bytes;
  static constexpr bool kSigned = true;
  static __m512i Weights1(const uint8_t* b0) { return _mm512_zextsi256_si512(Load256(b0 + 2)); }
  static __m512i Weights2(const uint8_t* b0, const uint8_t* b1) {
    return Join(Load256(b0 + 2), Load256(b1 + 2));
  }
};
struct Q4_0Format {
  static constexpr int kBytes = kQ4_0Bytes;
  static constexpr bool kSigned = false;
  // Low nibbles are elements 0-15, high nibbles 16-31.
  static __m512i Weights1(const uint8_t* b0) {
    const __m128i q = Load128(b0 + 2);
    const __m256i both =
        _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
    return _mm512_zextsi256_si512(_mm256_and_si256(both, _mm256_set1_epi8(0x0f)));
  }
  static __m512i Weights2(const uint8_t* b0, const uint8_t* b1) {
    // 128-bit lanes [b0, b0, b1, b1] straight from memory (broadcasts are
    // load-port work), then the odd lanes take the high nibbles.
    const __m512i raw = _mm512_mask_broadcast_i32x4(_mm512_broadcast_i32x4(Load128(b0 + 2)), 0xff00,
                                                    Load128(b1 + 2));
    const __m512i shift = _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4);
    return _mm512_and_si512(_mm512_srlv_epi64(raw, shift), _mm512_set1_epi8(0x0f));
  }
};

template <class F>
struct Q0Kernel {
  static constexpr int kMaxRw = 4;
  static constexpr int kMaxRx = 3;

  // Adds blocks b and b + 1 (b alone if kTail) of the tile's rows into acc.
  template <int RW, int RX, bool kTail>
  static inline void Pair(const uint8_t* const (&wrow)[RW], const XBlock32* const (&xrow)[RX],
                          int64_t b, const avx512::RowPrefetcher& prefetch, __m512 (&acc)[RW][RX]) {
    const __m512i zero = _mm512_setzero_si512();
    __m512i wq[RW], wfix[RW];  // wfix: Q8_0 only
    __m512 dw[RW];
    for (int i = 0; i < RW; ++i) {
      const uint8_t* b0 = wrow[i] + b * F::kBytes;
      const uint8_t* b1 = kTail ? nullptr : b0 + F::kBytes;
      prefetch.Ahead<2 * F::kBytes>(b0, b * F::kBytes);
      wq[i] = kTail ? F::Weights1(b0) : F::Weights2(b0, b1);
      dw[i] = SpreadPair(HalfPair(b0, b1));
      if constexpr (F::kSigned) {
        // -128 * sum(w) per group of four.
        const __m512i excess = _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(-128), wq[i]);
        wfix[i] = _mm512_sub_epi32(zero, excess);
      }
    }
    for (int j = 0; j < RX; ++j) {
      const XBlock32* x0 = xrow[j] + b;
      const __m512i xq =
          kTail ? _mm512_zextsi256_si512(Load256(x0->q)) : Join(Load256(x0->q), Load256(x0[1].q));
      const __m128 dx2 =
          kTail ? _mm_load_ss(&x0->d) : _mm_unpacklo_ps(_mm_load_ss(&x0->d), _mm_load_ss(&x0[1].d));
      const __m512 dx = SpreadPair(dx2);
      __m512i xu, xfix;  // Q8_0, Q4_0
      if constexpr (F::kSigned) {
        // The tail's zero upper half becomes 128s against zero weights.
        xu = _mm512_xor_si512(xq, _mm512_set1_epi8(-128));
      } else {
        xfix = _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(8), xq));
      }
      for (int i = 0; i < RW; ++i) {
        __m512i p;
        if constexpr (F::kSigned) {
          p = _mm512_dpbusd_epi32(wfix[i], xu, wq[i]);
        } else {
          p = _mm512_dpbusd_epi32(xfix, wq[i], xq);
        }
        acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw[i], dx), acc[i][j]);
      }
    }
  }

  template <int RW, int RX>
  static void Run(const TileArgs& t) {
    __m512 acc[RW][RX];
    for (int i = 0; i < RW; ++i) {
      for (int j = 0; j < RX; ++j) acc[i][j] = _mm512_setzero_ps();
    }
    const uint8_t* wrow[RW];
    for (int i = 0; i < RW; ++i) wrow[i] = t.w + i * t.w_row_bytes;
    const XBlock32* xrow[RX];
    for (int j = 0; j < RX; ++j) {
      xrow[j] = reinterpret_cast<const XBlock32*>(t.x + j * t.x_row_bytes);
    }
    const avx512::RowPrefetcher prefetch(t, RW, F::kBytes);
    int64_t b = 0;
    for (; b + 2 <= t.k_units; b += 2) Pair<RW, RX, false>(wrow, xrow, b, prefetch, acc);
    if (b < t.k_units) Pair<RW, RX, true>(wrow, xrow, b, prefetch, acc);
    for (int j = 0; j < RX; ++j) {
      for (int i = 0; i < RW; ++i) t.y[j * t.y_row_stride + i] = _mm512_reduce_add_ps(acc[i][j]);
    }
  }
};

template <class F>
TileKernel MakeQ0Kernel() {
  // Decode: 4 rows share each x block's loads.
  return avx512::MakeTileKernel<Q0Kernel<F>>(Q0Kernel<F>::kMaxRw);
}

}  // namespace

TileKernel Avx512Q0TileKernel(uint32_t w_dtype) {
  switch (w_dtype) {
    case HEARTH_DTYPE_Q8_0:
      return MakeQ0Kernel<Q8_0Format>();
    case HEARTH_DTYPE_Q4_0:
      return MakeQ0Kernel<Q4_0Format>();
    default:
      return TileKernel{};
  }
}

}  // namespace hearth::cpu
