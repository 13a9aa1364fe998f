// kernels_matmul_q0_avx2.cc — phase 2 of the Q8_0, Q4_0, Q5_0 and Q4_1
// products on AVX2: 32-element weight blocks against XBlock32 activations.
//
// Per block pair the integer dot product is maddubs (u8 x s8 -> pairs of
// s16) then madd with ones (-> 8 s32 lanes), scaled by d_w * d_x into a float
// accumulator. Q8_0 weights are signed, so they go through the sign trick
// (|w| times x with w's sign). Q4_0/Q5_0/Q4_1 weights are used unsigned
// (0..15, 0..31). The Q4_0/Q5_0 offset is taken off as maddubs(offset, x),
// one product per x block shared by all w rows of the tile (the decode tile
// instead sums d_w * d_x * sum(q_x) in a scalar). The Q4_1 minimum adds
// m_w * dsum_x per block pair: the tile keeps those in one 4-lane vector per
// x row (lane i for w row i), the decode tile in a scalar. No step can
// saturate: |pair| <= 2 * 128 * 127 < 32768.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "backends/cpu/kernels.h"
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

// Weight formats differ in block size, in how 32 weights become bytes, and
// in the constant part of each weight: none (Q8_0, signed: sign trick), a
// fixed offset subtracted (Q4_0, Q5_0), or a per-block minimum added (Q4_1,
// whose f16 m follows d).
struct Q8_0Format {
  static constexpr int kBytes = kQ8_0Bytes;
  static constexpr bool kSigned = true;
  static constexpr int kOffset = 0;
  static constexpr bool kMin = false;
  static __m256i Weights(const uint8_t* blk) { return Load256(blk + 2); }
};
struct Q4_0Format {
  static constexpr int kBytes = kQ4_0Bytes;
  static constexpr bool kSigned = false;
  static constexpr int kOffset = 8;
  static constexpr bool kMin = false;
  static __m256i Weights(const uint8_t* blk) { return Nibbles32(blk + 2); }
};
struct Q5_0Format {
  static constexpr int kBytes = kQ5_0Bytes;
  static constexpr bool kSigned = false;
  static constexpr int kOffset = 16;
  static constexpr bool kMin = false;
  static __m256i Weights(const uint8_t* blk) {
    return _mm256_or_si256(Nibbles32(blk + 6), HighBits32(LoadU32(blk + 2)));
  }
};
struct Q4_1Format {
  static constexpr int kBytes = kQ4_1Bytes;
  static constexpr bool kSigned = false;
  static constexpr int kOffset = 0;
  static constexpr bool kMin = true;
  static __m256i Weights(const uint8_t* blk) { return Nibbles32(blk + 4); }
};

template <class F>
struct Q0Kernel {
  static constexpr int kMaxRw = 4;
  static constexpr int kMaxRx = 3;

  static_assert(kMaxRw <= 4, "the Q4_1 minimums of a tile's w rows share one __m128");

  // The Q4_1 minimums of block b of the tile's rows, lane i for row i.
  // Inserted into a register (not stored to memory and reloaded, which would
  // stall on store forwarding every block).
  template <int RW>
  static inline __m128 Mins(const uint8_t* const (&wrow)[RW], int64_t b) {
    auto m = [&](int i) -> short {
      return i < RW ? static_cast<short>(LoadU16(wrow[i] + b * F::kBytes + 2)) : 0;
    };
    return _mm_cvtph_ps(_mm_setr_epi16(m(0), m(1), m(2), m(3), 0, 0, 0, 0));
  }

