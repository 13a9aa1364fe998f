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

#include "backends/cpu/kernels.h"
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

// Q4_K prompt jobs, as the 32-block formats' (kernels_matmul_q0_avx2.cc):
// the job's weight rows are repacked 8 at a time into a panel whose
// sub-blocks hold the 8 rows' quants interleaved by groups of 4 and their
// 6-bit scales and minimums as s16 lane pairs (lanes 2r, 2r+1 for row r).
// Per sub-block and x row: 8 maddubs against 4 broadcast x bytes add up in
// s16 (<= 8 * 2 * 15 * 127 < 32768), one madd with the scales widens them
// into the rows' s32 sums, and one madd of the minimums with x's two
// 16-element sums gives the rows' minimum terms; per super-block one float
// FMA each applies d_w * d_x and dmin_w * d_x to all 8 rows.
using avx2::kPanelRows;
constexpr int kKPanelBlocks = 8;  // super-blocks per panel chunk (21-23 KB)

struct alignas(32) Q4KPanelBlock {
  float d[kPanelRows];
  float dmin[kPanelRows];
  int16_t sc[8][16];
  int16_t m[8][16];
  uint8_t q[8][8][32];  // [sub-block][group][row * 4 + element]
};

// Q4_K as a panel format of avx2::PanelJob.
struct Q4KPanel {
  using Block = Q4KPanelBlock;
  using XBlock = XBlock256;
  static constexpr int kBlocks = kKPanelBlocks;

  static void Pack(const uint8_t* w, int64_t w_row_bytes, int rows, int64_t b0, int64_t nb,
                   Block* panel) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    for (int64_t b = 0; b < nb; ++b) {
      Q4KPanelBlock& pb = panel[b];
      const uint8_t* blk[kPanelRows];
      for (int i = 0; i < kPanelRows; ++i) {
        blk[i] = i < rows ? w + i * w_row_bytes + (b0 + b) * kQ4_KBytes : nullptr;
        uint8_t sc[8] = {}, m[8] = {};
        if (blk[i] != nullptr) UnpackQ4KScales(blk[i] + kQ4_KScales, sc, m);
        pb.d[i] = blk[i] != nullptr ? Half(blk[i]) : 0.0f;
        pb.dmin[i] = blk[i] != nullptr ? Half(blk[i] + 2) : 0.0f;
        for (int sb = 0; sb < 8; ++sb) {
          pb.sc[sb][2 * i] = pb.sc[sb][2 * i + 1] = sc[sb];
          pb.m[sb][2 * i] = pb.m[sb][2 * i + 1] = m[sb];
        }
      }
      for (int sb = 0; sb < 8; ++sb) {
        __m256i r[8];
        for (int i = 0; i < kPanelRows; ++i) {
          if (blk[i] == nullptr) {
            r[i] = _mm256_setzero_si256();
            continue;
          }
          const __m256i raw = Load256(blk[i] + kQ4_KQs + 32 * (sb / 2));
          r[i] = _mm256_and_si256(sb % 2 == 0 ? raw : _mm256_srli_epi16(raw, 4), low4);
        }
        avx2::TransposeDwords8(r);
        for (int g = 0; g < 8; ++g) {
          _mm256_store_si256(reinterpret_cast<__m256i*>(pb.q[sb][g]), r[g]);
        }
      }
    }
  }

  template <int RX>
  static void Pass(const Block* panel, int64_t nb, const XBlock* const (&xrow)[RX],
                   __m256 (&acc)[RX]) {
    for (int64_t b = 0; b < nb; ++b) {
      const Q4KPanelBlock& pb = panel[b];
      __m256i i32[RX], mn[RX];
      for (int j = 0; j < RX; ++j) i32[j] = mn[j] = _mm256_setzero_si256();
      for (int sb = 0; sb < 8; ++sb) {
        __m256i i16[RX];
        for (int j = 0; j < RX; ++j) i16[j] = _mm256_setzero_si256();
        for (int g = 0; g < 8; ++g) {
          const __m256i wq = _mm256_load_si256(reinterpret_cast<const __m256i*>(pb.q[sb][g]));
          for (int j = 0; j < RX; ++j) {
            const uint8_t* x4 = reinterpret_cast<const uint8_t*>(xrow[j][b].q) + 32 * sb + 4 * g;
            const __m256i xq = _mm256_set1_epi32(static_cast<int>(LoadU32(x4)));
            i16[j] = _mm256_add_epi16(i16[j], _mm256_maddubs_epi16(wq, xq));
          }
        }
        const __m256i sc = _mm256_load_si256(reinterpret_cast<const __m256i*>(pb.sc[sb]));
        const __m256i m = _mm256_load_si256(reinterpret_cast<const __m256i*>(pb.m[sb]));
        for (int j = 0; j < RX; ++j) {
          i32[j] = _mm256_add_epi32(i32[j], _mm256_madd_epi16(i16[j], sc));
          const uint8_t* bs = reinterpret_cast<const uint8_t*>(xrow[j][b].bsums + 2 * sb);
          const __m256i bsum2 = _mm256_set1_epi32(static_cast<int>(LoadU32(bs)));
          mn[j] = _mm256_add_epi32(mn[j], _mm256_madd_epi16(m, bsum2));
        }
      }
      const __m256 d = _mm256_load_ps(pb.d), dmin = _mm256_load_ps(pb.dmin);
      for (int j = 0; j < RX; ++j) {
        const __m256 dx = _mm256_set1_ps(xrow[j][b].d);
        acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32[j]), _mm256_mul_ps(d, dx), acc[j]);
        acc[j] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mn[j]), _mm256_mul_ps(dmin, dx), acc[j]);
      }
    }
  }
};

