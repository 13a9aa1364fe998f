// lora_file.h — LoRA adapter files, parsed and validated on their own (no
// base model): PEFT directories (adapter_config.json +
// adapter_model.safetensors) and GGUF LoRA files as llama.cpp's converter
// writes them. The result names every target by its base weight in GGUF
// naming, so binding it to a model (shapes, architecture) is a lookup.
//
// Tensor data is not copied: a LoraFile owns the mapped file its LoraTensor
// pointers point into. docs/format-safetensors.md lists every rule checked.
#ifndef HEARTH_SDK_SRC_LORA_LORA_FILE_H_
#define HEARTH_SDK_SRC_LORA_LORA_FILE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/format/safetensors.h"

namespace hearth {

// One matrix of a LoRA pair. Data may be at any alignment (safetensors
// promises none): read it with memcpy or copy it.
struct LoraTensor {
  uint32_t dtype = 0;      // HEARTH_DTYPE_F32 / F16 / BF16
  int64_t ne[2] = {0, 0};  // ggml order: ne[0] innermost (contiguous)
  const uint8_t* data = nullptr;
  uint64_t bytes = 0;
  std::string source;  // its name in the file
};

struct LoraTarget {
  std::string weight;         // base weight, GGUF naming: "blk.3.attn_q.weight", "output.weight"
  std::string source_module;  // "model.layers.3.self_attn.q_proj" (PEFT), "blk.3.attn_q" (GGUF)
  int64_t layer = -1;         // -1 for output.weight
  int64_t rank = 0;
  float alpha = 0;
  float scale = 0;  // alpha / rank, or alpha / sqrt(rank) with rsLoRA
  LoraTensor a;     // ne = [n_in, rank]: PEFT's lora_A [rank][n_in], row-major
  LoraTensor b;     // ne = [rank, n_out]: PEFT's lora_B [n_out][rank]
  // True for PEFT: B's rows (the q/k outputs) are in Hugging Face order; the
  // runtime permutes them for architectures whose GGUF q/k weights are
  // permuted. False for GGUF files (the converter already permuted them).
  bool hf_row_order = false;
};

enum class LoraFormat { kPeft = 1, kGguf = 2 };  // = HEARTH_ADAPTER_PEFT / _GGUF

struct LoraFile {
  LoraFormat format = LoraFormat::kPeft;
  std::string path;        // as given to LoadLoraFile (or ParsePeft's path_for_errors)
  std::string base_arch;   // GGUF: general.architecture; PEFT: ""
  std::string base_model;  // PEFT base_model_name_or_path; GGUF general.name or
                           // general.basename; or ""
  // Adapters hearth trained: the safetensors __metadata__ "hearth.provenance"
  // (or a config "hearth" object), a GGUF's hearth.provenance
  // (compact JSON) and its base_fingerprint (format/fingerprint.h); else "".
  std::string provenance;
  std::string base_fingerprint;
  int64_t rank = 0;        // PEFT: config r; GGUF: largest rank over targets
  float alpha = 0;         // PEFT lora_alpha; GGUF adapter.lora.alpha
  bool use_rslora = false;
  // Sorted by layer, within a layer in forward order (attn_q, attn_k, attn_v,
  // attn_output, ffn_gate, ffn_up, ffn_down), output.weight last.
  std::vector<LoraTarget> targets;
  uint64_t n_params = 0;  // elements of every A and B
  // Tensors present in the file but deliberately unused (PEFT's copy of a
  // targeted embedding/output layer's base weight, "<module>.base_layer.weight").
  std::vector<std::string> ignored_tensors;

  // What owns the bytes the targets point into (one of the two is set).
  std::unique_ptr<safetensors::File> safetensors_file;
  std::unique_ptr<gguf::File> gguf_file;

  const LoraTarget* Find(std::string_view weight) const;
};

// Loads `path`: a PEFT directory (adapter_config.json +
// adapter_model.safetensors), either of those two files (the other is looked
// up beside it; any *.json is taken as the config, any other non-GGUF file
// as the weights), or a GGUF LoRA file (detected by its magic "GGUF").
absl::StatusOr<std::unique_ptr<LoraFile>> LoadLoraFile(const std::string& path);

// The PEFT rules on an in-memory config and weights (tests, fuzzing).
// Config errors start with `path_for_errors`, tensor errors with the
// safetensors file's name.
absl::StatusOr<std::unique_ptr<LoraFile>> ParsePeft(std::string_view config_json,
                                                    std::unique_ptr<safetensors::File> weights,
                                                    std::string path_for_errors);

// The GGUF LoRA rules on an already validated GGUF file.
absl::StatusOr<std::unique_ptr<LoraFile>> ParseGgufLora(std::unique_ptr<gguf::File> file);

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_LORA_LORA_FILE_H_
