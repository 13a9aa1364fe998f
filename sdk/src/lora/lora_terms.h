// lora_terms.h — what a model's forward graph needs to know of LoRA: the
// terms attached to a session, by the base weight they sit beside. The
// model's Project (sdk/src/model/architecture.h) adds one LORA_MUL_MAT per
// term; adapters (lora/adapter.h) and the trainer fill the stack.
#ifndef HEARTH_SDK_SRC_LORA_LORA_TERMS_H_
#define HEARTH_SDK_SRC_LORA_LORA_TERMS_H_

#include <string>
#include <vector>

#include "hearth/hearth_plugin.h"
#include "sdk/src/common/tables.h"

namespace hearth {

// LoRA terms attached to a session, by the base weight they sit beside
// ("blk.3.attn_q.weight"): each adds scale * B (A x) to that projection.
// A and B are descriptors of device buffers the adapters own.
struct LoraTerm {
  hearth_tensor_desc a;  // [n_in, rank]: rank rows of n_in (lora_A)
  hearth_tensor_desc b;  // [n_out, rank]: rank rows of n_out (lora_B transposed)
  float scale = 1.0f;    // the file's alpha/r times the user's scale
  // Training with LoRA dropout: the term reads DROPOUT(x) with this p and
  // seed (plus the stack's per-example offset input). 0 = x itself.
  float dropout = 0.0f;
  uint64_t dropout_seed = 0;
  // A batch whose rows use different adapters (runtime/batch.h): the graph's
  // F32 [n_tokens] input of per-token factors (0 on rows without this
  // adapter), multiplied into `scale`; -1 = every token at `scale`. A graph
  // tensor index, like LoraStack::dropout_offset, so a stack whose terms use
  // it belongs to one graph.
  int row_scales = -1;
};

class LoraStack {
 public:
  void Add(const std::string& weight, const LoraTerm& term) { by_weight_[weight].push_back(term); }
  // nullptr when no term targets `weight`.
  const std::vector<LoraTerm>* Find(const std::string& weight) const {
    auto it = by_weight_.find(weight);
    return it == by_weight_.end() ? nullptr : &it->second;
  }
  bool empty() const { return by_weight_.empty(); }
  // The graph's I32 [2] input that DROPOUT nodes add to their seed (the
  // trainer uploads a new value per example); -1 when no term drops out.
  int dropout_offset = -1;

 private:
  StringMap<std::vector<LoraTerm>> by_weight_;
};

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_LORA_LORA_TERMS_H_
