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
constexpr int64_t kRowChunkBlocks = 16;
constexpr int64_t kMaxBlockBytes = kQ6_KBytes;

static_assert(kQ6_Kx8Bytes == kX8Rows * kQ6_KBytes, "kQ6_Kx8 keeps Q6_K's size");

// Elements and plain bytes of one block of an x8 layout's dtype, and the
// bytes of one block of 8 rows in the layout (0 for kPlain).
struct X8Geometry {
  int64_t elems = 0, plain_bytes = 0, x8_bytes = 0;
};

X8Geometry GeometryOf(WeightLayout layout) {
  switch (layout) {
    case WeightLayout::kQ4_0x8:
      return {32, kQ4_0Bytes, kX8Rows * kQ4_0Bytes};
    case WeightLayout::kQ8_0x8:
      return {32, kQ8_0Bytes, kX8Rows * kQ8_0Bytes};
    case WeightLayout::kQ4_Kx8:
      return {256, kQ4_KBytes, kQ4_Kx8Bytes};
    case WeightLayout::kQ6_Kx8:
      return {256, kQ6_KBytes, kQ6_Kx8Bytes};
    case WeightLayout::kPlain:
      break;
  }
  return {};
}

// The 12 packed bytes of 8 6-bit scales and 8 6-bit minimums (the inverse
// of UnpackQ4KScales).
void PackQ4KScales(const uint8_t sc[8], const uint8_t m[8], uint8_t s12[12]) {
  for (int i = 0; i < 4; ++i) {
    s12[i] = static_cast<uint8_t>(sc[i] | ((sc[4 + i] & 0x30) << 2));
    s12[4 + i] = static_cast<uint8_t>(m[i] | ((m[4 + i] & 0x30) << 2));
    s12[8 + i] = static_cast<uint8_t>((sc[4 + i] & 0x0f) | ((m[4 + i] & 0x0f) << 4));
  }
}

// Block b of row r of the group of rows starting at g, as a plain block.
void PlainBlockOfX8(WeightLayout layout, const uint8_t* g, int64_t r, int64_t b, uint8_t* out) {
  const X8Geometry geo = GeometryOf(layout);
  const uint8_t* src = g + b * geo.x8_bytes;
  if (layout == WeightLayout::kQ4_Kx8) {
    std::memcpy(out, src + 2 * r, 2);
    std::memcpy(out + 2, src + kQ4_Kx8Dmin + 2 * r, 2);
    uint8_t sc[8], m[8];
    for (int s = 0; s < 8; ++s) {
      sc[s] = src[kQ4_Kx8Sc + 8 * s + r];
      m[s] = src[kQ4_Kx8M + 8 * s + r];
    }
    PackQ4KScales(sc, m, out + kQ4_KScales);
    for (int p = 0; p < 4; ++p) {
      for (int c = 0; c < 8; ++c) {
        std::memcpy(out + kQ4_KQs + 32 * p + 4 * c, src + kQ4_Kx8Qs + 256 * p + 32 * c + 4 * r, 4);
      }
    }
    return;
  }
  if (layout == WeightLayout::kQ6_Kx8) {
    std::memcpy(out + kQ6_KD, src + 2 * r, 2);
    for (int k = 0; k < 16; ++k) out[kQ6_KScales + k] = src[kQ6_Kx8Sc + 8 * k + r];
    for (int u = 0; u < 4; ++u) {
      for (int c = 0; c < 8; ++c) {
        std::memcpy(out + 32 * u + 4 * c, src + kQ6_Kx8Ql + 256 * u + 32 * c + 4 * r, 4);
      }
    }
    for (int h = 0; h < 2; ++h) {
      for (int c = 0; c < 8; ++c) {
        std::memcpy(out + kQ6_KQh + 32 * h + 4 * c, src + kQ6_Kx8Qh + 256 * h + 32 * c + 4 * r, 4);
      }
    }
    return;
  }
  std::memcpy(out, src + 2 * r, 2);
  for (int64_t c = 0; c < (geo.plain_bytes - 2) / 4; ++c) {
    std::memcpy(out + 2 + 4 * c, src + 2 * kX8Rows + 32 * c + 4 * r, 4);
  }
}