  // Adds block b of the tile's rows into acc (and, for Q4_1, m_w * dsum_x
  // into mins).
  template <int RW, int RX>
  static inline void Block(const uint8_t* const (&wrow)[RW], const XBlock32* const (&xrow)[RX],
                           int64_t b, const avx2::RowPrefetcher& prefetch, __m256 (&acc)[RW][RX],
                           __m128 (&mins)[RX]) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i wq[RW], wabs[RW];
    __m256 dw[RW];
    for (int i = 0; i < RW; ++i) {
      const uint8_t* blk = wrow[i] + b * F::kBytes;
      prefetch.Ahead<F::kBytes>(blk, b * F::kBytes);
      wq[i] = F::Weights(blk);
      if constexpr (F::kSigned) wabs[i] = _mm256_abs_epi8(wq[i]);
      dw[i] = _mm256_set1_ps(Half(blk));
    }
    if constexpr (F::kMin) {
      const __m128 mw = Mins<RW>(wrow, b);
      for (int j = 0; j < RX; ++j) {
        mins[j] = _mm_fmadd_ps(mw, _mm_set1_ps(xrow[j][b].dsum), mins[j]);
      }
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
        if constexpr (F::kSigned) {
          p16 = _mm256_maddubs_epi16(wabs[i], _mm256_sign_epi8(xq, wq[i]));
        } else if constexpr (F::kOffset != 0) {
          p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(wq[i], xq), corr);
        } else {
          p16 = _mm256_maddubs_epi16(wq[i], xq);
        }
        const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
        acc[i][j] = _mm256_fmadd_ps(p, _mm256_mul_ps(dw[i], dx), acc[i][j]);
      }
    }
  }

  template <int RW, int RX>
  static void Run(const TileArgs& t) {
    __m256 acc[RW][RX];
    __m128 mins[RX];
    for (int j = 0; j < RX; ++j) {
      for (int i = 0; i < RW; ++i) acc[i][j] = _mm256_setzero_ps();
      mins[j] = _mm_setzero_ps();
    }
    const uint8_t* wrow[RW];
    for (int i = 0; i < RW; ++i) wrow[i] = t.w + i * t.w_row_bytes;
    const XBlock32* xrow[RX];
    for (int j = 0; j < RX; ++j) {
      xrow[j] = reinterpret_cast<const XBlock32*>(t.x + j * t.x_row_bytes);
    }
    const avx2::RowPrefetcher prefetch(t, RW, F::kBytes);
    for (int64_t b = 0; b < t.k_units; ++b) Block<RW, RX>(wrow, xrow, b, prefetch, acc, mins);
    for (int j = 0; j < RX; ++j) {
      float m[4];
      _mm_storeu_ps(m, mins[j]);
      for (int i = 0; i < RW; ++i) {
        t.y[j * t.y_row_stride + i] = F::kMin ? Hsum(acc[i][j]) + m[i] : Hsum(acc[i][j]);
      }
    }
  }
};

// The decode tile (one row of w, one of x; every output of an N = 1 product
// goes through it): two accumulators on alternate blocks against the FMA
// latency, and the Q4_0/Q5_0 offset (Q4_1 minimum) as one scalar FMA per
// block on d_x * sum(q_x) in place of the vector correction.
template <class F>
struct Q0Decode {
  template <bool kPrefetch>
  static inline void Block(const uint8_t* w, const XBlock32* x, int64_t b,
                           const avx2::RowPrefetcher& prefetch, __m256& acc, float& off) {
    const uint8_t* blk = w + b * F::kBytes;
    if constexpr (kPrefetch) prefetch.Ahead<F::kBytes>(blk, b * F::kBytes);
    const __m256i wq = F::Weights(blk);
    const __m256i xq = Load256(x[b].q);
    const float dw = Half(blk);
    __m256i p16;
    if constexpr (F::kSigned) {
      p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(wq), _mm256_sign_epi8(xq, wq));
    } else {
      p16 = _mm256_maddubs_epi16(wq, xq);
      // Q4_1: the block's minimum; Q4_0/Q5_0: d_w, scaled by -offset below.
      off += (F::kMin ? Half(blk + 2) : dw) * x[b].dsum;
    }
    const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
    acc = _mm256_fmadd_ps(p, _mm256_set1_ps(dw * x[b].d), acc);
  }

  static void Run(const TileArgs& t) {
    const XBlock32* x = reinterpret_cast<const XBlock32*>(t.x);
    const avx2::RowPrefetcher prefetch(t, 1, F::kBytes);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float off0 = 0.0f, off1 = 0.0f;
    int64_t b = 0;
    for (; b + 2 <= t.k_units; b += 2) {
      Block<true>(t.w, x, b, prefetch, acc0, off0);
      // Blocks under half a cache line: one prefetch per two blocks is enough.
      Block<(2 * F::kBytes > 64)>(t.w, x, b + 1, prefetch, acc1, off1);
    }
    if (b < t.k_units) Block<true>(t.w, x, b, prefetch, acc0, off0);
    const float sum = Hsum(_mm256_add_ps(acc0, acc1));
    if constexpr (F::kMin) {
      t.y[0] = sum + (off0 + off1);
    } else {
      t.y[0] = sum - static_cast<float>(F::kOffset) * (off0 + off1);
    }
  }
};

