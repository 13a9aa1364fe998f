// gpu_ops_train.cu — LORA_MUL_MAT and the backward ops of LoRA training on
// the GPU plugin: each op's contract and its kernels.
#include <string>

#include "backends/gpu/gpu_ops.h"

namespace hearth::gpu {

using plugin::StrFormat;

bool IsTrainOp(uint32_t op) { return op >= HEARTH_OP_LORA_MUL_MAT && op < HEARTH_OP_COUNT_; }

bool CheckTrainOp(const Prepared& p, std::string* why) {
  *why = StrFormat("%s is not implemented by this plugin yet", ops::Name(p));
  return false;
}

Error LaunchTrainOp(Stream, const Prepared&, int*, int) { return kSuccess; }

}  // namespace hearth::gpu
