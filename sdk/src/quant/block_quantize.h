// block_quantize.h — float32 rows to the GGUF weight formats hearth writes:
// F32, F16, BF16, Q8_0, Q4_0, Q5_0 (bit for bit what the `gguf` Python
// package's gguf.quants.quantize() writes) and the K-quants Q4_K and Q6_K
// (llama.cpp's reference quantizers, quantize_row_q4_K_ref and
// quantize_row_q6_K_ref, which gguf-py does not implement: their output is
// checked by round-trip error bounds and by gguf-py's dequantizers).
//
// Portable scalar code with the same float operations in the same order as
// the references, so the bytes do not depend on the CPU or compiler flags
// (the core is built for baseline x86-64, so no FMA contraction changes a rounding).
#ifndef HEARTH_SDK_SRC_QUANT_BLOCK_QUANTIZE_H_
#define HEARTH_SDK_SRC_QUANT_BLOCK_QUANTIZE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace hearth::quant {

// True for the ggml types QuantizeRow writes.
bool CanQuantizeTo(uint32_t ggml_type);

// Writes `n` float32 values as `ggml_type` to `dst` (n / block_elems *
// block_bytes bytes). Errors (INVALID_ARGUMENT): a type CanQuantizeTo
// refuses, n not a multiple of the type's block size, a NaN or infinite
// input (named by index; F32/F16/BF16 accept them and keep them), a block
// whose scale overflows F16. `what` (a tensor name) starts each message.
absl::Status QuantizeRow(const std::string& what, uint32_t ggml_type, const float* src, int64_t n,
                         uint8_t* dst);

// The individual block formats (no checks beyond the block size; inputs
// finite). n is a multiple of 32 (Q4_0, Q5_0) or 256 (Q4_K, Q6_K).
void QuantizeQ4_0(const float* src, int64_t n, uint8_t* dst);
void QuantizeQ5_0(const float* src, int64_t n, uint8_t* dst);
void QuantizeQ4_K(const float* src, int64_t n, uint8_t* dst);
void QuantizeQ6_K(const float* src, int64_t n, uint8_t* dst);

// F32, F16 or BF16 bytes (little-endian) to float32; false for other types.
bool ToFloat(uint32_t ggml_type, const uint8_t* src, int64_t n, float* dst);

}  // namespace hearth::quant

#endif  // HEARTH_SDK_SRC_QUANT_BLOCK_QUANTIZE_H_