// The Q4_0 decode tile takes two blocks a step, A and B, so the steps that
// cost per block in Q0Decode are shared: one load holds both blocks' quants
// ([A's 16 bytes | B's 16 bytes]), whose low nibbles are [A 0..15 | B 0..15]
// and high nibbles [A 16..31 | B 16..31]; x's two blocks are regrouped to
// match (two lane permutes), so the two maddubs add up into one vector whose
// lanes 0-3 belong to A and 4-7 to B, and one conversion and one FMA serve
// both blocks. The scales are one 4-lane product [d_A, d_B, d_A, d_B] *
// [dx_A, dx_B, dsum_A, dsum_B]: lanes 0-1 spread over the halves, lanes 2-3
// the offset terms. |maddubs lo + maddubs hi| <= 4 * 15 * 127 < 32768.
struct Q4_0PairDecode {
  static inline void Pair(const uint8_t* blk, const XBlock32* x, __m256& acc, __m128& off) {
    const __m128i qa = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m128i qb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + kQ4_0Bytes + 2));
    const __m256i q = _mm256_inserti128_si256(_mm256_castsi128_si256(qa), qb, 1);
    const __m256i mask = _mm256_set1_epi8(0x0f);
    const __m256i lo = _mm256_and_si256(q, mask);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), mask);
    const __m256i xa = Load256(x[0].q), xb = Load256(x[1].q);
    const __m256i xlo = _mm256_permute2x128_si256(xa, xb, 0x20);
    const __m256i xhi = _mm256_permute2x128_si256(xa, xb, 0x31);
    const __m256i p16 =
        _mm256_add_epi16(_mm256_maddubs_epi16(lo, xlo), _mm256_maddubs_epi16(hi, xhi));
    const __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
    const __m128 dw = _mm_cvtph_ps(
        _mm_insert_epi16(_mm_cvtsi32_si128(LoadU16(blk)), LoadU16(blk + kQ4_0Bytes), 1));
    const __m128 dxa = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(&x[0].d)));
    const __m128 dxb = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(&x[1].d)));
    const __m128 s = _mm_mul_ps(_mm_movelh_ps(dw, dw), _mm_unpacklo_ps(dxa, dxb));
    off = _mm_add_ps(off, s);
    const __m256 scale = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(s),
                                                  _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
    acc = _mm256_fmadd_ps(p, scale, acc);
  }

  static void Run(const TileArgs& t) {
    static_assert(offsetof(XBlock32, dsum) == offsetof(XBlock32, d) + sizeof(float),
                  "d and dsum are read as one 8-byte pair");
    const XBlock32* x = reinterpret_cast<const XBlock32*>(t.x);
    const avx2::RowPrefetcher prefetch(t, 1, kQ4_0Bytes);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    __m128 off0 = _mm_setzero_ps(), off1 = _mm_setzero_ps();
    int64_t b = 0;
    for (; b + 4 <= t.k_units; b += 4) {
      const uint8_t* blk = t.w + b * kQ4_0Bytes;
      prefetch.Ahead<2 * kQ4_0Bytes>(blk, b * kQ4_0Bytes);
      prefetch.Ahead<2 * kQ4_0Bytes>(blk + 2 * kQ4_0Bytes, (b + 2) * kQ4_0Bytes);
      Pair(blk, x + b, acc0, off0);
      Pair(blk + 2 * kQ4_0Bytes, x + b + 2, acc1, off1);
    }
    for (; b + 2 <= t.k_units; b += 2) Pair(t.w + b * kQ4_0Bytes, x + b, acc0, off0);
    float offset = 0.0f;  // an odd last block: as the one-block decode tile does it
    if (b < t.k_units) Q0Decode<Q4_0Format>::Block<false>(t.w, x, b, prefetch, acc0, offset);
    const float sum = Hsum(_mm256_add_ps(acc0, acc1));
    const __m128 o = _mm_add_ps(off0, off1);
    offset += _mm_cvtss_f32(_mm_movehl_ps(o, o)) + _mm_cvtss_f32(_mm_shuffle_ps(o, o, 3));
    t.y[0] = sum - static_cast<float>(Q4_0Format::kOffset) * offset;
  }
};

