// lora_file_internal.h — what the PEFT and GGUF LoRA parsers share: the
// projections hearth applies LoRA to, layer-index parsing, the scale, and
// the final sort/count of a LoraFile.
#ifndef HEARTH_SDK_SRC_ADAPTER_LORA_FILE_INTERNAL_H_
#define HEARTH_SDK_SRC_ADAPTER_LORA_FILE_INTERNAL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "sdk/src/adapter/lora_file.h"

namespace hearth::lora_internal {

// Layers are numbered below this; a bigger index is a corrupt name.
inline constexpr int64_t kMaxLayers = 100000;

// Debian's Abseil has its own string_view; StrCat needs this bridge.
inline absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// "0" … "99999", no sign, no leading zero (one spelling per layer).
std::optional<int64_t> ParseLayerIndex(std::string_view digits);

// The GGUF projection names hearth applies LoRA to: attn_q attn_k attn_v
// attn_output ffn_gate ffn_up ffn_down.
bool IsLoraProjection(std::string_view gguf_name);
// "attn_q, attn_k, …" for messages.
const char* LoraProjectionList();

// True for HEARTH_DTYPE_F32 / F16 / BF16.
bool IsLoraDtype(uint32_t hearth_dtype);

// Sorts the targets by layer, within a layer in forward order (attn_q,
// attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down), output last; sums
// n_params, and refuses a file without targets ("<file>: no LoRA tensors").
absl::Status FinishLoraFile(LoraFile* file, std::string_view file_for_errors);

}  // namespace hearth::lora_internal

#endif  // HEARTH_SDK_SRC_ADAPTER_LORA_FILE_INTERNAL_H_
