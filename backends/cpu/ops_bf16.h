// ops_bf16.h — what the BF16 products of HEARTH_MUL_MAT_BF16 share (MUL_MAT
// in ops_matmul.cc, MUL_MAT_T in ops_matmul_back.cc): weight rows of any
// format rounded to bfloat16 for oneDNN's BF16 x BF16 -> F32 matmul.
#ifndef HEARTH_BACKENDS_CPU_OPS_BF16_H_
#define HEARTH_BACKENDS_CPU_OPS_BF16_H_

#include <cstdint>

#include "backends/cpu/kernels.h"

namespace hearth::cpu {

struct VecOps;

// dst[r * ld + i] = bf16(row m0 + r of w)[i] for r < rows, i < n: w a
// weight of any dtype and layout (kernels.h; rows w_row_bytes apart when
// plain), dequantized to F32 in row_f32 (n floats of the caller's) first
// where its rows are not F32 or BF16 already.
void RowsToBf16(uint32_t dtype, WeightLayout layout, const uint8_t* w, int64_t w_row_bytes,
                int64_t m0, uint16_t* dst, int64_t ld, int64_t rows, int64_t n, float* row_f32,
                const VecOps& vec);

}  // namespace hearth::cpu

#endif  // HEARTH_BACKENDS_CPU_OPS_BF16_H_