// Prompt jobs: the job's weight rows are repacked, 8 at a time, into a
// panel that every x row of the job reads. Per block of 32 weights a panel
// holds the 8 rows' scales (and Q4_1 minimums) as floats and their quants
// interleaved by groups of 4 (group g: elements 4g..4g+3 of row 0, of row 1,
// …, of row 7: one 32-byte vector). Against the group's 4 x bytes broadcast
// to every row, one maddubs gives all 8 rows' partial sums, lane pair 2r,
// 2r+1 for row r, so the per-block float work (conversion, scales, FMA) is
// done once for 8 rows instead of per row, and the quants are unpacked once
// per job instead of once per tile of x rows. K is taken in chunks of
// kPanelBlocks blocks so that a panel stays in L1; the rows' float sums
// carry over from chunk to chunk, so each output is summed in one order.
//
// Unsigned quants (Q4_0, Q5_0, Q4_1) add the int16 products of 4 groups
// before widening: |sum| <= 4 * 2 * 31 * 128 < 32768. Q8_0's signed quants
// go through the sign trick and widen every group.
using avx2::kPanelRows;
constexpr int kPanelBlocks = 64;  // blocks of K per panel chunk (20 KB)

struct alignas(32) PanelBlock {
  float d[kPanelRows];
  float m[kPanelRows];
  uint8_t q[8][32];
};

template <class F>
constexpr int GroupsPerWiden() {
  return F::kSigned ? 1 : 4;  // 8 would not overflow for 4-bit quants, but ran slower
}

// The 32-block formats as a panel format of avx2::PanelJob.
template <class F>
struct Q0Panel {
  using Block = PanelBlock;
  using XBlock = XBlock32;
  static constexpr int kBlocks = kPanelBlocks;

  static void Pack(const uint8_t* w, int64_t w_row_bytes, int rows, int64_t b0, int64_t nb,
                   Block* panel) {
    for (int64_t b = 0; b < nb; ++b) {
      Block& pb = panel[b];
      __m256i r[8];
      for (int i = 0; i < kPanelRows; ++i) {
        if (i < rows) {
          const uint8_t* blk = w + i * w_row_bytes + (b0 + b) * F::kBytes;
          r[i] = F::Weights(blk);
          pb.d[i] = Half(blk);
          pb.m[i] = F::kMin ? Half(blk + 2) : 0.0f;
        } else {
          r[i] = _mm256_setzero_si256();
          pb.d[i] = 0.0f;
          pb.m[i] = 0.0f;
        }
      }
      avx2::TransposeDwords8(r);
      for (int g = 0; g < 8; ++g) _mm256_store_si256(reinterpret_cast<__m256i*>(pb.q[g]), r[g]);
    }
  }

  template <int RX>
  static void Pass(const Block* panel, int64_t nb, const XBlock* const (&xrow)[RX],
                   __m256 (&acc)[RX]) {
    constexpr int kGroups = GroupsPerWiden<F>();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; ++b) {
      const Block& pb = panel[b];
      __m256i i32[RX];
      for (int j = 0; j < RX; ++j) i32[j] = _mm256_setzero_si256();
      for (int g0 = 0; g0 < 8; g0 += kGroups) {
        __m256i i16[RX];
        for (int j = 0; j < RX; ++j) i16[j] = _mm256_setzero_si256();
        for (int g = g0; g < g0 + kGroups; ++g) {
          const __m256i wq = _mm256_load_si256(reinterpret_cast<const __m256i*>(pb.q[g]));
          __m256i wabs = wq;
          if constexpr (F::kSigned) wabs = _mm256_abs_epi8(wq);
          for (int j = 0; j < RX; ++j) {
            const uint8_t* xq4 = reinterpret_cast<const uint8_t*>(xrow[j][b].q) + 4 * g;
            const __m256i xq = _mm256_set1_epi32(static_cast<int>(LoadU32(xq4)));
            const __m256i p = F::kSigned ? _mm256_maddubs_epi16(wabs, _mm256_sign_epi8(xq, wq))
                                         : _mm256_maddubs_epi16(wq, xq);
            i16[j] = _mm256_add_epi16(i16[j], p);
          }
        }
        for (int j = 0; j < RX; ++j)
          i32[j] = _mm256_add_epi32(i32[j], _mm256_madd_epi16(i16[j], ones));
      }
      const __m256 dw = _mm256_load_ps(pb.d);
      for (int j = 0; j < RX; ++j) {
        const XBlock32& xb = xrow[j][b];
        const __m256 p = _mm256_cvtepi32_ps(i32[j]);
        __m256 t;
        if constexpr (F::kOffset != 0) {
          t = _mm256_fmsub_ps(p, _mm256_set1_ps(xb.d),
                              _mm256_set1_ps(static_cast<float>(F::kOffset) * xb.dsum));
        } else {
          t = _mm256_mul_ps(p, _mm256_set1_ps(xb.d));
        }
        acc[j] = _mm256_fmadd_ps(t, dw, acc[j]);
        if constexpr (F::kMin) {
          acc[j] = _mm256_fmadd_ps(_mm256_load_ps(pb.m), _mm256_set1_ps(xb.dsum), acc[j]);
        }
      }
    }
  }
};

