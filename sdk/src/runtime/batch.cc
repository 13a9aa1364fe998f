// batch.cc — validating a batch, planning its step graph and running it.
#include "sdk/src/runtime/batch.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"
#include "sdk/src/runtime/kv_cache.h"

namespace hearth {
namespace {

constexpr int64_t kMaxSeq = 256;
constexpr int64_t kMaxTokens = int64_t{1} << 16;
constexpr size_t kMaxAdapters = 64;  // one bit each in a graph's key
// Graphs kept; an engine sees a few shapes over and over (decode of k
// sequences, prompt chunks), so the least recently used goes first.
constexpr size_t kMaxCachedSteps = 16;

}  // namespace

BatchRunner::~BatchRunner() {
  steps_.clear();
  if (backend_) {
    if (arena_) backend_->Free(arena_);
    if (kv_buffer_) backend_->Free(kv_buffer_);
  }
}

absl::StatusOr<std::unique_ptr<BatchRunner>> BatchRunner::Create(
    std::shared_ptr<const Model> model, const BatchRunnerOptions& options) {
  if (model == nullptr) return absl::InvalidArgumentError("batch runner: no model");
  std::unique_ptr<BatchRunner> r(new BatchRunner());
  r->model_ = std::move(model);
  const ModelConfig& c = r->model_->config();
  HEARTH_ASSIGN_OR_RETURN(const int64_t n_ctx, ContextLength(c, options.n_ctx));
  if (options.n_seq < 1 || options.n_seq > kMaxSeq) {
    return absl::InvalidArgumentError(
        absl::StrCat("n_seq ", options.n_seq, " is outside [1, ", kMaxSeq, "]"));
  }
  const int64_t max_tokens = options.max_tokens ? options.max_tokens : 512;
  if (max_tokens > kMaxTokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens ", max_tokens, " is above ", kMaxTokens));
  }
  if (options.adapters.size() > kMaxAdapters) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.adapters.size(), " adapters; a batch runner takes at most ", kMaxAdapters));
  }
  for (size_t i = 0; i < options.adapters.size(); ++i) {
    const Adapter* a = options.adapters[i].get();
    if (a == nullptr) return absl::InvalidArgumentError(absl::StrCat("adapter #", i, " is null"));
    if (a->model() != r->model_.get()) {
      return absl::InvalidArgumentError(
          absl::StrCat("adapter #", i, " (", a->file().path, ") was ",
                       a->model() ? "loaded for another model" : "loaded without a model",
                       "; load it with the batch runner's model"));
    }
  }
  HEARTH_ASSIGN_OR_RETURN(const uint32_t kv_dtype, KvDtype(options.kv_type));
  r->adapters_ = options.adapters;
  r->n_seq_ = options.n_seq;
  r->n_ctx_ = n_ctx;
  r->max_tokens_ = max_tokens;
  const uint32_t threads = options.n_threads ? options.n_threads : r->model_->n_threads();
  HEARTH_ASSIGN_OR_RETURN(r->backend_, Backend::Create(r->model_->device(), threads));
  if (options.block_size > 0) {
    const int64_t bs = options.block_size;
    if (bs > n_ctx) {
      return absl::InvalidArgumentError(
          absl::StrCat("KV page size ", bs, " is above n_ctx ", n_ctx));
    }
    r->n_ctx_ = n_ctx / bs * bs;
    r->block_size_ = bs;
    r->max_blocks_ = r->n_ctx_ / bs;
    r->n_pages_ = options.n_pages ? options.n_pages : r->n_seq_ * r->max_blocks_;
    if (r->n_pages_ > (int64_t{1} << 30)) {
      return absl::InvalidArgumentError(absl::StrCat(r->n_pages_, " KV pages is too many"));
    }
    HEARTH_ASSIGN_OR_RETURN(r->kv_, AllocatePagedKvCache(*r->backend_, c, r->n_ctx_, r->n_seq_, bs,
                                                         r->n_pages_, kv_dtype, &r->kv_buffer_));
    r->pages_.resize(static_cast<size_t>(r->n_seq_));
    r->page_refs_.assign(static_cast<size_t>(r->n_pages_), 0);
    r->page_count_.assign(static_cast<size_t>(r->n_pages_), 0);
    // Popped from the back: page 0 first.
    for (int64_t p = r->n_pages_ - 1; p >= 0; --p)
      r->free_pages_.push_back(static_cast<int32_t>(p));
    r->blocks_.assign(static_cast<size_t>(r->max_blocks_ * r->n_seq_), 0);
  } else {
    HEARTH_ASSIGN_OR_RETURN(
        r->kv_, AllocateKvCache(*r->backend_, c, n_ctx, r->n_seq_, kv_dtype, &r->kv_buffer_));
  }
  r->n_past_.assign(static_cast<size_t>(r->n_seq_), 0);
  r->slot_seen_.assign(static_cast<size_t>(r->n_seq_), 0);
  const size_t t = static_cast<size_t>(max_tokens);
  r->tokens_.resize(t);
  r->positions_.resize(t);
  r->seq_.resize(t);
  r->scales_.resize(t);
  r->logit_rows_.resize(static_cast<size_t>(r->n_seq_));
  r->logits_.resize(static_cast<size_t>(c.n_vocab * r->n_seq_));
  r->logits_next_.resize(r->logits_.size());
  r->entry_row_.reserve(static_cast<size_t>(r->n_seq_));
  // Plan the two shapes an engine always uses, decode of every slot and a
  // full step, so the arena has its working size before the first token.
  const int64_t decode = std::min(r->n_seq_, max_tokens);
  HEARTH_RETURN_IF_ERROR(r->StepFor(decode, decode, 0).status());
  HEARTH_RETURN_IF_ERROR(r->StepFor(max_tokens, 1, 0).status());
  return r;
}

