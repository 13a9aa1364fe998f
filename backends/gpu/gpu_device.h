// gpu_device.h — what every kernel file of backends/gpu shares: number
// conversions written out in integer arithmetic (so the CUDA, HIP and
// emulator builds round alike), element access through TRef strides, the
// dequantization of every weight format (GGUF's layouts), block reductions
// through shared memory, and launch sizing.
#ifndef HEARTH_BACKENDS_GPU_GPU_DEVICE_H_
#define HEARTH_BACKENDS_GPU_GPU_DEVICE_H_

#include <cmath>
#include <cstdint>

#include "backends/gpu/gpu_kernels.h"

namespace hearth::gpu::dev {

constexpr unsigned kBlock = 256;  // threads per block; a power of two
constexpr int64_t kMaxGrid = 65535;

// ----------------------------------------------------------------- numbers

GPU_FN float BitsToFloat(uint32_t u) {
  float f;
  __builtin_memcpy(&f, &u, sizeof(f));
  return f;
}

GPU_FN uint32_t FloatBits(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, sizeof(u));
  return u;
}

GPU_FN float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h >> 15) << 31;
  const uint32_t exp = (h >> 10) & 31u, man = h & 1023u;
  if (exp == 0) {
    const float v = static_cast<float>(man) * (1.0f / 16777216.0f);  // man * 2^-24
    return sign ? -v : v;
  }
  if (exp == 31) return BitsToFloat(sign | 0x7f800000u | (man << 13));
  return BitsToFloat(sign | ((exp + 112u) << 23) | (man << 13));
}

// Round to nearest even, as the CPU plugin's conversions.
GPU_FN uint16_t FloatToHalf(float f) {
  const uint32_t x = FloatBits(f);
  const uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u)
    return static_cast<uint16_t>(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0));
  if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
  if (ax < 0x38800000u) {                                               // below 2^-14: subnormal
    const uint32_t e = ax >> 23;
    if (e < 102) return static_cast<uint16_t>(sign);  // below half of 2^-24
    const uint32_t mant = (ax & 0x7fffffu) | 0x800000u, shift = 126 - e;
    uint32_t r = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return static_cast<uint16_t>(sign | r);
  }
  uint32_t h = (((ax >> 23) - 112u) << 10) | ((ax >> 13) & 0x3ffu);
  const uint32_t rem = ax & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

GPU_FN float Bf16ToFloat(uint16_t b) { return BitsToFloat(static_cast<uint32_t>(b) << 16); }

GPU_FN uint16_t FloatToBf16(float f) {
  const uint32_t x = FloatBits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

GPU_FN uint16_t Load16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (static_cast<uint16_t>(p[1]) << 8));
}

// dtype values of hearth_plugin.h (kept here so kernels need no C header).
enum : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kBF16 = 2,
  kI32 = 3,
  kQ8_0 = 4,
  kQ4_0 = 5,
  kQ5_0 = 6,
  kQ4_K = 7,
  kQ6_K = 8,
  kQ4_1 = 9
};

GPU_FN float LoadPlain(const uint8_t* p, uint32_t dtype) {
  if (dtype == kF32) return *reinterpret_cast<const float*>(p);
  if (dtype == kF16) return HalfToFloat(Load16(p));
  return Bf16ToFloat(Load16(p));
}

GPU_FN void StorePlain(uint8_t* p, uint32_t dtype, float v) {
  if (dtype == kF32) {
    *reinterpret_cast<float*>(p) = v;
  } else {
    const uint16_t h = dtype == kF16 ? FloatToHalf(v) : FloatToBf16(v);
    p[0] = static_cast<uint8_t>(h & 0xff);
    p[1] = static_cast<uint8_t>(h >> 8);
  }
}

