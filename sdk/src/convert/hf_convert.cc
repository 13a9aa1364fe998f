// hf_convert.cc — config.json + safetensors + tokenizer to GGUF (see
// hf_convert.h). One Family per architecture says which config keys it
// reads and which tensors it needs; everything else is shared.
#include "sdk/src/convert/hf_convert.h"

#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sdk/src/common/status.h"
#include "sdk/src/convert/hf_json.h"
#include "sdk/src/convert/hf_vocab.h"
#include "sdk/src/convert/hf_weights.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/format/gguf_writer.h"
#include "sdk/src/quant/type_plan.h"

namespace hearth::convert {
namespace {

constexpr int64_t kMaxDim = int64_t{1} << 20;
constexpr int64_t kMaxLayers = 1024;

// How a tensor's HF values become its GGUF values.
enum class Transform {
  kNone,
  kPermuteHeads,    // llama q: HF rotate-half rows -> GGUF interleaved pairs (n_head)
  kPermuteKvHeads,  // llama k: the same with n_head_kv
  kPlusOne,         // Gemma norms: HF computes x * (1 + w); GGUF stores 1 + w
};

struct TensorPlan {
  std::string gguf;
  std::string hf;
  std::vector<int64_t> ne;  // GGUF order (ne[0] innermost)
  Transform transform = Transform::kNone;
};

struct Hparams {
  std::string arch;  // "llama", "qwen2", "gemma3"
  int64_t n_embd = 0, n_layer = 0, n_ff = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
  int64_t n_vocab = 0;
  std::optional<int64_t> n_ctx;
  double rms_eps = 1e-5;
  double rope_theta = 10000.0;
  std::optional<double> linear_rope_factor;
  std::vector<float> rope_freqs;  // llama3 rope scaling: one factor per rotated pair
  bool tied = false;
  bool head_dim_explicit = false;
  // gemma3
  int64_t sliding_window = 0, sliding_window_pattern = 0;
  double rope_theta_local = 10000.0;
};

absl::Status Unsupported(const JsonFile& f, const std::string& path, const char* key,
                         const std::string& why) {
  return absl::UnimplementedError(absl::StrCat(KeyRef(f, path, key), " ", why));
}

// The rope settings of llama/qwen2: transformers 5 writes rope_parameters
// {rope_type, rope_theta, factor, …}; older files rope_theta and
// rope_scaling {type|rope_type, factor, …}.
absl::Status ReadRope(const JsonFile& f, Hparams* h) {
  const Json& c = f.root;
  std::string path = "rope_parameters";
  const Json* rope = nullptr;
  if (c.contains("rope_parameters") && c["rope_parameters"].is_object()) {
    rope = &c["rope_parameters"];
  } else if (c.contains("rope_scaling") && c["rope_scaling"].is_object()) {
    rope = &c["rope_scaling"];
    path = "rope_scaling";
  }
  HEARTH_ASSIGN_OR_RETURN(std::optional<double> theta, OptionalNumber(f, c, "", "rope_theta"));
  if (rope != nullptr && !theta) {
    HEARTH_ASSIGN_OR_RETURN(theta, OptionalNumber(f, *rope, path, "rope_theta"));
  }
  if (theta) {
    if (!(*theta > 0))
      return absl::InvalidArgumentError(
          absl::StrCat(KeyRef(f, "", "rope_theta"), " must be positive"));
    h->rope_theta = *theta;
  }
  if (rope == nullptr) return absl::OkStatus();
  HEARTH_ASSIGN_OR_RETURN(std::optional<std::string> type,
                          OptionalString(f, *rope, path, "rope_type"));
  if (!type) {
    HEARTH_ASSIGN_OR_RETURN(type, OptionalString(f, *rope, path, "type"));
  }
  if (!type || *type == "default") return absl::OkStatus();
  HEARTH_ASSIGN_OR_RETURN(std::optional<double> factor, OptionalNumber(f, *rope, path, "factor"));
  if (!factor || !(*factor > 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat(KeyRef(f, path, "factor"), " must be a positive number"));
  }
  if (*type == "linear") {
    h->linear_rope_factor = *factor;
    return absl::OkStatus();
  }
  if (*type == "llama3" && h->arch == "llama") {
    // Llama 3.1's frequency-dependent scaling as a rope_freqs tensor (the
    // divisor of each pair's frequency), as convert_hf_to_gguf.py writes it.
    HEARTH_ASSIGN_OR_RETURN(std::optional<double> lo,
                            OptionalNumber(f, *rope, path, "low_freq_factor"));
    HEARTH_ASSIGN_OR_RETURN(std::optional<double> hi,
                            OptionalNumber(f, *rope, path, "high_freq_factor"));
    HEARTH_ASSIGN_OR_RETURN(std::optional<int64_t> old_ctx,
                            OptionalInt(f, *rope, path, "original_max_position_embeddings"));
    const double low = lo.value_or(1.0), high = hi.value_or(4.0);
    const double ctx = static_cast<double>(old_ctx.value_or(8192));
    if (!(high > low) || !(ctx > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat(KeyRef(f, path, "high_freq_factor"), " must exceed low_freq_factor"));
    }
    const double low_wavelen = ctx / low, high_wavelen = ctx / high;
    for (int64_t i = 0; i < h->head_dim; i += 2) {
      const double freq = 1.0 / std::pow(h->rope_theta, static_cast<double>(i) / h->head_dim);
      const double wavelen = 2 * M_PI / freq;
      double v;
      if (wavelen < high_wavelen) {
        v = 1.0;
      } else if (wavelen > low_wavelen) {
        v = *factor;
      } else {
        const double smooth = (ctx / wavelen - low) / (high - low);
        v = 1.0 / ((1 - smooth) / *factor + smooth);
      }
      h->rope_freqs.push_back(static_cast<float>(v));
    }
    return absl::OkStatus();
  }
  return Unsupported(f, path, "rope_type",
                     absl::StrCat("= \"", *type, "\" is not supported for ", h->arch,
                                  " (default, linear", h->arch == "llama" ? ", llama3" : "", ")"));
}

absl::Status ReadGemma3(const JsonFile& f, Hparams* h) {
  const Json& c = f.root;
  HEARTH_ASSIGN_OR_RETURN(h->sliding_window,
                          RequiredInt(f, c, "", "sliding_window", 1, int64_t{1} << 24));
  for (const char* cap : {"final_logit_softcapping", "attn_logit_softcapping"}) {
    HEARTH_ASSIGN_OR_RETURN(std::optional<double> v, OptionalNumber(f, c, "", cap));
    if (v) return Unsupported(f, "", cap, "is set; hearth's gemma3 has no soft-capping");
  }
  HEARTH_ASSIGN_OR_RETURN(std::optional<bool> bidir,
                          OptionalBool(f, c, "", "use_bidirectional_attention"));
  if (bidir.value_or(false)) return Unsupported(f, "", "use_bidirectional_attention", "is true");
  HEARTH_ASSIGN_OR_RETURN(std::optional<int64_t> qpas,
                          OptionalInt(f, c, "", "query_pre_attn_scalar"));
  if (qpas && *qpas != h->head_dim) {
    return Unsupported(f, "", "query_pre_attn_scalar",
                       absl::StrCat("= ", *qpas, " differs from head_dim (", h->head_dim,
                                    "); hearth scales queries by head_dim^-1/2"));
  }
  // Which layers are global: layer_types (transformers 5) or a pattern.
  if (c.contains("layer_types") && c["layer_types"].is_array()) {
    const Json& lt = c["layer_types"];
    if (static_cast<int64_t>(lt.size()) != h->n_layer) {
      return absl::InvalidArgumentError(absl::StrCat(KeyRef(f, "", "layer_types"), " has ",
                                                     lt.size(), " entries for ", h->n_layer,
                                                     " layers"));
    }
    int64_t first_global = -1;
    for (int64_t l = 0; l < h->n_layer; ++l) {
      if (lt[l] == "full_attention") {
        first_global = l;
        break;
      }
    }
    // Hearth's rule: layer l is global iff (l + 1) % pattern == 0.
    const int64_t pattern = first_global < 0 ? h->n_layer + 1 : first_global + 1;
    for (int64_t l = 0; l < h->n_layer; ++l) {
      const bool global = (l + 1) % pattern == 0;
      const std::string want = global ? "full_attention" : "sliding_attention";
      if (lt[l] != want) {
        return Unsupported(f, "", "layer_types",
                           absl::StrCat("is not periodic (layer ", l, " is ", lt[l].dump(),
                                        "); hearth needs every n-th layer global"));
      }
    }
    h->sliding_window_pattern = pattern;
  } else {
    HEARTH_ASSIGN_OR_RETURN(std::optional<int64_t> p,
                            OptionalInt(f, c, "", "sliding_window_pattern"));
    h->sliding_window_pattern = p.value_or(6);
    if (h->sliding_window_pattern < 1 || h->sliding_window_pattern > h->n_layer + 1) {
      return absl::InvalidArgumentError(absl::StrCat(KeyRef(f, "", "sliding_window_pattern"), " = ",
                                                     h->sliding_window_pattern,
                                                     " is out of range"));
    }
  }
  // RoPE: transformers 5 nests per layer type; older files have
  // rope_theta, rope_local_base_freq and rope_scaling (global layers).
  const Json* full = nullptr;
  const Json* local = nullptr;
  if (c.contains("rope_parameters") && c["rope_parameters"].is_object()) {
    const Json& rp = c["rope_parameters"];
    if (rp.contains("full_attention")) full = &rp["full_attention"];
    if (rp.contains("sliding_attention")) local = &rp["sliding_attention"];
  }
  HEARTH_ASSIGN_OR_RETURN(std::optional<double> theta, OptionalNumber(f, c, "", "rope_theta"));
  if (!theta && full != nullptr) {
    HEARTH_ASSIGN_OR_RETURN(
        theta, OptionalNumber(f, *full, "rope_parameters.full_attention", "rope_theta"));
  }
  h->rope_theta = theta.value_or(1000000.0);
  HEARTH_ASSIGN_OR_RETURN(std::optional<double> local_theta,
                          OptionalNumber(f, c, "", "rope_local_base_freq"));
  if (!local_theta && local != nullptr) {
    HEARTH_ASSIGN_OR_RETURN(
        local_theta, OptionalNumber(f, *local, "rope_parameters.sliding_attention", "rope_theta"));
  }
  h->rope_theta_local = local_theta.value_or(10000.0);
  const Json* scaling = full;
  std::string scaling_path = "rope_parameters.full_attention";
  if (scaling == nullptr && c.contains("rope_scaling") && c["rope_scaling"].is_object()) {
    scaling = &c["rope_scaling"];
    scaling_path = "rope_scaling";
  }
  if (scaling != nullptr) {
    HEARTH_ASSIGN_OR_RETURN(std::optional<std::string> type,
                            OptionalString(f, *scaling, scaling_path, "rope_type"));
    if (type && *type == "linear") {
      HEARTH_ASSIGN_OR_RETURN(std::optional<double> factor,
                              OptionalNumber(f, *scaling, scaling_path, "factor"));
      if (!factor || !(*factor > 0)) {
        return absl::InvalidArgumentError(
            absl::StrCat(KeyRef(f, scaling_path, "factor"), " must be positive"));
      }
      h->linear_rope_factor = *factor;
    } else if (type && *type != "default") {
      return Unsupported(f, scaling_path, "rope_type",
                         absl::StrCat("= \"", *type, "\" is not supported for gemma3"));
    }
  }
  if (local != nullptr) {
    HEARTH_ASSIGN_OR_RETURN(
        std::optional<std::string> type,
        OptionalString(f, *local, "rope_parameters.sliding_attention", "rope_type"));
    if (type && *type != "default") {
      return Unsupported(f, "rope_parameters.sliding_attention", "rope_type", "is not \"default\"");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Hparams> ReadHparams(const JsonFile& f) {
  const Json& c = f.root;
  Hparams h;
  auto archs = c.find("architectures");
  if (archs == c.end() || !archs->is_array() || archs->empty() || !(*archs)[0].is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(KeyRef(f, "", "architectures"),
                     " is missing or not a list of names (it says which model "
                     "class the weights are for)"));
  }
  const std::string cls = (*archs)[0].get<std::string>();
  if (cls == "LlamaForCausalLM" || cls == "MistralForCausalLM") {
    h.arch = "llama";
  } else if (cls == "Qwen2ForCausalLM") {
    h.arch = "qwen2";
  } else if (cls == "Gemma3ForCausalLM") {
    h.arch = "gemma3";
  } else {
    return Unsupported(f, "", "architectures",
                       absl::StrCat("= \"", cls,
                                    "\" is not an architecture hearth converts "
                                    "(LlamaForCausalLM, MistralForCausalLM, "
                                    "Qwen2ForCausalLM, Gemma3ForCausalLM)"));
  }
  HEARTH_ASSIGN_OR_RETURN(h.n_embd, RequiredInt(f, c, "", "hidden_size", 1, kMaxDim));
  HEARTH_ASSIGN_OR_RETURN(h.n_layer, RequiredInt(f, c, "", "num_hidden_layers", 1, kMaxLayers));
  HEARTH_ASSIGN_OR_RETURN(h.n_ff, RequiredInt(f, c, "", "intermediate_size", 1, kMaxDim));
  HEARTH_ASSIGN_OR_RETURN(h.n_head, RequiredInt(f, c, "", "num_attention_heads", 1, 4096));
  HEARTH_ASSIGN_OR_RETURN(std::optional<int64_t> kv, OptionalInt(f, c, "", "num_key_value_heads"));
  h.n_head_kv = kv.value_or(h.n_head);
  if (h.n_head_kv < 1 || h.n_head % h.n_head_kv != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(KeyRef(f, "", "num_key_value_heads"), " = ", h.n_head_kv,
                     " does not divide num_attention_heads (", h.n_head, ")"));
  }
  HEARTH_ASSIGN_OR_RETURN(std::optional<int64_t> hd, OptionalInt(f, c, "", "head_dim"));
  h.head_dim_explicit = hd.has_value() && *hd != h.n_embd / h.n_head;
  h.head_dim = hd.value_or(h.n_embd / h.n_head);
  if (h.head_dim < 2 || h.head_dim % 2 != 0 || h.head_dim > kMaxDim) {
    return absl::InvalidArgumentError(
        absl::StrCat(KeyRef(f, "", "head_dim"), " = ", h.head_dim, " must be even and positive"));
  }
  HEARTH_ASSIGN_OR_RETURN(h.n_vocab, RequiredInt(f, c, "", "vocab_size", 1, int64_t{1} << 24));
  HEARTH_ASSIGN_OR_RETURN(h.n_ctx, OptionalInt(f, c, "", "max_position_embeddings"));
  HEARTH_ASSIGN_OR_RETURN(std::optional<double> eps, OptionalNumber(f, c, "", "rms_norm_eps"));
  h.rms_eps = eps.value_or(h.arch == "gemma3" ? 1e-6 : 1e-5);
  if (!(h.rms_eps > 0))
    return absl::InvalidArgumentError(
        absl::StrCat(KeyRef(f, "", "rms_norm_eps"), " must be positive"));
  HEARTH_ASSIGN_OR_RETURN(std::optional<bool> tied, OptionalBool(f, c, "", "tie_word_embeddings"));
  h.tied = tied.value_or(h.arch == "gemma3");

  const char* act_key = h.arch == "gemma3" ? "hidden_activation" : "hidden_act";
  HEARTH_ASSIGN_OR_RETURN(std::optional<std::string> act, OptionalString(f, c, "", act_key));
  const std::string want_act = h.arch == "gemma3" ? "gelu_pytorch_tanh" : "silu";
  if (act && *act != want_act) {
    return Unsupported(f, "", act_key,
                       absl::StrCat("= \"", *act, "\"; hearth's ", h.arch, " uses ", want_act));
  }
  if (h.arch == "llama") {
    for (const char* b : {"attention_bias", "mlp_bias"}) {
      HEARTH_ASSIGN_OR_RETURN(std::optional<bool> v, OptionalBool(f, c, "", b));
      if (v.value_or(false)) return Unsupported(f, "", b, "is true; hearth's llama has no biases");
    }
  }
  if (h.arch == "qwen2") {
    HEARTH_ASSIGN_OR_RETURN(std::optional<bool> sw, OptionalBool(f, c, "", "use_sliding_window"));
    if (sw.value_or(false))
      return Unsupported(f, "", "use_sliding_window",
                         "is true; hearth's qwen2 attends to the whole context");
  }
  if (h.arch == "gemma3") {
    HEARTH_RETURN_IF_ERROR(ReadGemma3(f, &h));
  } else {
    HEARTH_RETURN_IF_ERROR(ReadRope(f, &h));
  }
  return h;
}

std::vector<TensorPlan> PlanTensors(const Hparams& h) {
  std::vector<TensorPlan> plan;
  const int64_t E = h.n_embd, D = h.head_dim;
  const int64_t q_dim = h.n_head * D, kv_dim = h.n_head_kv * D;
  const bool gemma = h.arch == "gemma3", llama = h.arch == "llama";
  const Transform norm = gemma ? Transform::kPlusOne : Transform::kNone;
  plan.push_back(
      {"token_embd.weight", "model.embed_tokens.weight", {E, h.n_vocab}, Transform::kNone});
  for (int64_t l = 0; l < h.n_layer; ++l) {
    const std::string g = absl::StrCat("blk.", l, "."), p = absl::StrCat("model.layers.", l, ".");
    plan.push_back({g + "attn_norm.weight", p + "input_layernorm.weight", {E}, norm});
    plan.push_back({g + "attn_q.weight",
                    p + "self_attn.q_proj.weight",
                    {E, q_dim},
                    llama ? Transform::kPermuteHeads : Transform::kNone});
    plan.push_back({g + "attn_k.weight",
                    p + "self_attn.k_proj.weight",
                    {E, kv_dim},
                    llama ? Transform::kPermuteKvHeads : Transform::kNone});
    plan.push_back(
        {g + "attn_v.weight", p + "self_attn.v_proj.weight", {E, kv_dim}, Transform::kNone});
    if (h.arch == "qwen2") {
      plan.push_back({g + "attn_q.bias", p + "self_attn.q_proj.bias", {q_dim}, Transform::kNone});
      plan.push_back({g + "attn_k.bias", p + "self_attn.k_proj.bias", {kv_dim}, Transform::kNone});
      plan.push_back({g + "attn_v.bias", p + "self_attn.v_proj.bias", {kv_dim}, Transform::kNone});
    }
    plan.push_back(
        {g + "attn_output.weight", p + "self_attn.o_proj.weight", {q_dim, E}, Transform::kNone});
    if (gemma) {
      plan.push_back({g + "attn_q_norm.weight", p + "self_attn.q_norm.weight", {D}, norm});
      plan.push_back({g + "attn_k_norm.weight", p + "self_attn.k_norm.weight", {D}, norm});
      plan.push_back(
          {g + "post_attention_norm.weight", p + "post_attention_layernorm.weight", {E}, norm});
      plan.push_back({g + "ffn_norm.weight", p + "pre_feedforward_layernorm.weight", {E}, norm});
      plan.push_back(
          {g + "post_ffw_norm.weight", p + "post_feedforward_layernorm.weight", {E}, norm});
    } else {
      plan.push_back({g + "ffn_norm.weight", p + "post_attention_layernorm.weight", {E}, norm});
    }
    plan.push_back(
        {g + "ffn_gate.weight", p + "mlp.gate_proj.weight", {E, h.n_ff}, Transform::kNone});
    plan.push_back({g + "ffn_up.weight", p + "mlp.up_proj.weight", {E, h.n_ff}, Transform::kNone});
    plan.push_back(
        {g + "ffn_down.weight", p + "mlp.down_proj.weight", {h.n_ff, E}, Transform::kNone});
  }
  plan.push_back({"output_norm.weight", "model.norm.weight", {E}, norm});
  if (!h.tied)
    plan.push_back({"output.weight", "lm_head.weight", {E, h.n_vocab}, Transform::kNone});
  return plan;
}

// HF stores each head's rotary dims as two halves (rotate_half); GGUF llama
// interleaves them in pairs. Row h*D + i*D/2 + j goes to h*D + 2j + i.
void PermuteRows(std::vector<float>* v, int64_t n_heads, int64_t rows, int64_t cols) {
  const int64_t D = rows / n_heads, half = D / 2;
  std::vector<float> out(v->size());
  for (int64_t hd = 0; hd < n_heads; ++hd) {
    for (int64_t i = 0; i < 2; ++i) {
      for (int64_t j = 0; j < half; ++j) {
        const float* src = v->data() + (hd * D + i * half + j) * cols;
        std::copy(src, src + cols, out.data() + (hd * D + 2 * j + i) * cols);
      }
    }
  }
  v->swap(out);
}

std::string ShapeText(const std::vector<int64_t>& s) {
  return absl::StrCat("[", absl::StrJoin(s, ", "), "]");
}

std::string BaseName(const std::string& dir) {
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  const size_t slash = d.rfind('/');
  return slash == std::string::npos ? d : d.substr(slash + 1);
}

}  // namespace

absl::Status ConvertHfModel(const std::string& dir, const std::string& out,
                            const ConvertOptions& options) {
  HEARTH_ASSIGN_OR_RETURN(quant::ModelType type, quant::ParseModelType(options.type));
  HEARTH_ASSIGN_OR_RETURN(JsonFile config, ReadJsonFile(dir, "config.json"));
  HEARTH_ASSIGN_OR_RETURN(Hparams h, ReadHparams(config));
  HEARTH_ASSIGN_OR_RETURN(std::unique_ptr<HfWeights> weights, HfWeights::Open(dir));

  // The embedding decides the vocabulary size (config.json's vocab_size
  // must agree with it).
  const HfTensor* emb = weights->Find("model.embed_tokens.weight");
  if (emb != nullptr && emb->info->shape.size() == 2 && emb->info->shape[0] != h.n_vocab) {
    return absl::InvalidArgumentError(
        absl::StrCat(emb->file, ": tensor 'model.embed_tokens.weight' has ", emb->info->shape[0],
                     " rows but config.json 'vocab_size' is ", h.n_vocab));
  }
  std::vector<TensorPlan> plan = PlanTensors(h);
  std::set<std::string> used;
  for (const TensorPlan& t : plan) {
    const HfTensor* src = weights->Find(t.hf);
    if (src == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(dir, ": no tensor '", t.hf, "' in the safetensors files (", h.arch,
                       " with config.json's ", h.n_layer, " layers needs it",
                       t.hf == "lm_head.weight" ? "; 'tie_word_embeddings' is false" : "", ")"));
    }
    const std::vector<int64_t> want(t.ne.rbegin(), t.ne.rend());
    if (src->info->shape != want) {
      return absl::InvalidArgumentError(absl::StrCat(src->file, ": tensor '", t.hf, "' has shape ",
                                                     ShapeText(src->info->shape),
                                                     "; config.json implies ", ShapeText(want)));
    }
    if (src->info->dtype_name != "F32" && src->info->dtype_name != "F16" &&
        src->info->dtype_name != "BF16") {
      return absl::InvalidArgumentError(
          absl::StrCat(src->file, ": tensor '", t.hf, "' is ", src->info->dtype_name,
                       "; hearth converts F32, F16 and BF16 weights"));
    }
    used.insert(t.hf);
  }
  for (const std::string& name : weights->Names()) {
    if (used.count(name) != 0) continue;
    if (absl::EndsWith(name, "rotary_emb.inv_freq")) continue;  // recomputed from rope_theta
    if (name == "lm_head.weight" && h.tied) continue;           // tied: the embedding is the output
    return absl::UnimplementedError(absl::StrCat(weights->Find(name)->file, ": tensor '", name,
                                                 "' is not part of a ", h.arch,
                                                 " model as hearth converts it"));
  }