// Q6_K prompt panels, the same way: quants 0..63 (6 bits, offset 32) by
// groups of 4, a signed scale per 16 elements as s16 lane pairs. Two groups'
// products fit s16 (<= 2 * 2 * 63 * 127 < 32768), so each 16-element scale
// group widens twice; the offset is -32 * sum_k scale_k * bsum_k, one madd
// of two scale groups against x's two 16-element sums per 32 elements.
struct alignas(32) Q6KPanelBlock {
  float d[kPanelRows];
  int16_t sc[16][16];   // [scale group k]: lanes 2r, 2r+1 = row r's scale k
  int16_t scp[8][16];   // [32-element chunk c]: lane 2r = scale 2c, 2r+1 = 2c+1
  uint8_t q[8][8][32];  // [chunk][group][row * 4 + element]
};

// Q6_K as a panel format of avx2::PanelJob.
struct Q6KPanel {
  using Block = Q6KPanelBlock;
  using XBlock = XBlock256;
  static constexpr int kBlocks = kKPanelBlocks;

  static void Pack(const uint8_t* w, int64_t w_row_bytes, int rows, int64_t b0, int64_t nb,
                   Block* panel) {
    const __m256i low4 = _mm256_set1_epi8(0x0f), bits45 = _mm256_set1_epi8(0x30);
    for (int64_t b = 0; b < nb; ++b) {
      Q6KPanelBlock& pb = panel[b];
      __m256i chunks[8][kPanelRows];  // [chunk][row]: 32 quants in element order
      for (int i = 0; i < kPanelRows; ++i) {
        const uint8_t* blk = i < rows ? w + i * w_row_bytes + (b0 + b) * kQ6_KBytes : nullptr;
        pb.d[i] = blk != nullptr ? Half(blk + kQ6_KD) : 0.0f;
        for (int k = 0; k < 16; ++k) {
          const int16_t sc = blk != nullptr ? static_cast<int8_t>(blk[kQ6_KScales + k]) : 0;
          pb.sc[k][2 * i] = pb.sc[k][2 * i + 1] = sc;
          pb.scp[k / 2][2 * i + k % 2] = sc;
        }
        for (int h = 0; h < 2; ++h) {
          if (blk == nullptr) {
            for (int tq = 0; tq < 4; ++tq) chunks[4 * h + tq][i] = _mm256_setzero_si256();
            continue;
          }
          const __m256i ql0 = Load256(blk + 64 * h);
          const __m256i ql1 = Load256(blk + 64 * h + 32);
          const __m256i qh = Load256(blk + kQ6_KQh + 32 * h);
          chunks[4 * h][i] = _mm256_or_si256(_mm256_and_si256(ql0, low4),
                                             _mm256_and_si256(_mm256_slli_epi16(qh, 4), bits45));
          chunks[4 * h + 1][i] = _mm256_or_si256(
              _mm256_and_si256(ql1, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), bits45));
          chunks[4 * h + 2][i] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                                                 _mm256_and_si256(qh, bits45));
          chunks[4 * h + 3][i] =
              _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                              _mm256_and_si256(_mm256_srli_epi16(qh, 2), bits45));
        }
      }
      for (int c = 0; c < 8; ++c) {
        avx2::TransposeDwords8(chunks[c]);
        for (int g = 0; g < 8; ++g) {
          _mm256_store_si256(reinterpret_cast<__m256i*>(pb.q[c][g]), chunks[c][g]);
        }
      }
    }
  }

  template <int RX>
  static void Pass(const Block* panel, int64_t nb, const XBlock* const (&xrow)[RX],
                   __m256 (&acc)[RX]) {
    for (int64_t b = 0; b < nb; ++b) {
      const Q6KPanelBlock& pb = panel[b];
      __m256i i32[RX], off[RX];
      for (int j = 0; j < RX; ++j) i32[j] = off[j] = _mm256_setzero_si256();
      for (int c = 0; c < 8; ++c) {
        for (int g0 = 0; g0 < 8; g0 += 2) {
          __m256i i16[RX];
          for (int j = 0; j < RX; ++j) i16[j] = _mm256_setzero_si256();
          for (int g = g0; g < g0 + 2; ++g) {
            const __m256i wq = _mm256_load_si256(reinterpret_cast<const __m256i*>(pb.q[c][g]));
            for (int j = 0; j < RX; ++j) {
              const uint8_t* x4 = reinterpret_cast<const uint8_t*>(xrow[j][b].q) + 32 * c + 4 * g;
              const __m256i xq = _mm256_set1_epi32(static_cast<int>(LoadU32(x4)));
              i16[j] = _mm256_add_epi16(i16[j], _mm256_maddubs_epi16(wq, xq));
            }
          }
          const __m256i sc =
              _mm256_load_si256(reinterpret_cast<const __m256i*>(pb.sc[2 * c + g0 / 4]));
          for (int j = 0; j < RX; ++j)
            i32[j] = _mm256_add_epi32(i32[j], _mm256_madd_epi16(i16[j], sc));
        }
        const __m256i scp = _mm256_load_si256(reinterpret_cast<const __m256i*>(pb.scp[c]));
        for (int j = 0; j < RX; ++j) {
          const uint8_t* bs = reinterpret_cast<const uint8_t*>(xrow[j][b].bsums + 2 * c);
          const __m256i bsum2 = _mm256_set1_epi32(static_cast<int>(LoadU32(bs)));
          off[j] = _mm256_add_epi32(off[j], _mm256_madd_epi16(scp, bsum2));
        }
      }
      const __m256 d = _mm256_load_ps(pb.d);
      for (int j = 0; j < RX; ++j) {
        const __m256i total = _mm256_sub_epi32(i32[j], _mm256_slli_epi32(off[j], 5));
        const __m256 s = _mm256_mul_ps(d, _mm256_set1_ps(xrow[j][b].d));
        acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(total), s, acc[j]);
      }
    }
  }
};

