// quant_blocks.h — byte layouts of the weight blocks (identical to GGUF/ggml),
// the 8-bit activation blocks the quantized matrix products use, and the
// scalar helpers (half/bfloat conversion, Q4_K scale unpacking) that the
// reference and SIMD kernels share. Internal to the CPU backend.
#ifndef HEARTH_BACKENDS_CPU_QUANT_BLOCKS_H_
#define HEARTH_BACKENDS_CPU_QUANT_BLOCKS_H_

#include <cstdint>
#include <cstring>

namespace hearth::cpu {

// Weight block layouts, in bytes. All multi-byte fields are little-endian.
//   Q8_0 (32 elems, 34 B):  f16 d | int8 q[32]                x = d*q
//   Q4_0 (32 elems, 18 B):  f16 d | u8 qs[16]                 x[j] = d*((qs[j]&15)-8),
//                                                             x[j+16] = d*((qs[j]>>4)-8)
//   Q5_0 (32 elems, 22 B):  f16 d | u32 qh | u8 qs[16]        as Q4_0 with bit j of qh as
//                                                             bit 4 of element j, minus 16
//   Q4_1 (32 elems, 20 B):  f16 d | f16 m | u8 qs[16]         x[j] = d*(qs[j]&15) + m,
//                                                             x[j+16] = d*(qs[j]>>4) + m
//   Q4_K (256 elems, 144 B): f16 d | f16 dmin | u8 scales[12] | u8 qs[128]
//       8 sub-blocks of 32 with 6-bit scale sc and min m: x = (d*sc)*q - (dmin*m);
//       sub-blocks 2p and 2p+1 are the low and high nibbles of qs[32p .. 32p+31].
//   Q6_K (256 elems, 210 B): u8 ql[128] | u8 qh[64] | int8 scales[16] | f16 d
//       x = (d*scales[i/16]) * (q-32) with q = 4 bits from ql | 2 bits from qh << 4:
//       in half h (128 elems) element 32t+l takes ql[64h+l+32(t&1)] (low nibble for
//       t<2, high for t>=2) and bits 2t..2t+1 of qh[32h+l].
inline constexpr int kQ8_0Bytes = 34;
inline constexpr int kQ4_0Bytes = 18;
inline constexpr int kQ5_0Bytes = 22;
inline constexpr int kQ4_1Bytes = 20;
inline constexpr int kQ4_KBytes = 144;
inline constexpr int kQ6_KBytes = 210;
inline constexpr int kQ4_KScales = 4;    // offset of scales[12]
inline constexpr int kQ4_KQs = 16;       // offset of qs[128]
inline constexpr int kQ6_KQh = 128;      // offset of qh[64]
inline constexpr int kQ6_KScales = 192;  // offset of scales[16]
inline constexpr int kQ6_KD = 208;       // offset of d

// Activations of a quantized product, quantized per row in phase 1.
// For the 32-element formats: q = round(x/d), d = max|x|/127, and
// dsum = d * sum(q), which carries the constant offset (-8, -16) of Q4_0/Q5_0
// weights and the per-block minimum m of Q4_1 (m * dsum) out of the integer
// dot product.
struct XBlock32 {
  float d;
  float dsum;
  int8_t q[32];
};
// For the K-quants: one scale per 256 elements and the sum of each 16 q's,
// which carries the Q4_K minimums and the Q6_K offset of 32.
struct XBlock256 {
  float d;
  int16_t bsums[16];
  int8_t q[256];
};
static_assert(sizeof(XBlock32) == 40, "XBlock32 layout");
static_assert(sizeof(XBlock256) == 292, "XBlock256 layout");

// The helpers below are included both by files compiled for AVX2 and by
// baseline ones. Internal linkage keeps the linker from merging an inline
// copy compiled with AVX2 (unoptimized builds do not inline) into a baseline
// caller, which would fault on a CPU without AVX2.
namespace {

// Scale d = max|x| / 127 of an activation block and the inverse that
// quantizes it, q = round(x * id); the same arithmetic on every ISA so that
// the scratch bytes are too. A NaN in the block makes d NaN (it reaches every
// output it touches); a block so tiny that 127 / max overflows is all zeros.
inline void XBlockScale(float amax, bool has_nan, float* d, float* id) {
  if (has_nan) {
    *d = __builtin_nanf("");
    *id = 0.0f;
    return;
  }
  *d = amax / 127.0f;
  *id = amax != 0.0f ? 127.0f / amax : 0.0f;
  if (!(*id <= 3.4028234663852886e38f)) {
    *d = 0.0f;
    *id = 0.0f;
  }
}

inline uint16_t LoadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
inline uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline float BitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// IEEE half to float, exact for every finite value, infinities and NaNs
// (payload kept), like numpy's astype(np.float32).
inline float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return BitsToFloat(sign | 0x7f800000u | (mant << 13));
  if (exp != 0) return BitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return BitsToFloat(sign);
  // Subnormal half: normalise into a float exponent.
  uint32_t e = 113;
  while ((mant & 0x400u) == 0) {
    mant <<= 1;
    --e;
  }
  return BitsToFloat(sign | (e << 23) | ((mant & 0x3ffu) << 13));
}

inline float BF16ToFloat(uint16_t b) { return BitsToFloat(static_cast<uint32_t>(b) << 16); }

// Keeps the compiler from fusing a rounded product into a following add or
// subtract (GCC contracts even intrinsics into FMA when FMA is enabled); the
// dequantizers must round exactly where numpy rounds.
inline float Rounded(float v) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __asm__("" : "+x"(v));
  return v;
#else
  volatile float r = v;
  return r;
#endif
}

// The eight 6-bit scales and minimums of a Q4_K block, from its 12 bytes:
// bytes 0-3 hold scales 0-3 (low 6 bits) and the top bits of scales 4-7,
// bytes 4-7 the same for the minimums, bytes 8-11 the low 4 bits of scales 4-7
// (low nibble) and minimums 4-7 (high nibble).
inline void UnpackQ4KScales(const uint8_t* s12, uint8_t sc[8], uint8_t m[8]) {
  const uint32_t w0 = LoadU32(s12), w1 = LoadU32(s12 + 4), w2 = LoadU32(s12 + 8);
  const uint32_t sc_lo = w0 & 0x3f3f3f3fu;
  const uint32_t m_lo = w1 & 0x3f3f3f3fu;
  const uint32_t sc_hi = (w2 & 0x0f0f0f0fu) | ((w0 >> 2) & 0x30303030u);
  const uint32_t m_hi = ((w2 >> 4) & 0x0f0f0f0fu) | ((w1 >> 2) & 0x30303030u);
  std::memcpy(sc, &sc_lo, 4);
  std::memcpy(sc + 4, &sc_hi, 4);
  std::memcpy(m, &m_lo, 4);
  std::memcpy(m + 4, &m_hi, 4);
}

}  // namespace

}  // namespace hearth::cpu

#endif  // HEARTH_BACKENDS_CPU_QUANT_BLOCKS_H_
