// gpu_kernels.h — the host side of hearth's GPU kernels (gpu_kernels.cu):
// one launcher per op family, over tensors the plugin has already checked
// (gpu_backend.cu). Launchers only enqueue work on the stream; errors of the
// launch itself come back as the runtime's error code.
#ifndef HEARTH_BACKENDS_GPU_GPU_KERNELS_H_
#define HEARTH_BACKENDS_GPU_GPU_KERNELS_H_

#include <cstdint>

#include "backends/gpu/gpu_port.h"

namespace hearth::gpu {

// A checked tensor on the device: element (i0, i1, i2, i3) of a plain dtype
// is at data + sum(i * nb); a row of a block format is nb[1] apart and holds
// ne[0] / block elements in whole blocks.
struct TRef {
  uint8_t* data = nullptr;
  uint32_t dtype = 0;
  int64_t ne[4] = {1, 1, 1, 1};
  int64_t nb[4] = {0, 0, 0, 0};
  uint64_t span = 0;  // bytes from data the view touches (CheckDesc's; host checks only)
};

// Elementwise ops (ElemOp) over out's elements: a op b, b broadcast per dim
// (b.ne[d] == 1), or a * scale.
enum class ElemOp : int { kAdd, kMul, kScale, kSiluMul, kGeluMul, kCopy };
Error LaunchElementwise(Stream s, ElemOp op, const TRef& out, const TRef& a, const TRef& b,
                        float scale);
Error LaunchRmsNorm(Stream s, const TRef& out, const TRef& x, const TRef* w, float eps);
Error LaunchSoftmax(Stream s, const TRef& out, const TRef& x, float scale);
// Ids outside [0, table rows) raise *flag to at least flag_value (the
// plugin reads it back after the graph).
Error LaunchGetRows(Stream s, const TRef& out, const TRef& table, const TRef& ids, int* flag,
                    int flag_value);
Error LaunchMulMat(Stream s, const TRef& out, const TRef& w, const TRef& x);
Error LaunchRope(Stream s, const TRef& out, const TRef& x, const TRef& pos, const TRef* ff,
                 float theta_base, float freq_scale, int n_rot, int mode);

// ATTENTION (hearth_plugin.h): a check of every token's sequence, position
// and pages (raising *flag to flag_value), the cache write in token order
// (the later token wins a shared row), then one block per (head, token) with
// a running softmax over chunks of cache rows. Kernels after a raised flag do
// nothing. seq, blocks, lse may be null. dv <= kMaxAttentionDv.
constexpr int64_t kMaxAttentionDv = 1024;
struct AttentionArgs {
  TRef out, q, k, v, k_cache, v_cache, pos, seq, blocks, lse;
  bool has_seq = false, has_blocks = false, has_lse = false;
  float scale = 1, softcap = 0;
  int window = 0;
};
// Split-K (flash decoding) for batches of few (token, head) items, decode
// above all: each item's cache rows are cut into AttentionSplits(a) ranges
// of whole chunks that run as separate blocks and leave a partial result
// (running max, sum, weighted V) in `work`; one block per item then combines
// them. AttentionWorkBytes(a) is what `work` must hold (0: no split, work
// may be null).
int64_t AttentionSplits(const AttentionArgs& a);
int64_t AttentionWorkBytes(const AttentionArgs& a);
Error LaunchAttention(Stream s, const AttentionArgs& a, float* work, int* flag, int flag_value);

}  // namespace hearth::gpu

#endif  // HEARTH_BACKENDS_GPU_GPU_KERNELS_H_
