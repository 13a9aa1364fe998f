// gguf_writer.h — writing a LoRA adapter as a GGUF LoRA file, the layout
// llama.cpp's convert_lora_to_gguf produces and hearth's reader
// (lora_file_gguf.cc) and llama.cpp's llama_adapter_lora_init load:
// general.type = "adapter", adapter.type = "lora", adapter.lora.alpha,
// general.architecture, and per target "<weight>.lora_a" (ne [n_in, r]) and
// "<weight>.lora_b" (ne [r, n_out]) with B's rows in the GGUF model's row
// order (q/k permuted on llama). hearth's provenance record goes under
// hearth.provenance (JSON text) and hearth.base_fingerprint, which other
// readers ignore.
#ifndef HEARTH_SDK_SRC_LORA_GGUF_WRITER_H_
#define HEARTH_SDK_SRC_LORA_GGUF_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace hearth {

struct GgufLoraPair {
  std::string weight;  // "blk.3.attn_q.weight"
  int64_t rank = 0, n_in = 0, n_out = 0;
  std::vector<float> a;  // [rank][n_in] (PEFT's lora_A)
  std::vector<float> b;  // [n_out][rank], rows in the GGUF model's order
};

struct GgufLoraMeta {
  std::string arch;        // the base model's general.architecture
  std::string base_name;   // general.name of the base (may be "")
  float alpha = 0;         // so that every target's scale is alpha / rank
  std::string provenance;  // JSON object text, or ""
  std::string base_fingerprint;
};

// Writes the file atomically (temp + fsync + rename). `dtype`: "f32" or "f16".
absl::Status WriteGgufLora(const GgufLoraMeta& meta, const std::vector<GgufLoraPair>& pairs,
                           const std::string& path, const std::string& dtype = "f32");

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_LORA_GGUF_WRITER_H_