  gguf::Writer w;
  const std::string& a = h.arch;
  w.SetString("general.architecture", a);
  w.SetString("general.name", BaseName(dir));
  w.SetUint32("general.file_type", type.file_type);
  w.SetUint32("general.quantization_version", 2);
  if (h.n_ctx) w.SetUint32(a + ".context_length", static_cast<uint32_t>(*h.n_ctx));
  w.SetUint32(a + ".embedding_length", static_cast<uint32_t>(h.n_embd));
  w.SetUint32(a + ".block_count", static_cast<uint32_t>(h.n_layer));
  w.SetUint32(a + ".feed_forward_length", static_cast<uint32_t>(h.n_ff));
  w.SetUint32(a + ".attention.head_count", static_cast<uint32_t>(h.n_head));
  w.SetUint32(a + ".attention.head_count_kv", static_cast<uint32_t>(h.n_head_kv));
  w.SetFloat32(a + ".rope.freq_base", static_cast<float>(h.rope_theta));
  w.SetFloat32(a + ".attention.layer_norm_rms_epsilon", static_cast<float>(h.rms_eps));
  if (a == "llama") w.SetUint32(a + ".rope.dimension_count", static_cast<uint32_t>(h.head_dim));
  if (h.head_dim_explicit || a == "gemma3") {
    w.SetUint32(a + ".attention.key_length", static_cast<uint32_t>(h.head_dim));
    w.SetUint32(a + ".attention.value_length", static_cast<uint32_t>(h.head_dim));
  }
  w.SetUint32(a + ".vocab_size", static_cast<uint32_t>(h.n_vocab));
  if (h.linear_rope_factor) {
    w.SetString(a + ".rope.scaling.type", "linear");
    w.SetFloat32(a + ".rope.scaling.factor", static_cast<float>(*h.linear_rope_factor));
  }
  if (a == "gemma3") {
    w.SetUint32("gemma3.attention.sliding_window", static_cast<uint32_t>(h.sliding_window));
    w.SetUint32("gemma3.attention.sliding_window_pattern",
                static_cast<uint32_t>(h.sliding_window_pattern));
    w.SetFloat32("gemma3.rope.freq_base_swa", static_cast<float>(h.rope_theta_local));
  }
  VocabSummary vocab;
  HEARTH_RETURN_IF_ERROR(AddVocabMetadata(dir, config, h.n_vocab, &w, &vocab));

