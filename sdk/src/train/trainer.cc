// trainer.cc — the training loop over graphs on the model's device: step
// graphs (forward + loss + backward) per padded length, a gradient-norm
// graph, and an AdamW graph per optimizer step (its params change each
// step). Optimizer state lives beside the parameters in one device buffer.
#include "sdk/src/train/trainer.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "sdk/src/common/status.h"
#include "sdk/src/format/fingerprint.h"
#include "sdk/src/train/autograd.h"
#include "sdk/src/lora/gguf_writer.h"
#include "sdk/src/lora/peft_writer.h"

namespace hearth::train {
namespace {

constexpr uint64_t kAlign = 64;
constexpr int64_t kPadMultiple = 16;

uint64_t AlignUp(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// splitmix64: the same stream on every platform (std::shuffle and the
// std distributions are implementation-defined).
struct Rng {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }
  uint64_t Below(uint64_t n) { return Next() % n; }
};

uint64_t SplitMix64(uint64_t seed) { return Rng{seed}.Next(); }

void Shuffle(std::vector<size_t>* v, uint64_t seed) {
  Rng rng{seed};
  for (size_t i = v->size(); i > 1; --i) std::swap((*v)[i - 1], (*v)[rng.Below(i)]);
}

struct Projection {
  const char* gguf;
  const char* aliases[3];
};
constexpr Projection kProjections[] = {
    {"attn_q", {"q", "q_proj", "attn_q"}},
    {"attn_k", {"k", "k_proj", "attn_k"}},
    {"attn_v", {"v", "v_proj", "attn_v"}},
    {"attn_output", {"o", "o_proj", "attn_output"}},
    {"ffn_gate", {"gate", "gate_proj", "ffn_gate"}},
    {"ffn_up", {"up", "up_proj", "ffn_up"}},
    {"ffn_down", {"down", "down_proj", "ffn_down"}},
};

// Rows of q/k whose PEFT (Hugging Face) order differs from the model's: GGUF
// row m of a head holds HF row Src(m) (see adapter/lora_binding.cc).
int64_t PermuteHeads(const ModelConfig& c, const std::string& projection) {
  if (c.rope_mode != HEARTH_ROPE_NORMAL) return 0;
  if (projection == "attn_q") return c.n_head;
  if (projection == "attn_k") return c.n_head_kv;
  return 0;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ParseTargets(const std::string& spec) {
  std::set<std::string> want;
  for (absl::string_view part : absl::StrSplit(spec, ',')) {
    const std::string name(absl::StripAsciiWhitespace(part));
    if (name.empty()) continue;
    if (name == "all") {
      for (const Projection& p : kProjections) want.insert(p.gguf);
      continue;
    }
    bool found = false;
    for (const Projection& p : kProjections) {
      for (const char* a : p.aliases) {
        if (name == a) {
          want.insert(p.gguf);
          found = true;
        }
      }
    }
    if (!found) {
      return absl::InvalidArgumentError(
          absl::StrCat("target '", name,
                       "' is not a projection hearth trains (q, k, v, o, gate, up, down, "
                       "or all)"));
    }
  }
  if (want.empty()) return absl::InvalidArgumentError("no LoRA targets given");
  std::vector<std::string> out;
  for (const Projection& p : kProjections) {
    if (want.count(p.gguf)) out.push_back(p.gguf);
  }
  return out;
}

Trainer::~Trainer() {
  graphs_.clear();
  if (!backend_) return;
  for (hearth_pbuffer* b : {arena_, kv_buf_, params_buf_, norm_arena_}) {
    if (b) backend_->Free(b);
  }
}

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(std::shared_ptr<const Model> model,
                                                         std::vector<Example> examples,
                                                         const TrainerOptions& o) {
  if (model == nullptr) return absl::InvalidArgumentError("no model");
  if (o.rank < 1 || o.rank > 65536) {
    return absl::InvalidArgumentError(absl::StrCat("rank ", o.rank, " is outside [1, 65536]"));
  }
  if (!std::isfinite(o.alpha) || o.alpha == 0) {
    return absl::InvalidArgumentError(absl::StrCat("alpha ", o.alpha, " must be finite, not 0"));
  }
  if (!(o.lr > 0) || !std::isfinite(o.lr)) {
    return absl::InvalidArgumentError(absl::StrCat("learning rate ", o.lr, " must be > 0"));
  }
  if (!(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("betas (", o.beta1, ", ", o.beta2, ") must be in [0, 1)"));
  }
  if (!(o.eps > 0) || !(o.weight_decay >= 0) || !(o.max_grad_norm >= 0)) {
    return absl::InvalidArgumentError("eps must be > 0, weight decay and the clipping norm >= 0");
  }
  if (o.batch < 1 || o.grad_accum < 1 || o.epochs < 1 || o.warmup_steps < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch (", o.batch, "), grad_accum (", o.grad_accum, ") and epochs (",
                     o.epochs, ") must be >= 1, warmup (", o.warmup_steps, ") >= 0"));
  }
  if (!(o.lora_dropout >= 0 && o.lora_dropout < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("LoRA dropout ", o.lora_dropout, " is outside [0, 1)"));
  }
  if (!(o.eval_split >= 0 && o.eval_split <= 0.5f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("eval split ", o.eval_split, " is outside [0, 0.5]"));
  }
  if (o.schedule != Schedule::kConstant && o.schedule != Schedule::kLinear &&
      o.schedule != Schedule::kCosine) {
    return absl::InvalidArgumentError("unknown learning-rate schedule");
  }
  std::unique_ptr<Trainer> t(new Trainer());
  t->model_ = std::move(model);
  t->options_ = o;
  HEARTH_RETURN_IF_ERROR(t->Init(std::move(examples)));
  if (!o.init_adapter.empty()) HEARTH_RETURN_IF_ERROR(t->InitFromAdapter(o.init_adapter));
  return t;
}

absl::Status Trainer::Init(std::vector<Example> examples) {
  const ModelConfig& c = model_->config();
  const TrainerOptions& o = options_;
  if (examples.empty()) return absl::InvalidArgumentError("the training data has no examples");
  // Provenance: per example in data order, XXH64 of its ids (int32 LE) and
  // of its trained flags; the data hash is the XXH64 of that list.
  std::vector<uint64_t> example_hashes;
  for (const Example& e : examples) {
    example_hashes.push_back(format::Xxh64(e.tokens.data(), e.tokens.size() * sizeof(int32_t)));
    example_hashes.push_back(format::Xxh64(e.trained.data(), e.trained.size()));
  }
  data_hash_ = format::Xxh64Text(
      format::Xxh64(example_hashes.data(), example_hashes.size() * sizeof(uint64_t)));
  int64_t longest = 0, trained = 0;
  for (const Example& e : examples) {
    if (e.tokens.size() != e.trained.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("example of line ", e.line, ": tokens and trained flags differ in length"));
    }
    for (int32_t id : e.tokens) {
      if (id < 0 || id >= c.n_vocab) {
        return absl::InvalidArgumentError(absl::StrCat("example of line ", e.line, ": token id ",
                                                       id, " is outside the vocabulary"));
      }
    }
    longest = std::max<int64_t>(longest, static_cast<int64_t>(e.tokens.size()));
    for (size_t i = 1; i < e.trained.size(); ++i) trained += e.trained[i] ? 1 : 0;
  }
  if (trained == 0) {
    return absl::InvalidArgumentError(
        "no example has a trained token (nothing for the loss to learn from)");
  }
  if (longest > c.n_ctx_train) {
    return absl::InvalidArgumentError(absl::StrCat("the longest example has ", longest,
                                                   " tokens, past the model's context of ",
                                                   c.n_ctx_train));
  }
  max_len_ = std::min<int64_t>((longest + kPadMultiple - 1) / kPadMultiple * kPadMultiple,
                               std::max<int64_t>(longest, c.n_ctx_train));

