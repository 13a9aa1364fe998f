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
  return k.fn != nullptr ? k : Avx2TileKernel(w_dtype);
}

}  // namespace hearth::cpu
