// kernels_dequant.cc — the scalar reference dequantizers (bit-exact with the
// gguf Python package's numpy code, which computes in float32 and rounds
// after every operation) and DequantizeRow's choice of ISA.
#include <cstdint>
#include <cstring>

#include "backends/cpu/kernels.h"
#include "backends/cpu/quant_blocks.h"
#include "backends/cpu/quant_dispatch.h"
#include "hearth/hearth_plugin.h"

namespace hearth::cpu {
namespace {

void DequantQ8_0(const uint8_t* b, float* y) {
  const float d = HalfToFloat(LoadU16(b));
  for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
}

void DequantQ4_0(const uint8_t* b, float* y) {
  const float d = HalfToFloat(LoadU16(b));
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = d * static_cast<float>((qs[j] & 0x0f) - 8);
    y[j + 16] = d * static_cast<float>((qs[j] >> 4) - 8);
  }
}

void DequantQ5_0(const uint8_t* b, float* y) {
  const float d = HalfToFloat(LoadU16(b));
  const uint32_t qh = LoadU32(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    const int lo = (qs[j] & 0x0f) | static_cast<int>(((qh >> j) & 1u) << 4);
    const int hi = (qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
    y[j] = d * static_cast<float>(lo - 16);
    y[j + 16] = d * static_cast<float>(hi - 16);
  }
}

// numpy: (d * q) + m, the product rounded to float before the add.
void DequantQ4_1(const uint8_t* b, float* y) {
  const float d = HalfToFloat(LoadU16(b));
  const float m = HalfToFloat(LoadU16(b + 2));
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = Rounded(d * static_cast<float>(qs[j] & 0x0f)) + m;
    y[j + 16] = Rounded(d * static_cast<float>(qs[j] >> 4)) + m;
  }
}

void DequantQ4_K(const uint8_t* b, float* y) {
  const float d = HalfToFloat(LoadU16(b));
  const float dmin = HalfToFloat(LoadU16(b + 2));
  uint8_t sc[8], m[8];
  UnpackQ4KScales(b + kQ4_KScales, sc, m);
  const uint8_t* qs = b + kQ4_KQs;
  for (int s = 0; s < 8; ++s) {
    // numpy: (d * sc) * q - (dmin * m), each product rounded to float.
    const float ds = Rounded(d * static_cast<float>(sc[s]));
    const float dm = Rounded(dmin * static_cast<float>(m[s]));
    const uint8_t* q = qs + 32 * (s / 2);
    const int shift = (s & 1) * 4;
    for (int l = 0; l < 32; ++l) {
      const float v = Rounded(ds * static_cast<float>((q[l] >> shift) & 0x0f));
      y[32 * s + l] = v - dm;
    }
  }
}

void DequantQ6_K(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + kQ6_KQh;
  const int8_t* scales = reinterpret_cast<const int8_t*>(b + kQ6_KScales);
  const float d = HalfToFloat(LoadU16(b + kQ6_KD));
  for (int h = 0; h < 2; ++h) {
    for (int t = 0; t < 4; ++t) {
      for (int l = 0; l < 32; ++l) {
        const int e = 128 * h + 32 * t + l;
        const uint8_t lq = ql[64 * h + l + 32 * (t & 1)];
        const int lo = t < 2 ? (lq & 0x0f) : (lq >> 4);
        const int hi = (qh[32 * h + l] >> (2 * t)) & 3;
        const float ds = Rounded(d * static_cast<float>(scales[e / 16]));
        y[e] = ds * static_cast<float>((lo | (hi << 4)) - 32);
      }
    }
  }
}

using BlockDequant = void (*)(const uint8_t*, float*);

BlockDequant BlockDequantFor(uint32_t dtype) {
  switch (dtype) {
    case HEARTH_DTYPE_Q8_0:
      return DequantQ8_0;
    case HEARTH_DTYPE_Q4_0:
      return DequantQ4_0;
    case HEARTH_DTYPE_Q5_0:
      return DequantQ5_0;
    case HEARTH_DTYPE_Q4_1:
      return DequantQ4_1;
    case HEARTH_DTYPE_Q4_K:
      return DequantQ4_K;
    case HEARTH_DTYPE_Q6_K:
      return DequantQ6_K;
    default:
      return nullptr;
  }
}

bool DequantArgsOk(uint32_t dtype, const void* src, float* dst, int64_t n) {
  if (!KernelSupportsDtype(dtype) || n < 0) return false;
  if (n % hearth_dtype_block_elems(dtype) != 0) return false;
  return n == 0 || (src != nullptr && dst != nullptr);
}

}  // namespace

bool KernelSupportsDtype(uint32_t dtype) {
  switch (dtype) {
    case HEARTH_DTYPE_F32:
    case HEARTH_DTYPE_F16:
    case HEARTH_DTYPE_BF16:
    case HEARTH_DTYPE_Q8_0:
    case HEARTH_DTYPE_Q4_0:
    case HEARTH_DTYPE_Q5_0:
    case HEARTH_DTYPE_Q4_1:
    case HEARTH_DTYPE_Q4_K:
    case HEARTH_DTYPE_Q6_K:
      return true;
    default:
      return false;
  }
}

void DequantizeRowRef(uint32_t dtype, const void* src, float* dst, int64_t n) {
  if (!DequantArgsOk(dtype, src, dst, n) || n == 0) return;
  const uint8_t* s = static_cast<const uint8_t*>(src);
  switch (dtype) {
    case HEARTH_DTYPE_F32:
      std::memcpy(dst, s, static_cast<size_t>(n) * 4);
      return;
    case HEARTH_DTYPE_F16:
      for (int64_t i = 0; i < n; ++i) dst[i] = HalfToFloat(LoadU16(s + 2 * i));
      return;
    case HEARTH_DTYPE_BF16:
      for (int64_t i = 0; i < n; ++i) dst[i] = BF16ToFloat(LoadU16(s + 2 * i));
      return;
    default:
      break;
  }
  const BlockDequant fn = BlockDequantFor(dtype);
  const int64_t be = hearth_dtype_block_elems(dtype), bb = hearth_dtype_block_bytes(dtype);
  for (int64_t i = 0; i < n / be; ++i) fn(s + i * bb, dst + i * be);
}

void DequantizeRow(uint32_t dtype, const void* src, float* dst, int64_t n) {
  if (!DequantArgsOk(dtype, src, dst, n) || n == 0) return;
  if (ActiveIsa() >= Isa::kAvx2) {
    Avx2DequantizeRow(dtype, src, dst, n);
  } else {
    DequantizeRowRef(dtype, src, dst, n);
  }
}

}  // namespace hearth::cpu
