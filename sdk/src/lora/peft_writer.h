// peft_writer.h — what the trainer writes: a PEFT adapter directory
// (adapter_config.json + adapter_model.safetensors, PEFT's names and
// layouts) rendered in memory, and the atomic file writes that put it on
// disk (temp file, fsync, rename: a kill never leaves a half-written file).
#ifndef HEARTH_SDK_SRC_LORA_PEFT_WRITER_H_
#define HEARTH_SDK_SRC_LORA_PEFT_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace hearth {

// One F32 tensor of the safetensors file, row-major [rows][cols].
struct PeftTensor {
  std::string name;  // "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight"
  int64_t rows = 0, cols = 0;
  std::vector<float> data;
};

struct PeftConfig {
  int64_t rank = 0;
  float alpha = 0;
  bool use_rslora = false;
  float lora_dropout = 0;
  std::vector<std::string> target_modules;  // PEFT names: "q_proj", "down_proj", …
  std::string base_model;                   // base_model_name_or_path
};

std::string PeftConfigJson(const PeftConfig& c);
// The safetensors image: tensors in the given order, data 8-byte aligned;
// `provenance` (a JSON object's text, or "") goes into __metadata__ under
// "hearth.provenance", where PEFT and safetensors readers ignore it.
std::vector<uint8_t> SafetensorsImage(const std::vector<PeftTensor>& tensors,
                                      const std::string& provenance = "");

// Writes `bytes` to `path` through `path.tmp-<pid>` + fsync + rename.
absl::Status WriteFileAtomic(const std::string& path, const void* bytes, size_t size);

// The GGUF projection ("attn_q") → PEFT module ("self_attn.q_proj"); "" if none.
std::string PeftModule(const std::string& gguf_projection);

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_LORA_PEFT_WRITER_H_
