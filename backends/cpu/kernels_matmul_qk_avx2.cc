// kernels_matmul_qk_avx2.cc — phase 2 of the Q4_K and Q6_K products on AVX2:
// 256-element weight blocks against XBlock256 activations.
//
// Inside a block everything is integer: maddubs (unsigned weight x signed x
// -> s16 pairs) then madd with the sub-block scale (-> s32), summed over the
// block; one float FMA per block applies d_w * d_x. The Q4_K minimums and the
// Q6_K offset of 32 come from the x block's per-16 sums (bsums), one madd per
// block. Bounds: Q4_K pairs <= 2*15*127, Q6_K pairs <= 2*63*127 (no s16
// saturation); block sums stay below 2^26.
#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/quant_avx2.h"
#include "backends/cpu/quant_blocks.h"
#include "backends/cpu/quant_dispatch.h"
#include "hearth/hearth_plugin.h"

namespace hearth::cpu {
namespace {

using avx2::Half;
using avx2::Hsum;
using avx2::Load256;

// Broadcasts 16-bit element e of each 128-bit lane to the whole lane.
inline __m256i LaneBroadcast16(__m256i v, int e0, int e1) {
  const __m256i mask = _mm256_setr_epi8(
      2 * e0, 2 * e0 + 1, 2 * e0, 2 * e0 + 1, 2 * e0, 2 * e0 + 1, 2 * e0, 2 * e0 + 1, 2 * e0,
      2 * e0 + 1, 2 * e0, 2 * e0 + 1, 2 * e0, 2 * e0 + 1, 2 * e0, 2 * e0 + 1, 2 * e1, 2 * e1 + 1,
      2 * e1, 2 * e1 + 1, 2 * e1, 2 * e1 + 1, 2 * e1, 2 * e1 + 1, 2 * e1, 2 * e1 + 1, 2 * e1,
      2 * e1 + 1, 2 * e1, 2 * e1 + 1, 2 * e1, 2 * e1 + 1);
  return _mm256_shuffle_epi8(v, mask);
}

template <int RW, int RX>
inline void ZeroAcc(__m256 (&acc)[RW][RX]) {
  for (int i = 0; i < RW; ++i) {
    for (int j = 0; j < RX; ++j) acc[i][j] = _mm256_setzero_ps();
  }
}

template <int RW, int RX>
inline void StoreAcc(const TileArgs& t, __m256 (&acc)[RW][RX]) {
  for (int j = 0; j < RX; ++j) {
    for (int i = 0; i < RW; ++i) t.y[j * t.y_row_stride + i] = Hsum(acc[i][j]);
  }
}

struct Q4KKernel {
  static constexpr int kBytes = kQ4_KBytes;
  static constexpr int kMaxRw = 4;
  static constexpr int kMaxRx = 2;

  template <int RW, int RX>
  static void Run(const TileArgs& t) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    __m256 acc[RW][RX];
    ZeroAcc(acc);
    const avx2::RowPrefetcher prefetch(t, RW, kBytes);
    for (int64_t b = 0; b < t.k_units; ++b) {
      const uint8_t* blk[RW];
      const XBlock256* xb[RX];
      for (int j = 0; j < RX; ++j) {
        xb[j] = reinterpret_cast<const XBlock256*>(t.x + j * t.x_row_bytes) + b;
      }
      __m256i scales[RW];  // the 8 sub-block scales as s16, in both lanes
      __m256 d[RW];
      for (int i = 0; i < RW; ++i) {
        blk[i] = t.w + i * t.w_row_bytes + b * kBytes;
        prefetch.Ahead<kBytes>(blk[i], b * kBytes);
        uint8_t sc[8], m[8];
        UnpackQ4KScales(blk[i] + kQ4_KScales, sc, m);
        scales[i] = _mm256_broadcastsi128_si256(
            _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(sc))));
        // Minimums: m[s] pairs with the sums of x's groups 2s and 2s+1.
        const __m128i m8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(m));
        const __m256i mins = _mm256_cvtepu8_epi16(
            _mm_shuffle_epi8(m8, _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7)));
        d[i] = _mm256_set1_ps(Half(blk[i]));
        const __m256 dmin = _mm256_set1_ps(Half(blk[i] + 2));
        for (int j = 0; j < RX; ++j) {
          const __m256i msum = _mm256_madd_epi16(Load256(xb[j]->bsums), mins);
          const __m256 s = _mm256_mul_ps(dmin, _mm256_set1_ps(xb[j]->d));
          acc[i][j] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), s, acc[i][j]);
        }
      }
      __m256i isum[RW][RX];
      for (int i = 0; i < RW; ++i) {
        for (int j = 0; j < RX; ++j) isum[i][j] = _mm256_setzero_si256();
      }
      for (int p = 0; p < 4; ++p) {
        for (int i = 0; i < RW; ++i) {
          const __m256i raw = Load256(blk[i] + kQ4_KQs + 32 * p);
          const __m256i u0 = _mm256_and_si256(raw, low4);
          const __m256i u1 = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
          const __m256i s0 = LaneBroadcast16(scales[i], 2 * p, 2 * p);
          const __m256i s1 = LaneBroadcast16(scales[i], 2 * p + 1, 2 * p + 1);
          for (int j = 0; j < RX; ++j) {
            const __m256i x0 = Load256(xb[j]->q + 64 * p);
            const __m256i x1 = Load256(xb[j]->q + 64 * p + 32);
            const __m256i a = _mm256_madd_epi16(_mm256_maddubs_epi16(u0, x0), s0);
            const __m256i c = _mm256_madd_epi16(_mm256_maddubs_epi16(u1, x1), s1);
            isum[i][j] = _mm256_add_epi32(isum[i][j], _mm256_add_epi32(a, c));
          }
        }
      }
      for (int i = 0; i < RW; ++i) {
        for (int j = 0; j < RX; ++j) {
          const __m256 s = _mm256_mul_ps(d[i], _mm256_set1_ps(xb[j]->d));
          acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i][j]), s, acc[i][j]);
        }
      }
    }
    StoreAcc(t, acc);
  }
};