  // The eval split: a seeded choice, the rest trains in file order.
  std::vector<size_t> idx(examples.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  size_t n_eval = static_cast<size_t>(std::floor(examples.size() * o.eval_split));
  if (o.eval_split > 0 && n_eval == 0 && examples.size() >= 2) n_eval = 1;
  if (n_eval > 0) {
    Shuffle(&idx, o.seed ^ 0x5eed5eed5eed5eedull);
    std::vector<bool> is_eval(examples.size(), false);
    for (size_t i = 0; i < n_eval; ++i) is_eval[idx[i]] = true;
    for (size_t i = 0; i < examples.size(); ++i) {
      (is_eval[i] ? eval_ : train_).push_back(std::move(examples[i]));
    }
  } else {
    train_ = std::move(examples);
  }

  // Targets: every layer's chosen projections.
  HEARTH_ASSIGN_OR_RETURN(const std::vector<std::string> projections, ParseTargets(o.targets));
  for (const std::string& p : projections) {
    bool any = false;
    for (int64_t l = 0; l < c.n_layer; ++l) {
      const std::string w = absl::StrCat("blk.", l, ".", p, ".weight");
      const hearth_tensor_desc* d = model_->weights().Find(w);
      if (d == nullptr) continue;
      any = true;
      targets_.push_back({w, l, p, d->ne[0], d->ne[1]});
    }
    if (!any) {
      return absl::InvalidArgumentError(
          absl::StrCat("target ", p, ": the ", c.arch, " model has no blk.N.", p, ".weight"));
    }
  }
  std::stable_sort(targets_.begin(), targets_.end(),
                   [](const TrainTarget& a, const TrainTarget& b) { return a.layer < b.layer; });
  rank_ = o.rank;
  scale_ = o.use_rslora ? o.alpha / std::sqrt(static_cast<float>(rank_))
                        : o.alpha / static_cast<float>(rank_);

  const uint32_t threads = o.n_threads ? o.n_threads : model_->n_threads();
  HEARTH_ASSIGN_OR_RETURN(backend_, Backend::Create(model_->device(), threads));

  // Parameters: values | grads | m | v, each region the same layout.
  uint64_t region = 0;
  std::vector<std::pair<uint64_t, uint64_t>> offs;  // per target: a, b within a region
  for (const TrainTarget& tt : targets_) {
    const uint64_t a = region;
    region += AlignUp(static_cast<uint64_t>(tt.n_in * rank_) * 4);
    const uint64_t b = region;
    region += AlignUp(static_cast<uint64_t>(tt.n_out * rank_) * 4);
    offs.push_back({a, b});
  }
  auto buf = backend_->Alloc(4 * region);
  if (!buf.ok()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate ", 4 * region,
                     " bytes for the LoRA parameters: ", buf.status().message()));
  }
  params_buf_ = *buf;
  grads_offset_ = region;
  grads_bytes_ = 3 * region;  // grads, m and v start at zero
  for (size_t i = 0; i < targets_.size(); ++i) {
    const TrainTarget& tt = targets_[i];
    auto desc = [&](int64_t n, uint64_t off) {
      hearth_tensor_desc d = ContiguousDesc(HEARTH_DTYPE_F32, Shape::Of({n, rank_}));
      d.buffer = params_buf_;
      d.offset = off;
      return d;
    };
    Slot s;
    s.a = desc(tt.n_in, offs[i].first);
    s.b = desc(tt.n_out, offs[i].second);
    s.ga = desc(tt.n_in, region + offs[i].first);
    s.gb = desc(tt.n_out, region + offs[i].second);
    s.ma = desc(tt.n_in, 2 * region + offs[i].first);
    s.mb = desc(tt.n_out, 2 * region + offs[i].second);
    s.va = desc(tt.n_in, 3 * region + offs[i].first);
    s.vb = desc(tt.n_out, 3 * region + offs[i].second);
    slots_.push_back(s);
  }
  HEARTH_RETURN_IF_ERROR(ZeroGrads());
  // PEFT's init: A = kaiming_uniform(a = sqrt(5)) on a [rank, n_in] weight,
  // i.e. U(-1/sqrt(n_in), 1/sqrt(n_in)); B = 0.
  Rng rng{o.seed};
  for (size_t i = 0; i < targets_.size(); ++i) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(targets_[i].n_in));
    std::vector<float> a(static_cast<size_t>(targets_[i].n_in * rank_));
    for (float& v : a) v = static_cast<float>((2 * rng.Uniform() - 1) * bound);
    std::vector<float> b(static_cast<size_t>(targets_[i].n_out * rank_), 0.0f);
    HEARTH_RETURN_IF_ERROR(SetValues(i, a, b));
  }

  // A fresh KV cache per example: every example starts at position 0 and
  // attention reads only rows this graph wrote.
  const uint64_t k_bytes =
      ContiguousBytes(HEARTH_DTYPE_F32, Shape::Of({c.head_dim, c.n_head_kv, max_len_}));
  const uint64_t v_bytes =
      ContiguousBytes(HEARTH_DTYPE_F32, Shape::Of({c.head_dim_v, c.n_head_kv, max_len_}));
  auto kv = backend_->Alloc((k_bytes + v_bytes) * static_cast<uint64_t>(c.n_layer));
  if (!kv.ok()) return kv.status();
  kv_buf_ = *kv;
  kv_.n_ctx = max_len_;
  kv_.with_lse = true;
  kv_.float_activations = true;
  kv_.bf16_products = options_.bf16_products;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    hearth_tensor_desc k =
        ContiguousDesc(HEARTH_DTYPE_F32, Shape::Of({c.head_dim, c.n_head_kv, max_len_}));
    hearth_tensor_desc v =
        ContiguousDesc(HEARTH_DTYPE_F32, Shape::Of({c.head_dim_v, c.n_head_kv, max_len_}));
    k.buffer = v.buffer = kv_buf_;
    k.offset = (k_bytes + v_bytes) * l;
    v.offset = k.offset + k_bytes;
    kv_.k.push_back(k);
    kv_.v.push_back(v);
  }

  const int64_t per_step = o.batch * o.grad_accum;
  steps_per_epoch_ = (static_cast<int64_t>(train_.size()) + per_step - 1) / per_step;
  total_steps_ = steps_per_epoch_ * o.epochs;
  ShuffleEpoch();
  // Fails early, naming the op, on a backend that lacks one training needs.
  return GraphFor(Padded(1), /*backward=*/true).status();
}

