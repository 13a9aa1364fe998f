// registry.cc — the list of architectures hearth can run, and WeightSet.
// Adding an architecture: one line here plus its own file and test.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sdk/src/model/architecture.h"

namespace hearth {
namespace {

struct Entry {
  const char* name;
  std::unique_ptr<Architecture> arch;
};

const std::vector<Entry>& Registry() {
  static const std::vector<Entry>* entries = [] {
    auto* v = new std::vector<Entry>();
    v->push_back({"llama", NewLlamaArchitecture(/*qwen2=*/false)});
    v->push_back({"qwen2", NewLlamaArchitecture(/*qwen2=*/true)});
    v->push_back({"gemma3", NewGemma3Architecture()});
    return v;
  }();
  return *entries;
}

std::string ShapeString(const int64_t* ne, int n) {
  std::string s = "[";
  for (int i = 0; i < n; ++i) absl::StrAppend(&s, i ? ", " : "", ne[i]);
  return s + "]";
}

}  // namespace

const Architecture* FindArchitecture(std::string_view name) {
  for (const Entry& e : Registry()) {
    if (name == e.name) return e.arch.get();
  }
  return nullptr;
}

std::string ArchitectureNames() {
  std::vector<std::string> names;
  for (const Entry& e : Registry()) names.push_back(e.name);
  return absl::StrJoin(names, ", ");
}

void WeightSet::Add(std::string name, const hearth_tensor_desc& desc) {
  by_name_[std::move(name)] = desc;
}

const hearth_tensor_desc* WeightSet::Find(std::string_view name) const {
  auto it = by_name_.find(std::string(name));
  return it == by_name_.end() ? nullptr : &it->second;
}

absl::StatusOr<hearth_tensor_desc> WeightSet::Require(std::string_view name,
                                                      std::initializer_list<int64_t> ne) const {
  const hearth_tensor_desc* d = Find(name);
  if (d == nullptr) {
    return absl::NotFoundError(absl::StrCat("model file has no tensor '", std::string(name), "'"));
  }
  int64_t want[4] = {1, 1, 1, 1};
  int i = 0;
  for (int64_t v : ne) want[i++] = v;
  for (int k = 0; k < 4; ++k) {
    if (d->ne[k] != want[k]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", std::string(name), "' has shape ", ShapeString(d->ne, 4), ", expected ",
          ShapeString(want, 4), " from the model's hyper-parameters"));
    }
  }
  return *d;
}

int Project(Graph* g, int w, const std::string& name, const LoraStack* lora, int x, int64_t rows,
            int64_t n_tokens, uint32_t mul_mat_flags) {
  const Shape shape = Shape::Of({rows, n_tokens});
  int y = mul_mat_flags != 0 ? g->Op(HEARTH_OP_MUL_MAT, HEARTH_DTYPE_F32, shape, {w, x},
                                     hearth_mul_mat_params{mul_mat_flags})
                             : g->Op(HEARTH_OP_MUL_MAT, HEARTH_DTYPE_F32, shape, {w, x});
  const std::vector<LoraTerm>* terms = lora ? lora->Find(name) : nullptr;
  if (terms == nullptr) return y;
  for (const LoraTerm& t : *terms) {
    int xt = x;
    if (t.dropout > 0.0f) {
      xt = g->Op(HEARTH_OP_DROPOUT, HEARTH_DTYPE_F32, Shape::Of({g->tensor(x).ne[0], n_tokens}),
                 {x, lora->dropout_offset}, hearth_dropout_params{t.dropout, 0, t.dropout_seed});
    }
    const int a = g->External(t.a), b = g->External(t.b);
    y = t.row_scales >= 0 ? g->Op(HEARTH_OP_LORA_MUL_MAT, HEARTH_DTYPE_F32, shape,
                                  {y, a, b, xt, t.row_scales}, hearth_scale_params{t.scale})
                          : g->Op(HEARTH_OP_LORA_MUL_MAT, HEARTH_DTYPE_F32, shape, {y, a, b, xt},
                                  hearth_scale_params{t.scale});
  }
  return y;
}