absl::Status BatchRunner::Validate(absl::Span<const BatchEntry> entries, int64_t* n_tokens,
                                   int64_t* n_out, uint64_t* adapters_used) {
  if (entries.empty()) return absl::InvalidArgumentError("batch step: no entries");
  const int64_t n_vocab = model_->config().n_vocab;
  std::fill(slot_seen_.begin(), slot_seen_.end(), 0);
  int64_t t = 0, out = 0;
  uint64_t used = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const BatchEntry& e = entries[i];
    if (e.slot < 0 || e.slot >= n_seq_) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch entry ", i, ": slot ", e.slot, " is outside [0, ", n_seq_, ")"));
    }
    if (slot_seen_[static_cast<size_t>(e.slot)]) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch entry ", i, ": slot ", e.slot, " appears twice in one step"));
    }
    slot_seen_[static_cast<size_t>(e.slot)] = 1;
    const int64_t len = static_cast<int64_t>(e.tokens.size());
    if (len == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch entry ", i, " (slot ", e.slot, "): no tokens"));
    }
    const int64_t past = n_past_[static_cast<size_t>(e.slot)];
    if (e.start < 0 || e.start > past) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch entry ", i, " (slot ", e.slot, "): start position ", e.start,
                       " is outside [0, ", past, "] (the slot holds ", past, " tokens)"));
    }
    if (len > n_ctx_ - e.start) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch entry ", i, " (slot ", e.slot, "): context overflow: positions ",
                       e.start, "..", e.start + len - 1, " are past n_ctx ", n_ctx_));
    }
    for (size_t k = 0; k < e.tokens.size(); ++k) {
      if (e.tokens[k] < 0 || e.tokens[k] >= n_vocab) {
        return absl::InvalidArgumentError(absl::StrCat("batch entry ", i, " (slot ", e.slot,
                                                       "): token id ", e.tokens[k], " at ", k,
                                                       " is out of range [0, ", n_vocab, ")"));
      }
    }
    for (const BatchAdapter& a : e.adapters) {
      if (a.index >= adapters_.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("batch entry ", i, " (slot ", e.slot, "): adapter ", a.index,
                         " is not one of the runner's ", adapters_.size()));
      }
      if (!std::isfinite(a.scale)) {
        return absl::InvalidArgumentError(absl::StrCat("batch entry ", i, " (slot ", e.slot,
                                                       "): adapter ", a.index, " scale ", a.scale,
                                                       " is not finite"));
      }
      if (a.scale != 0.0f) used |= uint64_t{1} << a.index;
    }
    t += len;
    if (t > max_tokens_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "batch step: more than max_tokens ", max_tokens_, " tokens (", t, " by entry ", i, ")"));
    }
    if (e.want_logits) ++out;
  }
  if (block_size_ > 0) {
    for (size_t i = 0; i < entries.size(); ++i) {
      if (WritesSharedPage(entries[i].slot, entries[i].start)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "batch entry ", i, " (slot ", entries[i].slot, "): start position ", entries[i].start,
            " would write into KV page ", entries[i].start / block_size_,
            ", which another slot shares; start at a page boundary (a multiple of ", block_size_,
            ")"));
      }
    }
    int64_t need = 0, available = 0;
    StepPages(entries, &need, &available);
    if (need > available) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "batch step: the paged KV cache has ", available, " pages free for this step (of ",
          n_pages_, " of ", block_size_, " positions) and the step needs ", need));
    }
  }
  *n_tokens = t;
  *n_out = out;
  *adapters_used = used;
  return absl::OkStatus();
}