int64_t Trainer::Padded(int64_t n) const {
  return std::min(max_len_, (n + kPadMultiple - 1) / kPadMultiple * kPadMultiple);
}

void Trainer::ShuffleEpoch() {
  order_.resize(train_.size());
  for (size_t i = 0; i < order_.size(); ++i) order_[i] = i;
  Shuffle(&order_, options_.seed + 0x9e3779b97f4a7c15ull * static_cast<uint64_t>(epoch_ + 1));
  cursor_ = 0;
}

absl::StatusOr<Trainer::StepGraph*> Trainer::GraphFor(int64_t n_tokens, bool backward) {
  const auto key = std::make_pair(n_tokens, backward);
  auto it = graphs_.find(key);
  if (it != graphs_.end()) return it->second.get();
  const ModelConfig& c = model_->config();
  auto sg = std::make_unique<StepGraph>();
  Graph& g = sg->graph;
  LoraStack stack;
  std::vector<Param> params;
  for (size_t i = 0; i < targets_.size(); ++i) {
    LoraTerm term;
    term.a = slots_[i].a;
    term.b = slots_[i].b;
    term.scale = scale_;
    if (backward && options_.lora_dropout > 0.0f) {
      // A seed per term, far apart (64-bit random spacing) so the masks of
      // different terms never overlap; RunExample uploads the offset that
      // makes every example's masks new.
      if (stack.dropout_offset < 0) {
        stack.dropout_offset = g.Input(HEARTH_DTYPE_I32, Shape::Of({2}));
        sg->dropout_offset = stack.dropout_offset;
      }
      term.dropout = options_.lora_dropout;
      term.dropout_seed = SplitMix64(options_.seed ^ (0xA0761D6478BD642Full * (i + 1)));
    }
    stack.Add(targets_[i].weight, term);
    params.push_back({slots_[i].a, slots_[i].ga});
    params.push_back({slots_[i].b, slots_[i].gb});
  }
  HEARTH_ASSIGN_OR_RETURN(StepTensors io,
                          model_->architecture().Build(c, model_->weights(), kv_, n_tokens,
                                                       /*all_logits=*/true, &stack, &g));
  sg->tokens = io.tokens;
  sg->positions = io.positions;
  sg->targets = g.Input(HEARTH_DTYPE_I32, Shape::Of({n_tokens}));
  sg->loss = g.Op(HEARTH_OP_CROSS_ENTROPY, HEARTH_DTYPE_F32, Shape::Of({n_tokens}),
                  {io.logits, sg->targets}, hearth_cross_entropy_params{-1});
  g.MarkOutput(sg->loss);
  if (backward) {
    // Scale 1: the step's 1/(trained tokens) is folded into AdamW's
    // grad_scale, so graphs stay the same whatever the step's token count.
    const int dlogits =
        g.Op(HEARTH_OP_CROSS_ENTROPY_BACK, HEARTH_DTYPE_F32, Shape::Of({c.n_vocab, n_tokens}),
             {io.logits, sg->targets}, hearth_cross_entropy_back_params{1.0f, -1});
    HEARTH_ASSIGN_OR_RETURN(const std::vector<bool> reached,
                            AppendBackward(&g, io.logits, dlogits, params));
    for (size_t i = 0; i < reached.size(); ++i) {
      if (!reached[i]) {
        return absl::InternalError(
            absl::StrCat("training: no gradient reaches ", targets_[i / 2].weight));
      }
    }
  }
  const hearth_graph view = g.view();
  for (uint32_t i = 0; i < view.n_nodes; ++i) {
    if (!backend_->Supports(view, i)) {
      return absl::UnimplementedError(absl::StrCat(
          "device '", model_->device().name, "' does not run ", OpName(view.nodes[i].op),
          " as training needs it (node ", i, " of the training graph)"));
    }
  }
  sg->arena_bytes = g.Plan();
  if (sg->arena_bytes > arena_bytes_) {
    auto a = backend_->Alloc(sg->arena_bytes);
    if (!a.ok()) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot allocate ", sg->arena_bytes, " bytes of activations to train on ",
                       n_tokens, " tokens: ", a.status().message()));
    }
    if (arena_) backend_->Free(arena_);
    arena_ = *a;
    arena_bytes_ = sg->arena_bytes;
    for (auto& [k, other] : graphs_) other->graph.Bind(arena_);
  }
  g.Bind(arena_);
  StepGraph* raw = sg.get();
  graphs_[key] = std::move(sg);
  return raw;
}

