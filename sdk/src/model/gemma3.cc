// gemma3.cc — Gemma 3 (text): embeddings scaled by sqrt(n_embd), RMSNorm
// before and after both attention and FFN, per-head RMSNorm of q and k,
// GeGLU (tanh GELU) FFN, interleaved local (sliding-window) and global
// attention layers with their own RoPE bases, tied output.
//
// Facts the GGUF metadata does not carry are Gemma 3 constants, read from
// the file when a key exists: every `sliding_window_pattern`-th layer (6) is
// global, the others attend to the last `attention.sliding_window` tokens
// with RoPE base `rope.freq_base_swa` (10000); global layers use
// `rope.freq_base`. Norm weights in GGUF already include Gemma's +1.
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"
#include "sdk/src/model/architecture.h"
#include "sdk/src/model/config_reader.h"

namespace hearth {
namespace {

constexpr int64_t kDefaultSlidingWindowPattern = 6;
constexpr float kDefaultLocalRopeBase = 10000.0f;

class Gemma3Architecture : public Architecture {
 public:
  absl::Status ReadConfig(const gguf::File& f, ModelConfig* c) const override {
    c->arch = "gemma3";
    HEARTH_RETURN_IF_ERROR(ReadDecoderConfig(f, c->arch, c));
    c->rope_mode = HEARTH_ROPE_NEOX;
    auto window = f.GetInt("gemma3.attention.sliding_window");
    if (!window.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          f.name(), ": gemma3 needs 'gemma3.attention.sliding_window' (",
          window.status().message(), ")"));
    }
    if (*window < 1 || *window > (int64_t{1} << 24)) {
      return absl::InvalidArgumentError(absl::StrCat(
          f.name(), ": gemma3.attention.sliding_window = ", *window, " is out of range"));
    }
    c->sliding_window = *window;
    auto pattern = f.GetInt("gemma3.attention.sliding_window_pattern");
    c->sliding_window_pattern = pattern.ok() ? *pattern : kDefaultSlidingWindowPattern;
    if (c->sliding_window_pattern < 1 || c->sliding_window_pattern > c->n_layer + 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          f.name(), ": gemma3.attention.sliding_window_pattern = ", c->sliding_window_pattern,
          " is out of range"));
    }
    auto local_base = f.GetFloat("gemma3.rope.freq_base_swa");
    c->rope_theta_local = local_base.ok() ? static_cast<float>(*local_base) : kDefaultLocalRopeBase;
    if (!(c->rope_theta_local > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat(f.name(), ": gemma3.rope.freq_base_swa must be positive"));
    }
    // Gemma 3 scales queries by query_pre_attn_scalar^-1/2, which its
    // published configs set to head_dim.
    c->attn_scale = 1.0f / std::sqrt(static_cast<float>(c->head_dim));
    c->embd_scale = std::sqrt(static_cast<float>(c->n_embd));
    return absl::OkStatus();
  }

  absl::Status CheckWeights(const ModelConfig& c, const WeightSet& w) const override {
    HEARTH_RETURN_IF_ERROR(w.Require("token_embd.weight", {c.n_embd, c.n_vocab}).status());
    HEARTH_RETURN_IF_ERROR(RequireF32(w, "output_norm.weight", {c.n_embd}));
    // Gemma 3 ties the output to token_embd; an output.weight, when present
    // (an export with an lm_head adapter merged), is what Build projects with,
    // so it is checked like every other weight.
    hearth_tensor_desc out;
    HEARTH_RETURN_IF_ERROR(w.Optional("output.weight", {c.n_embd, c.n_vocab}, &out).status());
    const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
    const int64_t v_dim = c.n_head_kv * c.head_dim_v, o_in = c.n_head * c.head_dim_v;
    for (int64_t l = 0; l < c.n_layer; ++l) {
      const std::string p = absl::StrCat("blk.", l, ".");
      for (const char* norm : {"attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm"}) {
        HEARTH_RETURN_IF_ERROR(RequireF32(w, p + norm + ".weight", {c.n_embd}));
      }
      HEARTH_RETURN_IF_ERROR(RequireF32(w, p + "attn_q_norm.weight", {c.head_dim}));
      HEARTH_RETURN_IF_ERROR(RequireF32(w, p + "attn_k_norm.weight", {c.head_dim}));
      HEARTH_RETURN_IF_ERROR(w.Require(p + "attn_q.weight", {c.n_embd, q_dim}).status());
      HEARTH_RETURN_IF_ERROR(w.Require(p + "attn_k.weight", {c.n_embd, kv_dim}).status());
      HEARTH_RETURN_IF_ERROR(w.Require(p + "attn_v.weight", {c.n_embd, v_dim}).status());
      HEARTH_RETURN_IF_ERROR(w.Require(p + "attn_output.weight", {o_in, c.n_embd}).status());
      HEARTH_RETURN_IF_ERROR(w.Require(p + "ffn_gate.weight", {c.n_embd, c.n_ff}).status());
      HEARTH_RETURN_IF_ERROR(w.Require(p + "ffn_up.weight", {c.n_embd, c.n_ff}).status());
      HEARTH_RETURN_IF_ERROR(w.Require(p + "ffn_down.weight", {c.n_ff, c.n_embd}).status());
    }
    return absl::OkStatus();
  }

  absl::StatusOr<StepTensors> BuildStep(const ModelConfig& c, const WeightSet& w,
                                        const KvCacheRefs& kv, const StepBatch& batch,
                                        const LoraStack* lora, Graph* g) const override {
    const int64_t E = c.n_embd, H = c.n_head, Hk = c.n_head_kv, D = c.head_dim;
    const int64_t Dv = c.head_dim_v, T = batch.n_tokens, F = c.n_ff;
    const float eps = c.rms_eps;
    WeightBinder weight(w, g);
    auto norm = [&](int x, const std::string& name, const Shape& s) {
      return g->Op(HEARTH_OP_RMS_NORM, HEARTH_DTYPE_F32, s, {x, weight(name)},
                   hearth_rms_norm_params{eps});
    };
    StepTensors io;
    HEARTH_RETURN_IF_ERROR(AddStepInputs(g, kv, batch, &io));
    const Shape et = Shape::Of({E, T});
    int x = g->Op(HEARTH_OP_GET_ROWS, HEARTH_DTYPE_F32, et,
                  {weight("token_embd.weight"), io.tokens});
    x = g->Op(HEARTH_OP_SCALE, HEARTH_DTYPE_F32, et, {x}, hearth_scale_params{c.embd_scale});
    for (int64_t l = 0; l < c.n_layer; ++l) {
      const std::string p = absl::StrCat("blk.", l, ".");
      const bool global = (l + 1) % c.sliding_window_pattern == 0;
      const float theta = global ? c.rope_theta : c.rope_theta_local;
      const int32_t window = global ? 0 : static_cast<int32_t>(c.sliding_window);
      auto mm = [&](const std::string& name, int in, int64_t rows) {
        const std::string w_name = p + name + ".weight";
        return Project(g, weight(w_name), w_name, lora, in, rows, T, kv.mul_mat_flags());
      };
      int h = norm(x, p + "attn_norm.weight", et);
      int q = g->Reshape(mm("attn_q", h, H * D), Shape::Of({D, H, T}));
      int k = g->Reshape(mm("attn_k", h, Hk * D), Shape::Of({D, Hk, T}));
      int v = g->Reshape(mm("attn_v", h, Hk * Dv), Shape::Of({Dv, Hk, T}));
      q = norm(q, p + "attn_q_norm.weight", Shape::Of({D, H, T}));
      k = norm(k, p + "attn_k_norm.weight", Shape::Of({D, Hk, T}));
      q = g->Op(
          HEARTH_OP_ROPE, HEARTH_DTYPE_F32, Shape::Of({D, H, T}), {q, io.positions, -1},
          hearth_rope_params{theta, c.rope_freq_scale, static_cast<int32_t>(c.n_rot), c.rope_mode});
      k = g->Op(
          HEARTH_OP_ROPE, HEARTH_DTYPE_F32, Shape::Of({D, Hk, T}), {k, io.positions, -1},
          hearth_rope_params{theta, c.rope_freq_scale, static_cast<int32_t>(c.n_rot), c.rope_mode});
      const int kc = g->External(kv.k[l]), vc = g->External(kv.v[l]);
      int a = Attention(g, kv, Shape::Of({Dv, H, T}), H, T, {q, k, v, kc, vc}, io,
                        hearth_attention_params{c.attn_scale, 0.0f, window});
      a = g->Reshape(a, Shape::Of({H * Dv, T}));
      int o = mm("attn_output", a, E);
      o = norm(o, p + "post_attention_norm.weight", et);
      x = g->Op(HEARTH_OP_ADD, HEARTH_DTYPE_F32, et, {x, o});

      h = norm(x, p + "ffn_norm.weight", et);
      int gate = mm("ffn_gate", h, F);
      int up = mm("ffn_up", h, F);
      int act = g->Op(HEARTH_OP_GELU_MUL, HEARTH_DTYPE_F32, Shape::Of({F, T}), {gate, up});
      int down = mm("ffn_down", act, E);
      down = norm(down, p + "post_ffw_norm.weight", et);
      x = g->Op(HEARTH_OP_ADD, HEARTH_DTYPE_F32, et, {x, down});
    }
    int64_t rows = 0;
    const int last = LogitRows(g, batch, x, &io, &rows);
    int hn = norm(last, "output_norm.weight", Shape::Of({E, rows}));
    // Gemma ties its output to the embedding table; a file with its own
    // output.weight (e.g. an export with an lm_head adapter merged) uses it.
    int out_w = weight("output.weight");
    if (out_w < 0) out_w = weight("token_embd.weight");
    io.logits = Project(g, out_w, "output.weight", lora, hn, c.n_vocab, rows, kv.mul_mat_flags());
    g->MarkOutput(io.logits);
    return io;
  }
};

}  // namespace

std::unique_ptr<Architecture> NewGemma3Architecture() {
  return std::make_unique<Gemma3Architecture>();
}

}  // namespace hearth