// Q4_K in the kQ4_Kx8 layout (kernels.h): per super-block of 8 rows the
// scales and minimums are bytes [sub-block][row] and the quant bytes are
// interleaved by groups of 4 the way the panel wants them (the low nibbles
// of chunk g of pair p are sub-block 2p's group g, the high nibbles
// sub-block 2p + 1's). Decode reads each group of rows as one stream and
// does the scale and float work once for 8 rows; prompts fill the panel
// without a transposition or a 6-bit unpacking.

// The 8 bytes at p as s16 lane pairs: lanes 2r and 2r + 1 = byte r.
inline __m256i X8PairLanes(const uint8_t* p) {
  const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  return _mm256_or_si256(v, _mm256_slli_epi32(v, 16));
}

// One group of rows against one x row, with the integer sums and float
// steps of Q4KPanel::Pass, so decode and prompt rows give the same bits.
struct Q4KX8Decode {
  static void Run(const TileArgs& t) {
    const XBlock256* x = reinterpret_cast<const XBlock256*>(t.x);
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < t.k_units; ++b) {
      const uint8_t* src = t.w + b * kQ4_Kx8Bytes;
      const char* ahead = reinterpret_cast<const char*>(src + avx2::kPrefetchDistance);
      for (int64_t o = 0; o < kQ4_Kx8Bytes; o += 64) _mm_prefetch(ahead + o, _MM_HINT_T0);
      const uint8_t* xq = reinterpret_cast<const uint8_t*>(x[b].q);
      const uint8_t* bs = reinterpret_cast<const uint8_t*>(x[b].bsums);
      __m256i i32 = _mm256_setzero_si256(), mn = _mm256_setzero_si256();
      for (int p = 0; p < 4; ++p) {
        __m256i lo16 = _mm256_setzero_si256(), hi16 = _mm256_setzero_si256();
        for (int g = 0; g < 8; ++g) {
          const __m256i v = Load256(src + kQ4_Kx8Qs + 256 * p + 32 * g);
          const __m256i xlo = _mm256_set1_epi32(static_cast<int>(LoadU32(xq + 64 * p + 4 * g)));
          const __m256i xhi =
              _mm256_set1_epi32(static_cast<int>(LoadU32(xq + 64 * p + 32 + 4 * g)));
          lo16 = _mm256_add_epi16(lo16, _mm256_maddubs_epi16(_mm256_and_si256(v, low4), xlo));
          hi16 = _mm256_add_epi16(
              hi16, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), low4), xhi));
        }
        const int s0 = 2 * p, s1 = 2 * p + 1;
        i32 = _mm256_add_epi32(i32, _mm256_madd_epi16(lo16, X8PairLanes(src + kQ4_Kx8Sc + 8 * s0)));
        i32 = _mm256_add_epi32(i32, _mm256_madd_epi16(hi16, X8PairLanes(src + kQ4_Kx8Sc + 8 * s1)));
        mn = _mm256_add_epi32(
            mn, _mm256_madd_epi16(X8PairLanes(src + kQ4_Kx8M + 8 * s0),
                                  _mm256_set1_epi32(static_cast<int>(LoadU32(bs + 4 * s0)))));
        mn = _mm256_add_epi32(
            mn, _mm256_madd_epi16(X8PairLanes(src + kQ4_Kx8M + 8 * s1),
                                  _mm256_set1_epi32(static_cast<int>(LoadU32(bs + 4 * s1)))));
      }
      const __m256 dx = _mm256_set1_ps(x[b].d);
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), _mm256_mul_ps(avx2::Halves8(src), dx), acc);
      acc = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mn),
                             _mm256_mul_ps(avx2::Halves8(src + kQ4_Kx8Dmin), dx), acc);
    }
    float y[kX8Rows];
    _mm256_storeu_ps(y, acc);
    for (int i = 0; i < t.rw; ++i) t.y[i] = y[i];
  }
};

