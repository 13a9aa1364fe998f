// autograd.h — reverse-mode differentiation over the core's step graph:
// the backward nodes are appended to the SAME Graph the architecture built,
// so the planner keeps each forward activation alive exactly until the last
// backward node that reads it, and plugins only implement ops.
//
// One rule per forward op (autograd.cc), pruned to the paths from the
// trainable tensors to the differentiated output: a tensor gets a gradient
// only when it depends on a trainable tensor AND the output depends on it.
// Frozen weights (quantized or not) are only ever read: MUL_MAT_T
// dequantizes them on the fly.
#ifndef HEARTH_SDK_SRC_TRAIN_AUTOGRAD_H_
#define HEARTH_SDK_SRC_TRAIN_AUTOGRAD_H_

#include <vector>

#include "absl/status/statusor.h"
#include "hearth/hearth_plugin.h"
#include "sdk/src/graph/graph.h"

namespace hearth::train {

// A trainable tensor: `value` is a LoRA A ([K, R]) or B^T ([M, R]) exactly
// as a LORA_MUL_MAT node of the graph reads it (matched by buffer and
// offset); `grad` is an F32 tensor of the same shape that the backward
// ADDS d(output)/d(value) to (OUTER's accumulate input), so graphs run one
// after another (gradient accumulation) sum into it until the optimizer
// zeroes it.
struct Param {
  hearth_tensor_desc value;
  hearth_tensor_desc grad;
};

// Appends to `g` the backward of every node already in it, seeded with
// d(loss)/d(`output`) = tensor `d_output` (same shape as `output`).
// Rules: MUL_MAT(w, x) → dx = MUL_MAT_T(w, dy); LORA_MUL_MAT(y, a, b, x, s)
// → dy to y, u = MUL_MAT(a, x), d(b) += OUTER(dy, s·u), du = s·MUL_MAT(b, dy),
// d(a) += OUTER(x, du), dx = MUL_MAT_T(a, du); RMS_NORM → RMS_NORM_BACK;
// ROPE → ROPE_BACK; ATTENTION → ATTENTION_BACK (needs the forward's lse:
// KvCacheRefs::with_lse); SILU_MUL / GELU_MUL → their BACK; ADD → dy to
// both (a broadcast operand must be frozen); SCALE → SCALE; a full reshape
// view passes its gradient to its base; several contributions to one tensor
// are ADDed. An op without a rule on a path that needs one, or a gradient
// needed for a frozen operand (a MUL_MAT weight, an embedding table), is
// UNIMPLEMENTED naming the op. Returns for each param whether any
// gradient reached it.
absl::StatusOr<std::vector<bool>> AppendBackward(Graph* g, int output, int d_output,
                                                 const std::vector<Param>& params);

}  // namespace hearth::train

#endif  // HEARTH_SDK_SRC_TRAIN_AUTOGRAD_H_