// Element k of a weight row (any format; nb0 is the element stride of plain
// dtypes, unused for block formats), dequantized as GGUF defines it.
GPU_FN float WeightElem(const uint8_t* row, uint32_t dtype, int64_t nb0, int64_t k) {
  switch (dtype) {
    case kF32:
    case kF16:
    case kBF16:
      return LoadPlain(row + k * nb0, dtype);
    case kQ8_0: {
      const uint8_t* b = row + (k / 32) * 34;
      return HalfToFloat(Load16(b)) * static_cast<float>(static_cast<int8_t>(b[2 + k % 32]));
    }
    case kQ4_0: {
      const uint8_t* b = row + (k / 32) * 18;
      const int j = static_cast<int>(k % 32);
      const uint8_t q = b[2 + (j & 15)];
      const int v = j < 16 ? (q & 15) : (q >> 4);
      return HalfToFloat(Load16(b)) * static_cast<float>(v - 8);
    }
    case kQ4_1: {
      const uint8_t* b = row + (k / 32) * 20;
      const int j = static_cast<int>(k % 32);
      const uint8_t q = b[4 + (j & 15)];
      const int v = j < 16 ? (q & 15) : (q >> 4);
      return HalfToFloat(Load16(b)) * static_cast<float>(v) + HalfToFloat(Load16(b + 2));
    }
    case kQ5_0: {
      const uint8_t* b = row + (k / 32) * 22;
      const int j = static_cast<int>(k % 32);
      const uint32_t qh = static_cast<uint32_t>(b[2]) | (static_cast<uint32_t>(b[3]) << 8) |
                          (static_cast<uint32_t>(b[4]) << 16) | (static_cast<uint32_t>(b[5]) << 24);
      const uint8_t q = b[6 + (j & 15)];
      const int v = (j < 16 ? (q & 15) : (q >> 4)) | static_cast<int>(((qh >> j) & 1u) << 4);
      return HalfToFloat(Load16(b)) * static_cast<float>(v - 16);
    }
    case kQ4_K: {
      const uint8_t* b = row + (k / 256) * 144;
      const int j = static_cast<int>(k % 256), g = j / 64, l = j % 64;
      const uint8_t* sc = b + 4;
      const int sb = 2 * g + (l >= 32 ? 1 : 0);
      int s, m;
      if (sb < 4) {
        s = sc[sb] & 63;
        m = sc[sb + 4] & 63;
      } else {
        s = (sc[sb + 4] & 0xF) | ((sc[sb - 4] >> 6) << 4);
        m = (sc[sb + 4] >> 4) | ((sc[sb] >> 6) << 4);
      }
      const uint8_t q = b[16 + g * 32 + (l & 31)];
      const int v = l < 32 ? (q & 15) : (q >> 4);
      return HalfToFloat(Load16(b)) * static_cast<float>(s * v) -
             HalfToFloat(Load16(b + 2)) * static_cast<float>(m);
    }
    case kQ6_K: {
      const uint8_t* b = row + (k / 256) * 210;
      const int j = static_cast<int>(k % 256), h = j / 128, r = j % 128, quarter = r / 32,
                l = r % 32;
      const uint8_t ql = b[64 * h + l + (quarter & 1) * 32];
      const int lo = quarter >= 2 ? (ql >> 4) : (ql & 15);
      const int hi = (b[128 + 32 * h + l] >> (2 * quarter)) & 3;
      const int8_t sc = static_cast<int8_t>(b[192 + 8 * h + l / 16 + 2 * quarter]);
      return HalfToFloat(Load16(b + 208)) * static_cast<float>(sc) *
             static_cast<float>((lo | (hi << 4)) - 32);
    }
    default:
      return 0.0f;
  }
}

// Weights 32u .. 32u + 31 of a row (a "unit": one block of the 32-element
// formats, a 32-element part of a Q4_K/Q6_K super-block, or 32 plain
// elements nb0 bytes apart), dequantized into w as WeightElem does each;
// elements at or past K are 0. The product kernels read a row unit by unit:
// one load of a block's scale serves its 32 weights.
constexpr int kUnit = 32;

