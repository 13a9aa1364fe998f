// autograd.cc — the backward rules, one per forward op, and the pass that
// applies them in reverse node order (see autograd.h).
#include "sdk/src/train/autograd.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"

namespace hearth::train {
namespace {

// One forward node, copied out of the graph before backward nodes are
// appended (appending reallocates the graph's arrays).
struct FwdNode {
  hearth_op op;
  int out = -1;
  std::vector<int> in;     // -1 = absent optional input
  std::vector<int> extra;  // extra outputs
  std::vector<uint8_t> params;
  int input(size_t i) const { return i < in.size() ? in[i] : -1; }
};

// The node's params as struct P (a shorter block reads as zeros, as
// hearth_plugin.h says).
template <typename P>
P ParamsOf(const FwdNode& n) {
  P p;
  std::memset(&p, 0, sizeof(p));
  std::memcpy(&p, n.params.data(), std::min(sizeof(P), n.params.size()));
  return p;
}

Shape ShapeOfDesc(const hearth_tensor_desc& d) {
  Shape s;
  s.n_dims = d.n_dims;
  for (int i = 0; i < 4; ++i) s.ne[i] = d.ne[i];
  return s;
}

class Backward {
 public:
  Backward(Graph* g, const std::vector<Param>& params) : g_(g), params_(params) {}

  absl::StatusOr<std::vector<bool>> Run(int output, int d_output) {
    const hearth_graph view = g_->view();
    const int n_tensors = static_cast<int>(view.n_tensors);
    for (uint32_t i = 0; i < view.n_nodes; ++i) {
      const hearth_node& hn = view.nodes[i];
      FwdNode n;
      n.op = static_cast<hearth_op>(hn.op);
      n.out = hn.output;
      for (uint32_t k = 0; k < hn.n_inputs; ++k)
        n.in.push_back(view.node_inputs[hn.first_input + k]);
      for (uint32_t k = 0; k < hn.n_extra_outputs; ++k) {
        n.extra.push_back(view.node_inputs[hn.first_input + hn.n_inputs + k]);
      }
      const uint8_t* pb = static_cast<const uint8_t*>(view.params) + hn.params_offset;
      n.params.assign(pb, pb + hn.params_size);
      nodes_.push_back(std::move(n));
    }
    // Which tensors are trainable params (by buffer and offset).
    param_of_.assign(n_tensors, -1);
    for (int t = 0; t < n_tensors; ++t) {
      const hearth_tensor_desc& d = g_->tensor(t);
      if (d.buffer == nullptr) continue;
      for (size_t p = 0; p < params_.size(); ++p) {
        const hearth_tensor_desc& v = params_[p].value;
        if (v.buffer == d.buffer && v.offset == d.offset && v.ne[0] == d.ne[0] &&
            v.ne[1] == d.ne[1]) {
          param_of_[t] = static_cast<int>(p);
        }
      }
    }
    // Forward: tensors that depend on a param.
    std::vector<bool> depends(n_tensors, false);
    for (int t = 0; t < n_tensors; ++t) depends[t] = param_of_[t] >= 0;
    for (const FwdNode& n : nodes_) {
      bool any = false;
      for (int in : n.in) any = any || (in >= 0 && depends[Root(in)]);
      if (!any) continue;
      depends[n.out] = true;
      for (int e : n.extra) depends[e] = true;
    }
    // Backward: tensors the output depends on.
    std::vector<bool> needed(n_tensors, false);
    needed[Root(output)] = true;
    for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
      bool any = needed[it->out];
      for (int e : it->extra) any = any || needed[e];
      if (!any) continue;
      for (int in : it->in) {
        if (in >= 0) needed[Root(in)] = true;
      }
    }
    relevant_.assign(n_tensors, false);
    for (int t = 0; t < n_tensors; ++t) relevant_[t] = depends[t] && needed[t];
    grad_.assign(n_tensors, -1);
    reached_.assign(params_.size(), false);
    grad_tensor_.assign(params_.size(), -1);

    if (!relevant_[Root(output)]) return reached_;  // nothing trainable reaches the output
    auto seeded = Accumulate(output, d_output);
    if (!seeded.ok()) return seeded;
    for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
      const int dy = grad_[it->out];
      if (dy < 0) continue;
      auto st = Rule(*it, dy);
      if (!st.ok()) return st;
    }
    return reached_;
  }

 private:
  int Root(int t) const {
    while (g_->view_base(t) >= 0) t = g_->view_base(t);
    return t;
  }
  bool Relevant(int t) const { return t >= 0 && relevant_[Root(t)]; }
  Shape ShapeOf(int t) const { return ShapeOfDesc(g_->tensor(t)); }

  static absl::Status NoRule(const FwdNode& n, const std::string& why) {
    return absl::UnimplementedError(
        absl::StrCat("training: no gradient through ", OpName(n.op), " (", why, ")"));
  }