// Q4_0 and Q8_0 in their x8 layouts (kernels.h): the quant bytes of a
// block of 8 rows are already interleaved by groups of 4 the way the panels
// want them (Q4_0: the low nibbles of chunk c are group c, the high nibbles
// group 4 + c; Q8_0: chunk c is group c), and the 8 scales are one f16
// vector. Decode reads each group of rows as one stream and does the
// per-block float work once for 8 rows; prompts fill the panel without a
// transposition.
template <class F>
constexpr int64_t X8Bytes() {
  return kX8Rows * F::kBytes;
}

// The 8 groups of the x8 block at src, as the panel holds them.
template <class F>
inline void X8Groups(const uint8_t* src, __m256i (&q)[8]) {
  if constexpr (std::is_same_v<F, Q4_0Format>) {
    const __m256i mask = _mm256_set1_epi8(0x0f);
    for (int c = 0; c < 4; ++c) {
      const __m256i v = Load256(src + 2 * kX8Rows + 32 * c);
      q[c] = _mm256_and_si256(v, mask);
      q[c + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), mask);
    }
  } else {
    static_assert(std::is_same_v<F, Q8_0Format>, "x8 layouts exist for Q4_0 and Q8_0");
    for (int c = 0; c < 8; ++c) q[c] = Load256(src + 2 * kX8Rows + 32 * c);
  }
}

// The integer dot products of the 8 rows' groups q with one x block's
// quants xq, lane r for row r. Q4_0: the 8 groups' maddubs add up in int16
// (|sum| <= 8 * 2 * 15 * 128 < 32768), one madd widens them; Q8_0 (signed,
// sign trick): every group widens.
template <class F>
inline __m256i X8Dot(const __m256i (&q)[8], const uint8_t* xq) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
  for (int g = 0; g < 8; g += 2) {
    const __m256i x0 = _mm256_set1_epi32(static_cast<int>(LoadU32(xq + 4 * g)));
    const __m256i x1 = _mm256_set1_epi32(static_cast<int>(LoadU32(xq + 4 * g + 4)));
    if constexpr (F::kSigned) {
      const __m256i p0 = _mm256_maddubs_epi16(_mm256_abs_epi8(q[g]), _mm256_sign_epi8(x0, q[g]));
      const __m256i p1 =
          _mm256_maddubs_epi16(_mm256_abs_epi8(q[g + 1]), _mm256_sign_epi8(x1, q[g + 1]));
      s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(p0, ones));
      s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(p1, ones));
    } else {
      s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(q[g], x0));
      s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(q[g + 1], x1));
    }
  }
  if constexpr (F::kSigned) return _mm256_add_epi32(s0, s1);
  return _mm256_madd_epi16(_mm256_add_epi16(s0, s1), ones);
}

// One group of rows against RX x rows (acc[j] lane r += row r . x row j),
// each block's groups unpacked once for all of them, with the float steps
// of Q0Panel<F>::Pass, so decode, small batches and prompts of a repacked
// weight give the same bits.
template <class F, int RX>
void X8Rows(const uint8_t* w, int64_t k_units, const XBlock32* const (&x)[RX], __m256 (&acc)[RX]) {
  for (int64_t b = 0; b < k_units; ++b) {
    const uint8_t* src = w + b * X8Bytes<F>();
    const char* ahead = reinterpret_cast<const char*>(src + avx2::kPrefetchDistance);
    for (int64_t o = 0; o < X8Bytes<F>(); o += 64) _mm_prefetch(ahead + o, _MM_HINT_T0);
    __m256i q[8];
    X8Groups<F>(src, q);
    const __m256 dw = avx2::Halves8(src);
    for (int j = 0; j < RX; ++j) {
      const XBlock32& xb = x[j][b];
      const __m256 p = _mm256_cvtepi32_ps(X8Dot<F>(q, reinterpret_cast<const uint8_t*>(xb.q)));
      __m256 v;
      if constexpr (F::kOffset != 0) {
        v = _mm256_fmsub_ps(p, _mm256_set1_ps(xb.d),
                            _mm256_set1_ps(static_cast<float>(F::kOffset) * xb.dsum));
      } else {
        v = _mm256_mul_ps(p, _mm256_set1_ps(xb.d));
      }
      acc[j] = _mm256_fmadd_ps(v, dw, acc[j]);
    }
  }
}