absl::Status Trainer::RunExample(const Example& e, bool backward, double* loss_sum,
                                 int64_t* n_trained, int64_t* n_tokens, uint64_t visit) {
  const int64_t T = static_cast<int64_t>(e.tokens.size());
  std::vector<int32_t> targets(static_cast<size_t>(Padded(T)), -1);
  int64_t count = 0;
  for (int64_t t = 0; t + 1 < T; ++t) {
    if (e.trained[t + 1]) {
      targets[t] = e.tokens[t + 1];
      ++count;
    }
  }
  if (count == 0) return absl::OkStatus();  // nothing to learn, nothing to score
  const int64_t P = Padded(T);
  HEARTH_ASSIGN_OR_RETURN(StepGraph * sg, GraphFor(P, backward));
  std::vector<int32_t> tokens(e.tokens);
  tokens.resize(static_cast<size_t>(P), e.tokens[0]);
  std::vector<int32_t> positions(static_cast<size_t>(P));
  for (int64_t t = 0; t < P; ++t) positions[t] = static_cast<int32_t>(t);
  const uint64_t bytes = static_cast<uint64_t>(P) * 4;
  const Graph& g = sg->graph;
  for (auto [idx, data] :
       {std::make_pair(sg->tokens, tokens.data()), std::make_pair(sg->positions, positions.data()),
        std::make_pair(sg->targets, targets.data())}) {
    const hearth_tensor_desc& d = g.tensor(idx);
    HEARTH_RETURN_IF_ERROR(backend_->Upload(d.buffer, d.offset, data, bytes));
  }
  if (sg->dropout_offset >= 0) {
    // New masks for every visit of an example (epoch, index), the same on a
    // resumed run.
    const uint64_t offset = SplitMix64(options_.seed + 0xE7037ED1A0B428DBull * (visit + 1));
    const uint32_t halves[2] = {static_cast<uint32_t>(offset), static_cast<uint32_t>(offset >> 32)};
    const hearth_tensor_desc& d = g.tensor(sg->dropout_offset);
    HEARTH_RETURN_IF_ERROR(backend_->Upload(d.buffer, d.offset, halves, sizeof(halves)));
  }
  HEARTH_RETURN_IF_ERROR(backend_->Compute(g.view()));
  std::vector<float> loss(static_cast<size_t>(P));
  const hearth_tensor_desc& ld = g.tensor(sg->loss);
  HEARTH_RETURN_IF_ERROR(backend_->Download(ld.buffer, ld.offset, loss.data(), bytes));
  for (float l : loss) *loss_sum += l;
  *n_trained += count;
  *n_tokens += T;
  return absl::OkStatus();
}

