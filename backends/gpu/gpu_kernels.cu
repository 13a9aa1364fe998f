// gpu_kernels.cu — hearth's GPU kernels, one source for CUDA, HIP and the
// emulator (gpu_port.h). This first set is written for exactness and for
// every stride the ABI allows, not yet for speed: one block of kBlock threads
// per output row (or row chunk), reductions through shared memory, weights
// dequantized element by element where they are read.
#include <cmath>

#include "backends/gpu/gpu_kernels.h"

namespace hearth::gpu {
namespace {

constexpr unsigned kBlock = 256;  // threads per block; a power of two
constexpr int64_t kMaxGrid = 65535;
constexpr int kTT = 4;  // tokens per MUL_MAT block

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

GPU_FN uint8_t* At(const TRef& t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
  return t.data + i0 * t.nb[0] + i1 * t.nb[1] + i2 * t.nb[2] + i3 * t.nb[3];
}

GPU_FN float LoadF(const TRef& t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
  return LoadPlain(At(t, i0, i1, i2, i3), t.dtype);
}

GPU_FN int32_t LoadI32(const TRef& t, int64_t i0) {
  return *reinterpret_cast<const int32_t*>(t.data + i0 * t.nb[0]);
}

// Sum over the block of v (every thread gets it). buf has kBlock slots.
GPU_FN float BlockSum(float v, float* buf) {
  const unsigned tid = ThreadX();
  buf[tid] = v;
  SyncThreads();
  for (unsigned s = kBlock / 2; s > 0; s >>= 1) {
    if (tid < s) buf[tid] += buf[tid + s];
    SyncThreads();
  }
  const float r = buf[0];
  SyncThreads();  // buf is free again
  return r;
}

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

GPU_FN float Silu(float x) { return x / (1.0f + expf(-x)); }

GPU_FN float GeluTanh(float x) {
  const float k = 0.7978845608028654f;  // sqrt(2 / pi)
  return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}

// ----------------------------------------------------------------- kernels

GPU_KERNEL void KElementwise(int op, TRef out, TRef a, TRef b, float scale) {
  const int64_t n = out.ne[0] * out.ne[1] * out.ne[2] * out.ne[3];
  const int64_t stride = static_cast<int64_t>(GridDimX()) * BlockDimX();
  for (int64_t e = static_cast<int64_t>(BlockX()) * BlockDimX() + ThreadX(); e < n; e += stride) {
    const int64_t i0 = e % out.ne[0], r = e / out.ne[0];
    const int64_t i1 = r % out.ne[1], i2 = r / out.ne[1] % out.ne[2],
                  i3 = r / out.ne[1] / out.ne[2];
    const float x = LoadF(a, i0, i1, i2, i3);
    float y;
    switch (static_cast<ElemOp>(op)) {
      case ElemOp::kScale:
        y = x * scale;
        break;
      case ElemOp::kCopy:
        y = x;
        break;
      default: {
        const float v = LoadF(b, b.ne[0] == 1 ? 0 : i0, b.ne[1] == 1 ? 0 : i1,
                              b.ne[2] == 1 ? 0 : i2, b.ne[3] == 1 ? 0 : i3);
        const ElemOp o = static_cast<ElemOp>(op);
        y = o == ElemOp::kAdd       ? x + v
            : o == ElemOp::kMul     ? x * v
            : o == ElemOp::kSiluMul ? Silu(x) * v
                                    : GeluTanh(x) * v;
      }
    }
    StorePlain(At(out, i0, i1, i2, i3), out.dtype, y);
  }
}

GPU_KERNEL void KRmsNorm(TRef out, TRef x, TRef w, int has_w, float eps) {
  GPU_SHARED float buf[kBlock];
  const int64_t D = x.ne[0], rows = x.ne[1] * x.ne[2] * x.ne[3];
  for (int64_t r = BlockX(); r < rows; r += GridDimX()) {
    const int64_t i1 = r % x.ne[1], i2 = r / x.ne[1] % x.ne[2], i3 = r / x.ne[1] / x.ne[2];
    float ss = 0;
    for (int64_t i = ThreadX(); i < D; i += kBlock) {
      const float v = LoadF(x, i, i1, i2, i3);
      ss += v * v;
    }
    ss = BlockSum(ss, buf);
    const float inv = 1.0f / sqrtf(ss / static_cast<float>(D) + eps);
    for (int64_t i = ThreadX(); i < D; i += kBlock) {
      float v = LoadF(x, i, i1, i2, i3) * inv;
      if (has_w) v *= LoadF(w, i, 0, 0, 0);
      StorePlain(At(out, i, i1, i2, i3), out.dtype, v);
    }
  }
}

GPU_KERNEL void KSoftmax(TRef out, TRef x, float scale) {
  GPU_SHARED float buf[kBlock];
  const int64_t D = x.ne[0], rows = x.ne[1] * x.ne[2] * x.ne[3];
  for (int64_t r = BlockX(); r < rows; r += GridDimX()) {
    const int64_t i1 = r % x.ne[1], i2 = r / x.ne[1] % x.ne[2], i3 = r / x.ne[1] / x.ne[2];
    float mx = -INFINITY;
    for (int64_t i = ThreadX(); i < D; i += kBlock) {
      const float v = LoadF(x, i, i1, i2, i3) * scale;
      mx = v > mx ? v : mx;
    }
    mx = BlockMax(mx, buf);
    float sum = 0;
    for (int64_t i = ThreadX(); i < D; i += kBlock)
      sum += expf(LoadF(x, i, i1, i2, i3) * scale - mx);
    sum = BlockSum(sum, buf);
    const float inv = 1.0f / sum;
    for (int64_t i = ThreadX(); i < D; i += kBlock) {
      StorePlain(At(out, i, i1, i2, i3), out.dtype,
                 expf(LoadF(x, i, i1, i2, i3) * scale - mx) * inv);
    }
  }
}

GPU_KERNEL void KGetRows(TRef out, TRef table, TRef ids, int* flag, int flag_value) {
  const int64_t D = out.ne[0], T = out.ne[1];
  for (int64_t t = BlockX(); t < T; t += GridDimX()) {
    const int32_t id = LoadI32(ids, t);
    if (id < 0 || id >= table.ne[1]) {
      if (ThreadX() == 0) RaiseFlag(flag, flag_value);
      continue;
    }
    const uint8_t* row = table.data + id * table.nb[1];
    for (int64_t i = ThreadX(); i < D; i += kBlock) {
      StorePlain(At(out, i, t, 0, 0), out.dtype, WeightElem(row, table.dtype, table.nb[0], i));
    }
  }
}

GPU_KERNEL void KMulMat(TRef out, TRef w, TRef x, int64_t n_chunks) {
  GPU_SHARED float red[kTT][kBlock];
  const int64_t K = x.ne[0], T = x.ne[1], M = out.ne[0];
  const int64_t total = M * n_chunks * x.ne[2] * x.ne[3];
  const unsigned tid = ThreadX();
  for (int64_t item = BlockX(); item < total; item += GridDimX()) {
    const int64_t m = item % M, r = item / M;
    const int64_t chunk = r % n_chunks, i2 = r / n_chunks % x.ne[2], i3 = r / n_chunks / x.ne[2];
    const uint8_t* wrow = w.data + m * w.nb[1] + (w.ne[2] == 1 ? 0 : i2) * w.nb[2] +
                          (w.ne[3] == 1 ? 0 : i3) * w.nb[3];
    const int64_t t0 = chunk * kTT;
    const int nt = static_cast<int>(T - t0 < kTT ? T - t0 : kTT);
    float acc[kTT];
    for (int j = 0; j < kTT; ++j) acc[j] = 0;
    for (int64_t k = tid; k < K; k += kBlock) {
      const float wv = WeightElem(wrow, w.dtype, w.nb[0], k);
      for (int j = 0; j < kTT; ++j) {
        if (j < nt) acc[j] += wv * LoadF(x, k, t0 + j, i2, i3);
      }
    }
    for (int j = 0; j < kTT; ++j) red[j][tid] = acc[j];
    SyncThreads();
    for (unsigned s = kBlock / 2; s > 0; s >>= 1) {
      if (tid < s) {
        for (int j = 0; j < kTT; ++j) red[j][tid] += red[j][tid + s];
      }
      SyncThreads();
    }
    if (tid < static_cast<unsigned>(nt)) {
      StorePlain(At(out, m, t0 + tid, i2, i3), out.dtype, red[tid][0]);
    }
    SyncThreads();  // red is reused by the next item
  }
}

// Pairs first (each thread rotates both elements of its pair, so in place is
// safe), then the dimensions past n_rot, copied.
GPU_KERNEL void KRope(TRef out, TRef x, TRef pos, TRef ff, int has_ff, float theta_base,
                      float freq_scale, int n_rot, int neox) {
  const int64_t hd = x.ne[0], nh = x.ne[1], T = x.ne[2];
  const int64_t half = n_rot / 2;
  const int64_t n_pairs = half * nh * T, n_rest = (hd - n_rot) * nh * T;
  const int64_t stride = static_cast<int64_t>(GridDimX()) * BlockDimX();
  for (int64_t e = static_cast<int64_t>(BlockX()) * BlockDimX() + ThreadX(); e < n_pairs + n_rest;
       e += stride) {
    if (e < n_pairs) {
      const int64_t p = e % half, h = e / half % nh, t = e / half / nh;
      const int64_t ia = neox ? p : 2 * p, ib = neox ? p + half : 2 * p + 1;
      float theta = static_cast<float>(LoadI32(pos, t)) * freq_scale *
                    powf(theta_base, -2.0f * static_cast<float>(p) / static_cast<float>(n_rot));
      if (has_ff) theta /= LoadF(ff, p, 0, 0, 0);
      const float c = cosf(theta), s = sinf(theta);
      const float xa = LoadF(x, ia, h, t, 0), xb = LoadF(x, ib, h, t, 0);
      StorePlain(At(out, ia, h, t, 0), out.dtype, xa * c - xb * s);
      StorePlain(At(out, ib, h, t, 0), out.dtype, xa * s + xb * c);
    } else {
      const int64_t q = e - n_pairs, rest = hd - n_rot;
      const int64_t i = n_rot + q % rest, h = q / rest % nh, t = q / rest / nh;
      StorePlain(At(out, i, h, t, 0), out.dtype, LoadF(x, i, h, t, 0));
    }
  }
}

unsigned GridFor(int64_t items, int64_t per_block) {
  int64_t g = (items + per_block - 1) / per_block;
  if (g < 1) g = 1;
  return static_cast<unsigned>(g > kMaxGrid ? kMaxGrid : g);
}

int64_t Elems(const TRef& t) { return t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3]; }

}  // namespace

