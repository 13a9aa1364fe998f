// block_quantize.cc — the block quantizers (see block_quantize.h). The
// Q4_0/Q5_0 rules are gguf-py's (numpy): scale from the signed value of
// largest magnitude, q = trunc(x / d + offset + 0.5); the K-quant rules are
// llama.cpp's reference search for scales and mins.
#include "sdk/src/quant/block_quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"
#include "sdk/src/format/encode.h"
#include "sdk/src/format/gguf.h"

namespace hearth::quant {
namespace {

constexpr int64_t kQK = 256;  // super-block of the K-quants

float F16BitsToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: mant * 2^-24, exact in float
    float f = std::ldexp(static_cast<float>(mant), -24);
    std::memcpy(&bits, &f, 4);
    bits |= sign;
  }
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

// Round to nearest, ties to even, as llama.cpp's nearest_int (the float
// magic-number trick) does for |x| < 2^22.
int NearestInt(float x) { return static_cast<int>(std::nearbyint(x)); }

void PutF16(float v, uint8_t* out) {
  const uint16_t b = encode::F32ToF16Bits(v);
  out[0] = static_cast<uint8_t>(b & 0xff);
  out[1] = static_cast<uint8_t>(b >> 8);
}
float RoundTripF16(float v) { return F16BitsToF32(encode::F32ToF16Bits(v)); }

// gguf-py's Q4_0/Q5_0 scale: the element of largest magnitude (first on
// ties), signed, divided by -offset.
float SignedAbsMax(const float* x, int n) {
  int imax = 0;
  for (int i = 1; i < n; ++i) {
    if (std::fabs(x[i]) > std::fabs(x[imax])) imax = i;
  }
  return x[imax];
}

// llama.cpp's make_qkx2_quants: scale and min (returned negated in
// *the_min) for `n` values in 0..nmax, searching nstep + 1 scales around
// the min-max one for the least weighted squared error.
float MakeQkx2Quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                     float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.f;
  }
  float iscale = nmax / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = NearestInt(iscale * (x[i] - min));
    L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    const float diff = scale * L[i] + min - x[i];
    best_error += weights[i] * (diff * diff);
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = NearestInt(iscale * (x[i] - min));
      l = std::max(0, std::min(nmax, l));
      Laux[i] = static_cast<uint8_t>(l);
      const float w = weights[i];
      sum_l += w * l;
      sum_l2 += w * l * l;
      sum_xl += w * l * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * Laux[i] + this_min - x[i];
        cur_error += weights[i] * (diff * diff);
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// llama.cpp's make_qx_quants with rmse_type 1 (weights x^2) and no
// importance: a symmetric scale for values in -nmax..nmax-1 (stored + nmax),
// the best of 19 candidates around nmax / max.
float MakeQxQuants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < 1e-15f) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = NearestInt(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = NearestInt(iscale * x[i]);
      l = std::max(-nmax, std::min(nmax - 1, l));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        const int l = NearestInt(iscale * x[i]);
        L[i] = static_cast<int8_t>(nmax + std::max(-nmax, std::min(nmax - 1, l)));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

}  // namespace

void QuantizeQ4_0(const float* src, int64_t n, uint8_t* dst) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* x = src + b * 32;
    uint8_t* out = dst + b * 18;
    const float d = SignedAbsMax(x, 32) / -8.0f;
    const float id = d == 0 ? 0.0f : 1.0f / d;
    PutF16(d, out);
    uint8_t q[32];
    for (int j = 0; j < 32; ++j) {
      const float t = std::trunc(x[j] * id + 8.5f);
      q[j] = static_cast<uint8_t>(std::min(15.0f, std::max(0.0f, t)));
    }
    for (int j = 0; j < 16; ++j) out[2 + j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
  }
}

void QuantizeQ5_0(const float* src, int64_t n, uint8_t* dst) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const float* x = src + b * 32;
    uint8_t* out = dst + b * 22;
    const float d = SignedAbsMax(x, 32) / -16.0f;
    const float id = d == 0 ? 0.0f : 1.0f / d;
    PutF16(d, out);
    uint8_t q[32];
    uint32_t qh = 0;
    for (int j = 0; j < 32; ++j) {
      const float t = std::trunc(x[j] * id + 16.5f);
      q[j] = static_cast<uint8_t>(std::min(31.0f, std::max(0.0f, t)));
      qh |= static_cast<uint32_t>(q[j] >> 4) << j;
    }
    for (int k = 0; k < 4; ++k) out[2 + k] = static_cast<uint8_t>(qh >> (8 * k));
    for (int j = 0; j < 16; ++j) {
      out[6 + j] = static_cast<uint8_t>((q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4));
    }
  }
}

