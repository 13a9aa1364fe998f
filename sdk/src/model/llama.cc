// llama.cc — the Llama family: llama (Llama 2/3, Mistral,
// DeepSeek-R1-Distill-Llama) and qwen2 (Qwen2/2.5, DeepSeek-R1-Distill-Qwen).
// Pre-norm decoder: RMSNorm, grouped-query attention with RoPE, SwiGLU FFN,
// tied or untied output. qwen2 adds q/k/v biases and uses neox RoPE.
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"
#include "sdk/src/model/architecture.h"
#include "sdk/src/model/config_reader.h"

namespace hearth {
namespace {

class LlamaArchitecture : public Architecture {
 public:
  explicit LlamaArchitecture(bool qwen2) : qwen2_(qwen2) {}

  absl::Status ReadConfig(const gguf::File& file, ModelConfig* c) const override {
    c->arch = qwen2_ ? "qwen2" : "llama";
    HEARTH_RETURN_IF_ERROR(ReadDecoderConfig(file, c->arch, c));
    c->rope_mode = qwen2_ ? HEARTH_ROPE_NEOX : HEARTH_ROPE_NORMAL;
    return absl::OkStatus();
  }

  absl::Status CheckWeights(const ModelConfig& c, const WeightSet& w) const override {
    HEARTH_ASSIGN_OR_RETURN(auto emb, w.Require("token_embd.weight", {c.n_embd, c.n_vocab}));
    (void)emb;
    HEARTH_RETURN_IF_ERROR(RequireF32(w, "output_norm.weight", {c.n_embd}));
    hearth_tensor_desc out;
    HEARTH_ASSIGN_OR_RETURN(bool has_out, w.Optional("output.weight", {c.n_embd, c.n_vocab}, &out));
    (void)has_out;
    hearth_tensor_desc freqs;
    HEARTH_ASSIGN_OR_RETURN(bool has_freqs, w.Optional("rope_freqs.weight", {c.n_rot / 2}, &freqs));
    if (has_freqs && freqs.dtype != HEARTH_DTYPE_F32) {
      return absl::InvalidArgumentError("tensor 'rope_freqs.weight' must be F32");
    }
    const int64_t q_dim = c.n_head * c.head_dim, kv_dim = c.n_head_kv * c.head_dim;
    const int64_t v_dim = c.n_head_kv * c.head_dim_v, o_in = c.n_head * c.head_dim_v;
    for (int64_t l = 0; l < c.n_layer; ++l) {
      const std::string p = absl::StrCat("blk.", l, ".");
      HEARTH_RETURN_IF_ERROR(RequireF32(w, p + "attn_norm.weight", {c.n_embd}));
      HEARTH_RETURN_IF_ERROR(w.Require(p + "attn_q.weight", {c.n_embd, q_dim}).status());
      HEARTH_RETURN_IF_ERROR(w.Require(p + "attn_k.weight", {c.n_embd, kv_dim}).status());
      HEARTH_RETURN_IF_ERROR(w.Require(p + "attn_v.weight", {c.n_embd, v_dim}).status());
      HEARTH_RETURN_IF_ERROR(w.Require(p + "attn_output.weight", {o_in, c.n_embd}).status());
      HEARTH_RETURN_IF_ERROR(RequireF32(w, p + "ffn_norm.weight", {c.n_embd}));
      HEARTH_RETURN_IF_ERROR(w.Require(p + "ffn_gate.weight", {c.n_embd, c.n_ff}).status());
      HEARTH_RETURN_IF_ERROR(w.Require(p + "ffn_up.weight", {c.n_embd, c.n_ff}).status());
      HEARTH_RETURN_IF_ERROR(w.Require(p + "ffn_down.weight", {c.n_ff, c.n_embd}).status());
      if (qwen2_) {
        HEARTH_RETURN_IF_ERROR(RequireF32(w, p + "attn_q.bias", {q_dim}));
        HEARTH_RETURN_IF_ERROR(RequireF32(w, p + "attn_k.bias", {kv_dim}));
        HEARTH_RETURN_IF_ERROR(RequireF32(w, p + "attn_v.bias", {v_dim}));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<StepTensors> BuildStep(const ModelConfig& c, const WeightSet& w,
                                        const KvCacheRefs& kv, const StepBatch& batch,
                                        const LoraStack* lora, Graph* g) const override {
    const int64_t E = c.n_embd, H = c.n_head, Hk = c.n_head_kv, D = c.head_dim;
    const int64_t Dv = c.head_dim_v, T = batch.n_tokens;
    WeightBinder weight(w, g);
    StepTensors io;
    HEARTH_RETURN_IF_ERROR(AddStepInputs(g, kv, batch, &io));
    const int freqs = weight("rope_freqs.weight");
    const float scale = c.attn_scale > 0 ? c.attn_scale : 1.0f / std::sqrt(static_cast<float>(D));
    const float eps = c.rms_eps;

    int x = g->Op(HEARTH_OP_GET_ROWS, HEARTH_DTYPE_F32, Shape::Of({E, T}),
                  {weight("token_embd.weight"), io.tokens});
    for (int64_t l = 0; l < c.n_layer; ++l) {
      const std::string p = absl::StrCat("blk.", l, ".");
      auto proj = [&](const std::string& name, int in, int64_t rows) {
        const std::string w_name = p + name + ".weight";
        int y = Project(g, weight(w_name), w_name, lora, in, rows, T, kv.mul_mat_flags());
        int bias = weight(p + name + ".bias");
        if (bias >= 0) y = g->Op(HEARTH_OP_ADD, HEARTH_DTYPE_F32, Shape::Of({rows, T}), {y, bias});
        return y;
      };
      int h = g->Op(HEARTH_OP_RMS_NORM, HEARTH_DTYPE_F32, Shape::Of({E, T}),
                    {x, weight(p + "attn_norm.weight")}, hearth_rms_norm_params{eps});
      int q = g->Reshape(proj("attn_q", h, H * D), Shape::Of({D, H, T}));
      int k = g->Reshape(proj("attn_k", h, Hk * D), Shape::Of({D, Hk, T}));
      int v = g->Reshape(proj("attn_v", h, Hk * Dv), Shape::Of({Dv, Hk, T}));
      const float rope_f[] = {c.rope_theta, c.rope_freq_scale};
      q = g->Op(
          HEARTH_OP_ROPE, HEARTH_DTYPE_F32, Shape::Of({D, H, T}), {q, io.positions, freqs},
          hearth_rope_params{rope_f[0], rope_f[1], static_cast<int32_t>(c.n_rot), c.rope_mode});
      k = g->Op(
          HEARTH_OP_ROPE, HEARTH_DTYPE_F32, Shape::Of({D, Hk, T}), {k, io.positions, freqs},
          hearth_rope_params{rope_f[0], rope_f[1], static_cast<int32_t>(c.n_rot), c.rope_mode});
      const int kc = g->External(kv.k[l]), vc = g->External(kv.v[l]);
      int a = Attention(g, kv, Shape::Of({Dv, H, T}), H, T, {q, k, v, kc, vc}, io,
                        hearth_attention_params{scale, 0.0f, 0});
      a = g->Reshape(a, Shape::Of({H * Dv, T}));
      int o = proj("attn_output", a, E);
      x = g->Op(HEARTH_OP_ADD, HEARTH_DTYPE_F32, Shape::Of({E, T}), {x, o});

      h = g->Op(HEARTH_OP_RMS_NORM, HEARTH_DTYPE_F32, Shape::Of({E, T}),
                {x, weight(p + "ffn_norm.weight")}, hearth_rms_norm_params{eps});
      int gate = proj("ffn_gate", h, c.n_ff);
      int up = proj("ffn_up", h, c.n_ff);
      int act = g->Op(HEARTH_OP_SILU_MUL, HEARTH_DTYPE_F32, Shape::Of({c.n_ff, T}), {gate, up});
      int down = proj("ffn_down", act, E);
      x = g->Op(HEARTH_OP_ADD, HEARTH_DTYPE_F32, Shape::Of({E, T}), {x, down});
    }
    int64_t rows = 0;
    const int last = LogitRows(g, batch, x, &io, &rows);
    int hn = g->Op(HEARTH_OP_RMS_NORM, HEARTH_DTYPE_F32, Shape::Of({E, rows}),
                   {last, weight("output_norm.weight")}, hearth_rms_norm_params{eps});
    int out_w = weight("output.weight");
    if (out_w < 0) out_w = weight("token_embd.weight");  // tied output
    // A LoRA on the output layer (PEFT's lm_head) applies whether or not
    // the file ties it to the embedding table.
    io.logits = Project(g, out_w, "output.weight", lora, hn, c.n_vocab, rows, kv.mul_mat_flags());
    g->MarkOutput(io.logits);
    return io;
  }

 private:
  bool qwen2_;
};

}  // namespace

std::unique_ptr<Architecture> NewLlamaArchitecture(bool qwen2) {
  return std::make_unique<LlamaArchitecture>(qwen2);
}

}  // namespace hearth
