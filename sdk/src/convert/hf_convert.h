// hf_convert.h — a Hugging Face model directory (config.json, safetensors
// weights, tokenizer.json) of an architecture hearth runs (llama, qwen2,
// gemma3) written as one GGUF file in llama.cpp's conventions
// (convert_hf_to_gguf.py): tensor names, metadata keys, llama's Q/K row
// order, Gemma's norm weights with the +1 folded in. docs/convert.md.
#ifndef HEARTH_SDK_SRC_CONVERT_HF_CONVERT_H_
#define HEARTH_SDK_SRC_CONVERT_HF_CONVERT_H_

#include <string>

#include "absl/status/status.h"
#include "sdk/src/quant/quantize_model.h"

namespace hearth::convert {

struct ConvertOptions {
  std::string type = "f16";  // a model type of quant/type_plan.h
  quant::Progress progress;  // may be empty
};

// Writes `out` (temp file + rename: it appears only when complete). Errors
// name the file and key or tensor at fault: NOT_FOUND for a missing file,
// UNIMPLEMENTED for a well-formed model hearth does not convert,
// INVALID_ARGUMENT for a malformed one.
absl::Status ConvertHfModel(const std::string& dir, const std::string& out,
                            const ConvertOptions& options);

}  // namespace hearth::convert

#endif  // HEARTH_SDK_SRC_CONVERT_HF_CONVERT_H_