// The prompt panel of a repacked Q4_K weight: Q4KPanel with a Pack that
// only unpacks.
struct Q4KX8Panel : Q4KPanel {
  static void Pack(const uint8_t* w, int64_t, int, int64_t b0, int64_t nb, Block* panel) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* src = w + (b0 + b) * kQ4_Kx8Bytes;
      Q4KPanelBlock& pb = panel[b];
      _mm256_store_ps(pb.d, avx2::Halves8(src));
      _mm256_store_ps(pb.dmin, avx2::Halves8(src + kQ4_Kx8Dmin));
      for (int sb = 0; sb < 8; ++sb) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(pb.sc[sb]),
                           X8PairLanes(src + kQ4_Kx8Sc + 8 * sb));
        _mm256_store_si256(reinterpret_cast<__m256i*>(pb.m[sb]),
                           X8PairLanes(src + kQ4_Kx8M + 8 * sb));
      }
      for (int p = 0; p < 4; ++p) {
        for (int g = 0; g < 8; ++g) {
          const __m256i v = Load256(src + kQ4_Kx8Qs + 256 * p + 32 * g);
          _mm256_store_si256(reinterpret_cast<__m256i*>(pb.q[2 * p][g]), _mm256_and_si256(v, low4));
          _mm256_store_si256(reinterpret_cast<__m256i*>(pb.q[2 * p + 1][g]),
                             _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
        }
      }
    }
  }
};

