// encode.h — host-side encoders from float32 to the GGUF weight formats that
// `hearth export` writes: F16, BF16 and Q8_0.
//
// Each one produces the bytes of the `gguf` Python package's
// gguf.quants.quantize() bit for bit (tests/unit/format_encode_test.cc checks
// them against fixtures that package wrote), so a model exported by hearth
// matches one converted by the reference tool. Portable scalar code, no
// intrinsics: the conversions run on any host, and the output bytes do not
// depend on the CPU's half-precision instructions (F16C quiets signalling
// NaNs; numpy, the reference, does not).
#ifndef HEARTH_SDK_SRC_FORMAT_ENCODE_H_
#define HEARTH_SDK_SRC_FORMAT_ENCODE_H_

#include <cstdint>

#include "absl/status/status.h"

namespace hearth::encode {

// IEEE binary16 bits of `x`, rounded to nearest even. Values from 65520 up
// become infinity, as do infinities; tiny values become F16 subnormals or
// zero (sign kept). A NaN stays a NaN of the same sign that keeps the top 10
// payload bits (numpy's rule: a payload that would vanish becomes 1).
uint16_t F32ToF16Bits(float x);
// bfloat16 bits of `x`, rounded to nearest even (the largest floats round to
// infinity). A NaN becomes a quiet NaN of the same sign with the top payload
// bits kept (ggml's and gguf's rule).
uint16_t F32ToBF16Bits(float x);

// n values; src and dst must not overlap. n <= 0 writes nothing.
void F32ToF16(const float* src, uint16_t* dst, int64_t n);
void F32ToBF16(const float* src, uint16_t* dst, int64_t n);

// ggml's Q8_0: for each block of 32 values, d = max|x| / 127 stored as an F16
// scale (2 bytes, little-endian) followed by 32 int8 q = round(x / d), ties
// away from zero (computed as x * (1/d) in float32, as the reference does).
// dst receives n / 32 * 34 bytes. Errors (INVALID_ARGUMENT, nothing useful
// written): n negative or not a multiple of 32, a null pointer with n > 0, a
// NaN or infinite input (named by index), or a block whose scale would
// round past the largest F16 (max|x| from about 65520 * 127 = 8321040): gguf writes
// an infinite scale there, which decodes to inf/NaN, so hearth refuses.
absl::Status QuantizeQ8_0(const float* src, int64_t n, uint8_t* dst);

}  // namespace hearth::encode

#endif  // HEARTH_SDK_SRC_FORMAT_ENCODE_H_
