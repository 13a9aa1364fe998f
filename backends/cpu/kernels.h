// kernels.h — the CPU backend's numeric kernels: dequantization and matrix
// products for every weight format, each with a plain reference beside the
// optimized path. No threads live here; callers split work by (ith, nth).
#ifndef HEARTH_BACKENDS_CPU_KERNELS_H_
#define HEARTH_BACKENDS_CPU_KERNELS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "backends/common/plugin_common.h"

namespace hearth::cpu {

// Arguments these kernels reject are the caller's to report: every function
// below does nothing (writes nothing) for a dtype KernelSupportsDtype() denies,
// a length that is not a whole number of blocks, or MatMulArgs that
// MatMulCheck() rejects. Nothing here aborts.

// True for the formats these kernels implement: F32, F16, BF16, Q8_0, Q4_0,
// Q5_0, Q4_1, Q4_K, Q6_K.
bool KernelSupportsDtype(uint32_t dtype);

// Plain scalar dequantization of `n` elements (a multiple of the block size)
// of `dtype` (hearth_dtype). Byte-exact with the gguf Python dequantizers.
void DequantizeRowRef(uint32_t dtype, const void* src, float* dst, int64_t n);
// Same result, SIMD where the CPU has it.
void DequantizeRow(uint32_t dtype, const void* src, float* dst, int64_t n);

// How a weight's rows lie in memory. kPlain: row m at w + m * w_row_bytes,
// GGUF blocks in order. The x8 layouts (the placement hook's repacking,
// docs/cpu-kernels.md): rows in groups of 8; the group of rows 8g..8g+7
// takes the bytes rows 8g..8g+7 would take plainly, and holds per block b
// (8 plain blocks' bytes, at 8 * b * block bytes from the group's start)
// the 8 rows' f16 scales, then chunks of 32 bytes: chunk c holds row r's
// quant bytes 4c..4c+3 at 4r. kQ4_0x8 (Q4_0, 4 chunks): the low nibbles of
// chunk c are elements 4c..4c+3 of every row and the high nibbles elements
// 16+4c..16+4c+3. kQ8_0x8 (Q8_0, 8 chunks): chunk c is elements 4c..4c+3.
// Either way one vector load feeds 8 rows. kQ4_Kx8 (Q4_K) takes 148 bytes
// per row and super-block instead of 144 (its 6-bit sub-block scales and
// minimums are stored as bytes): per super-block of 8 rows (1184 bytes) the
// 8 d, the 8 dmin (f16), the sub-block scales [sub-block][row] and minimums
// [sub-block][row] as bytes, then for each pair p of sub-blocks 8 chunks of
// 32 bytes, chunk g holding row r's quant bytes 32p+4g..32p+4g+3 at 4r (low
// nibbles: elements 64p+4g.., sub-block 2p; high: 64p+32+4g.., 2p+1).
// kQ6_Kx8 (Q6_K, same size): per super-block of 8 rows (1680 bytes) the 8 d
// (f16), the scales [scale][row] (int8), the low bits as 4 quarters u of 8
// chunks (chunk g of quarter u: row r's ql bytes 32u+4g..32u+4g+3 at 4r),
// the high bits as 2 halves of 8 chunks (row r's qh bytes 32h+4g.. at 4r).
enum class WeightLayout : uint8_t {
  kPlain = 0,
  kQ4_0x8 = 1,
  kQ8_0x8 = 2,
  kQ4_Kx8 = 3,
  kQ6_Kx8 = 4
};
inline constexpr int kX8Rows = 8;
// Byte offsets inside one super-block of 8 rows of kQ4_Kx8 and kQ6_Kx8.
inline constexpr int64_t kQ4_Kx8Dmin = 16, kQ4_Kx8Sc = 32, kQ4_Kx8M = 96, kQ4_Kx8Qs = 160;
inline constexpr int64_t kQ4_Kx8Bytes = kQ4_Kx8Qs + kX8Rows * 128;  // 1184
inline constexpr int64_t kQ6_Kx8Sc = 16, kQ6_Kx8Ql = 144, kQ6_Kx8Qh = kQ6_Kx8Ql + kX8Rows * 128;
inline constexpr int64_t kQ6_Kx8Bytes = kQ6_Kx8Qh + kX8Rows * 64;  // 1680, as 8 plain blocks
// The dtype an x8 layout holds (0 for kPlain and unknown values).
uint32_t X8Dtype(WeightLayout layout);
// Bytes one row of ne0 elements takes in `layout` (a group of 8 rows takes
// 8 times that): the plain row bytes but for kQ4_Kx8. 0 for a bad ne0.
int64_t LayoutRowBytes(WeightLayout layout, uint32_t dtype, int64_t ne0);

// The layout weight_place gives a 2-D weight of `dtype` with `rows` rows of
// ne0 elements, plain rows `row_bytes` apart: kQ4_0x8 / kQ8_0x8 / kQ4_Kx8 /
// kQ6_Kx8 for Q4_0 / Q8_0 / Q4_K / Q6_K with whole groups of rows laid out
// contiguously, else kPlain.
WeightLayout RepackLayoutFor(uint32_t dtype, int64_t ne0, int64_t rows, int64_t row_bytes);
// Writes the `rows` plain rows at src (row_bytes apart, contiguous) into dst
// (rows * LayoutRowBytes bytes) in `layout`.
void RepackWeight(WeightLayout layout, uint32_t dtype, const uint8_t* src, int64_t row_bytes,
                  int64_t rows, uint8_t* dst);
// Row m of a weight whose row 0 is at w, in `layout` with rows row_bytes
// apart (LayoutRowBytes; groups of 8 rows 8 * row_bytes apart), as n
// floats: plain scalar dequantization for the Ref version, SIMD where the
// CPU has it for the other.
void WeightRowRef(uint32_t dtype, WeightLayout layout, const uint8_t* w, int64_t row_bytes,
                  int64_t m, float* dst, int64_t n);
void WeightRow(uint32_t dtype, WeightLayout layout, const uint8_t* w, int64_t row_bytes, int64_t m,
               float* dst, int64_t n);

// y[n, m] = sum_k x[n, k] * w[m, k] for n < N, m < M, k < K.
// Row m of w starts at w + m * w_row_bytes (w_layout kPlain), or w is the
// start of a group of rows of a repacked weight whose rows take
// w_row_bytes = LayoutRowBytes each; x and y are F32 with row strides in
// elements.
struct MatMulArgs {
  uint32_t w_dtype = 0;
  WeightLayout w_layout = WeightLayout::kPlain;
  const uint8_t* w = nullptr;
  int64_t w_row_bytes = 0;
  const float* x = nullptr;
  int64_t x_row_stride = 0;
  float* y = nullptr;
  int64_t y_row_stride = 0;
  int64_t K = 0, M = 0, N = 0;
};

// Empty when the kernels accept `a`; otherwise what is wrong with it, e.g.
// "K = 100 is not a multiple of the Q4_K block size (256)". Callers prefix the
// tensor's name.
std::string MatMulCheck(const MatMulArgs& a);

// Bytes of scratch the two phases below need (e.g. x quantized to Q8); 0 for
// float weights. The scratch must be aligned to at least 4 bytes (64 is best).
size_t MatMulScratchBytes(uint32_t w_dtype, int64_t K, int64_t N);
// Phase 1: thread ith of nth prepares its share of the activations in scratch.
void MatMulPrepare(const MatMulArgs& a, void* scratch, int ith, int nth);
// Phase 2, after every thread finished phase 1: thread ith computes its
// share of y.
void MatMulCompute(const MatMulArgs& a, const void* scratch, int ith, int nth);
// Reference: dequantize w with WeightRowRef, accumulate in double.
void MatMulRef(const MatMulArgs& a);

// "F32", "Q4_K", … ("unknown" for values this build does not know).
using plugin::DtypeName;

// The ISA the fast paths use on this CPU: "avx512", "avx2" or "scalar".
const char* KernelIsa();
// F32 lanes of the vectors the active kernels use (8 for AVX2, 1 scalar).
uint32_t KernelSimdWidth();

}  // namespace hearth::cpu

#endif  // HEARTH_BACKENDS_CPU_KERNELS_H_
