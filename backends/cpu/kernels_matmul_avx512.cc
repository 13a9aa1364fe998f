// kernels_matmul_avx512.cc — the AVX-512 tier's kernel choice: the AVX-512
// VNNI tile kernels where a format has them, the AVX2 ones (which every
// AVX-512 CPU runs) for the rest. Phase 1 stays on the AVX2 quantizer, so the
// activation scratch is byte-identical on every ISA.
#include <cstdint>

#include "backends/cpu/quant_dispatch.h"

namespace hearth::cpu {

TileKernel Avx512TileKernel(uint32_t w_dtype) {
  TileKernel k;
  switch (XFormatFor(w_dtype)) {
    case XFormat::kQ8Block32:
      k = Avx512Q0TileKernel(w_dtype);
      break;
    case XFormat::kQ8Block256:
      k = Avx512QKTileKernel(w_dtype);
      break;
    case XFormat::kF32:
      break;
  }
  const TileKernel avx2 = Avx2TileKernel(w_dtype);
  if (k.fn == nullptr) return avx2;
  // Repacked Q4_0 runs the AVX2 kernels of its layout (8 rows per vector).
  k.x8_decode_fn = avx2.x8_decode_fn;
  k.x8_job_fn = avx2.x8_job_fn;
  return k;
}

}  // namespace hearth::cpu