  // Adds `contrib` (shaped like `t`) to the gradient of t's root tensor.
  absl::Status Accumulate(int t, int contrib) {
    const int r = Root(t);
    if (!relevant_[r]) return absl::OkStatus();
    if (r != t) {
      if (ShapeOf(t).elements() != ShapeOf(r).elements() || g_->view_offset(t) != 0) {
        return absl::UnimplementedError(
            "training: a gradient flows through a partial view (Rows) of a tensor");
      }
      contrib = g_->Reshape(contrib, ShapeOf(r));
    }
    if (grad_[r] < 0) {
      grad_[r] = contrib;
    } else {
      grad_[r] = g_->Op(HEARTH_OP_ADD, HEARTH_DTYPE_F32, ShapeOf(r), {grad_[r], contrib});
    }
    return absl::OkStatus();
  }

  // The graph tensor of param p's gradient accumulator.
  int GradOf(int p) {
    if (grad_tensor_[p] < 0) grad_tensor_[p] = g_->External(params_[p].grad);
    reached_[p] = true;
    return grad_tensor_[p];
  }

  absl::Status Rule(const FwdNode& n, int dy) {
    const Shape out_shape = ShapeOf(n.out);
    switch (n.op) {
      case HEARTH_OP_MUL_MAT: {
        const int w = n.input(0), x = n.input(1);
        if (Relevant(w)) return NoRule(n, "a trainable MUL_MAT weight");
        if (!Relevant(x)) return absl::OkStatus();
        // A BF16 forward product gets a BF16 backward one.
        const uint32_t bf16 = ParamsOf<hearth_mul_mat_params>(n).flags & HEARTH_MUL_MAT_BF16;
        const int dx = bf16 != 0
                           ? g_->Op(HEARTH_OP_MUL_MAT_T, HEARTH_DTYPE_F32, ShapeOf(x), {w, dy},
                                    hearth_mul_mat_params{bf16})
                           : g_->Op(HEARTH_OP_MUL_MAT_T, HEARTH_DTYPE_F32, ShapeOf(x), {w, dy});
        return Accumulate(x, dx);
      }
      case HEARTH_OP_LORA_MUL_MAT: {
        const int y = n.input(0), a = n.input(1), b = n.input(2), x = n.input(3);
        const float s = ParamsOf<hearth_scale_params>(n).scale;
        if (n.input(4) >= 0) return NoRule(n, "per-token scales");
        HEARTH_RETURN_IF_ERROR(Accumulate(y, dy));
        const int pa = param_of_[a], pb = param_of_[b];
        if ((Relevant(a) && pa < 0) || (Relevant(b) && pb < 0)) {
          return NoRule(n, "a LoRA factor computed by the graph");
        }
        const bool rel_a = pa >= 0 && Relevant(a), rel_b = pb >= 0 && Relevant(b);
        const bool rel_x = Relevant(x);
        if (!rel_a && !rel_b && !rel_x) return absl::OkStatus();
        const int64_t R = g_->tensor(a).ne[1], T = g_->tensor(x).ne[1];
        if (rel_b) {
          // d(B^T)[m, r] = s * sum_t dy[m, t] u[r, t], u = A x.
          const int u = g_->Op(HEARTH_OP_MUL_MAT, HEARTH_DTYPE_F32, Shape::Of({R, T}), {a, x});
          const int su = g_->Op(HEARTH_OP_SCALE, HEARTH_DTYPE_F32, Shape::Of({R, T}), {u},
                                hearth_scale_params{s});
          const int gb = GradOf(pb);
          g_->OpInto(HEARTH_OP_OUTER, {gb}, {dy, su, gb});
        }
        if (rel_a || rel_x) {
          // du[r, t] = s * sum_m B^T[m, r] dy[m, t].
          const int bu = g_->Op(HEARTH_OP_MUL_MAT, HEARTH_DTYPE_F32, Shape::Of({R, T}), {b, dy});
          const int du = g_->Op(HEARTH_OP_SCALE, HEARTH_DTYPE_F32, Shape::Of({R, T}), {bu},
                                hearth_scale_params{s});
          if (rel_a) {
            const int ga = GradOf(pa);
            g_->OpInto(HEARTH_OP_OUTER, {ga}, {x, du, ga});
          }
          if (rel_x) {
            const int dx = g_->Op(HEARTH_OP_MUL_MAT_T, HEARTH_DTYPE_F32, ShapeOf(x), {a, du});
            HEARTH_RETURN_IF_ERROR(Accumulate(x, dx));
          }
        }
        return absl::OkStatus();
      }
      case HEARTH_OP_ADD: {
        const int a = n.input(0), b = n.input(1);
        if (Relevant(a)) HEARTH_RETURN_IF_ERROR(Accumulate(a, dy));
        if (Relevant(b)) {
          if (ShapeOf(b).elements() != out_shape.elements()) {
            return NoRule(n, "a trainable broadcast operand");
          }
          HEARTH_RETURN_IF_ERROR(Accumulate(b, dy));
        }
        return absl::OkStatus();
      }
      case HEARTH_OP_DROPOUT: {
        // The same mask over dy (same seed and p): out = mask * s * x.
        const int x = n.input(0);
        if (!Relevant(x)) return absl::OkStatus();
        if (Relevant(n.input(1))) return NoRule(n, "a trainable offset");
        const int dx = g_->Op(HEARTH_OP_DROPOUT, HEARTH_DTYPE_F32, ShapeOf(x), {dy, n.input(1)},
                              ParamsOf<hearth_dropout_params>(n));
        return Accumulate(x, dx);
      }
      case HEARTH_OP_SCALE: {
        const int x = n.input(0);
        if (!Relevant(x)) return absl::OkStatus();
        const int dx = g_->Op(HEARTH_OP_SCALE, HEARTH_DTYPE_F32, ShapeOf(x), {dy},
                              ParamsOf<hearth_scale_params>(n));
        return Accumulate(x, dx);
      }
      case HEARTH_OP_RMS_NORM: {
        const int x = n.input(0), w = n.input(1);
        if (Relevant(w)) return NoRule(n, "a trainable norm weight");
        if (!Relevant(x)) return absl::OkStatus();
        const int dx = g_->Op(HEARTH_OP_RMS_NORM_BACK, HEARTH_DTYPE_F32, ShapeOf(x), {x, dy, w},
                              ParamsOf<hearth_rms_norm_params>(n));
        return Accumulate(x, dx);
      }
      case HEARTH_OP_ROPE: {
        const int x = n.input(0), pos = n.input(1), freqs = n.input(2);
        if (Relevant(freqs)) return NoRule(n, "trainable frequency factors");
        if (!Relevant(x)) return absl::OkStatus();
        const int dx = g_->Op(HEARTH_OP_ROPE_BACK, HEARTH_DTYPE_F32, ShapeOf(x), {dy, pos, freqs},
                              ParamsOf<hearth_rope_params>(n));
        return Accumulate(x, dx);
      }
      case HEARTH_OP_ATTENTION: {
        const int q = n.input(0), k = n.input(1), v = n.input(2), pos = n.input(5);
        const int seq = n.input(6);
        if (n.input(7) >= 0) return NoRule(n, "a paged KV cache");
        if (n.extra.empty()) {
          return absl::FailedPreconditionError(
              "training: ATTENTION was built without its lse output (KvCacheRefs::with_lse)");
        }
        if (!Relevant(q) && !Relevant(k) && !Relevant(v)) return absl::OkStatus();
        const std::vector<int> d = g_->OpOutputs(HEARTH_OP_ATTENTION_BACK,
                                                 {{HEARTH_DTYPE_F32, ShapeOf(q)},
                                                  {HEARTH_DTYPE_F32, ShapeOf(k)},
                                                  {HEARTH_DTYPE_F32, ShapeOf(v)}},
                                                 {q, k, v, n.out, dy, n.extra[0], pos, seq},
                                                 ParamsOf<hearth_attention_params>(n));
        if (Relevant(q)) HEARTH_RETURN_IF_ERROR(Accumulate(q, d[0]));
        if (Relevant(k)) HEARTH_RETURN_IF_ERROR(Accumulate(k, d[1]));
        if (Relevant(v)) HEARTH_RETURN_IF_ERROR(Accumulate(v, d[2]));
        return absl::OkStatus();
      }
      case HEARTH_OP_SILU_MUL:
      case HEARTH_OP_GELU_MUL: {
        const int gate = n.input(0), up = n.input(1);
        if (!Relevant(gate) && !Relevant(up)) return absl::OkStatus();
        const hearth_op back =
            n.op == HEARTH_OP_SILU_MUL ? HEARTH_OP_SILU_MUL_BACK : HEARTH_OP_GELU_MUL_BACK;
        const std::vector<int> d = g_->OpOutputs(
            back, {{HEARTH_DTYPE_F32, ShapeOf(gate)}, {HEARTH_DTYPE_F32, ShapeOf(up)}},
            {gate, up, dy});
        if (Relevant(gate)) HEARTH_RETURN_IF_ERROR(Accumulate(gate, d[0]));
        if (Relevant(up)) HEARTH_RETURN_IF_ERROR(Accumulate(up, d[1]));
        return absl::OkStatus();
      }
      default:
        for (int in : n.in) {
          if (Relevant(in)) return NoRule(n, "no backward rule for this op");
        }
        return absl::OkStatus();
    }
  }

  Graph* g_;
  const std::vector<Param>& params_;
  std::vector<FwdNode> nodes_;
  std::vector<int> param_of_;   // tensor -> param index or -1
  std::vector<bool> relevant_;  // by root tensor
  std::vector<int> grad_;       // root tensor -> its gradient tensor, or -1
  std::vector<bool> reached_;
  std::vector<int> grad_tensor_;  // param -> its accumulator in the graph
};

}  // namespace

absl::StatusOr<std::vector<bool>> AppendBackward(Graph* g, int output, int d_output,
                                                 const std::vector<Param>& params) {
  return Backward(g, params).Run(output, d_output);
}

}  // namespace hearth::train