// Q6_K in the kQ6_Kx8 layout (kernels.h): the low and high bits of 8 rows
// come in chunks already interleaved by groups of 4, so the panel's chunks
// are built with the plain Pack's shifts and masks but no transposition; the
// scales are bytes [scale][row].

// Group g of the 4 chunks 4h .. 4h + 3 of the super-block at src (6-bit
// quants 0..63 as bytes).
inline void Q6X8Chunks(const uint8_t* src, int h, int g, __m256i (&c)[4]) {
  const __m256i low4 = _mm256_set1_epi8(0x0f), bits45 = _mm256_set1_epi8(0x30);
  const __m256i ql0 = Load256(src + kQ6_Kx8Ql + 256 * (2 * h) + 32 * g);
  const __m256i ql1 = Load256(src + kQ6_Kx8Ql + 256 * (2 * h + 1) + 32 * g);
  const __m256i qh = Load256(src + kQ6_Kx8Qh + 256 * h + 32 * g);
  c[0] = _mm256_or_si256(_mm256_and_si256(ql0, low4),
                         _mm256_and_si256(_mm256_slli_epi16(qh, 4), bits45));
  c[1] = _mm256_or_si256(_mm256_and_si256(ql1, low4),
                         _mm256_and_si256(_mm256_slli_epi16(qh, 2), bits45));
  c[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                         _mm256_and_si256(qh, bits45));
  c[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                         _mm256_and_si256(_mm256_srli_epi16(qh, 2), bits45));
}

// Scale k of the 8 rows as s16 lane pairs (lanes 2r, 2r + 1 = row r's).
inline __m256i Q6X8Scale(const uint8_t* src, int k) {
  const __m256i v = _mm256_cvtepi8_epi32(
      _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + kQ6_Kx8Sc + 8 * k)));
  return _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(v, 16));
}

// Scales 2c and 2c + 1 of the 8 rows as s16 lane pairs (lane 2r = row r's
// scale 2c, 2r + 1 its scale 2c + 1).
inline __m256i Q6X8ScalePair(const uint8_t* src, int c) {
  const __m128i a = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + kQ6_Kx8Sc + 16 * c));
  const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + kQ6_Kx8Sc + 16 * c + 8));
  return _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b));
}