GPU_FN void DequantUnit(const uint8_t* row, uint32_t dtype, int64_t nb0, int64_t u, int64_t K,
                        float* w) {
  switch (dtype) {
    case kQ8_0: {
      const uint8_t* b = row + u * 34;
      const float d = HalfToFloat(Load16(b));
      for (int i = 0; i < kUnit; ++i) w[i] = d * static_cast<float>(static_cast<int8_t>(b[2 + i]));
      return;
    }
    case kQ4_0:
    case kQ4_1: {
      const bool q41 = dtype == kQ4_1;
      const uint8_t* b = row + u * (q41 ? 20 : 18);
      const uint8_t* qs = b + (q41 ? 4 : 2);
      const float d = HalfToFloat(Load16(b));
      const float m = q41 ? HalfToFloat(Load16(b + 2)) : 0.0f;
      const int off = q41 ? 0 : 8;
      for (int i = 0; i < 16; ++i) {
        w[i] = d * static_cast<float>((qs[i] & 15) - off) + m;
        w[i + 16] = d * static_cast<float>((qs[i] >> 4) - off) + m;
      }
      return;
    }
    case kQ5_0: {
      const uint8_t* b = row + u * 22;
      const float d = HalfToFloat(Load16(b));
      const uint32_t qh = static_cast<uint32_t>(b[2]) | (static_cast<uint32_t>(b[3]) << 8) |
                          (static_cast<uint32_t>(b[4]) << 16) | (static_cast<uint32_t>(b[5]) << 24);
      for (int i = 0; i < 16; ++i) {
        const int lo = (b[6 + i] & 15) | static_cast<int>(((qh >> i) & 1u) << 4);
        const int hi = (b[6 + i] >> 4) | static_cast<int>(((qh >> (i + 16)) & 1u) << 4);
        w[i] = d * static_cast<float>(lo - 16);
        w[i + 16] = d * static_cast<float>(hi - 16);
      }
      return;
    }
    case kQ4_K: {
      const uint8_t* b = row + (u / 8) * 144;
      const int j = static_cast<int>(u % 8);
      const uint8_t* sc = b + 4;
      int s, m;
      if (j < 4) {
        s = sc[j] & 63;
        m = sc[j + 4] & 63;
      } else {
        s = (sc[j + 4] & 0xF) | ((sc[j - 4] >> 6) << 4);
        m = (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4);
      }
      const float d = HalfToFloat(Load16(b));
      const float dm = HalfToFloat(Load16(b + 2)) * static_cast<float>(m);
      const uint8_t* qs = b + 16 + (j / 2) * 32;
      const int shift = (j & 1) * 4;
      for (int i = 0; i < kUnit; ++i)
        w[i] = d * static_cast<float>(s * ((qs[i] >> shift) & 15)) - dm;
      return;
    }
    case kQ6_K: {
      const uint8_t* b = row + (u / 8) * 210;
      const int j = static_cast<int>(u % 8), h = j / 4, quarter = j % 4;
      const float d = HalfToFloat(Load16(b + 208));
      const uint8_t* ql = b + 64 * h + (quarter & 1) * 32;
      const uint8_t* qh = b + 128 + 32 * h;
      const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192 + 8 * h + 2 * quarter);
      for (int i = 0; i < kUnit; ++i) {
        const int lo = quarter >= 2 ? (ql[i] >> 4) : (ql[i] & 15);
        const int hi = (qh[i] >> (2 * quarter)) & 3;
        w[i] = d * static_cast<float>(sc[i / 16]) * static_cast<float>((lo | (hi << 4)) - 32);
      }
      return;
    }
    default: {  // F32, F16, BF16
      const int64_t k0 = u * kUnit;
      for (int i = 0; i < kUnit; ++i) {
        w[i] = k0 + i < K ? LoadPlain(row + (k0 + i) * nb0, dtype) : 0.0f;
      }
      return;
    }
  }
}

