// quant_avx2.h — small AVX2 helpers shared by the *_avx2.cc kernel files and
// the table that maps a tile's (rw, rx) to a fully unrolled instantiation.
// Include only from files compiled with -mavx2 -mfma -mf16c.
#ifndef HEARTH_BACKENDS_CPU_QUANT_AVX2_H_
#define HEARTH_BACKENDS_CPU_QUANT_AVX2_H_

#include <immintrin.h>

#include <array>
#include <cstdint>
#include <utility>

#include "backends/cpu/quant_dispatch.h"

namespace hearth::cpu::avx2 {

inline float Hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int HsumI32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

inline float Hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float Half(const uint8_t* p) {
  uint16_t h;
  __builtin_memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline __m256i Load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// The 8 f16 at p as floats (an x8 layout's 8 rows' scales).
inline __m256 Halves8(const uint8_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// 16 bytes of nibbles to 32 bytes: low nibbles first, then high nibbles
// (the Q4_0/Q5_0 element order).
inline __m256i Nibbles32(const uint8_t* p) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// Byte j of the result is 0x10 where bit j of qh is set, else 0 (Q5_0).
inline __m256i HighBits32(uint32_t qh) {
  const __m256i spread =
      _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)),
                          _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                           2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// r[g] becomes 32-bit element g of rows r[0..7] (an 8x8 transpose of
// dwords): the prompt panels' interleaving of 8 weight rows by groups of 4
// bytes.
inline void TransposeDwords8(__m256i (&r)[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int g = 0; g < 4; ++g) {
    r[g] = _mm256_permute2x128_si256(u[g], u[g + 4], 0x20);
    r[g + 4] = _mm256_permute2x128_si256(u[g], u[g + 4], 0x31);
  }
}

// The prompt panels (kernels_matmul_q0_avx2.cc, kernels_matmul_qk_avx2.cc):
// a job's weight rows are repacked kPanelRows at a time into a panel of
// P::kBlocks blocks of K (an L1's worth) that the job's x rows read
// kPanelRx at a time; the rows' float sums carry from one chunk of K to the
// next, so every output is summed in one order. A panel format P has
// `Block` (one block of K of the panel), `XBlock` (one block of x in
// scratch), kBlocks, Pack(w, w_row_bytes, rows, b0, nb, panel) (blocks
// [b0, b0 + nb) of `rows` weight rows; rows past them zero) and
// Pass<RX>(panel, nb, xrow, acc) (acc[j] lane r += the panel's row r
// against x row xrow[j], whose first block is the panel's first).
inline constexpr int kPanelRows = 8;
inline constexpr int kPanelRx = 4;
inline constexpr int kPanelMaxJobRows = 64;  // x rows of one pass (the work split's most)

// The panel against x rows n0 .. n0 + RX - 1 from block b0 on, added to
// their sums (which start from zero at b0 == 0).
template <class P, int RX>
void PanelChunk(const typename P::Block* panel, int64_t nb, const TileArgs& t, int n0, int64_t b0,
                float (*sums)[kPanelRows]) {
  const typename P::XBlock* xrow[RX];
  __m256 acc[RX];
  for (int j = 0; j < RX; ++j) {
    xrow[j] = reinterpret_cast<const typename P::XBlock*>(t.x + (n0 + j) * t.x_row_bytes) + b0;
    acc[j] = b0 == 0 ? _mm256_setzero_ps() : _mm256_loadu_ps(sums[n0 + j]);
  }
  P::template Pass<RX>(panel, nb, xrow, acc);
  for (int j = 0; j < RX; ++j) _mm256_storeu_ps(sums[n0 + j], acc[j]);
}

template <class P>
void PanelJobPart(const TileArgs& t) {
  typename P::Block panel[P::kBlocks];
  float sums[kPanelMaxJobRows][kPanelRows];
  for (int m0 = 0; m0 < t.rw; m0 += kPanelRows) {
    const int rows = t.rw - m0 < kPanelRows ? t.rw - m0 : kPanelRows;
    for (int64_t b0 = 0; b0 < t.k_units; b0 += P::kBlocks) {
      const int64_t nb = t.k_units - b0 < P::kBlocks ? t.k_units - b0 : P::kBlocks;
      P::Pack(t.w + m0 * t.w_row_bytes, t.w_row_bytes, rows, b0, nb, panel);
      int n0 = 0;
      for (; n0 + kPanelRx <= t.rx; n0 += kPanelRx) {
        PanelChunk<P, kPanelRx>(panel, nb, t, n0, b0, sums);
      }
      switch (t.rx - n0) {
        case 3:
          PanelChunk<P, 3>(panel, nb, t, n0, b0, sums);
          break;
        case 2:
          PanelChunk<P, 2>(panel, nb, t, n0, b0, sums);
          break;
        case 1:
          PanelChunk<P, 1>(panel, nb, t, n0, b0, sums);
          break;
        default:
          break;
      }
    }
    for (int j = 0; j < t.rx; ++j) {
      for (int i = 0; i < rows; ++i) t.y[j * t.y_row_stride + m0 + i] = sums[j][i];
    }
  }
}

// TileKernel::job_fn of a panel format P.
template <class P>
void PanelJob(const TileArgs& t) {
  for (int n = 0; n < t.rx; n += kPanelMaxJobRows) {
    TileArgs part = t;
    part.x = t.x + n * t.x_row_bytes;
    part.y = t.y + n * t.y_row_stride;
    part.rx = t.rx - n < kPanelMaxJobRows ? t.rx - n : kPanelMaxJobRows;
    PanelJobPart<P>(part);
  }
}

// Software prefetch of the weight rows. A tile reads RW rows in lock step;
// near the end of a row the stream continues into the row RW below, which
// the next tile reads: a thread's rows are one contiguous region, and its RW
// interleaved streams are each too short for the hardware prefetcher to
// train on (a 2048-wide Q4_0 row is 18 cache lines).
inline constexpr int64_t kPrefetchDistance = 1024;

struct RowPrefetcher {
  int64_t row_payload;  // bytes of one row that the tile reads
  int64_t next_tile;    // from the end of a row to the same row of the next tile

  RowPrefetcher(const TileArgs& t, int rw, int64_t unit_bytes)
      : row_payload(t.k_units * unit_bytes),
        next_tile(rw * t.w_row_bytes - t.k_units * unit_bytes) {}

  // Prefetches what this row stream reads kPrefetchDistance bytes after
  // [p, p + kBytes), p being `offset` bytes into its row.
  template <int kBytes>
  void Ahead(const uint8_t* p, int64_t offset) const {
    const int64_t skip = offset + kPrefetchDistance < row_payload ? 0 : next_tile;
    const char* q = reinterpret_cast<const char*>(p + kPrefetchDistance + skip);
    for (int o = 0; o < kBytes; o += 64) _mm_prefetch(q + o, _MM_HINT_T0);
  }
};

// A kernel class K has `template <int RW, int RX> static void Run(const
// TileArgs&)` and kMaxRw, kMaxRx; Dispatch<K> picks the instantiation for the
// tile's actual size, so edge tiles are unrolled too.
template <class K, int... I>
constexpr std::array<TileFn, sizeof...(I)> MakeTileTable(std::integer_sequence<int, I...>) {
  return {{&K::template Run<I / K::kMaxRx + 1, I % K::kMaxRx + 1>...}};
}

template <class K>
void Dispatch(const TileArgs& t) {
  static constexpr std::array<TileFn, K::kMaxRw* K::kMaxRx> kTable =
      MakeTileTable<K>(std::make_integer_sequence<int, K::kMaxRw * K::kMaxRx>{});
  kTable[(t.rw - 1) * K::kMaxRx + (t.rx - 1)](t);
}

template <class K>
TileKernel MakeTileKernel(int decode_rw) {
  TileKernel k;
  k.fn = Dispatch<K>;
  k.max_rw = K::kMaxRw;
  k.max_rx = K::kMaxRx;
  k.decode_rw = decode_rw;
  return k;
}

}  // namespace hearth::cpu::avx2

#endif  // HEARTH_BACKENDS_CPU_QUANT_AVX2_H_
