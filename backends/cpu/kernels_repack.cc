// kernels_repack.cc — the repacked weight layouts of kernels.h
// (WeightLayout): which weights weight_place repacks, the repacking itself,
// and single rows read back out of a repacked weight (GET_ROWS, the
// dequantized slabs of the float and BF16 products, MUL_MAT_T, the
// reference). The products that read the layout natively are the x8 tile
// functions of quant_dispatch.h.
#include <cstdint>
#include <cstring>

#include "backends/cpu/kernels.h"
#include "backends/cpu/quant_blocks.h"
#include "hearth/hearth_plugin.h"

namespace hearth::cpu {
namespace {

constexpr int64_t kX8BlockBytes = kQ4_0x8Rows * kQ4_0Bytes;  // one block of 8 rows
// Plain blocks rebuilt at a time by WeightRow (a small stack buffer).
constexpr int64_t kRowChunkBlocks = 64;

// Block b of row r of the group of rows starting at g, as a plain Q4_0 block.
void PlainBlockOfX8(const uint8_t* g, int64_t r, int64_t b, uint8_t* out) {
  const uint8_t* src = g + b * kX8BlockBytes;
  std::memcpy(out, src + 2 * r, 2);
  for (int c = 0; c < 4; ++c) std::memcpy(out + 2 + 4 * c, src + 16 + 32 * c + 4 * r, 4);
}

// Whether a row of `row_bytes` plain bytes holds `n` elements (whole blocks)
// of a repackable dtype in `layout`.
bool RowFits(uint32_t dtype, WeightLayout layout, int64_t row_bytes, int64_t n) {
  return layout == WeightLayout::kQ4_0x8 && dtype == HEARTH_DTYPE_Q4_0 && n >= 0 && n % 32 == 0 &&
         n / 32 * kQ4_0Bytes <= row_bytes;
}

}  // namespace

WeightLayout RepackLayoutFor(uint32_t dtype, int64_t ne0, int64_t rows, int64_t row_bytes) {
  if (dtype != HEARTH_DTYPE_Q4_0 || ne0 <= 0 || ne0 % 32 != 0 || rows <= 0 ||
      rows % kQ4_0x8Rows != 0 || row_bytes != ne0 / 32 * kQ4_0Bytes) {
    return WeightLayout::kPlain;
  }
  return WeightLayout::kQ4_0x8;
}

void RepackWeight(WeightLayout layout, uint32_t dtype, const uint8_t* src, int64_t row_bytes,
                  int64_t rows, uint8_t* dst) {
  if (layout != WeightLayout::kQ4_0x8 || row_bytes % kQ4_0Bytes != 0 ||
      RepackLayoutFor(dtype, row_bytes / kQ4_0Bytes * 32, rows, row_bytes) != layout) {
    return;
  }
  const int64_t nb = row_bytes / kQ4_0Bytes;
  const int64_t group_bytes = kQ4_0x8Rows * row_bytes;
  for (int64_t g = 0; g < rows / kQ4_0x8Rows; ++g) {
    const uint8_t* s = src + g * group_bytes;
    uint8_t* d = dst + g * group_bytes;
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* out = d + b * kX8BlockBytes;
      for (int r = 0; r < kQ4_0x8Rows; ++r) {
        const uint8_t* blk = s + r * row_bytes + b * kQ4_0Bytes;
        std::memcpy(out + 2 * r, blk, 2);
        for (int c = 0; c < 4; ++c) std::memcpy(out + 16 + 32 * c + 4 * r, blk + 2 + 4 * c, 4);
      }
    }
  }
}

void WeightRowRef(uint32_t dtype, WeightLayout layout, const uint8_t* w, int64_t row_bytes,
                  int64_t m, float* dst, int64_t n) {
  if (layout == WeightLayout::kPlain) {
    DequantizeRowRef(dtype, w + m * row_bytes, dst, n);
    return;
  }
  if (!RowFits(dtype, layout, row_bytes, n) || m < 0) return;
  const uint8_t* g = w + m / kQ4_0x8Rows * kQ4_0x8Rows * row_bytes;
  uint8_t blk[kQ4_0Bytes];
  for (int64_t b = 0; b < n / 32; ++b) {
    PlainBlockOfX8(g, m % kQ4_0x8Rows, b, blk);
    DequantizeRowRef(dtype, blk, dst + 32 * b, 32);
  }
}

void WeightRow(uint32_t dtype, WeightLayout layout, const uint8_t* w, int64_t row_bytes, int64_t m,
               float* dst, int64_t n) {
  if (layout == WeightLayout::kPlain) {
    DequantizeRow(dtype, w + m * row_bytes, dst, n);
    return;
  }
  if (!RowFits(dtype, layout, row_bytes, n) || m < 0) return;
  const uint8_t* g = w + m / kQ4_0x8Rows * kQ4_0x8Rows * row_bytes;
  uint8_t plain[kRowChunkBlocks * kQ4_0Bytes];
  for (int64_t b0 = 0; b0 < n / 32; b0 += kRowChunkBlocks) {
    const int64_t nb = n / 32 - b0 < kRowChunkBlocks ? n / 32 - b0 : kRowChunkBlocks;
    for (int64_t b = 0; b < nb; ++b) {
      PlainBlockOfX8(g, m % kQ4_0x8Rows, b0 + b, plain + b * kQ4_0Bytes);
    }
    DequantizeRow(dtype, plain, dst + 32 * b0, 32 * nb);
  }
}

}  // namespace hearth::cpu