// Q4_K block (144 bytes): f16 d, f16 dmin, 12 bytes of 6-bit scales and
// mins for 8 sub-blocks of 32, 128 bytes of nibbles (x = d*sc*q - dmin*m).
void QuantizeQ4_K(const float* src, int64_t n, uint8_t* dst) {
  uint8_t L[kQK], Laux[32];
  float weights[32], mins[8], scales[8];
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* x = src + b * kQK;
    uint8_t* out = dst + b * 144;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
      scales[j] =
          MakeQkx2Quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t* sc = out + 4;
    std::memset(sc, 0, 12);
    uint8_t ls_all[8], lm_all[8];
    for (int j = 0; j < 8; ++j) {
      const uint8_t ls = static_cast<uint8_t>(std::min(63, NearestInt(inv_scale * scales[j])));
      const uint8_t lm = static_cast<uint8_t>(std::min(63, NearestInt(inv_min * mins[j])));
      ls_all[j] = ls;
      lm_all[j] = lm;
      if (j < 4) {
        sc[j] = ls;
        sc[j + 4] = lm;
      } else {
        sc[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
        sc[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
        sc[j] |= static_cast<uint8_t>((lm >> 4) << 6);
      }
    }
    PutF16(max_scale / 63.f, out);
    PutF16(max_min / 63.f, out + 2);
    const float d_all = F16BitsToF32(static_cast<uint16_t>(out[0] | (out[1] << 8)));
    const float dmin_all = F16BitsToF32(static_cast<uint16_t>(out[2] | (out[3] << 8)));
    for (int j = 0; j < 8; ++j) {
      const float d = d_all * ls_all[j];
      if (d == 0) continue;
      const float dm = dmin_all * lm_all[j];
      for (int ii = 0; ii < 32; ++ii) {
        const int l = NearestInt((x[32 * j + ii] + dm) / d);
        L[32 * j + ii] = static_cast<uint8_t>(std::max(0, std::min(15, l)));
      }
    }
    uint8_t* q = out + 16;
    for (int j = 0; j < kQK; j += 64) {
      for (int l = 0; l < 32; ++l) q[l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
      q += 32;
    }
  }
}

// Q6_K block (210 bytes): 128 bytes of low nibbles, 64 bytes of high 2-bit
// pairs, 16 int8 scales (one per 16 values), f16 d (x = d*sc*(q-32)).
void QuantizeQ6_K(const float* src, int64_t n, uint8_t* dst) {
  int8_t L[kQK];
  float scales[16];
  for (int64_t b = 0; b < n / kQK; ++b) {
    const float* x = src + b * kQK;
    uint8_t* out = dst + b * 210;
    uint8_t* ql = out;
    uint8_t* qh = out + 128;
    int8_t* sc = reinterpret_cast<int8_t*>(out + 192);
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
      const float scale = MakeQxQuants(16, 32, x + 16 * ib, L + 16 * ib);
      scales[ib] = scale;
      const float abs_scale = std::fabs(scale);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scale;
      }
    }
    if (max_abs_scale < 1e-15f) {
      std::memset(out, 0, 210);
      continue;
    }
    const float iscale = -128.f / max_scale;
    PutF16(1 / iscale, out + 208);
    for (int ib = 0; ib < 16; ++ib) {
      sc[ib] = static_cast<int8_t>(std::min(127, NearestInt(iscale * scales[ib])));
    }
    const float d_all = RoundTripF16(1 / iscale);
    for (int j = 0; j < 16; ++j) {
      const float d = d_all * sc[j];
      if (d == 0) continue;
      for (int ii = 0; ii < 16; ++ii) {
        int l = NearestInt(x[16 * j + ii] / d);
        l = std::max(-32, std::min(31, l));
        L[16 * j + ii] = static_cast<int8_t>(l + 32);
      }
    }
    for (int j = 0; j < kQK; j += 128) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
        const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
        ql[l + 0] = static_cast<uint8_t>(q1 | (q3 << 4));
        ql[l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
        qh[l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                     ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
      }
      ql += 64;
      qh += 32;
    }
  }
}