absl::StatusOr<BatchRunner::StepGraph*> BatchRunner::StepFor(int64_t n_tokens, int64_t n_out,
                                                             uint64_t adapters_used) {
  // A step without logits still gets one row (the last token's), so every
  // graph has the same outputs; it is simply not read.
  n_out = std::max<int64_t>(n_out, 1);
  const Key key(n_tokens, n_out, adapters_used);
  auto it = steps_.find(key);
  if (it != steps_.end()) {
    it->second->last_use = ++use_clock_;
    return it->second.get();
  }
  if (steps_.size() >= kMaxCachedSteps) {
    auto oldest = std::min_element(steps_.begin(), steps_.end(), [](const auto& a, const auto& b) {
      return a.second->last_use < b.second->last_use;
    });
    steps_.erase(oldest);
  }
  auto step = std::make_unique<StepGraph>();
  Graph& g = step->graph;
  LoraStack stack;
  for (uint32_t k = 0; k < adapters_.size(); ++k) {
    if ((adapters_used >> k & 1) == 0) continue;
    const int scales = g.Input(HEARTH_DTYPE_F32, Shape::Of({n_tokens}));
    step->row_scales.emplace_back(k, scales);
    adapters_[k]->AddTo(1.0f, &stack, scales);
  }
  StepBatch batch;
  batch.n_tokens = n_tokens;
  batch.multi_seq = true;
  batch.logits = StepBatch::Logits::kRows;
  batch.n_out = n_out;
  HEARTH_ASSIGN_OR_RETURN(
      step->io, model_->architecture().BuildStep(model_->config(), model_->weights(), kv_, batch,
                                                 stack.empty() ? nullptr : &stack, &g));
  const hearth_graph view = g.view();
  for (uint32_t i = 0; i < view.n_nodes; ++i) {
    if (!backend_->Supports(view, i)) {
      return absl::UnimplementedError(absl::StrCat(
          "device '", model_->device().name, "' does not run ", OpName(view.nodes[i].op),
          " as a batch of sequences needs it (node ", i, ")"));
    }
  }
  const uint64_t bytes = g.Plan();
  if (bytes > arena_bytes_) {
    // The bigger arena first: on failure the old one and its graphs stay.
    auto a = backend_->Alloc(bytes);
    if (!a.ok()) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot allocate ", bytes, " bytes of activations for a batch step of ",
                       n_tokens, " tokens: ", a.status().message()));
    }
    if (arena_) backend_->Free(arena_);
    arena_ = *a;
    arena_bytes_ = bytes;
    for (auto& [k, other] : steps_) other->graph.Bind(arena_);
  }
  g.Bind(arena_);
  step->last_use = ++use_clock_;
  StepGraph* raw = step.get();
  steps_[key] = std::move(step);
  return raw;
}

absl::Status BatchRunner::Step(absl::Span<const BatchEntry> entries) {
  entry_row_.clear();
  int64_t n_tokens = 0, n_out = 0;
  uint64_t used = 0;
  HEARTH_RETURN_IF_ERROR(Validate(entries, &n_tokens, &n_out, &used));
  HEARTH_ASSIGN_OR_RETURN(StepGraph * step, StepFor(n_tokens, n_out, used));
  if (block_size_ > 0) {
    // Validate made sure the pool suffices. Pages taken here stay with the
    // slot even if the graph then fails (a later step or reset trims them).
    for (const BatchEntry& e : entries) {
      std::vector<int32_t>& pages = pages_[static_cast<size_t>(e.slot)];
      const size_t keep = KeptPages(e.slot, e.start);
      while (pages.size() > keep) {
        ReleasePage(pages.back());
        pages.pop_back();
      }
    }
    for (const BatchEntry& e : entries) {
      std::vector<int32_t>& pages = pages_[static_cast<size_t>(e.slot)];
      const size_t need =
          static_cast<size_t>(PagesFor(e.start + static_cast<int64_t>(e.tokens.size())));
      while (pages.size() < need) {
        const int32_t p = free_pages_.back();
        free_pages_.pop_back();
        page_refs_[static_cast<size_t>(p)] = 1;
        pages.push_back(p);
      }
      int32_t* row =
          blocks_.data() + static_cast<size_t>(e.slot) * static_cast<size_t>(max_blocks_);
      std::copy(pages.begin(), pages.end(), row);
    }
  }
  HEARTH_RETURN_IF_ERROR(Run(step, entries, n_tokens, n_out));
  logits_.swap(logits_next_);
  for (const BatchEntry& e : entries) {
    n_past_[static_cast<size_t>(e.slot)] = e.start + static_cast<int64_t>(e.tokens.size());
  }
  int64_t row = 0;
  for (const BatchEntry& e : entries) entry_row_.push_back(e.want_logits ? row++ : -1);
  return absl::OkStatus();
}

