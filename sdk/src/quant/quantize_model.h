// quantize_model.h — a whole GGUF model rewritten with other weight types
// (`hearth quantize`, hearth_quantize), and the piece `hearth convert`
// shares with it: one tensor's float32 values encoded as the type a
// TypePlan chose, produced when the writer reaches it (one tensor in memory
// at a time).
#ifndef HEARTH_SDK_SRC_QUANT_QUANTIZE_MODEL_H_
#define HEARTH_SDK_SRC_QUANT_QUANTIZE_MODEL_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "sdk/src/format/gguf_writer.h"

namespace hearth::quant {

// Called before each tensor is written: (index, count, name, bytes_done,
// bytes_total), the bytes being the input tensors' as stored (those before
// this one, and all of them), so a caller can weigh an embedding table
// above a norm. Returning false stops the job (CANCELLED; nothing is
// written).
using Progress = std::function<bool(int64_t index, int64_t count, const std::string& name,
                                    uint64_t bytes_done, uint64_t bytes_total)>;

// Adds tensor `name` of dims `ne` (ne[0] innermost) to `w` as `ggml_type`;
// `load` fills the float32 values (ne[0] * ne[1] * … of them) when the
// writer reaches the tensor. Errors name the tensor.
absl::Status AddEncodedTensor(gguf::Writer* w, const std::string& name, uint32_t ggml_type,
                              const std::vector<int64_t>& ne,
                              std::function<absl::Status(std::vector<float>*)> load);

// Rewrites the GGUF model `in` as model type `type` (ParseModelType) to
// `out` (temp file + rename). Metadata is copied, general.file_type and
// general.quantization_version set. Tensors the plan leaves in their type
// are copied byte for byte; others must come in F32, F16 or BF16 (hearth
// does not re-quantize a quantized tensor: FAILED_PRECONDITION naming it).
absl::Status QuantizeModel(const std::string& in, const std::string& out, const std::string& type,
                           const Progress& progress);

}  // namespace hearth::quant

#endif  // HEARTH_SDK_SRC_QUANT_QUANTIZE_MODEL_H_
