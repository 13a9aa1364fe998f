// encode.cc — float32 to F16, BF16 and Q8_0, bit-compatible with the `gguf`
// Python package (see encode.h for the contract, tests/data/encode for the
// fixtures). Rounding is done on the integer bits, so the result does not
// depend on the FPU's rounding mode or on compiler flags.
#include "sdk/src/format/encode.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace hearth::encode {
namespace {

constexpr int64_t kQ8_0BlockElems = 32;
constexpr int64_t kQ8_0BlockBytes = 34;

uint32_t Bits(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof(b));
  return b;
}

// Shifts `m` right by `s` (1..31) rounding to nearest, ties to even.
uint32_t ShiftRoundEven(uint32_t m, unsigned s) {
  const uint32_t q = m >> s;
  const uint32_t rem = m & ((uint32_t{1} << s) - 1);
  const uint32_t half = uint32_t{1} << (s - 1);
  return (rem > half || (rem == half && (q & 1))) ? q + 1 : q;
}

}  // namespace

uint16_t F32ToF16Bits(float x) {
  const uint32_t b = Bits(x);
  const auto sign = static_cast<uint16_t>((b >> 16) & 0x8000u);
  const uint32_t a = b & 0x7fffffffu;
  if (a >= 0x7f800000u) {
    if (a == 0x7f800000u) return sign | 0x7c00u;
    // NaN: keep the top 10 payload bits; if they are all zero the result
    // would read as infinity, so set the lowest one instead.
    uint32_t payload = (a >> 13) & 0x3ffu;
    if (payload == 0) payload = 1;
    return static_cast<uint16_t>(sign | 0x7c00u | payload);
  }
  // 65520 (f32 bits 0x477ff000) is the tie between 65504, the largest half,
  // and 65536; 65504's mantissa is odd, so the tie and all above go to inf.
  if (a >= 0x477ff000u) return sign | 0x7c00u;
  const uint32_t exp = a >> 23;
  if (exp >= 113) {
    // Normal half: rebias the exponent (127 -> 15) and round 23 mantissa bits
    // to 10; a carry out of the mantissa correctly bumps the exponent.
    const uint32_t widened = ((exp - 112) << 23) | (a & 0x7fffffu);
    return static_cast<uint16_t>(sign | ShiftRoundEven(widened, 13));
  }
  // Below 2^-14: a half subnormal counts units of 2^-24. With the implicit bit,
  // the value is m * 2^(exp - 150) (exp 0 means an f32 subnormal: m * 2^-149),
  // i.e. m >> (126 - exp) units.
  const uint32_t m = exp == 0 ? a : ((a & 0x7fffffu) | 0x800000u);
  const unsigned shift = exp == 0 ? 125 : 126 - exp;
  if (shift > 24) return sign;  // below half of 2^-24: rounds to zero
  return static_cast<uint16_t>(sign | ShiftRoundEven(m, shift));
}

uint16_t F32ToBF16Bits(float x) {
  const uint32_t b = Bits(x);
  if ((b & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<uint16_t>((b >> 16) | 0x0040u);  // NaN: force the quiet bit
  }
  // Adding 0x7fff plus the kept lsb rounds to nearest even; the largest
  // floats carry into the exponent and become infinity, as they should.
  return static_cast<uint16_t>((uint64_t{b} + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}

void F32ToF16(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = F32ToF16Bits(src[i]);
}

void F32ToBF16(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = F32ToBF16Bits(src[i]);
}

absl::Status QuantizeQ8_0(const float* src, int64_t n, uint8_t* dst) {
  if (n < 0 || n % kQ8_0BlockElems != 0) {
    return absl::InvalidArgumentError(absl::StrCat("Q8_0: element count ", n,
                                                   " is not a non-negative multiple of the "
                                                   "block size (",
                                                   kQ8_0BlockElems, ")"));
  }
  if (n > 0 && (src == nullptr || dst == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Q8_0: null ", src == nullptr ? "source" : "destination", " for ", n, " elements"));
  }
  for (int64_t blk = 0; blk < n / kQ8_0BlockElems; ++blk) {
    const float* x = src + blk * kQ8_0BlockElems;
    uint8_t* out = dst + blk * kQ8_0BlockBytes;
    float amax = 0.0f;
    for (int64_t j = 0; j < kQ8_0BlockElems; ++j) {
      if (!std::isfinite(x[j])) {
        return absl::InvalidArgumentError(absl::StrCat("Q8_0: element ", blk * kQ8_0BlockElems + j,
                                                       " is ", x[j],
                                                       "; only finite values can be quantized"));
      }
      amax = std::fmax(amax, std::fabs(x[j]));
    }
    const float d = amax / 127.0f;
    const uint16_t d_bits = F32ToF16Bits(d);
    if ((d_bits & 0x7c00u) == 0x7c00u) {
      return absl::InvalidArgumentError(
          absl::StrCat("Q8_0: block ", blk, " (elements ", blk * kQ8_0BlockElems, "..",
                       (blk + 1) * kQ8_0BlockElems - 1, ") has max |x| = ", amax, ", whose scale ",
                       d, " is beyond the largest F16 (65504); Q8_0 cannot represent it"));
    }
    out[0] = static_cast<uint8_t>(d_bits & 0xffu);
    out[1] = static_cast<uint8_t>(d_bits >> 8);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    // An F32-subnormal max makes 1/d overflow; the scale is then an F16 zero,
    // and the reference writes zeros (numpy casts the inf/NaN products to 0).
    const bool id_finite = std::isfinite(id);
    for (int64_t j = 0; j < kQ8_0BlockElems; ++j) {
      // |x * id| <= 127 up to one rounding, so the rounded value fits int8.
      const float q = id_finite ? std::round(x[j] * id) : 0.0f;
      out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(q));
    }
  }
  return absl::OkStatus();
}

}  // namespace hearth::encode
