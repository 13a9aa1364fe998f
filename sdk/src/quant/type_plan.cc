// type_plan.cc — per-tensor types of a model type (see type_plan.h).
#include "sdk/src/quant/type_plan.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sdk/src/format/gguf.h"

namespace hearth::quant {
namespace {

// LLAMA_FTYPE_* values (llama.h; gguf-py's LlamaFileType).
constexpr uint32_t kFileF32 = 0, kFileF16 = 1, kFileQ4_0 = 2, kFileQ8_0 = 7, kFileQ4_K_S = 14,
                   kFileQ4_K_M = 15, kFileQ6_K = 18, kFileBF16 = 32;

const std::vector<ModelType>& Types() {
  static const auto* types = new std::vector<ModelType>{
      {"f32", gguf::kGgmlF32, kFileF32, false},
      {"f16", gguf::kGgmlF16, kFileF16, false},
      {"bf16", gguf::kGgmlBF16, kFileBF16, false},
      {"q8_0", gguf::kGgmlQ8_0, kFileQ8_0, false},
      {"q4_0", gguf::kGgmlQ4_0, kFileQ4_0, false},
      // Every 2-D weight Q4_K; llama.cpp has no such file type, Q4_K_S is
      // the nearest (its Q4_K_S gives a few tensors Q5_K).
      {"q4_k", gguf::kGgmlQ4_K, kFileQ4_K_S, false},
      {"q6_k", gguf::kGgmlQ6_K, kFileQ6_K, false},
      {"q4_k_m", gguf::kGgmlQ4_K, kFileQ4_K_M, true},
  };
  return *types;
}

// The layer of "blk.N.…", or -1.
int64_t LayerOf(const std::string& name) {
  if (!absl::StartsWith(name, "blk.")) return -1;
  const size_t dot = name.find('.', 4);
  int64_t l = -1;
  if (dot == std::string::npos || !absl::SimpleAtoi(name.substr(4, dot - 4), &l)) return -1;
  return l;
}

// llama.cpp's use_more_bits: the first and last eighth of the layers and
// every third one between get the bigger type.
bool UseMoreBits(int64_t i, int64_t n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

}  // namespace

std::string ModelTypeNames() {
  std::vector<std::string> names;
  for (const ModelType& t : Types()) names.push_back(t.name);
  return absl::StrJoin(names, ", ");
}

absl::StatusOr<ModelType> ParseModelType(std::string_view name) {
  for (const ModelType& t : Types()) {
    if (t.name == name) return t;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown model type '", std::string(name), "' (known: ", ModelTypeNames(), ")"));
}

TypePlan::TypePlan(ModelType type, const std::vector<std::string>& names) : type_(std::move(type)) {
  for (const std::string& n : names) {
    n_layer_ = std::max(n_layer_, LayerOf(n) + 1);
    has_output_ = has_output_ || n == "output.weight";
  }
}

bool TypePlan::Converts(const std::string& name, const std::vector<int64_t>& ne) {
  return ne.size() >= 2 && absl::EndsWith(name, "weight");
}

uint32_t TypePlan::TypeFor(const std::string& name, const std::vector<int64_t>& ne) const {
  if (!Converts(name, ne)) return gguf::kGgmlF32;
  uint32_t t = type_.base_type;
  if (type_.k_mix) {
    const int64_t layer = LayerOf(name);
    if (name == "output.weight" || (!has_output_ && name == "token_embd.weight")) {
      t = gguf::kGgmlQ6_K;
    } else if ((absl::EndsWith(name, ".attn_v.weight") ||
                absl::EndsWith(name, ".ffn_down.weight")) &&
               layer >= 0 && UseMoreBits(layer, n_layer_)) {
      t = gguf::kGgmlQ6_K;
    }
  }
  // K-quant rows must hold whole super-blocks of 256.
  if (ne[0] % 256 != 0) {
    if (t == gguf::kGgmlQ4_K) t = gguf::kGgmlQ5_0;
    if (t == gguf::kGgmlQ6_K) t = gguf::kGgmlQ8_0;
  }
  if (ne[0] % 32 != 0 && t != gguf::kGgmlF32 && t != gguf::kGgmlF16 && t != gguf::kGgmlBF16) {
    t = gguf::kGgmlF16;  // no block type fits; llama.cpp would refuse, hearth keeps F16
  }
  return t;
}

}  // namespace hearth::quant