// Rows [m0, m0 + rows) of the job (one group) against x rows [j0, j0 + RX).
template <class F, int RX>
void X8RowsInto(const TileArgs& t, int m0, int rows, int j0) {
  const XBlock32* x[RX];
  __m256 acc[RX];
  for (int j = 0; j < RX; ++j) {
    x[j] = reinterpret_cast<const XBlock32*>(t.x + (j0 + j) * t.x_row_bytes);
    acc[j] = _mm256_setzero_ps();
  }
  X8Rows<F, RX>(t.w + m0 * t.w_row_bytes, t.k_units, x, acc);
  for (int j = 0; j < RX; ++j) {
    float y[kX8Rows];
    _mm256_storeu_ps(y, acc[j]);
    for (int i = 0; i < rows; ++i) t.y[(j0 + j) * t.y_row_stride + m0 + i] = y[i];
  }
}

// Decode: one group of rows against one x row.
template <class F>
struct X8Decode {
  static void Run(const TileArgs& t) { X8RowsInto<F, 1>(t, 0, t.rw, 0); }
};

// A job of up to kX8DirectRx x rows (batched decode) reads the repacked
// groups directly, 4 x rows at a time: filling a panel that so few rows read
// costs more than unpacking each block twice in registers.
constexpr int kX8DirectRx = 8;

template <class F>
void X8SmallJob(const TileArgs& t) {
  for (int m0 = 0; m0 < t.rw; m0 += kX8Rows) {
    const int rows = t.rw - m0 < kX8Rows ? t.rw - m0 : kX8Rows;
    int j0 = 0;
    for (; j0 + 4 <= t.rx; j0 += 4) X8RowsInto<F, 4>(t, m0, rows, j0);
    switch (t.rx - j0) {
      case 3:
        X8RowsInto<F, 3>(t, m0, rows, j0);
        break;
      case 2:
        X8RowsInto<F, 2>(t, m0, rows, j0);
        break;
      case 1:
        X8RowsInto<F, 1>(t, m0, rows, j0);
        break;
      default:
        break;
    }
  }
}

// The prompt panel of a repacked weight: Q0Panel<F> with a Pack that only
// copies (Q8_0) or unpacks (Q4_0).
template <class F>
struct X8Panel : Q0Panel<F> {
  using Block = typename Q0Panel<F>::Block;
  static void Pack(const uint8_t* w, int64_t, int, int64_t b0, int64_t nb, Block* panel) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* src = w + (b0 + b) * X8Bytes<F>();
      __m256i q[8];
      X8Groups<F>(src, q);
      for (int g = 0; g < 8; ++g) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(panel[b].q[g]), q[g]);
      }
      _mm256_store_ps(panel[b].d, avx2::Halves8(src));
    }
  }
};

template <class F>
TileKernel MakeQ0Kernel() {
  TileKernel k = avx2::MakeTileKernel<Q0Kernel<F>>(1);
  k.job_fn = avx2::PanelJob<Q0Panel<F>>;
  if constexpr (std::is_same_v<F, Q4_0Format> || std::is_same_v<F, Q8_0Format>) {
    k.x8_decode_fn = X8Decode<F>::Run;
    k.x8_job_fn = [](const TileArgs& t) {
      if (t.rx <= kX8DirectRx) {
        X8SmallJob<F>(t);
      } else {
        avx2::PanelJob<X8Panel<F>>(t);
      }
    };
  }
  if constexpr (std::is_same_v<F, Q4_0Format>) {
    k.decode_fn = Q4_0PairDecode::Run;
  } else {
    k.decode_fn = Q0Decode<F>::Run;
  }
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
    case HEARTH_DTYPE_Q4_1:
      return MakeQ0Kernel<Q4_1Format>();
    default:
      return TileKernel{};
  }
}

}  // namespace hearth::cpu
