// ops_bf16.cc — weight rows to bfloat16 for the BF16 products (ops_bf16.h).
#include "backends/cpu/ops_bf16.h"

#include <cstring>

#include "backends/cpu/ops.h"
#include "backends/cpu/ops_vec.h"

namespace hearth::cpu {

void RowsToBf16(uint32_t dtype, WeightLayout layout, const uint8_t* w, int64_t w_row_bytes,
                int64_t m0, uint16_t* dst, int64_t ld, int64_t rows, int64_t n, float* row_f32,
                const VecOps& vec) {
  for (int64_t r = 0; r < rows; ++r) {
    uint16_t* d = dst + r * ld;
    if (layout != WeightLayout::kPlain) {
      WeightRowToF32(dtype, layout, w, w_row_bytes, m0 + r, row_f32, n, vec);
      vec.f32_to_bf16(d, row_f32, n);
      continue;
    }
    const uint8_t* s = w + (m0 + r) * w_row_bytes;
    if (dtype == HEARTH_DTYPE_BF16) {
      std::memcpy(d, s, static_cast<size_t>(n) * sizeof(uint16_t));
    } else if (dtype == HEARTH_DTYPE_F32) {
      vec.f32_to_bf16(d, reinterpret_cast<const float*>(s), n);
    } else {
      RowToF32(dtype, s, row_f32, n, vec);
      vec.f32_to_bf16(d, row_f32, n);
    }
  }
}

}  // namespace hearth::cpu
