// lora_binding.h — what binding a parsed LoRA file to a base model needs
// that no device does: the checks against the model's architecture and
// weight shapes, and the bytes of each B in the layout LORA_MUL_MAT takes.
// lora/adapter.cc uploads what these return; fuzz/fuzz_adapter_bind.cc
// runs them on hostile files against fixed tiny models.
#ifndef HEARTH_SDK_SRC_LORA_LORA_BINDING_H_
#define HEARTH_SDK_SRC_LORA_LORA_BINDING_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sdk/src/lora/lora_file.h"
#include "sdk/src/model/architecture.h"

namespace hearth {

// Every target of `f` fits the model: same architecture (when the file
// names one), a layer the model has, a weight it has (output.weight falls
// back to a tied token_embd.weight), A's inputs and B's outputs equal to the
// weight's, A's rank equal to B's, and, where B's rows must be permuted for
// interleaved RoPE, an output count that splits into heads of even size.
// Errors start with f.path and name the tensor.
absl::Status CheckLoraAgainstModel(const LoraFile& f, const ModelConfig& c, const WeightSet& w);

// The bytes of target `i`'s B as the device takes it: [n_out, rank] (rank
// rows of n_out, in B's dtype), its outputs in the model's order (a PEFT B of
// q/k on a ROPE_NORMAL model gets GGUF's interleaved-RoPE row permutation).
// Checks target `i` itself first, with CheckLoraAgainstModel's rules and
// messages, and B's own geometry (dtype, dims, byte count), so a target the
// model would refuse, or a hand-made LoraTarget that lies, is an error.
absl::StatusOr<std::vector<uint8_t>> LoraDeviceB(const LoraFile& f, size_t i, const ModelConfig& c,
                                                 const WeightSet& w);

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_LORA_LORA_BINDING_H_