struct Q6KKernel {
  static constexpr int kBytes = kQ6_KBytes;
  static constexpr int kMaxRw = 4;
  static constexpr int kMaxRx = 2;

  template <int RW, int RX>
  static void Run(const TileArgs& t) {
    const __m256i low4 = _mm256_set1_epi8(0x0f), bits45 = _mm256_set1_epi8(0x30);
    __m256 acc[RW][RX];
    ZeroAcc(acc);
    const avx2::RowPrefetcher prefetch(t, RW, kBytes);
    for (int64_t b = 0; b < t.k_units; ++b) {
      const uint8_t* blk[RW];
      const XBlock256* xb[RX];
      for (int j = 0; j < RX; ++j) {
        xb[j] = reinterpret_cast<const XBlock256*>(t.x + j * t.x_row_bytes) + b;
      }
      __m256i sc_lo[RW], sc_hi[RW];  // scales 0-7 / 8-15 as s16, in both lanes
      __m256i isum[RW][RX];
      for (int i = 0; i < RW; ++i) {
        blk[i] = t.w + i * t.w_row_bytes + b * kBytes;
        prefetch.Ahead<kBytes>(blk[i], b * kBytes);
        const __m256i sc16 = _mm256_cvtepi8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[i] + kQ6_KScales)));
        sc_lo[i] = _mm256_permute2x128_si256(sc16, sc16, 0x00);
        sc_hi[i] = _mm256_permute2x128_si256(sc16, sc16, 0x11);
        // The offset: -32 * sum_g scale_g * bsum_g.
        for (int j = 0; j < RX; ++j) {
          const __m256i off = _mm256_madd_epi16(Load256(xb[j]->bsums), sc16);
          isum[i][j] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5));
        }
      }
      for (int h = 0; h < 2; ++h) {
        for (int i = 0; i < RW; ++i) {
          const __m256i ql0 = Load256(blk[i] + 64 * h);
          const __m256i ql1 = Load256(blk[i] + 64 * h + 32);
          const __m256i qh = Load256(blk[i] + kQ6_KQh + 32 * h);
          const __m256i q[4] = {
              _mm256_or_si256(_mm256_and_si256(ql0, low4),
                              _mm256_and_si256(_mm256_slli_epi16(qh, 4), bits45)),
              _mm256_or_si256(_mm256_and_si256(ql1, low4),
                              _mm256_and_si256(_mm256_slli_epi16(qh, 2), bits45)),
              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                              _mm256_and_si256(qh, bits45)),
              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                              _mm256_and_si256(_mm256_srli_epi16(qh, 2), bits45))};
          for (int tq = 0; tq < 4; ++tq) {
            // Chunk c of 32 elements holds scale groups 2c (low lane) and 2c+1.
            const int c = 4 * h + tq;
            const __m256i src = c < 4 ? sc_lo[i] : sc_hi[i];
            const __m256i s = LaneBroadcast16(src, (2 * c) % 8, (2 * c + 1) % 8);
            for (int j = 0; j < RX; ++j) {
              const __m256i x = Load256(xb[j]->q + 32 * c);
              const __m256i prod = _mm256_madd_epi16(_mm256_maddubs_epi16(q[tq], x), s);
              isum[i][j] = _mm256_add_epi32(isum[i][j], prod);
            }
          }
        }
      }
      for (int i = 0; i < RW; ++i) {
        const __m256 d = _mm256_set1_ps(Half(blk[i] + kQ6_KD));
        for (int j = 0; j < RX; ++j) {
          const __m256 s = _mm256_mul_ps(d, _mm256_set1_ps(xb[j]->d));
          acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i][j]), s, acc[i][j]);
        }
      }
    }
    StoreAcc(t, acc);
  }
};

}  // namespace

TileKernel Avx2QKTileKernel(uint32_t w_dtype) {
  switch (w_dtype) {
    case HEARTH_DTYPE_Q4_K:
      return avx2::MakeTileKernel<Q4KKernel>(1);
    case HEARTH_DTYPE_Q6_K:
      return avx2::MakeTileKernel<Q6KKernel>(1);
    default:
      return TileKernel{};
  }
}

}  // namespace hearth::cpu
