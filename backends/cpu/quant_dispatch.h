// quant_dispatch.h — the seam between the ISA-neutral driver of the matrix
// products (kernels_matmul.cc: argument checks, work split, phases) and the
// per-ISA kernels (scalar in kernels_*_scalar.cc, AVX2 in *_avx2.cc, AVX-512
// in *_avx512.cc).
// Internal to the CPU backend; tests include it to pin an ISA.
#ifndef HEARTH_BACKENDS_CPU_QUANT_DISPATCH_H_
#define HEARTH_BACKENDS_CPU_QUANT_DISPATCH_H_

#include <cstddef>
#include <cstdint>

namespace hearth::cpu {

// Ordered: each level runs on every CPU that runs the next one up.
enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

// The ISA the kernels use: a test's pin if there is one, else the best this
// CPU runs, lowered to HEARTH_CPU_ISA (read once) if that names a lower one.
Isa ActiveIsa();
// Pins the ISA (tests and benchmarks), overriding HEARTH_CPU_ISA; a request
// the CPU cannot run falls back to the best level below it that it runs.
// Not thread-safe with running kernels.
void ForceIsaForTesting(Isa isa);
void ClearForcedIsaForTesting();
// AVX2, FMA and F16C, with YMM state enabled by the OS.
bool CpuHasAvx2();
// All of the above plus AVX-512 F, BW, VL and VNNI, with ZMM state enabled.
bool CpuHasAvx512();
// The best level the CPU runs.
Isa BestIsa();
// The level a HEARTH_CPU_ISA value asks for, given the best the CPU runs:
// "scalar", "avx2" or "avx512" capped at `best`; `best` for null, empty or
// unknown values (a value can lower the level, never raise it).
Isa IsaFromEnvValue(const char* value, Isa best);
const char* IsaName(Isa isa);

// How activations are prepared for a weight format in phase 1.
enum class XFormat { kF32, kQ8Block32, kQ8Block256 };
XFormat XFormatFor(uint32_t w_dtype);

// One register tile of the product: y[n0+j, m0+i] for i < rw, j < rx.
struct TileArgs {
  const uint8_t* w;  // row m0 of the weights
  int64_t w_row_bytes;
  const uint8_t* x;  // row n0 of x (F32) or of its quantized blocks
  int64_t x_row_bytes;
  int64_t k_units;       // K for float weights, K / block elements otherwise
  float* y;              // &y[n0, m0]
  int64_t y_row_stride;  // elements
  int rw, rx;
};
using TileFn = void (*)(const TileArgs&);

// The tile kernels of one ISA for one weight format.
struct TileKernel {
  TileFn fn = nullptr;
  int max_rw = 1;  // rw and rx may be anything from 1 to these
  int max_rx = 1;
  // When N == 1 (decode, memory-bound): tiles of decode_rw (<= max_rw) rows
  // by 1, computed by decode_fn if set, else by fn. Every output of a product
  // is summed in one order whatever the tile, so results do not depend on nth.
  int decode_rw = 1;
  TileFn decode_fn = nullptr;
  // When N > 1 and set: computes a whole job of the work split at once
  // (TileArgs with rw = the job's rows of w, up to 64, and rx = its rows of
  // x, up to 64), e.g. repacking the job's weight rows once into a layout
  // that every x row of the job then reads. Each output is still summed in
  // one order whatever the job's extent.
  TileFn job_fn = nullptr;
  // The same for weights in the format's x8 layout (kernels.h): t.w is the
  // start of a group of 8 rows and t.rw (at most 8 for x8_decode_fn, up to
  // 64 for x8_job_fn, in whole groups but the last) says how many rows to
  // write. Both are set for Q4_0, Q8_0, Q4_K and Q6_K on every ISA.
  TileFn x8_decode_fn = nullptr;
  TileFn x8_job_fn = nullptr;
};

TileKernel ScalarTileKernel(uint32_t w_dtype);
// Quantizes blocks [b0, b1) (block size per `fmt`) of the row starting at `x`
// into the row of blocks starting at `dst`.
void ScalarQuantizeX(XFormat fmt, const float* x, int64_t b0, int64_t b1, uint8_t* dst);

// Defined in the AVX2 files; call only when CpuHasAvx2().
TileKernel Avx2TileKernel(uint32_t w_dtype);
TileKernel Avx2FloatTileKernel(uint32_t w_dtype);
TileKernel Avx2Q0TileKernel(uint32_t w_dtype);
TileKernel Avx2QKTileKernel(uint32_t w_dtype);
void Avx2QuantizeX(XFormat fmt, const float* x, int64_t b0, int64_t b1, uint8_t* dst);
void Avx2DequantizeRow(uint32_t dtype, const void* src, float* dst, int64_t n);

// Defined in the AVX-512 files; call only when CpuHasAvx512(). Formats
// without an AVX-512 kernel get the AVX2 one.
TileKernel Avx512TileKernel(uint32_t w_dtype);
// The AVX-512 kernel of a 32-element (Q0) or 256-element (QK) format, or
// fn == nullptr if it has none.
TileKernel Avx512Q0TileKernel(uint32_t w_dtype);
TileKernel Avx512QKTileKernel(uint32_t w_dtype);

}  // namespace hearth::cpu

#endif  // HEARTH_BACKENDS_CPU_QUANT_DISPATCH_H_
