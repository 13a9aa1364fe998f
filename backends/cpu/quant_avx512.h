// quant_avx512.h — small AVX-512 helpers shared by the *_avx512.cc kernel
// files: register joins, the weight-row prefetcher and the table that maps a
// tile's (rw, rx) to a fully unrolled instantiation. Include only from files
// compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni (and AVX2, FMA,
// F16C). Kept apart from quant_avx2.h on purpose: an inline helper compiled
// here with AVX-512 enabled must never be merged with the AVX2 files' copy.
#ifndef HEARTH_BACKENDS_CPU_QUANT_AVX512_H_
#define HEARTH_BACKENDS_CPU_QUANT_AVX512_H_

#include <immintrin.h>

#include <cstdint>

#include "backends/cpu/quant_dispatch.h"

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() (`__m512i __Y =
// __Y;`), which -W(maybe-)uninitialized reports at every use (GCC bug 105593,
// fixed in 12.3 and 13). Applies to the including file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace hearth::cpu::avx512 {

inline __m256i Load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m128i Load128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
inline __m512i Load512(const void* p) { return _mm512_loadu_si512(p); }

// lo in bytes 0-31, hi in bytes 32-63.
inline __m512i Join(__m256i lo, __m256i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// Software prefetch of the weight rows, as on AVX2 (quant_avx2.h): a tile's
// RW row streams are too short for the hardware prefetcher, so each is
// fetched kPrefetchDistance bytes ahead, continuing into the same row of the
// next tile near a row's end.
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
template <class K, int I = 0>
constexpr void FillTileTable(TileFn* table) {
  if constexpr (I < K::kMaxRw * K::kMaxRx) {
    table[I] = &K::template Run<I / K::kMaxRx + 1, I % K::kMaxRx + 1>;
    FillTileTable<K, I + 1>(table);
  }
}

template <class K>
void Dispatch(const TileArgs& t) {
  struct Table {
    TileFn fn[K::kMaxRw * K::kMaxRx];
    constexpr Table() : fn() { FillTileTable<K>(fn); }
  };
  static constexpr Table kTable;
  kTable.fn[(t.rw - 1) * K::kMaxRx + (t.rx - 1)](t);
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

}  // namespace hearth::cpu::avx512

#endif  // HEARTH_BACKENDS_CPU_QUANT_AVX512_H_
