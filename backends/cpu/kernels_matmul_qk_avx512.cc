// kernels_matmul_qk_avx512.cc — phase 2 of the Q4_K and Q6_K products on
// AVX-512 VNNI: 256-element weight blocks against XBlock256 activations.
//
// Per register of weights and per (w row, x row): vpmaddubsw (unsigned
// weight x signed x -> s16 pairs) and vpdpwssd, which multiplies those pairs
// by the sub-block scales (s16) and adds them to an s32 accumulator in one
// instruction (AVX2 needs vpmaddwd and vpaddd). Q6_K uses 512-bit registers:
// 64 weights, the 64 low-nibble (then high-nibble) bytes of a half with their
// two high bits from qh, against 64 consecutive x bytes, scales placed by
// vpermw. Q4_K stays on 256-bit registers (see Q4KKernel). One float FMA per
// block applies
// d_w * d_x. The Q4_K minimums and the Q6_K offset of 32 come from the x
// block's per-16 sums (bsums), one vpmaddwd per block. Bounds: Q4_K pairs
// <= 2*15*127, Q6_K pairs <= 2*63*127 (no s16 saturation); a block's sum
// stays below 256*63*127*128 < 2^31.
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
using avx512::Load512;

inline float Half(const uint8_t* p) { return _cvtsh_ss(LoadU16(p)); }

// s16 lanes 8g .. 8g + 7 (g = 0..3) of the result are element e0 + g of v:
// the scales of four 16-weight groups.
inline __m512i Spread4(__m512i v, int e0) {
  const __m512i idx = _mm512_add_epi16(
      _mm512_set1_epi16(static_cast<short>(e0)),
      _mm512_setr_epi64(0, 0, 0x0001000100010001, 0x0001000100010001, 0x0002000200020002,
                        0x0002000200020002, 0x0003000300030003, 0x0003000300030003));
  return _mm512_permutexvar_epi16(idx, v);
}

// The Q4_K scales and minimums (quant_blocks.h's UnpackQ4KScales) in
// registers: bytes 0-7 of the result are the 8 scales, bytes 8-15 the 8
// minimums. Reads 16 bytes from s12 (the block goes on past its 12).
inline __m128i Q4KScalesAndMins(const uint8_t* s12) {
  const __m128i v = Load128(s12);  // dwords w0, w1, w2, -
  const __m128i lo = _mm_and_si128(v, _mm_set1_epi8(0x3f));
  const __m128i w2 =
      _mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(2, 2, 2, 2)), _mm_setr_epi32(0, 4, 0, 0));
  const __m128i hi = _mm_or_si128(_mm_and_si128(w2, _mm_set1_epi8(0x0f)),
                                  _mm_and_si128(_mm_srli_epi32(v, 2), _mm_set1_epi8(0x30)));
  return _mm_unpacklo_epi32(lo, hi);  // sc 0-3, sc 4-7, m 0-3, m 4-7
}

template <int RW, int RX>
inline void ZeroAcc(__m512 (&acc)[RW][RX]) {
  for (int i = 0; i < RW; ++i) {
    for (int j = 0; j < RX; ++j) acc[i][j] = _mm512_setzero_ps();
  }
}

template <int RW, int RX>
inline void StoreAcc(const TileArgs& t, __m512 (&acc)[RW][RX]) {
  for (int j = 0; j < RX; ++j) {
    for (int i = 0; i < RW; ++i) t.y[j * t.y_row_stride + i] = _mm512_reduce_add_ps(acc[i][j]);
  }
}

// Q4_K on 256-bit registers (VNNI through AVX-512 VL), 32 weights per
// register: vpmaddubsw then vpdpwssd with the scale of the sub-block, placed
// by vpshufb. A 512-bit version (64 weights: both nibbles of 32 bytes) was
// slower here: its unpacking and multiplies all issue on one port, since
// 512-bit work closes the second vector port, and Q4_K has the most
// unpacking per weight. Measured on the Xeon of docs/perf.md (one thread,
// weights in L2, thread CPU time): 256-bit 1.1x the AVX2 kernel in decode
// and 1.27x in 64-row prompts, 512-bit 0.9x and 1.1x.
struct Q4KKernel {
  static constexpr int kBytes = kQ4_KBytes;
  static constexpr int kMaxRw = 4;
  static constexpr int kMaxRx = 2;

