// kernels_matmul_scalar.cc — the portable matrix product kernels, used on a
// CPU without AVX2. They quantize x exactly as the AVX2 path does (same
// scratch bytes) and compute the same integer dot products, so both paths
// differ only in the order of float additions.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "backends/cpu/kernels.h"
#include "backends/cpu/quant_blocks.h"
#include "backends/cpu/quant_dispatch.h"
#include "hearth/hearth_plugin.h"

namespace hearth::cpu {
namespace {

// round(v) to nearest even, saturated to int8; NaN gives -128 like cvtps2dq
// followed by saturating packs.
int8_t RoundToI8(float v) {
  if (!(v == v)) return -128;
  const float r = std::nearbyint(v);
  if (r >= 127.0f) return 127;
  if (r <= -128.0f) return -128;
  return static_cast<int8_t>(r);
}

void QuantizeBlock32(const float* x, XBlock32* out) {
  float amax = 0.0f;
  bool has_nan = false;
  for (int i = 0; i < 32; ++i) {
    has_nan |= std::isnan(x[i]);
    amax = std::fmax(amax, std::fabs(x[i]));
  }
  float d, id;
  XBlockScale(amax, has_nan, &d, &id);
  int sum = 0;
  for (int i = 0; i < 32; ++i) {
    out->q[i] = RoundToI8(x[i] * id);
    sum += out->q[i];
  }
  out->d = d;
  out->dsum = d * static_cast<float>(sum);
}

void QuantizeBlock256(const float* x, XBlock256* out) {
  float amax = 0.0f;
  bool has_nan = false;
  for (int i = 0; i < 256; ++i) {
    has_nan |= std::isnan(x[i]);
    amax = std::fmax(amax, std::fabs(x[i]));
  }
  float d, id;
  XBlockScale(amax, has_nan, &d, &id);
  for (int g = 0; g < 16; ++g) {
    int sum = 0;
    for (int i = 16 * g; i < 16 * g + 16; ++i) {
      out->q[i] = RoundToI8(x[i] * id);
      sum += out->q[i];
    }
    out->bsums[g] = static_cast<int16_t>(sum);
  }
  out->d = d;
}

// Dot products of one row of w with one row of quantized x, per format.
float DotQ8_0(const uint8_t* w, const XBlock32* x, int64_t nb) {
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; ++b, w += kQ8_0Bytes, ++x) {
    int isum = 0;
    for (int j = 0; j < 32; ++j) isum += static_cast<int8_t>(w[2 + j]) * x->q[j];
    acc += HalfToFloat(LoadU16(w)) * x->d * static_cast<float>(isum);
  }
  return acc;
}

// Q4_0 and Q5_0: sum(d_w (q - offset) d_x qx) = d_w d_x sum(q qx) - offset d_w dsum_x.
float DotQ4_0(const uint8_t* w, const XBlock32* x, int64_t nb) {
  float acc = 0.0f, off = 0.0f;
  for (int64_t b = 0; b < nb; ++b, w += kQ4_0Bytes, ++x) {
    int isum = 0;
    for (int j = 0; j < 16; ++j) {
      isum += (w[2 + j] & 0x0f) * x->q[j] + (w[2 + j] >> 4) * x->q[j + 16];
    }
    const float dw = HalfToFloat(LoadU16(w));
    acc += dw * x->d * static_cast<float>(isum);
    off += dw * x->dsum;
  }
  return acc - 8.0f * off;
}

float DotQ5_0(const uint8_t* w, const XBlock32* x, int64_t nb) {
  float acc = 0.0f, off = 0.0f;
  for (int64_t b = 0; b < nb; ++b, w += kQ5_0Bytes, ++x) {
    const uint32_t qh = LoadU32(w + 2);
    int isum = 0;
    for (int j = 0; j < 16; ++j) {
      const int lo = (w[6 + j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (w[6 + j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      isum += lo * x->q[j] + hi * x->q[j + 16];
    }
    const float dw = HalfToFloat(LoadU16(w));
    acc += dw * x->d * static_cast<float>(isum);
    off += dw * x->dsum;
  }
  return acc - 16.0f * off;
}

// Q4_1: sum((d_w q + m) d_x qx) = d_w d_x sum(q qx) + m dsum_x.
float DotQ4_1(const uint8_t* w, const XBlock32* x, int64_t nb) {
  float acc = 0.0f, mins = 0.0f;
  for (int64_t b = 0; b < nb; ++b, w += kQ4_1Bytes, ++x) {
    int isum = 0;
    for (int j = 0; j < 16; ++j) {
      isum += (w[4 + j] & 0x0f) * x->q[j] + (w[4 + j] >> 4) * x->q[j + 16];
    }
    acc += HalfToFloat(LoadU16(w)) * x->d * static_cast<float>(isum);
    mins += HalfToFloat(LoadU16(w + 2)) * x->dsum;
  }
  return acc + mins;
}

float DotQ4_K(const uint8_t* w, const XBlock256* x, int64_t nb) {
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; ++b, w += kQ4_KBytes, ++x) {
    uint8_t sc[8], m[8];
    UnpackQ4KScales(w + kQ4_KScales, sc, m);
    const uint8_t* qs = w + kQ4_KQs;
    int isum = 0, msum = 0;
    for (int s = 0; s < 8; ++s) {
      const int shift = (s & 1) * 4;
      int sub = 0;
      for (int l = 0; l < 32; ++l)
        sub += ((qs[32 * (s / 2) + l] >> shift) & 0x0f) * x->q[32 * s + l];
      isum += sc[s] * sub;
      msum += m[s] * (x->bsums[2 * s] + x->bsums[2 * s + 1]);
    }
    const float d = HalfToFloat(LoadU16(w)), dmin = HalfToFloat(LoadU16(w + 2));
    acc += d * x->d * static_cast<float>(isum) - dmin * x->d * static_cast<float>(msum);
  }
  return acc;
}

float DotQ6_K(const uint8_t* w, const XBlock256* x, int64_t nb) {
  float acc = 0.0f;
  for (int64_t b = 0; b < nb; ++b, w += kQ6_KBytes, ++x) {
    const int8_t* scales = reinterpret_cast<const int8_t*>(w + kQ6_KScales);
    int isum = 0;
    for (int g = 0; g < 16; ++g) {
      int sub = 0;
      for (int i = 16 * g; i < 16 * g + 16; ++i) {
        const int h = i / 128, t = (i % 128) / 32, l = i % 32;
        const uint8_t lq = w[64 * h + l + 32 * (t & 1)];
        const int lo = t < 2 ? (lq & 0x0f) : (lq >> 4);
        const int hi = (w[kQ6_KQh + 32 * h + l] >> (2 * t)) & 3;
        sub += (lo | (hi << 4)) * x->q[i];
      }
      isum += scales[g] * (sub - 32 * x->bsums[g]);
    }
    acc += HalfToFloat(LoadU16(w + kQ6_KD)) * x->d * static_cast<float>(isum);
  }
  return acc;
}

float DotF32(const uint8_t* w, const float* x, int64_t k) {
  float acc = 0.0f;
  for (int64_t i = 0; i < k; ++i) {
    float v;
    std::memcpy(&v, w + 4 * i, 4);
    acc += v * x[i];
  }
  return acc;
}

float DotF16(const uint8_t* w, const float* x, int64_t k) {
  float acc = 0.0f;
  for (int64_t i = 0; i < k; ++i) acc += HalfToFloat(LoadU16(w + 2 * i)) * x[i];
  return acc;
}

float DotBF16(const uint8_t* w, const float* x, int64_t k) {
  float acc = 0.0f;
  for (int64_t i = 0; i < k; ++i) acc += BF16ToFloat(LoadU16(w + 2 * i)) * x[i];
  return acc;
}

template <typename XT, float (*Dot)(const uint8_t*, const XT*, int64_t)>
void Tile(const TileArgs& t) {
  for (int j = 0; j < t.rx; ++j) {
    const XT* x = reinterpret_cast<const XT*>(t.x + j * t.x_row_bytes);
    for (int i = 0; i < t.rw; ++i) {
      t.y[j * t.y_row_stride + i] = Dot(t.w + i * t.w_row_bytes, x, t.k_units);
    }
  }
}

}  // namespace

void ScalarQuantizeX(XFormat fmt, const float* x, int64_t b0, int64_t b1, uint8_t* dst) {
  for (int64_t b = b0; b < b1; ++b) {
    if (fmt == XFormat::kQ8Block32) {
      QuantizeBlock32(x + 32 * b, reinterpret_cast<XBlock32*>(dst) + b);
    } else if (fmt == XFormat::kQ8Block256) {
      QuantizeBlock256(x + 256 * b, reinterpret_cast<XBlock256*>(dst) + b);
    }
  }
}

// The loops every x8 tile shares: t.rw rows from the groups of 8 at t.w
// against t.rx rows of x (blocks XB), any sizes; add(blk, r, xb, acc) adds
// row r's term of one block of kBlockBytes (8 rows) to acc.
template <class XB, int64_t kBlockBytes, class Add>
void X8TileLoops(const TileArgs& t, Add add) {
  for (int m0 = 0; m0 < t.rw; m0 += kX8Rows) {
    const uint8_t* g = t.w + m0 * t.w_row_bytes;
    const int rows = t.rw - m0 < kX8Rows ? t.rw - m0 : kX8Rows;
    for (int j = 0; j < t.rx; ++j) {
      const XB* x = reinterpret_cast<const XB*>(t.x + j * t.x_row_bytes);
      float acc[kX8Rows] = {};
      for (int64_t b = 0; b < t.k_units; ++b) {
        for (int r = 0; r < rows; ++r) add(g + b * kBlockBytes, r, x[b], acc[r]);
      }
      for (int r = 0; r < rows; ++r) t.y[j * t.y_row_stride + m0 + r] = acc[r];
    }
  }
}

// Q4_0 / Q8_0 in their x8 layout (kernels.h). Each output is summed block
// by block as the AVX2 kernels do: (d_x * isum - offset * dsum_x) * d_w.
template <uint32_t kDtype>
void TileX8(const TileArgs& t) {
  constexpr bool kQ4 = kDtype == HEARTH_DTYPE_Q4_0;
  constexpr int64_t kBlockBytes = kX8Rows * (kQ4 ? kQ4_0Bytes : kQ8_0Bytes);
  X8TileLoops<XBlock32, kBlockBytes>(
      t, [](const uint8_t* blk, int r, const XBlock32& xb, float& acc) {
        int isum = 0;
        for (int c = 0; c < (kQ4 ? 4 : 8); ++c) {
          for (int e = 0; e < 4; ++e) {
            const uint8_t q = blk[2 * kX8Rows + 32 * c + 4 * r + e];
            if constexpr (kQ4) {
              isum += (q & 0x0f) * xb.q[4 * c + e] + (q >> 4) * xb.q[16 + 4 * c + e];
            } else {
              isum += static_cast<int8_t>(q) * xb.q[4 * c + e];
            }
          }
        }
        const float dw = HalfToFloat(LoadU16(blk + 2 * r));
        const float v = kQ4 ? xb.d * static_cast<float>(isum) - 8.0f * xb.dsum
                            : xb.d * static_cast<float>(isum);
        acc += v * dw;
      });
}

// Q4_K in its x8 layout: per super-block the row's integer sums scaled by
// the sub-block scales, and the minimums against x's 16-element sums, then
// d_w * d_x and dmin_w * d_x in float.
void TileQ4_Kx8(const TileArgs& t) {
  X8TileLoops<XBlock256, kQ4_Kx8Bytes>(
      t, [](const uint8_t* blk, int r, const XBlock256& xb, float& acc) {
        int32_t isum = 0, msum = 0;
        for (int sb = 0; sb < 8; ++sb) {
          const int p = sb / 2, shift = 4 * (sb % 2);
          int32_t s = 0;
          for (int c = 0; c < 8; ++c) {
            for (int e = 0; e < 4; ++e) {
              const int q = (blk[kQ4_Kx8Qs + 256 * p + 32 * c + 4 * r + e] >> shift) & 0x0f;
              s += q * xb.q[32 * sb + 4 * c + e];
            }
          }
          isum += blk[kQ4_Kx8Sc + 8 * sb + r] * s;
          msum += blk[kQ4_Kx8M + 8 * sb + r] * (xb.bsums[2 * sb] + xb.bsums[2 * sb + 1]);
        }
        const float d = HalfToFloat(LoadU16(blk + 2 * r));
        const float dmin = HalfToFloat(LoadU16(blk + kQ4_Kx8Dmin + 2 * r));
        acc += static_cast<float>(isum) * (d * xb.d);
        acc -= static_cast<float>(msum) * (dmin * xb.d);
      });
}

// Q6_K in its x8 layout: per super-block the row's 16-element sums scaled
// by its scales, less 32 times the scales against x's 16-element sums,
// then d_w * d_x in float.
void TileQ6_Kx8(const TileArgs& t) {
  X8TileLoops<XBlock256, kQ6_Kx8Bytes>(
      t, [](const uint8_t* blk, int r, const XBlock256& xb, float& acc) {
        int32_t total = 0, off = 0;
        for (int c = 0; c < 8; ++c) {  // 32 elements: chunk tq of half h
          const int h = c / 4, tq = c % 4;
          for (int gr = 0; gr < 8; ++gr) {
            const int k = 2 * c + gr / 4;
            int32_t s = 0;
            for (int e = 0; e < 4; ++e) {
              const uint8_t l = blk[kQ6_Kx8Ql + 256 * (2 * h + tq % 2) + 32 * gr + 4 * r + e];
              const uint8_t hb = blk[kQ6_Kx8Qh + 256 * h + 32 * gr + 4 * r + e];
              const int q = (tq < 2 ? l & 0x0f : l >> 4) | (((hb >> (2 * tq)) & 3) << 4);
              s += q * xb.q[32 * c + 4 * gr + e];
            }
            total += static_cast<int8_t>(blk[kQ6_Kx8Sc + 8 * k + r]) * s;
          }
        }
        for (int k = 0; k < 16; ++k) {
          off += static_cast<int8_t>(blk[kQ6_Kx8Sc + 8 * k + r]) * xb.bsums[k];
        }
        const float d = HalfToFloat(LoadU16(blk + 2 * r));
        acc += static_cast<float>(total - 32 * off) * (d * xb.d);
      });
}

TileKernel ScalarTileKernel(uint32_t w_dtype) {
  TileKernel k;
  k.max_rw = 4;
  k.max_rx = 4;
  k.decode_rw = 4;
  switch (w_dtype) {
    case HEARTH_DTYPE_F32:
      k.fn = Tile<float, DotF32>;
      break;
    case HEARTH_DTYPE_F16:
      k.fn = Tile<float, DotF16>;
      break;
    case HEARTH_DTYPE_BF16:
      k.fn = Tile<float, DotBF16>;
      break;
    case HEARTH_DTYPE_Q8_0:
      k.fn = Tile<XBlock32, DotQ8_0>;
      k.x8_decode_fn = TileX8<HEARTH_DTYPE_Q8_0>;
      k.x8_job_fn = TileX8<HEARTH_DTYPE_Q8_0>;
      break;
    case HEARTH_DTYPE_Q4_0:
      k.fn = Tile<XBlock32, DotQ4_0>;
      k.x8_decode_fn = TileX8<HEARTH_DTYPE_Q4_0>;
      k.x8_job_fn = TileX8<HEARTH_DTYPE_Q4_0>;
      break;
    case HEARTH_DTYPE_Q5_0:
      k.fn = Tile<XBlock32, DotQ5_0>;
      break;
    case HEARTH_DTYPE_Q4_1:
      k.fn = Tile<XBlock32, DotQ4_1>;
      break;
    case HEARTH_DTYPE_Q4_K:
      k.fn = Tile<XBlock256, DotQ4_K>;
      k.x8_decode_fn = TileQ4_Kx8;
      k.x8_job_fn = TileQ4_Kx8;
      break;
    case HEARTH_DTYPE_Q6_K:
      k.fn = Tile<XBlock256, DotQ6_K>;
      k.x8_decode_fn = TileQ6_Kx8;
      k.x8_job_fn = TileQ6_Kx8;
      break;
    default:
      break;
  }
  return k;
}

}  // namespace hearth::cpu