bool CanQuantizeTo(uint32_t t) {
  switch (t) {
    case gguf::kGgmlF32:
    case gguf::kGgmlF16:
    case gguf::kGgmlBF16:
    case gguf::kGgmlQ8_0:
    case gguf::kGgmlQ4_0:
    case gguf::kGgmlQ5_0:
    case gguf::kGgmlQ4_K:
    case gguf::kGgmlQ6_K:
      return true;
    default:
      return false;
  }
}

absl::Status QuantizeRow(const std::string& what, uint32_t t, const float* src, int64_t n,
                         uint8_t* dst) {
  if (!CanQuantizeTo(t)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": hearth cannot write type ", gguf::GgmlTypeName(t)));
  }
  int64_t block = 0, bytes = 0;
  gguf::GgmlTypeGeometry(t, &block, &bytes);
  if (n < 0 || n % block != 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": ", n, " values are not a multiple of ",
                                                   gguf::GgmlTypeName(t), "'s block of ", block));
  }
  switch (t) {
    case gguf::kGgmlF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);  // little-endian hosts
      return absl::OkStatus();
    case gguf::kGgmlF16:
      for (int64_t i = 0; i < n; ++i) PutF16(src[i], dst + 2 * i);
      return absl::OkStatus();
    case gguf::kGgmlBF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t b = encode::F32ToBF16Bits(src[i]);
        dst[2 * i] = static_cast<uint8_t>(b & 0xff);
        dst[2 * i + 1] = static_cast<uint8_t>(b >> 8);
      }
      return absl::OkStatus();
    default:
      break;
  }
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(src[i])) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": element ", i, " is ", src[i], "; ",
                                                     gguf::GgmlTypeName(t),
                                                     " can only hold finite values"));
    }
  }
  switch (t) {
    case gguf::kGgmlQ8_0: {
      absl::Status s = encode::QuantizeQ8_0(src, n, dst);
      if (!s.ok()) return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
      return absl::OkStatus();
    }
    case gguf::kGgmlQ4_0:
      QuantizeQ4_0(src, n, dst);
      break;
    case gguf::kGgmlQ5_0:
      QuantizeQ5_0(src, n, dst);
      break;
    case gguf::kGgmlQ4_K:
      QuantizeQ4_K(src, n, dst);
      break;
    case gguf::kGgmlQ6_K:
      QuantizeQ6_K(src, n, dst);
      break;
  }
  // A scale past F16's range decodes to inf/NaN: refuse it, as Q8_0 does.
  // (Q6_K keeps its scale at the end, Q4_K has a second one for the mins.)
  const int64_t scale_at = t == gguf::kGgmlQ6_K ? 208 : 0;
  const int64_t n_scales = t == gguf::kGgmlQ4_K ? 2 : 1;
  for (int64_t i = 0; i < n / block * n_scales; ++i) {
    const int64_t off = (i / n_scales) * bytes + scale_at + 2 * (i % n_scales);
    const uint16_t h = static_cast<uint16_t>(dst[off] | (dst[off + 1] << 8));
    if ((h & 0x7c00u) == 0x7c00u) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": block ", i / n_scales, " needs a scale beyond the largest F16 (65504); ",
          gguf::GgmlTypeName(t), " cannot represent its values"));
    }
  }
  return absl::OkStatus();
}

bool ToFloat(uint32_t t, const uint8_t* src, int64_t n, float* dst) {
  switch (t) {
    case gguf::kGgmlF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return true;
    case gguf::kGgmlF16:
      for (int64_t i = 0; i < n; ++i) {
        dst[i] = F16BitsToF32(static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8)));
      }
      return true;
    case gguf::kGgmlBF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t bits = static_cast<uint32_t>(src[2 * i] | (src[2 * i + 1] << 8)) << 16;
        std::memcpy(&dst[i], &bits, 4);
      }
      return true;
    default:
      return false;
  }
}

}  // namespace hearth::quant