absl::Status Trainer::ZeroGrads() {
  const std::vector<uint8_t> zeros(static_cast<size_t>(grads_bytes_), 0);
  return backend_->Upload(params_buf_, grads_offset_, zeros.data(), zeros.size());
}

absl::StatusOr<double> Trainer::GradSumSq() {
  if (!norm_graph_) {
    norm_graph_ = std::make_unique<Graph>();
    for (const Slot& s : slots_) {
      for (const hearth_tensor_desc& d : {s.ga, s.gb}) {
        const int out = norm_graph_->Op(HEARTH_OP_SUM_SQ, HEARTH_DTYPE_F32, Shape::Of({1}),
                                        {norm_graph_->External(d)});
        norm_graph_->MarkOutput(out);
        norm_outputs_.push_back(out);
      }
    }
    auto a = backend_->Alloc(norm_graph_->Plan());
    if (!a.ok()) return a.status();
    norm_arena_ = *a;
    norm_graph_->Bind(norm_arena_);
  }
  HEARTH_RETURN_IF_ERROR(backend_->Compute(norm_graph_->view()));
  double sum = 0;
  for (int out : norm_outputs_) {
    float v = 0;
    const hearth_tensor_desc& d = norm_graph_->tensor(out);
    HEARTH_RETURN_IF_ERROR(backend_->Download(d.buffer, d.offset, &v, sizeof(v)));
    sum += v;
  }
  return sum;
}