// Block b of the 8 plain rows at s (row_bytes apart) into the x8 block at out.
void X8BlockOfPlain(WeightLayout layout, const uint8_t* s, int64_t row_bytes, int64_t b,
                    uint8_t* out) {
  const X8Geometry geo = GeometryOf(layout);
  for (int r = 0; r < kX8Rows; ++r) {
    const uint8_t* blk = s + r * row_bytes + b * geo.plain_bytes;
    if (layout == WeightLayout::kQ6_Kx8) {
      std::memcpy(out + 2 * r, blk + kQ6_KD, 2);
      for (int k = 0; k < 16; ++k) out[kQ6_Kx8Sc + 8 * k + r] = blk[kQ6_KScales + k];
      for (int u = 0; u < 4; ++u) {
        for (int c = 0; c < 8; ++c) {
          std::memcpy(out + kQ6_Kx8Ql + 256 * u + 32 * c + 4 * r, blk + 32 * u + 4 * c, 4);
        }
      }
      for (int h = 0; h < 2; ++h) {
        for (int c = 0; c < 8; ++c) {
          std::memcpy(out + kQ6_Kx8Qh + 256 * h + 32 * c + 4 * r, blk + kQ6_KQh + 32 * h + 4 * c,
                      4);
        }
      }
      continue;
    }
    std::memcpy(out + 2 * r, blk, 2);
    if (layout == WeightLayout::kQ4_Kx8) {
      std::memcpy(out + kQ4_Kx8Dmin + 2 * r, blk + 2, 2);
      uint8_t sc[8], m[8];
      UnpackQ4KScales(blk + kQ4_KScales, sc, m);
      for (int sb = 0; sb < 8; ++sb) {
        out[kQ4_Kx8Sc + 8 * sb + r] = sc[sb];
        out[kQ4_Kx8M + 8 * sb + r] = m[sb];
      }
      for (int p = 0; p < 4; ++p) {
        for (int c = 0; c < 8; ++c) {
          std::memcpy(out + kQ4_Kx8Qs + 256 * p + 32 * c + 4 * r, blk + kQ4_KQs + 32 * p + 4 * c,
                      4);
        }
      }
      continue;
    }
    for (int64_t c = 0; c < (geo.plain_bytes - 2) / 4; ++c) {
      std::memcpy(out + 2 * kX8Rows + 32 * c + 4 * r, blk + 2 + 4 * c, 4);
    }
  }
}

// Whether rows of `row_bytes` in `layout` hold `n` elements (whole blocks)
// of `dtype`.
bool RowFits(uint32_t dtype, WeightLayout layout, int64_t row_bytes, int64_t n) {
  const X8Geometry geo = GeometryOf(layout);
  return dtype != 0 && X8Dtype(layout) == dtype && n >= 0 && n % geo.elems == 0 &&
         n / geo.elems * (geo.x8_bytes / kX8Rows) <= row_bytes;
}

}  // namespace

uint32_t X8Dtype(WeightLayout layout) {
  switch (layout) {
    case WeightLayout::kQ4_0x8:
      return HEARTH_DTYPE_Q4_0;
    case WeightLayout::kQ8_0x8:
      return HEARTH_DTYPE_Q8_0;
    case WeightLayout::kQ4_Kx8:
      return HEARTH_DTYPE_Q4_K;
    case WeightLayout::kQ6_Kx8:
      return HEARTH_DTYPE_Q6_K;
    case WeightLayout::kPlain:
      break;
  }
  return 0;
}

int64_t LayoutRowBytes(WeightLayout layout, uint32_t dtype, int64_t ne0) {
  if (layout == WeightLayout::kPlain) {
    const int64_t be = hearth_dtype_block_elems(dtype);
    return be > 0 && ne0 >= 0 && ne0 % be == 0 ? ne0 / be * hearth_dtype_block_bytes(dtype) : 0;
  }
  const X8Geometry geo = GeometryOf(layout);
  if (X8Dtype(layout) != dtype || ne0 < 0 || ne0 % geo.elems != 0) return 0;
  return ne0 / geo.elems * (geo.x8_bytes / kX8Rows);
}