  // s16 element e of each 128-bit lane of v, in every s16 of that lane.
  static inline __m256i Broadcast16(__m256i v, int e) {
    const __m256i idx = _mm256_set1_epi16(static_cast<short>((2 * e + 1) << 8 | 2 * e));
    return _mm256_shuffle_epi8(v, idx);
  }

  static inline float Hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }

  template <int RW, int RX>
  static void Run(const TileArgs& t) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    __m256 acc[RW][RX];
    for (int i = 0; i < RW; ++i) {
      for (int j = 0; j < RX; ++j) acc[i][j] = _mm256_setzero_ps();
    }
    const avx512::RowPrefetcher prefetch(t, RW, kBytes);
    for (int64_t b = 0; b < t.k_units; ++b) {
      const uint8_t* blk[RW];
      const XBlock256* xb[RX];
      for (int j = 0; j < RX; ++j) {
        xb[j] = reinterpret_cast<const XBlock256*>(t.x + j * t.x_row_bytes) + b;
      }
      __m256i scales[RW];  // the 8 sub-block scales as s16, in both lanes
      __m256i isum[RW][RX];
      for (int i = 0; i < RW; ++i) {
        blk[i] = t.w + i * t.w_row_bytes + b * kBytes;
        prefetch.Ahead<kBytes>(blk[i], b * kBytes);
        const __m128i sm = Q4KScalesAndMins(blk[i] + kQ4_KScales);
        scales[i] = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sm));
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(
            sm, _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15)));
        const float dmin = Half(blk[i] + 2);
        for (int j = 0; j < RX; ++j) {
          const __m256i msum = _mm256_madd_epi16(Load256(xb[j]->bsums), mins);
          const __m256 s = _mm256_set1_ps(dmin * xb[j]->d);
          acc[i][j] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum), s, acc[i][j]);
          isum[i][j] = _mm256_setzero_si256();
        }
      }
      for (int p = 0; p < 4; ++p) {
        for (int i = 0; i < RW; ++i) {
          const __m256i raw = Load256(blk[i] + kQ4_KQs + 32 * p);
          const __m256i u0 = _mm256_and_si256(raw, low4);
          const __m256i u1 = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
          const __m256i s0 = Broadcast16(scales[i], 2 * p);
          const __m256i s1 = Broadcast16(scales[i], 2 * p + 1);
          for (int j = 0; j < RX; ++j) {
            const __m256i x0 = Load256(xb[j]->q + 64 * p);
            const __m256i x1 = Load256(xb[j]->q + 64 * p + 32);
            isum[i][j] = _mm256_dpwssd_epi32(isum[i][j], _mm256_maddubs_epi16(u0, x0), s0);
            isum[i][j] = _mm256_dpwssd_epi32(isum[i][j], _mm256_maddubs_epi16(u1, x1), s1);
          }
        }
      }
      for (int i = 0; i < RW; ++i) {
        const float d = Half(blk[i]);
        for (int j = 0; j < RX; ++j) {
          const __m256 s = _mm256_set1_ps(d * xb[j]->d);
          acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[i][j]), s, acc[i][j]);
        }
      }
    }
    for (int j = 0; j < RX; ++j) {
      for (int i = 0; i < RW; ++i) t.y[j * t.y_row_stride + i] = Hsum(acc[i][j]);
    }
  }
};

struct Q6KKernel {
  static constexpr int kBytes = kQ6_KBytes;
  static constexpr int kMaxRw = 4;
  static constexpr int kMaxRx = 2;