Error LaunchElementwise(Stream s, ElemOp op, const TRef& out, const TRef& a, const TRef& b,
                        float scale) {
  GPU_LAUNCH(KElementwise, Dim3(GridFor(Elems(out), kBlock)), Dim3(kBlock), s, static_cast<int>(op),
             out, a, b, scale);
  return LastError();
}

Error LaunchRmsNorm(Stream s, const TRef& out, const TRef& x, const TRef* w, float eps) {
  const TRef none;
  GPU_LAUNCH(KRmsNorm, Dim3(GridFor(x.ne[1] * x.ne[2] * x.ne[3], 1)), Dim3(kBlock), s, out, x,
             w ? *w : none, w ? 1 : 0, eps);
  return LastError();
}

Error LaunchSoftmax(Stream s, const TRef& out, const TRef& x, float scale) {
  GPU_LAUNCH(KSoftmax, Dim3(GridFor(x.ne[1] * x.ne[2] * x.ne[3], 1)), Dim3(kBlock), s, out, x,
             scale);
  return LastError();
}

Error LaunchGetRows(Stream s, const TRef& out, const TRef& table, const TRef& ids, int* flag,
                    int flag_value) {
  GPU_LAUNCH(KGetRows, Dim3(GridFor(out.ne[1], 1)), Dim3(kBlock), s, out, table, ids, flag,
             flag_value);
  return LastError();
}

Error LaunchMulMat(Stream s, const TRef& out, const TRef& w, const TRef& x) {
  const int64_t n_chunks = (x.ne[1] + kTT - 1) / kTT;
  GPU_LAUNCH(KMulMat, Dim3(GridFor(out.ne[0] * n_chunks * x.ne[2] * x.ne[3], 1)), Dim3(kBlock), s,
             out, w, x, n_chunks);
  return LastError();
}

Error LaunchRope(Stream s, const TRef& out, const TRef& x, const TRef& pos, const TRef* ff,
                 float theta_base, float freq_scale, int n_rot, int mode) {
  const TRef none;
  const int64_t items = (n_rot / 2 + (x.ne[0] - n_rot)) * x.ne[1] * x.ne[2];
  GPU_LAUNCH(KRope, Dim3(GridFor(items, kBlock)), Dim3(kBlock), s, out, x, pos, ff ? *ff : none,
             ff ? 1 : 0, theta_base, freq_scale, n_rot, mode == 2 ? 1 : 0);
  return LastError();
}

}  // namespace hearth::gpu