GPU_FN uint8_t* At(const TRef& t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
  return t.data + i0 * t.nb[0] + i1 * t.nb[1] + i2 * t.nb[2] + i3 * t.nb[3];
}

// Row m of the weight matrix that batch entry (i2, i3) multiplies: a
// weight with ne[2] or ne[3] of 1 is broadcast over that batch dimension.
GPU_FN const uint8_t* WeightRow(const TRef& w, int64_t m, int64_t i2, int64_t i3) {
  return w.data + m * w.nb[1] + (w.ne[2] == 1 ? 0 : i2) * w.nb[2] +
         (w.ne[3] == 1 ? 0 : i3) * w.nb[3];
}

GPU_FN float LoadF(const TRef& t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
  return LoadPlain(At(t, i0, i1, i2, i3), t.dtype);
}

GPU_FN int32_t LoadI32(const TRef& t, int64_t i0) {
  return *reinterpret_cast<const int32_t*>(t.data + i0 * t.nb[0]);
}

// Sum over the block of v (every thread gets it). buf has kBlock slots.
// BlockSumOf<double> keeps float's low bits for sums that need them.
template <typename T>
GPU_FN T BlockSumOf(T v, T* buf) {
  const unsigned tid = ThreadX();
  buf[tid] = v;
  SyncThreads();
  for (unsigned s = kBlock / 2; s > 0; s >>= 1) {
    if (tid < s) buf[tid] += buf[tid + s];
    SyncThreads();
  }
  const T r = buf[0];
  SyncThreads();  // buf is free again
  return r;
}

GPU_FN float BlockSum(float v, float* buf) { return BlockSumOf<float>(v, buf); }

GPU_FN float BlockMax(float v, float* buf) {
  const unsigned tid = ThreadX();
  buf[tid] = v;
  SyncThreads();
  for (unsigned s = kBlock / 2; s > 0; s >>= 1) {
    if (tid < s && buf[tid + s] > buf[tid]) buf[tid] = buf[tid + s];
    SyncThreads();
  }
  const float r = buf[0];
  SyncThreads();
  return r;
}

GPU_FN double BlockSumD(double v, double* buf) { return BlockSumOf<double>(v, buf); }

// The max of x[:, i1, i2, i3] * scale and the sum of exp(x * scale - max)
// over that row, as the whole block computes them (every thread calls it
// and gets both): the softmax denominator of SOFTMAX and CROSS_ENTROPY.
GPU_FN void RowMaxExpSum(const TRef& x, int64_t i1, int64_t i2, int64_t i3, float scale, float* buf,
                         float* max_out, float* sum_out) {
  const int64_t D = x.ne[0];
  float mx = -INFINITY;
  for (int64_t i = ThreadX(); i < D; i += kBlock) {
    const float v = LoadF(x, i, i1, i2, i3) * scale;
    mx = v > mx ? v : mx;
  }
  mx = BlockMax(mx, buf);
  float sum = 0;
  for (int64_t i = ThreadX(); i < D; i += kBlock) sum += expf(LoadF(x, i, i1, i2, i3) * scale - mx);
  *max_out = mx;
  *sum_out = BlockSum(sum, buf);
}

GPU_FN float Silu(float x) { return x / (1.0f + expf(-x)); }

GPU_FN float GeluTanh(float x) {
  const float k = 0.7978845608028654f;  // sqrt(2 / pi)
  return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

// ----------------------------------------------------------------- launches

inline unsigned GridFor(int64_t items, int64_t per_block) {
  int64_t g = (items + per_block - 1) / per_block;
  if (g < 1) g = 1;
  return static_cast<unsigned>(g > kMaxGrid ? kMaxGrid : g);
}

inline int64_t Elems(const TRef& t) { return t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3]; }

}  // namespace hearth::gpu::dev

#endif  // HEARTH_BACKENDS_GPU_GPU_DEVICE_H_
