// lora_file_internal.h — what the PEFT and GGUF LoRA parsers share: the
// projections hearth applies LoRA to, layer-index parsing, the scale, and
// the final sort/count of a LoraFile.
#ifndef HEARTH_SDK_SRC_LORA_LORA_FILE_INTERNAL_H_
#define HEARTH_SDK_SRC_LORA_LORA_FILE_INTERNAL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "sdk/src/common/status.h"
#include "sdk/src/lora/lora_file.h"

namespace hearth::lora_internal {

// Layers are numbered below this; a bigger index is a corrupt name.
inline constexpr int64_t kMaxLayers = 100000;

// "0" … "99999", no sign, no leading zero (one spelling per layer).
std::optional<int64_t> ParseLayerIndex(std::string_view digits);

// The GGUF projection names hearth applies LoRA to: attn_q attn_k attn_v
// attn_output ffn_gate ffn_up ffn_down.
bool IsLoraProjection(std::string_view gguf_name);
// "attn_q, attn_k, …" for messages.
const char* LoraProjectionList();

// Why `alpha` (as the file gives it) cannot be a LoRA alpha, "" if it can.
// It must be finite, fit in a float and not be zero or subnormal: zero
// switches the adapter off, and so does a subnormal alpha in effect, since
// arithmetic that flushes denormals to zero (oneDNN, SIMD kernels under
// FTZ/DAZ) reads it as 0. The same rule for PEFT and GGUF files, so one
// adapter is accepted or refused whichever way it is stored. The text
// follows "<key> is <value>".
std::string AlphaProblem(double alpha);
// A scale (alpha / r, alpha / sqrt(r)) is usable when it is a normal float.
bool UsableScale(float scale);

// True for HEARTH_DTYPE_F32 / F16 / BF16.
bool IsLoraDtype(uint32_t hearth_dtype);

// Sorts the targets by layer, within a layer in forward order (attn_q,
// attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down), output last; sums
// n_params, and refuses a file without targets ("<file>: no LoRA tensors").
absl::Status FinishLoraFile(LoraFile* file, std::string_view file_for_errors);

}  // namespace hearth::lora_internal

#endif  // HEARTH_SDK_SRC_LORA_LORA_FILE_INTERNAL_H_
