// merge.h — `hearth export --merge`: a standalone GGUF model with LoRA
// adapters folded into the weights they target (W + sum s_i B_i A_i), every
// other tensor and all metadata copied from the model's own file.
#ifndef HEARTH_SDK_SRC_LORA_MERGE_H_
#define HEARTH_SDK_SRC_LORA_MERGE_H_

#include <string>

#include "absl/status/status.h"
#include "sdk/src/runtime/model.h"
#include "sdk/src/runtime/session.h"

namespace hearth {

// `merged_type`: "" (the base tensor's type when F32/F16/BF16, else Q8_0),
// "f32", "f16", "bf16" or "q8_0". The merge itself runs on the model's
// device (dequantize, B·A, add), rows in chunks so memory stays bounded.
absl::Status ExportMerged(const Model& model, const Session::AdapterSet& adapters,
                          const std::string& path, const std::string& merged_type);

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_LORA_MERGE_H_