WeightLayout RepackLayoutFor(uint32_t dtype, int64_t ne0, int64_t rows, int64_t row_bytes) {
  const WeightLayout layout = dtype == HEARTH_DTYPE_Q4_0   ? WeightLayout::kQ4_0x8
                              : dtype == HEARTH_DTYPE_Q8_0 ? WeightLayout::kQ8_0x8
                              : dtype == HEARTH_DTYPE_Q4_K ? WeightLayout::kQ4_Kx8
                              : dtype == HEARTH_DTYPE_Q6_K ? WeightLayout::kQ6_Kx8
                                                           : WeightLayout::kPlain;
  if (layout == WeightLayout::kPlain) return layout;
  const X8Geometry geo = GeometryOf(layout);
  if (ne0 <= 0 || ne0 % geo.elems != 0 || rows <= 0 || rows % kX8Rows != 0 ||
      row_bytes != ne0 / geo.elems * geo.plain_bytes) {
    return WeightLayout::kPlain;
  }
  return layout;
}

void RepackWeight(WeightLayout layout, uint32_t dtype, const uint8_t* src, int64_t row_bytes,
                  int64_t rows, uint8_t* dst) {
  const X8Geometry geo = GeometryOf(layout);
  if (geo.plain_bytes == 0 || row_bytes % geo.plain_bytes != 0 ||
      RepackLayoutFor(dtype, row_bytes / geo.plain_bytes * geo.elems, rows, row_bytes) != layout) {
    return;
  }
  const int64_t nb = row_bytes / geo.plain_bytes;
  for (int64_t g = 0; g < rows / kX8Rows; ++g) {
    const uint8_t* s = src + g * kX8Rows * row_bytes;
    uint8_t* d = dst + g * nb * geo.x8_bytes;
    for (int64_t b = 0; b < nb; ++b) X8BlockOfPlain(layout, s, row_bytes, b, d + b * geo.x8_bytes);
  }
}

void WeightRowRef(uint32_t dtype, WeightLayout layout, const uint8_t* w, int64_t row_bytes,
                  int64_t m, float* dst, int64_t n) {
  if (layout == WeightLayout::kPlain) {
    DequantizeRowRef(dtype, w + m * row_bytes, dst, n);
    return;
  }
  if (!RowFits(dtype, layout, row_bytes, n) || m < 0) return;
  const X8Geometry geo = GeometryOf(layout);
  const uint8_t* g = w + m / kX8Rows * kX8Rows * row_bytes;
  uint8_t blk[kMaxBlockBytes];
  for (int64_t b = 0; b < n / geo.elems; ++b) {
    PlainBlockOfX8(layout, g, m % kX8Rows, b, blk);
    DequantizeRowRef(dtype, blk, dst + geo.elems * b, geo.elems);
  }
}

void WeightRow(uint32_t dtype, WeightLayout layout, const uint8_t* w, int64_t row_bytes, int64_t m,
               float* dst, int64_t n) {
  if (layout == WeightLayout::kPlain) {
    DequantizeRow(dtype, w + m * row_bytes, dst, n);
    return;
  }
  if (!RowFits(dtype, layout, row_bytes, n) || m < 0) return;
  const X8Geometry geo = GeometryOf(layout);
  const uint8_t* g = w + m / kX8Rows * kX8Rows * row_bytes;
  uint8_t plain[kRowChunkBlocks * kMaxBlockBytes];
  const int64_t total = n / geo.elems;
  for (int64_t b0 = 0; b0 < total; b0 += kRowChunkBlocks) {
    const int64_t nb = total - b0 < kRowChunkBlocks ? total - b0 : kRowChunkBlocks;
    for (int64_t b = 0; b < nb; ++b) {
      PlainBlockOfX8(layout, g, m % kX8Rows, b0 + b, plain + b * geo.plain_bytes);
    }
    DequantizeRow(dtype, plain, dst + geo.elems * b0, geo.elems * nb);
  }
}

}  // namespace hearth::cpu