absl::Status BatchRunner::Run(StepGraph* step, absl::Span<const BatchEntry> entries,
                              int64_t n_tokens, int64_t n_out) {
  int64_t t = 0, out = 0;
  for (const BatchEntry& e : entries) {
    for (size_t k = 0; k < e.tokens.size(); ++k, ++t) {
      tokens_[t] = e.tokens[k];
      positions_[t] = static_cast<int32_t>(e.start + static_cast<int64_t>(k));
      seq_[t] = e.slot;
    }
    if (e.want_logits) logit_rows_[out++] = static_cast<int32_t>(t - 1);
  }
  if (n_out == 0) logit_rows_[0] = static_cast<int32_t>(n_tokens - 1);
  const uint64_t ids_bytes = static_cast<uint64_t>(n_tokens) * sizeof(int32_t);
  auto upload = [&](int tensor, const void* data, uint64_t bytes) {
    const hearth_tensor_desc& d = step->graph.tensor(tensor);
    return backend_->Upload(d.buffer, d.offset, data, bytes);
  };
  HEARTH_RETURN_IF_ERROR(upload(step->io.tokens, tokens_.data(), ids_bytes));
  HEARTH_RETURN_IF_ERROR(upload(step->io.positions, positions_.data(), ids_bytes));
  HEARTH_RETURN_IF_ERROR(upload(step->io.seq, seq_.data(), ids_bytes));
  if (step->io.blocks >= 0) {
    HEARTH_RETURN_IF_ERROR(upload(step->io.blocks, blocks_.data(), blocks_.size() * 4));
  }
  HEARTH_RETURN_IF_ERROR(upload(step->io.logit_rows, logit_rows_.data(),
                                static_cast<uint64_t>(std::max<int64_t>(n_out, 1)) * 4));
  for (const auto& [adapter, tensor] : step->row_scales) {
    t = 0;
    for (const BatchEntry& e : entries) {
      float s = 0.0f;
      for (const BatchAdapter& a : e.adapters) {
        if (a.index == adapter) s += a.scale;
      }
      std::fill_n(scales_.begin() + t, e.tokens.size(), s);
      t += static_cast<int64_t>(e.tokens.size());
    }
    HEARTH_RETURN_IF_ERROR(upload(tensor, scales_.data(), static_cast<uint64_t>(n_tokens) * 4));
  }
  HEARTH_RETURN_IF_ERROR(backend_->Compute(step->graph.view()));
  if (n_out > 0) {
    const hearth_tensor_desc& ld = step->graph.tensor(step->io.logits);
    HEARTH_RETURN_IF_ERROR(backend_->Download(
        ld.buffer, ld.offset, logits_next_.data(),
        static_cast<uint64_t>(n_out * model_->config().n_vocab) * sizeof(float)));
  }
  return absl::OkStatus();
}

absl::Span<const float> BatchRunner::logits(size_t i) const {
  if (i >= entry_row_.size() || entry_row_[i] < 0) return {};
  const size_t n_vocab = static_cast<size_t>(model_->config().n_vocab);
  return absl::Span<const float>(logits_.data() + static_cast<size_t>(entry_row_[i]) * n_vocab,
                                 n_vocab);
}

int64_t BatchRunner::n_past(int32_t slot) const {
  return slot >= 0 && slot < n_seq_ ? n_past_[static_cast<size_t>(slot)] : 0;
}

void BatchRunner::ResetSlot(int32_t slot) {
  if (slot < 0 || slot >= n_seq_) return;
  n_past_[static_cast<size_t>(slot)] = 0;
  if (block_size_ > 0) {
    std::vector<int32_t>& pages = pages_[static_cast<size_t>(slot)];
    for (auto it = pages.rbegin(); it != pages.rend(); ++it) ReleasePage(*it);
    pages.clear();
  }
}

size_t BatchRunner::KeptPages(int32_t slot, int64_t start) const {
  return std::min(pages_[static_cast<size_t>(slot)].size(), static_cast<size_t>(PagesFor(start)));
}