  std::vector<std::string> names;
  for (const TensorPlan& t : plan) names.push_back(t.gguf);
  if (!h.rope_freqs.empty()) names.push_back("rope_freqs.weight");
  quant::TypePlan types(type, names);
  const int64_t count = static_cast<int64_t>(names.size());
  // Bytes as the safetensors files store them (rope_freqs: the F32 written).
  uint64_t bytes_total = h.rope_freqs.size() * sizeof(float), bytes_done = 0;
  for (const TensorPlan& t : plan) bytes_total += weights->Find(t.hf)->info->size;
  int64_t index = 0;
  const quant::Progress* progress = options.progress ? &options.progress : nullptr;
  auto step = [progress, count, bytes_total](int64_t i, const std::string& name,
                                             uint64_t before) -> absl::Status {
    if (progress != nullptr && !(*progress)(i, count, name, before, bytes_total)) {
      return absl::CancelledError(absl::StrCat("stopped by the progress callback at ", name));
    }
    return absl::OkStatus();
  };
  for (const TensorPlan& t : plan) {
    const HfTensor* src = weights->Find(t.hf);
    const int64_t i = index++;
    const uint64_t before = bytes_done;
    bytes_done += src->info->size;
    const int64_t n_heads = t.transform == Transform::kPermuteHeads ? h.n_head : h.n_head_kv;
    HEARTH_RETURN_IF_ERROR(quant::AddEncodedTensor(
        &w, t.gguf, types.TypeFor(t.gguf, t.ne), t.ne,
        [src, t, i, before, n_heads, &step](std::vector<float>* v) -> absl::Status {
          HEARTH_RETURN_IF_ERROR(step(i, t.gguf, before));
          HEARTH_RETURN_IF_ERROR(HfWeights::ReadFloat(*src, v));
          switch (t.transform) {
            case Transform::kPermuteHeads:
            case Transform::kPermuteKvHeads:
              PermuteRows(v, n_heads, t.ne[1], t.ne[0]);
              break;
            case Transform::kPlusOne:
              for (float& x : *v) x += 1.0f;
              break;
            case Transform::kNone:
              break;
          }
          return absl::OkStatus();
        }));
  }
  if (!h.rope_freqs.empty()) {
    const std::vector<float> freqs = h.rope_freqs;
    const int64_t i = index++;
    const uint64_t before = bytes_done;
    HEARTH_RETURN_IF_ERROR(quant::AddEncodedTensor(
        &w, "rope_freqs.weight", gguf::kGgmlF32, {static_cast<int64_t>(freqs.size())},
        [freqs, i, before, &step](std::vector<float>* v) -> absl::Status {
          HEARTH_RETURN_IF_ERROR(step(i, "rope_freqs.weight", before));
          *v = freqs;
          return absl::OkStatus();
        }));
  }
  return w.WriteTo(out);
}

}  // namespace hearth::convert
