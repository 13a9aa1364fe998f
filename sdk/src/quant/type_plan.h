// type_plan.h — which GGUF type each tensor of a model gets when a whole
// model is written as one of hearth's model types (`--type` of `hearth
// convert` and `hearth quantize`): f32, f16, bf16, q8_0, q4_0, q4_k, q6_k,
// and q4_k_m, llama.cpp's mix (docs/convert.md has the table).
//
// Only 2-D (and larger) tensors whose names end in "weight" are converted;
// 1-D tensors (norms, biases) stay F32, as llama.cpp keeps them. A K-quant
// needs rows that are a multiple of 256 values; other rows fall back as
// llama.cpp's do (Q4_K to Q5_0, Q6_K to Q8_0).
#ifndef HEARTH_SDK_SRC_QUANT_TYPE_PLAN_H_
#define HEARTH_SDK_SRC_QUANT_TYPE_PLAN_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace hearth::quant {

struct ModelType {
  std::string name;    // "q4_k_m"
  uint32_t base_type;  // ggml type of ordinary 2-D weights
  uint32_t file_type;  // general.file_type (llama.cpp's LLAMA_FTYPE_*)
  bool k_mix = false;  // q4_k_m's Q6_K for some attn_v / ffn_down / output
};

// INVALID_ARGUMENT naming the known names when `name` is not one.
absl::StatusOr<ModelType> ParseModelType(std::string_view name);
// "f32, f16, bf16, q8_0, q4_0, q4_k, q6_k, q4_k_m"
std::string ModelTypeNames();

class TypePlan {
 public:
  // `names` lists every tensor the model will have (so the plan knows the
  // layer count and whether output.weight exists).
  TypePlan(ModelType type, const std::vector<std::string>& names);
  // The type of tensor `name` with dims `ne` (ne[0] innermost), given the
  // type its data comes in (F32 for converted tensors).
  uint32_t TypeFor(const std::string& name, const std::vector<int64_t>& ne) const;
  const ModelType& type() const { return type_; }
  // Whether a model type changes this tensor at all (2-D+ "…weight").
  static bool Converts(const std::string& name, const std::vector<int64_t>& ne);

 private:
  ModelType type_;
  int64_t n_layer_ = 0;
  bool has_output_ = false;
};

}  // namespace hearth::quant

#endif  // HEARTH_SDK_SRC_QUANT_TYPE_PLAN_H_