absl::Status Trainer::ApplyAdamW(double lr, double grad_scale) {
  const double t = static_cast<double>(step_ + 1);
  hearth_adamw_params p;
  p.lr = static_cast<float>(lr);
  p.beta1 = options_.beta1;
  p.beta2 = options_.beta2;
  p.eps = options_.eps;
  p.weight_decay = options_.weight_decay;
  p.bias_correction1 = static_cast<float>(1 - std::pow(static_cast<double>(options_.beta1), t));
  p.bias_correction2 = static_cast<float>(1 - std::pow(static_cast<double>(options_.beta2), t));
  p.grad_scale = static_cast<float>(grad_scale);
  Graph g;  // every tensor external: nothing to plan
  for (const Slot& s : slots_) {
    const hearth_tensor_desc quads[2][4] = {{s.a, s.ga, s.ma, s.va}, {s.b, s.gb, s.mb, s.vb}};
    for (const auto& q : quads) {
      const int pt = g.External(q[0]), gt = g.External(q[1]);
      const int mt = g.External(q[2]), vt = g.External(q[3]);
      g.OpInto(HEARTH_OP_ADAMW_STEP, {pt, mt, vt}, {pt, gt, mt, vt}, p);
      g.OpInto(HEARTH_OP_SCALE, {gt}, {gt}, hearth_scale_params{0.0f});
    }
  }
  g.Plan();
  g.Bind(nullptr);
  return backend_->Compute(g.view());
}

double Trainer::LearningRate(int64_t s) const {
  // Hugging Face's schedules (get_*_schedule_with_warmup), step s from 0.
  const double lr = options_.lr;
  const int64_t w = options_.warmup_steps, total = total_steps_;
  if (s < w) return lr * static_cast<double>(s) / static_cast<double>(std::max<int64_t>(1, w));
  const double progress =
      static_cast<double>(s - w) / static_cast<double>(std::max<int64_t>(1, total - w));
  switch (options_.schedule) {
    case Schedule::kLinear:
      return lr * std::max(0.0, 1.0 - progress);
    case Schedule::kCosine:
      return lr * std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
    default:
      return lr;
  }
}

absl::StatusOr<StepMetrics> Trainer::Step() {
  if (done()) {
    return absl::OutOfRangeError(absl::StrCat("training is complete (", total_steps_, " steps)"));
  }
  StepMetrics m;
  m.epoch = epoch_;
  double loss_sum = 0;
  const size_t per_step = static_cast<size_t>(options_.batch * options_.grad_accum);
  for (size_t n = 0; n < per_step && cursor_ < order_.size(); ++n, ++cursor_) {
    HEARTH_RETURN_IF_ERROR(
        RunExample(train_[order_[cursor_]], true, &loss_sum, &m.n_trained, &m.n_tokens,
                   (static_cast<uint64_t>(epoch_) << 32) | cursor_));
  }
  m.lr = LearningRate(step_);
  if (m.n_trained > 0) {
    const double N = static_cast<double>(m.n_trained);
    HEARTH_ASSIGN_OR_RETURN(const double sumsq, GradSumSq());
    m.grad_norm = std::sqrt(sumsq) / N;
    double clip = 1.0;
    if (options_.max_grad_norm > 0) {
      clip = std::min(1.0, options_.max_grad_norm / (m.grad_norm + 1e-6));  // torch's rule
    }
    HEARTH_RETURN_IF_ERROR(ApplyAdamW(m.lr, clip / N));
    m.loss = loss_sum / N;
  }
  ++step_;
  m.step = step_;
  if (cursor_ >= order_.size()) {
    ++epoch_;
    ShuffleEpoch();
  }
  return m;
}

absl::StatusOr<double> Trainer::Loss(const std::vector<Example>& examples) {
  double sum = 0;
  int64_t trained = 0, tokens = 0;
  for (const Example& e : examples) {
    if (static_cast<int64_t>(e.tokens.size()) > max_len_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "an example of ", e.tokens.size(), " tokens is longer than the trainer's ", max_len_));
    }
    HEARTH_RETURN_IF_ERROR(RunExample(e, false, &sum, &trained, &tokens));
  }
  if (trained == 0) return std::numeric_limits<double>::quiet_NaN();
  return sum / static_cast<double>(trained);
}

absl::StatusOr<double> Trainer::Evaluate() { return Loss(eval_); }