void BatchRunner::ReleasePage(int32_t p) {
  if (--page_refs_[static_cast<size_t>(p)] == 0) free_pages_.push_back(p);
}

absl::Status BatchRunner::SharePrefix(int32_t slot, int32_t from, int64_t n_pages) {
  if (block_size_ == 0) {
    return absl::FailedPreconditionError("sharing a prefix needs a paged KV cache");
  }
  if (slot < 0 || slot >= n_seq_ || from < 0 || from >= n_seq_ || slot == from) {
    return absl::InvalidArgumentError(absl::StrCat("sharing a prefix from slot ", from, " to slot ",
                                                   slot, ": slots must be two of [0, ", n_seq_,
                                                   ")"));
  }
  const int64_t full = std::min(slot_pages(from), n_past_[static_cast<size_t>(from)] / block_size_);
  if (n_pages < 0 || n_pages > full) {
    return absl::InvalidArgumentError(absl::StrCat("sharing ", n_pages, " pages of slot ", from,
                                                   ", which holds ", full, " full pages"));
  }
  // References first: a page both slots already hold must not reach the
  // pool in between.
  const std::vector<int32_t>& src = pages_[static_cast<size_t>(from)];
  for (int64_t i = 0; i < n_pages; ++i) ++page_refs_[static_cast<size_t>(src[i])];
  ResetSlot(slot);
  std::vector<int32_t>& dst = pages_[static_cast<size_t>(slot)];
  dst.assign(src.begin(), src.begin() + n_pages);
  n_past_[static_cast<size_t>(slot)] = n_pages * block_size_;
  return absl::OkStatus();
}

bool BatchRunner::WritesSharedPage(int32_t slot, int64_t start) const {
  if (block_size_ == 0 || slot < 0 || slot >= n_seq_ || start % block_size_ == 0) return false;
  const std::vector<int32_t>& pages = pages_[static_cast<size_t>(slot)];
  const int64_t page = start / block_size_;
  return page < static_cast<int64_t>(pages.size()) &&
         page_refs_[static_cast<size_t>(pages[static_cast<size_t>(page)])] > 1;
}

int64_t BatchRunner::ReleasablePages(int32_t slot) const {
  if (block_size_ == 0 || slot < 0 || slot >= n_seq_) return 0;
  int64_t n = 0;
  for (int32_t p : pages_[static_cast<size_t>(slot)]) n += page_refs_[static_cast<size_t>(p)] == 1;
  return n;
}

void BatchRunner::StepPages(absl::Span<const BatchEntry> entries, int64_t* need,
                            int64_t* available) const {
  // Each entry keeps the pages of its rows before `start` and needs enough
  // for start + len; a page that rewinds drop goes back to the pool when
  // every slot holding it drops it in this step.
  *need = 0;
  *available = free_pages();
  auto dropped = [this](const BatchEntry& e) {
    return absl::MakeConstSpan(pages_[static_cast<size_t>(e.slot)])
        .subspan(KeptPages(e.slot, e.start));
  };
  for (const BatchEntry& e : entries) {
    for (int32_t p : dropped(e)) ++page_count_[static_cast<size_t>(p)];
    const int64_t keep = static_cast<int64_t>(KeptPages(e.slot, e.start));
    *need += std::max<int64_t>(0, PagesFor(e.start + static_cast<int64_t>(e.tokens.size())) - keep);
  }
  for (const BatchEntry& e : entries) {
    for (int32_t p : dropped(e)) {
      int32_t& n = page_count_[static_cast<size_t>(p)];
      if (n > 0 && n == page_refs_[static_cast<size_t>(p)]) ++*available;
      n = 0;  // counted once; the scratch is all zero again at the end
    }
  }
}

int64_t BatchRunner::HeldPositions(absl::Span<const int32_t> slots) const {
  int64_t n = 0;
  for (int32_t s : slots) n += n_past(s);
  if (block_size_ == 0) return n;
  // Shared pages are whole pages: each further holder counted them again.
  for (int32_t s : slots) {
    for (int32_t p : pages_[static_cast<size_t>(s)]) {
      if (page_count_[static_cast<size_t>(p)]++ > 0) n -= block_size_;
    }
  }
  for (int32_t s : slots) {
    for (int32_t p : pages_[static_cast<size_t>(s)]) page_count_[static_cast<size_t>(p)] = 0;
  }
  return n;
}

int64_t BatchRunner::slot_pages(int32_t slot) const {
  if (block_size_ == 0 || slot < 0 || slot >= n_seq_) return 0;
  return static_cast<int64_t>(pages_[static_cast<size_t>(slot)].size());
}

}  // namespace hearth