// One group of rows against one x row, with the integer sums and float
// steps of Q6KPanel::Pass (two groups' products per int16 sum, each 16
// elements' sum scaled by a madd), so decode and prompt rows give the same
// bits.
struct Q6KX8Decode {
  static void Run(const TileArgs& t) {
    const XBlock256* x = reinterpret_cast<const XBlock256*>(t.x);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < t.k_units; ++b) {
      const uint8_t* src = t.w + b * kQ6_Kx8Bytes;
      const char* ahead = reinterpret_cast<const char*>(src + avx2::kPrefetchDistance);
      for (int64_t o = 0; o < kQ6_Kx8Bytes; o += 64) _mm_prefetch(ahead + o, _MM_HINT_T0);
      const uint8_t* xq = reinterpret_cast<const uint8_t*>(x[b].q);
      const uint8_t* bs = reinterpret_cast<const uint8_t*>(x[b].bsums);
      __m256i i32 = _mm256_setzero_si256(), off = _mm256_setzero_si256();
      for (int h = 0; h < 2; ++h) {
        for (int g0 = 0; g0 < 8; g0 += 2) {
          __m256i c0[4], c1[4];
          Q6X8Chunks(src, h, g0, c0);
          Q6X8Chunks(src, h, g0 + 1, c1);
          for (int tq = 0; tq < 4; ++tq) {
            const int c = 4 * h + tq;
            const __m256i x0 = _mm256_set1_epi32(static_cast<int>(LoadU32(xq + 32 * c + 4 * g0)));
            const __m256i x1 =
                _mm256_set1_epi32(static_cast<int>(LoadU32(xq + 32 * c + 4 * g0 + 4)));
            const __m256i i16 = _mm256_add_epi16(_mm256_maddubs_epi16(c0[tq], x0),
                                                 _mm256_maddubs_epi16(c1[tq], x1));
            i32 = _mm256_add_epi32(i32, _mm256_madd_epi16(i16, Q6X8Scale(src, 2 * c + g0 / 4)));
          }
        }
      }
      for (int c = 0; c < 8; ++c) {
        const __m256i bsum2 = _mm256_set1_epi32(static_cast<int>(LoadU32(bs + 4 * c)));
        off = _mm256_add_epi32(off, _mm256_madd_epi16(Q6X8ScalePair(src, c), bsum2));
      }
      const __m256i total = _mm256_sub_epi32(i32, _mm256_slli_epi32(off, 5));
      const __m256 d = avx2::Halves8(src);
      acc =
          _mm256_fmadd_ps(_mm256_cvtepi32_ps(total), _mm256_mul_ps(d, _mm256_set1_ps(x[b].d)), acc);
    }
    float y[kX8Rows];
    _mm256_storeu_ps(y, acc);
    for (int i = 0; i < t.rw; ++i) t.y[i] = y[i];
  }
};

// The prompt panel of a repacked Q6_K weight: Q6KPanel with a Pack that
// builds the chunks without a transposition.
struct Q6KX8Panel : Q6KPanel {
  static void Pack(const uint8_t* w, int64_t, int, int64_t b0, int64_t nb, Block* panel) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* src = w + (b0 + b) * kQ6_Kx8Bytes;
      Q6KPanelBlock& pb = panel[b];
      _mm256_store_ps(pb.d, avx2::Halves8(src));
      for (int k = 0; k < 16; ++k) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(pb.sc[k]), Q6X8Scale(src, k));
      }
      for (int c = 0; c < 8; ++c) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(pb.scp[c]), Q6X8ScalePair(src, c));
      }
      for (int h = 0; h < 2; ++h) {
        for (int g = 0; g < 8; ++g) {
          __m256i c4[4];
          Q6X8Chunks(src, h, g, c4);
          for (int tq = 0; tq < 4; ++tq) {
            _mm256_store_si256(reinterpret_cast<__m256i*>(pb.q[4 * h + tq][g]), c4[tq]);
          }
        }
      }
    }
  }
};

}  // namespace

TileKernel Avx2QKTileKernel(uint32_t w_dtype) {
  switch (w_dtype) {
    case HEARTH_DTYPE_Q4_K: {
      TileKernel k = avx2::MakeTileKernel<Q4KKernel>(1);
      k.job_fn = avx2::PanelJob<Q4KPanel>;
      k.x8_decode_fn = Q4KX8Decode::Run;
      k.x8_job_fn = avx2::PanelJob<Q4KX8Panel>;
      return k;
    }
    case HEARTH_DTYPE_Q6_K: {
      TileKernel k = avx2::MakeTileKernel<Q6KKernel>(1);
      k.job_fn = avx2::PanelJob<Q6KPanel>;
      k.x8_decode_fn = Q6KX8Decode::Run;
      k.x8_job_fn = avx2::PanelJob<Q6KX8Panel>;
      return k;
    }
    default:
      return TileKernel{};
  }
}

}  // namespace hearth::cpu