absl::StatusOr<std::vector<std::pair<std::vector<float>, std::vector<float>>>> Trainer::Gradients(
    const std::vector<Example>& examples, double* loss) {
  HEARTH_RETURN_IF_ERROR(ZeroGrads());
  double sum = 0;
  int64_t trained = 0, tokens = 0;
  for (const Example& e : examples) {
    HEARTH_RETURN_IF_ERROR(RunExample(e, true, &sum, &trained, &tokens));
  }
  if (trained == 0) return absl::InvalidArgumentError("no trained tokens in the examples");
  if (loss != nullptr) *loss = sum / static_cast<double>(trained);
  std::vector<std::pair<std::vector<float>, std::vector<float>>> out;
  for (size_t i = 0; i < slots_.size(); ++i) {
    std::vector<float> ga(static_cast<size_t>(targets_[i].n_in * rank_));
    std::vector<float> gb(static_cast<size_t>(targets_[i].n_out * rank_));
    HEARTH_RETURN_IF_ERROR(
        backend_->Download(params_buf_, slots_[i].ga.offset, ga.data(), ga.size() * 4));
    HEARTH_RETURN_IF_ERROR(
        backend_->Download(params_buf_, slots_[i].gb.offset, gb.data(), gb.size() * 4));
    for (float& v : ga) v = static_cast<float>(v / static_cast<double>(trained));
    for (float& v : gb) v = static_cast<float>(v / static_cast<double>(trained));
    out.emplace_back(std::move(ga), std::move(gb));
  }
  HEARTH_RETURN_IF_ERROR(ZeroGrads());
  return out;
}

absl::Status Trainer::GetValues(size_t i, std::vector<float>* a, std::vector<float>* b_t) {
  if (i >= slots_.size()) return absl::OutOfRangeError(absl::StrCat("no target ", i));
  a->resize(static_cast<size_t>(targets_[i].n_in * rank_));
  b_t->resize(static_cast<size_t>(targets_[i].n_out * rank_));
  HEARTH_RETURN_IF_ERROR(
      backend_->Download(params_buf_, slots_[i].a.offset, a->data(), a->size() * 4));
  return backend_->Download(params_buf_, slots_[i].b.offset, b_t->data(), b_t->size() * 4);
}

absl::Status Trainer::SetValues(size_t i, const std::vector<float>& a,
                                const std::vector<float>& b_t) {
  if (i >= slots_.size()) return absl::OutOfRangeError(absl::StrCat("no target ", i));
  if (a.size() != static_cast<size_t>(targets_[i].n_in * rank_) ||
      b_t.size() != static_cast<size_t>(targets_[i].n_out * rank_)) {
    return absl::InvalidArgumentError(
        absl::StrCat(targets_[i].weight, ": values of the wrong size"));
  }
  HEARTH_RETURN_IF_ERROR(backend_->Upload(params_buf_, slots_[i].a.offset, a.data(), a.size() * 4));
  return backend_->Upload(params_buf_, slots_[i].b.offset, b_t.data(), b_t.size() * 4);
}

std::string Trainer::ProvenanceJson() const {
  const TrainerOptions& o = options_;
  const char* schedules[] = {"constant", "linear", "cosine"};
  return absl::StrCat(
      "{\"arch\":\"", model_->config().arch, "\",\"steps\":", step_, ",\"lr\":", o.lr,
      ",\"betas\":[", o.beta1, ",", o.beta2, "],\"eps\":", o.eps,
      ",\"weight_decay\":", o.weight_decay, ",\"schedule\":\"",
      schedules[static_cast<int>(o.schedule)], "\",\"warmup_steps\":", o.warmup_steps,
      ",\"max_grad_norm\":", o.max_grad_norm, ",\"batch\":", o.batch,
      ",\"grad_accum\":", o.grad_accum, ",\"epochs\":", o.epochs, ",\"eval_split\":", o.eval_split,
      ",\"lora_dropout\":", o.lora_dropout,
      ",\"bf16_products\":", o.bf16_products ? "true" : "false", ",\"seed\":", o.seed,
      ",\"n_train\":", train_.size(), ",\"n_eval\":", eval_.size(), ",\"base_fingerprint\":\"",
      model_->fingerprint(), "\",\"data_hash\":\"", data_hash_, "\",\"hearth_version\":\"",
      o.hearth_version, "\"}");
}