int Attention(Graph* g, const KvCacheRefs& kv, const Shape& out, int64_t n_head, int64_t n_tokens,
              const AttentionInputs& in, const StepTensors& io,
              const hearth_attention_params& params) {
  const Shape lse = Shape::Of({n_head, n_tokens});
  if (io.blocks >= 0) {  // a paged cache (batch runners; never training)
    return g->Op(HEARTH_OP_ATTENTION, HEARTH_DTYPE_F32, out,
                 {in.q, in.k, in.v, in.k_cache, in.v_cache, io.positions, io.seq, io.blocks},
                 params);
  }
  if (io.seq >= 0) {
    if (!kv.with_lse) {
      return g->Op(HEARTH_OP_ATTENTION, HEARTH_DTYPE_F32, out,
                   {in.q, in.k, in.v, in.k_cache, in.v_cache, io.positions, io.seq}, params);
    }
    return g->OpOutputs(HEARTH_OP_ATTENTION, {{HEARTH_DTYPE_F32, out}, {HEARTH_DTYPE_F32, lse}},
                        {in.q, in.k, in.v, in.k_cache, in.v_cache, io.positions, io.seq},
                        params)[0];
  }
  // One sequence: no seq input, the graph a session has always run.
  if (!kv.with_lse) {
    return g->Op(HEARTH_OP_ATTENTION, HEARTH_DTYPE_F32, out,
                 {in.q, in.k, in.v, in.k_cache, in.v_cache, io.positions}, params);
  }
  return g->OpOutputs(HEARTH_OP_ATTENTION, {{HEARTH_DTYPE_F32, out}, {HEARTH_DTYPE_F32, lse}},
                      {in.q, in.k, in.v, in.k_cache, in.v_cache, io.positions}, params)[0];
}

absl::Status AddStepInputs(Graph* g, const KvCacheRefs& kv, const StepBatch& batch,
                           StepTensors* io) {
  if (batch.n_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("a step graph needs at least one token (n_tokens ", batch.n_tokens, ")"));
  }
  if (batch.logits == StepBatch::Logits::kRows && batch.n_out < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("a step graph with listed logit rows needs n_out >= 1 (", batch.n_out, ")"));
  }
  if (kv.n_seq > 1 && !batch.multi_seq) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a KV cache of ", kv.n_seq, " sequences needs a multi_seq step graph (a seq input)"));
  }
  const Shape t = Shape::Of({batch.n_tokens});
  io->tokens = g->Input(HEARTH_DTYPE_I32, t);
  io->positions = g->Input(HEARTH_DTYPE_I32, t);
  if (kv.block_size > 0 && (!batch.multi_seq || kv.with_lse)) {
    return absl::InvalidArgumentError(
        "a paged KV cache needs a multi_seq step graph without training outputs");
  }
  if (batch.multi_seq) io->seq = g->Input(HEARTH_DTYPE_I32, t);
  if (kv.block_size > 0) {
    io->blocks = g->Input(HEARTH_DTYPE_I32, Shape::Of({kv.max_blocks, kv.n_seq}));
  }
  return absl::OkStatus();
}

int LogitRows(Graph* g, const StepBatch& batch, int x, StepTensors* io, int64_t* rows) {
  switch (batch.logits) {
    case StepBatch::Logits::kAll:
      *rows = batch.n_tokens;
      return x;
    case StepBatch::Logits::kRows: {
      // GET_ROWS gathers the wanted rows of the activations (any F32 table
      // works), so the final norm and the output projection, the step's
      // largest product, run on those rows only.
      *rows = batch.n_out;
      io->logit_rows = g->Input(HEARTH_DTYPE_I32, Shape::Of({batch.n_out}));
      return g->Op(HEARTH_OP_GET_ROWS, HEARTH_DTYPE_F32,
                   Shape::Of({g->tensor(x).ne[0], batch.n_out}), {x, io->logit_rows});
    }
    case StepBatch::Logits::kLast:
      break;
  }
  *rows = 1;
  return g->Rows(x, batch.n_tokens - 1, 1);
}

int WeightBinder::operator()(const std::string& name) {
  auto it = bound_.find(name);
  if (it != bound_.end()) return it->second;
  const hearth_tensor_desc* d = w_.Find(name);
  const int idx = d ? g_->External(*d) : -1;
  bound_[name] = idx;
  return idx;
}

absl::StatusOr<bool> WeightSet::Optional(std::string_view name,
                                         std::initializer_list<int64_t> ne,
                                         hearth_tensor_desc* out) const {
  if (Find(name) == nullptr) return false;
  auto d = Require(name, ne);
  if (!d.ok()) return d.status();
  *out = *d;
  return true;
}

}  // namespace hearth
