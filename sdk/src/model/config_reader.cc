// config_reader.cc — shared hyper-parameter reading for decoder GGUFs.
#include "sdk/src/model/config_reader.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"

namespace hearth {
namespace {

// Bounds far above any real model, low enough that sizes computed from them
// cannot overflow 64 bits.
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxHeads = 4096;
constexpr int64_t kMaxDim = 1 << 20;

absl::StatusOr<int64_t> IntInRange(const gguf::File& f, const std::string& key, int64_t lo,
                                   int64_t hi, const int64_t* fallback) {
  auto v = f.GetInt(key);
  if (!v.ok()) {
    if (absl::IsNotFound(v.status()) && fallback != nullptr) return *fallback;
    if (absl::IsNotFound(v.status())) {
      return absl::InvalidArgumentError(absl::StrCat(f.name(), ": missing metadata key '", key, "'"));
    }
    return v.status();
  }
  if (*v < lo || *v > hi) {
    return absl::InvalidArgumentError(absl::StrCat(f.name(), ": metadata '", key, "' = ", *v,
                                                   " is outside [", lo, ", ", hi, "]"));
  }
  return *v;
}

absl::StatusOr<float> PositiveFloat(const gguf::File& f, const std::string& key, float fallback) {
  auto v = f.GetFloat(key);
  if (!v.ok()) {
    if (absl::IsNotFound(v.status())) return fallback;
    return v.status();
  }
  if (!std::isfinite(*v) || *v <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.name(), ": metadata '", key, "' = ", *v, " must be a positive number"));
  }
  return static_cast<float>(*v);
}

}  // namespace

absl::Status ReadDecoderConfig(const gguf::File& f, const std::string& arch, ModelConfig* c) {
  const std::string a = arch + ".";
  HEARTH_ASSIGN_OR_RETURN(c->n_embd, IntInRange(f, a + "embedding_length", 1, kMaxDim, nullptr));
  HEARTH_ASSIGN_OR_RETURN(c->n_layer, IntInRange(f, a + "block_count", 1, kMaxLayers, nullptr));
  HEARTH_ASSIGN_OR_RETURN(c->n_ff, IntInRange(f, a + "feed_forward_length", 1, kMaxDim, nullptr));
  HEARTH_ASSIGN_OR_RETURN(c->n_head,
                          IntInRange(f, a + "attention.head_count", 1, kMaxHeads, nullptr));
  HEARTH_ASSIGN_OR_RETURN(c->n_head_kv, IntInRange(f, a + "attention.head_count_kv", 1,
                                                   c->n_head, &c->n_head));
  if (c->n_head % c->n_head_kv != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        f.name(), ": attention.head_count (", c->n_head,
        ") is not a multiple of attention.head_count_kv (", c->n_head_kv, ")"));
  }
  int64_t default_head_dim = c->n_embd / c->n_head;
  HEARTH_ASSIGN_OR_RETURN(c->head_dim, IntInRange(f, a + "attention.key_length", 1, kMaxDim,
                                                  &default_head_dim));
  HEARTH_ASSIGN_OR_RETURN(c->head_dim_v, IntInRange(f, a + "attention.value_length", 1,
                                                    kMaxDim, &c->head_dim));
  if (c->head_dim * c->n_head == 0 || (c->head_dim % 2) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(f.name(), ": head dimension ", c->head_dim,
                                                   " must be even and non-zero"));
  }
  HEARTH_ASSIGN_OR_RETURN(c->n_rot, IntInRange(f, a + "rope.dimension_count", 2, c->head_dim,
                                               &c->head_dim));
  if (c->n_rot % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(f.name(), ": rope.dimension_count ", c->n_rot, " must be even"));
  }
  int64_t default_ctx = 4096;
  HEARTH_ASSIGN_OR_RETURN(c->n_ctx_train,
                          IntInRange(f, a + "context_length", 1, int64_t{1} << 24, &default_ctx));
  HEARTH_ASSIGN_OR_RETURN(c->rope_theta, PositiveFloat(f, a + "rope.freq_base", 10000.0f));
  HEARTH_ASSIGN_OR_RETURN(c->rms_eps,
                          PositiveFloat(f, a + "attention.layer_norm_rms_epsilon", 1e-5f));
  auto scaling = f.GetString(a + "rope.scaling.type");
  if (scaling.ok() && *scaling == "linear") {
    HEARTH_ASSIGN_OR_RETURN(float factor, PositiveFloat(f, a + "rope.scaling.factor", 1.0f));
    c->rope_freq_scale = 1.0f / factor;
  } else if (scaling.ok() && *scaling != "none") {
    return absl::UnimplementedError(absl::StrCat(f.name(), ": rope.scaling.type '", *scaling,
                                                 "' is not supported yet"));
  }
  const gguf::TensorInfo* emb = f.FindTensor("token_embd.weight");
  if (emb == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(f.name(), ": no tensor 'token_embd.weight'"));
  }
  c->n_vocab = emb->ne[1];
  // <arch>.vocab_size is optional; one that disagrees with the embedding
  // would leave two answers to "how many tokens": refuse it.
  auto vocab_size = f.GetInt(a + "vocab_size");
  if (vocab_size.ok() && *vocab_size != c->n_vocab) {
    return absl::InvalidArgumentError(absl::StrCat(f.name(), ": ", a, "vocab_size is ", *vocab_size,
                                                   " but token_embd.weight has ", c->n_vocab,
                                                   " rows (one per token)"));
  }
  return absl::OkStatus();
}

absl::Status RequireF32(const WeightSet& w, const std::string& name,
                        std::initializer_list<int64_t> ne) {
  HEARTH_ASSIGN_OR_RETURN(hearth_tensor_desc d, w.Require(name, ne));
  if (d.dtype != HEARTH_DTYPE_F32) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' must be F32"));
  }
  return absl::OkStatus();
}

}  // namespace hearth
