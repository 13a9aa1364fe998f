// kernels_repack.cc — the repacked weight layouts of kernels.h
// (WeightLayout): which weights weight_place repacks, the repacking itself,
// and single rows read back out of a repacked weight (GET_ROWS, the
// dequantized slabs of the float and BF16 products, MUL_MAT_T, the
// reference). The products that read the layouts natively are the x8 tile
// functions of quant_dispatch.h.
#include <cstdint>
#include <cstring>

#include "backends/cpu/kernels.h"
#include "backends/cpu/quant_blocks.h"
#include "hearth/hearth_plugin.h"

namespace hearth::cpu {
namespace {

// Plain blocks rebuilt at a time by WeightRow (a small stack buffer).
constexpr int64_t kRowChunkBlocks = 64;
constexpr int64_t kMaxBlockBytes = kQ8_0Bytes;

// Bytes of one plain block of an x8 layout's dtype (0 for none); its quant
// bytes (after the f16 scale) come in (bytes - 2) / 4 groups of 4.
int64_t PlainBlockBytes(WeightLayout layout) {
  switch (layout) {
    case WeightLayout::kQ4_0x8:
      return kQ4_0Bytes;
    case WeightLayout::kQ8_0x8:
      return kQ8_0Bytes;
    case WeightLayout::kPlain:
      break;
  }
  return 0;
}

// Block b of row r of the group of rows starting at g, as a plain block.
void PlainBlockOfX8(WeightLayout layout, const uint8_t* g, int64_t r, int64_t b, uint8_t* out) {
  const int64_t bb = PlainBlockBytes(layout);
  const uint8_t* src = g + b * kX8Rows * bb;
  std::memcpy(out, src + 2 * r, 2);
  for (int64_t c = 0; c < (bb - 2) / 4; ++c) {
    std::memcpy(out + 2 + 4 * c, src + 2 * kX8Rows + 32 * c + 4 * r, 4);
  }
}

// Whether a row of `row_bytes` plain bytes holds `n` elements (whole blocks)
// of `dtype` in the x8 `layout`.
bool RowFits(uint32_t dtype, WeightLayout layout, int64_t row_bytes, int64_t n) {
  return dtype != 0 && X8Dtype(layout) == dtype && n >= 0 && n % 32 == 0 &&
         n / 32 * PlainBlockBytes(layout) <= row_bytes;
}

}  // namespace

uint32_t X8Dtype(WeightLayout layout) {
  switch (layout) {
    case WeightLayout::kQ4_0x8:
      return HEARTH_DTYPE_Q4_0;
    case WeightLayout::kQ8_0x8:
      return HEARTH_DTYPE_Q8_0;
    case WeightLayout::kPlain:
      break;
  }
  return 0;
}

WeightLayout RepackLayoutFor(uint32_t dtype, int64_t ne0, int64_t rows, int64_t row_bytes) {
  const WeightLayout layout = dtype == HEARTH_DTYPE_Q4_0   ? WeightLayout::kQ4_0x8
                              : dtype == HEARTH_DTYPE_Q8_0 ? WeightLayout::kQ8_0x8
                                                           : WeightLayout::kPlain;
  if (layout == WeightLayout::kPlain || ne0 <= 0 || ne0 % 32 != 0 || rows <= 0 ||
      rows % kX8Rows != 0 || row_bytes != ne0 / 32 * PlainBlockBytes(layout)) {
    return WeightLayout::kPlain;
  }
  return layout;
}

void RepackWeight(WeightLayout layout, uint32_t dtype, const uint8_t* src, int64_t row_bytes,
                  int64_t rows, uint8_t* dst) {
  const int64_t bb = PlainBlockBytes(layout);
  if (bb == 0 || row_bytes % bb != 0 ||
      RepackLayoutFor(dtype, row_bytes / bb * 32, rows, row_bytes) != layout) {
    return;
  }
  const int64_t nb = row_bytes / bb;
  const int64_t group_bytes = kX8Rows * row_bytes;
  for (int64_t g = 0; g < rows / kX8Rows; ++g) {
    const uint8_t* s = src + g * group_bytes;
    uint8_t* d = dst + g * group_bytes;
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* out = d + b * kX8Rows * bb;
      for (int r = 0; r < kX8Rows; ++r) {
        const uint8_t* blk = s + r * row_bytes + b * bb;
        std::memcpy(out + 2 * r, blk, 2);
        for (int64_t c = 0; c < (bb - 2) / 4; ++c) {
          std::memcpy(out + 2 * kX8Rows + 32 * c + 4 * r, blk + 2 + 4 * c, 4);
        }
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
  const uint8_t* g = w + m / kX8Rows * kX8Rows * row_bytes;
  uint8_t blk[kMaxBlockBytes];
  for (int64_t b = 0; b < n / 32; ++b) {
    PlainBlockOfX8(layout, g, m % kX8Rows, b, blk);
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
  const int64_t bb = PlainBlockBytes(layout);
  const uint8_t* g = w + m / kX8Rows * kX8Rows * row_bytes;
  uint8_t plain[kRowChunkBlocks * kMaxBlockBytes];
  for (int64_t b0 = 0; b0 < n / 32; b0 += kRowChunkBlocks) {
    const int64_t nb = n / 32 - b0 < kRowChunkBlocks ? n / 32 - b0 : kRowChunkBlocks;
    for (int64_t b = 0; b < nb; ++b) PlainBlockOfX8(layout, g, m % kX8Rows, b0 + b, plain + b * bb);
    DequantizeRow(dtype, plain, dst + 32 * b0, 32 * nb);
  }
}

}  // namespace hearth::cpu