  template <int RW, int RX>
  static void Run(const TileArgs& t) {
    const __m512i low4 = _mm512_set1_epi8(0x0f), bits45 = _mm512_set1_epi8(0x30);
    __m512 acc[RW][RX];
    ZeroAcc(acc);
    const avx512::RowPrefetcher prefetch(t, RW, kBytes);
    for (int64_t b = 0; b < t.k_units; ++b) {
      const uint8_t* blk[RW];
      const XBlock256* xb[RX];
      for (int j = 0; j < RX; ++j) {
        xb[j] = reinterpret_cast<const XBlock256*>(t.x + j * t.x_row_bytes) + b;
      }
      __m512i scales[RW];  // the 16 group scales as s16 (elements 0-15)
      __m512i isum[RW][RX];
      for (int i = 0; i < RW; ++i) {
        blk[i] = t.w + i * t.w_row_bytes + b * kBytes;
        prefetch.Ahead<kBytes>(blk[i], b * kBytes);
        const __m256i sc16 = _mm256_cvtepi8_epi16(Load128(blk[i] + kQ6_KScales));
        scales[i] = _mm512_zextsi256_si512(sc16);
        // The offset: -32 * sum_g scale_g * bsum_g.
        for (int j = 0; j < RX; ++j) {
          const __m256i off = _mm256_madd_epi16(Load256(xb[j]->bsums), sc16);
          isum[i][j] = _mm512_zextsi256_si512(
              _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5)));
        }
      }
      for (int h = 0; h < 2; ++h) {
        __m512i xa[RX], xc[RX];  // elements 128h + 0..63 and 128h + 64..127
        for (int j = 0; j < RX; ++j) {
          xa[j] = Load512(xb[j]->q + 128 * h);
          xc[j] = Load512(xb[j]->q + 128 * h + 64);
        }
        for (int i = 0; i < RW; ++i) {
          const __m512i ql = Load512(blk[i] + 64 * h);
          const __m256i qh = Load256(blk[i] + kQ6_KQh + 32 * h);
          // Bytes 0-31: qh (bits 0-1 and 4-5 for chunks 0 and 2 of the
          // half); bytes 32-63: qh >> 2 (bits 2-3 and 6-7, chunks 1 and 3).
          const __m512i qh2 = Join(qh, _mm256_srli_epi16(qh, 2));
          const __m512i qa = _mm512_or_si512(_mm512_and_si512(ql, low4),
                                             _mm512_and_si512(_mm512_slli_epi16(qh2, 4), bits45));
          const __m512i qc = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                                             _mm512_and_si512(qh2, bits45));
          const __m512i sa = Spread4(scales[i], 8 * h);
          const __m512i sc = Spread4(scales[i], 8 * h + 4);
          for (int j = 0; j < RX; ++j) {
            isum[i][j] = _mm512_dpwssd_epi32(isum[i][j], _mm512_maddubs_epi16(qa, xa[j]), sa);
            isum[i][j] = _mm512_dpwssd_epi32(isum[i][j], _mm512_maddubs_epi16(qc, xc[j]), sc);
          }
        }
      }
      for (int i = 0; i < RW; ++i) {
        const float d = Half(blk[i] + kQ6_KD);
        for (int j = 0; j < RX; ++j) {
          const __m512 s = _mm512_set1_ps(d * xb[j]->d);
          acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[i][j]), s, acc[i][j]);
        }
      }
    }
    StoreAcc(t, acc);
  }
};

}  // namespace

TileKernel Avx512QKTileKernel(uint32_t w_dtype) {
  switch (w_dtype) {
    case HEARTH_DTYPE_Q4_K:
      return avx512::MakeTileKernel<Q4KKernel>(Q4KKernel::kMaxRw);
    case HEARTH_DTYPE_Q6_K:
      return avx512::MakeTileKernel<Q6KKernel>(Q6KKernel::kMaxRw);
    default:
      return TileKernel{};
  }
}

}  // namespace hearth::cpu