absl::Status Trainer::RenderPeft(std::string* config_json, std::vector<uint8_t>* safetensors) {
  const ModelConfig& c = model_->config();
  std::vector<PeftTensor> tensors;
  std::vector<std::string> modules;
  for (size_t i = 0; i < targets_.size(); ++i) {
    const TrainTarget& tt = targets_[i];
    std::vector<float> a, b_t;
    HEARTH_RETURN_IF_ERROR(GetValues(i, &a, &b_t));
    const std::string module = PeftModule(tt.projection);
    const std::string leaf = module.substr(module.find('.') + 1);
    if (std::find(modules.begin(), modules.end(), leaf) == modules.end()) modules.push_back(leaf);
    const std::string prefix =
        absl::StrCat("base_model.model.model.layers.", tt.layer, ".", module);
    tensors.push_back({prefix + ".lora_A.weight", rank_, tt.n_in, std::move(a)});
    // lora_B is [n_out][rank]; the device holds B^T (rank rows of n_out) in
    // the model's output order. Undo GGUF's q/k row permutation: model row
    // m of a head is HF row (m % 2) * head_dim/2 + m / 2 of that head.
    const int64_t M = tt.n_out, heads = PermuteHeads(c, tt.projection);
    const int64_t head_dim = heads > 0 ? M / heads : 0, half = head_dim / 2;
    std::vector<float> b(static_cast<size_t>(M * rank_));
    for (int64_t m = 0; m < M; ++m) {
      int64_t hf = m;
      if (heads > 0) {
        const int64_t in_head = m % head_dim;
        hf = m - in_head + (in_head % 2) * half + in_head / 2;
      }
      for (int64_t r = 0; r < rank_; ++r) b[hf * rank_ + r] = b_t[r * M + m];
    }
    tensors.push_back({prefix + ".lora_B.weight", M, rank_, std::move(b)});
  }
  PeftConfig pc;
  pc.rank = rank_;
  pc.alpha = options_.alpha;
  pc.use_rslora = options_.use_rslora;
  pc.lora_dropout = options_.lora_dropout;
  pc.target_modules = modules;
  pc.base_model = model_->name();
  *config_json = PeftConfigJson(pc);
  *safetensors = SafetensorsImage(tensors, ProvenanceJson());
  return absl::OkStatus();
}

absl::Status Trainer::SavePeft(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  std::string config;
  std::vector<uint8_t> image;
  HEARTH_RETURN_IF_ERROR(RenderPeft(&config, &image));
  // Weights first: a config is never newer than the weights beside it.
  HEARTH_RETURN_IF_ERROR(
      WriteFileAtomic(dir + "/adapter_model.safetensors", image.data(), image.size()));
  return WriteFileAtomic(dir + "/adapter_config.json", config.data(), config.size());
}

absl::Status Trainer::SaveGguf(const std::string& path, const std::string& dtype) {
  const ModelConfig& c = model_->config();
  std::vector<GgufLoraPair> pairs;
  for (size_t i = 0; i < targets_.size(); ++i) {
    const TrainTarget& tt = targets_[i];
    GgufLoraPair p;
    p.weight = tt.weight;
    p.rank = rank_;
    p.n_in = tt.n_in;
    p.n_out = tt.n_out;
    std::vector<float> b_t;
    HEARTH_RETURN_IF_ERROR(GetValues(i, &p.a, &b_t));
    // The device holds B^T (rank rows of n_out) in the model's row order,
    // which is the GGUF file's: lora_b is n_out rows of rank.
    p.b.resize(b_t.size());
    for (int64_t m = 0; m < tt.n_out; ++m) {
      for (int64_t r = 0; r < rank_; ++r) p.b[m * rank_ + r] = b_t[r * tt.n_out + m];
    }
    pairs.push_back(std::move(p));
  }
  GgufLoraMeta meta;
  meta.arch = c.arch;
  meta.base_name = model_->name();
  // GGUF LoRA has one scale rule, alpha / r: rsLoRA's alpha / sqrt(r) is
  // written as the alpha that gives the same scale.
  meta.alpha = options_.use_rslora ? scale_ * static_cast<float>(rank_) : options_.alpha;
  meta.provenance = ProvenanceJson();
  meta.base_fingerprint = model_->fingerprint();
  return WriteGgufLora(meta, pairs, path, dtype);
}

absl::StatusOr<std::shared_ptr<Adapter>> Trainer::MakeAdapter() {
  std::string config;
  std::vector<uint8_t> image;
  HEARTH_RETURN_IF_ERROR(RenderPeft(&config, &image));
  return Adapter::FromPeftMemory(model_, std::move(config), std::move(image),
                                 absl::StrCat("<trained adapter, step ", step_, ">"));
}

}  // namespace hearth::train
