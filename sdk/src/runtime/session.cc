// session.cc — KV cache allocation, step-graph planning and the feed loop.
#include "sdk/src/runtime/session.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"
#include "sdk/src/runtime/kv_cache.h"

namespace hearth {
namespace {

constexpr size_t kMaxCachedSteps = 6;

}  // namespace

Session::~Session() {
  steps_.clear();
  if (backend_) {
    if (arena_) backend_->Free(arena_);
    if (kv_buffer_) backend_->Free(kv_buffer_);
  }
}

absl::StatusOr<std::unique_ptr<Session>> Session::Create(std::shared_ptr<const Model> model,
                                                         const SessionOptions& options) {
  std::unique_ptr<Session> s(new Session());
  s->model_ = std::move(model);
  const ModelConfig& c = s->model_->config();
  HEARTH_ASSIGN_OR_RETURN(const int64_t n_ctx, ContextLength(c, options.n_ctx));
  s->n_ctx_ = n_ctx;
  s->n_batch_ = std::min<int64_t>(options.n_batch ? options.n_batch : 256, n_ctx);
  const uint32_t threads = options.n_threads ? options.n_threads : s->model_->n_threads();
  HEARTH_ASSIGN_OR_RETURN(s->backend_, Backend::Create(s->model_->device(), threads));

  // KV cache: per layer k [head_dim, n_head_kv, n_ctx] then v, all F32.
  HEARTH_ASSIGN_OR_RETURN(const uint32_t kv_dtype, KvDtype(options.kv_type));
  HEARTH_ASSIGN_OR_RETURN(s->kv_,
                          AllocateKvCache(*s->backend_, c, n_ctx, 1, kv_dtype, &s->kv_buffer_));
  s->logits_.assign(static_cast<size_t>(c.n_vocab), 0.0f);
  s->positions_.resize(static_cast<size_t>(s->n_batch_));
  // Plan the two shapes every conversation uses up front, so the arena has
  // its final size before the first token and decoding never allocates.
  HEARTH_RETURN_IF_ERROR(s->StepFor(s->n_batch_, false).status());
  HEARTH_RETURN_IF_ERROR(s->StepFor(1, false).status());
  return s;
}

absl::StatusOr<Session::Step*> Session::StepFor(int64_t n_tokens, bool all_logits) {
  const std::pair<int64_t, bool> key(n_tokens, all_logits);
  auto it = steps_.find(key);
  if (it != steps_.end()) return it->second.get();
  if (steps_.size() >= kMaxCachedSteps) {
    // Keep the decode and full-batch graphs; drop an odd-sized one.
    for (auto e = steps_.begin(); e != steps_.end(); ++e) {
      if (e->first.second || (e->first.first != 1 && e->first.first != n_batch_)) {
        steps_.erase(e);
        break;
      }
    }
  }
  auto step = std::make_unique<Step>();
  HEARTH_ASSIGN_OR_RETURN(
      step->io, model_->architecture().Build(model_->config(), model_->weights(), kv_, n_tokens,
                                             all_logits, lora_.empty() ? nullptr : &lora_,
                                             &step->graph));
  step->arena_bytes = step->graph.Plan();
  if (step->arena_bytes > arena_bytes_) {
    // The bigger arena first: on failure the old one and the graphs bound
    // to it stay as they were.
    auto a = backend_->Alloc(step->arena_bytes);
    if (!a.ok()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "cannot allocate ", step->arena_bytes, " bytes of activations for a step of ",
          n_tokens, " tokens: ", a.status().message()));
    }
    if (arena_) backend_->Free(arena_);
    arena_ = *a;
    arena_bytes_ = step->arena_bytes;
    for (auto& [n, other] : steps_) other->graph.Bind(arena_);
  }
  step->graph.Bind(arena_);
  Step* raw = step.get();
  steps_[key] = std::move(step);
  return raw;
}

absl::Status Session::ValidateNew(absl::Span<const int32_t> tokens, size_t first_user,
                                  size_t n_user) const {
  const int64_t n_vocab = model_->config().n_vocab;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", tokens[i], " at position ",
                                                     i - first_user, " is out of range [0, ",
                                                     n_vocab, ")"));
    }
  }
  if (static_cast<int64_t>(tokens.size()) > n_ctx_ - n_past_) {
    return absl::InvalidArgumentError(absl::StrCat("context overflow: ", n_past(),
                                                   " tokens in the context + ", n_user,
                                                   " new > n_ctx ", n_ctx_));
  }
  return absl::OkStatus();
}

absl::StatusOr<Session::Step*> Session::RunChunk(const int32_t* tokens, int64_t t,
                                                 bool all_logits) {
  HEARTH_ASSIGN_OR_RETURN(Step * step, StepFor(t, all_logits));
  for (int64_t i = 0; i < t; ++i) positions_[i] = static_cast<int32_t>(n_past_ + i);
  const hearth_tensor_desc& td = step->graph.tensor(step->io.tokens);
  const hearth_tensor_desc& pd = step->graph.tensor(step->io.positions);
  HEARTH_RETURN_IF_ERROR(backend_->Upload(td.buffer, td.offset, tokens,
                                          static_cast<uint64_t>(t) * sizeof(int32_t)));
  HEARTH_RETURN_IF_ERROR(backend_->Upload(pd.buffer, pd.offset, positions_.data(),
                                          static_cast<uint64_t>(t) * sizeof(int32_t)));
  HEARTH_RETURN_IF_ERROR(backend_->Compute(step->graph.view()));
  n_past_ += t;
  history_.insert(history_.end(), tokens, tokens + t);
  return step;
}

absl::Status Session::Feed(absl::Span<const int32_t> user_tokens) {
  absl::Span<const int32_t> tokens = user_tokens;
  if (pending_ >= 0) {
    feed_scratch_.assign(1, pending_);
    feed_scratch_.insert(feed_scratch_.end(), user_tokens.begin(), user_tokens.end());
    tokens = feed_scratch_;
  }
  HEARTH_RETURN_IF_ERROR(
      ValidateNew(tokens, tokens.size() - user_tokens.size(), user_tokens.size()));
  // A device error in any step leaves the session as it was: the tokens of
  // earlier steps are forgotten again (their KV rows are simply overwritten
  // later) and the logits are replaced only once all of them arrived.
  const Checkpoint before = Save();
  absl::Status status = FeedSteps(tokens);
  if (!status.ok()) Restore(before);
  return status;
}

absl::Status Session::FeedSteps(absl::Span<const int32_t> tokens) {
  pending_ = -1;
  const int64_t n = static_cast<int64_t>(tokens.size());
  for (int64_t off = 0; off < n; off += n_batch_) {
    const int64_t t = std::min(n_batch_, n - off);
    HEARTH_ASSIGN_OR_RETURN(Step * step, RunChunk(tokens.data() + off, t, false));
    if (off + t == n) {
      const hearth_tensor_desc& ld = step->graph.tensor(step->io.logits);
      logits_scratch_.resize(logits_.size());
      HEARTH_RETURN_IF_ERROR(backend_->Download(ld.buffer, ld.offset, logits_scratch_.data(),
                                                logits_scratch_.size() * sizeof(float)));
      logits_.swap(logits_scratch_);
      has_logits_ = true;
    }
  }
  return absl::OkStatus();
}

absl::Status Session::Score(absl::Span<const int32_t> tokens, float* logprobs) {
  if (pending_ >= 0) HEARTH_RETURN_IF_ERROR(Feed({}));
  HEARTH_RETURN_IF_ERROR(ValidateNew(tokens, 0, tokens.size()));
  const Checkpoint before = Save();
  absl::Status status = ScoreSteps(tokens);
  if (!status.ok()) {
    Restore(before);
    return status;
  }
  if (tokens.size() > 1) std::copy(logprob_scratch_.begin(), logprob_scratch_.end(), logprobs);
  return absl::OkStatus();
}

absl::Status Session::ScoreSteps(absl::Span<const int32_t> tokens) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t n_vocab = model_->config().n_vocab;
  const int64_t by_memory = std::max<int64_t>(1, (int64_t{64} << 20) / (n_vocab * 4));
  const int64_t chunk = std::min(n_batch_, by_memory);
  score_scratch_.resize(static_cast<size_t>(std::min(chunk, std::max<int64_t>(n, 1)) * n_vocab));
  logprob_scratch_.resize(static_cast<size_t>(std::max<int64_t>(n - 1, 0)));
  for (int64_t off = 0; off < n; off += chunk) {
    const int64_t t = std::min(chunk, n - off);
    HEARTH_ASSIGN_OR_RETURN(Step * step, RunChunk(tokens.data() + off, t, true));
    const hearth_tensor_desc& ld = step->graph.tensor(step->io.logits);
    HEARTH_RETURN_IF_ERROR(backend_->Download(ld.buffer, ld.offset, score_scratch_.data(),
                                              static_cast<uint64_t>(t * n_vocab) * 4));
    for (int64_t i = 0; i < t; ++i) {
      const float* row = score_scratch_.data() + i * n_vocab;
      const int64_t g = off + i;
      if (g + 1 < n) {
        float mx = row[0];
        for (int64_t v = 1; v < n_vocab; ++v) mx = std::max(mx, row[v]);
        double sum = 0;
        for (int64_t v = 0; v < n_vocab; ++v) sum += std::exp(static_cast<double>(row[v] - mx));
        logprob_scratch_[g] = static_cast<float>(row[tokens[g + 1]] - mx - std::log(sum));
      }
      if (g + 1 == n) {
        std::copy(row, row + n_vocab, logits_.begin());
        has_logits_ = true;
      }
    }
  }
  return absl::OkStatus();
}

Session::Checkpoint Session::Save() const {
  return Checkpoint{n_past_, history_.size(), pending_};
}

void Session::Restore(const Checkpoint& c) {
  n_past_ = c.n_past;
  history_.resize(c.history);
  pending_ = c.pending;
}

void Session::TruncateTo(int64_t n) {
  if (pending_ >= 0 && n >= n_past_ + 1) return;  // keeps everything, pending included
  pending_ = -1;
  n = std::clamp<int64_t>(n, 0, n_past_);
  if (n < n_past_) has_logits_ = false;  // they belonged to a dropped token
  n_past_ = n;
  history_.resize(static_cast<size_t>(n));
}

absl::Status Session::SetAdapters(AdapterSet adapters) {
  LoraStack stack;
  for (size_t i = 0; i < adapters.size(); ++i) {
    const auto& [adapter, scale] = adapters[i];
    if (adapter == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("adapter #", i, " is null"));
    }
    if (adapter->model() != model_.get()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "adapter #", i, " (", adapter->file().path, ") was ",
          adapter->model() ? "loaded for another model" : "loaded without a model",
          "; load it with this session's model"));
    }
    if (!std::isfinite(scale)) {
      return absl::InvalidArgumentError(
          absl::StrCat("adapter #", i, " (", adapter->file().path, "): scale ", scale,
                       " is not finite"));
    }
    adapter->AddTo(scale, &stack);
  }
  if (adapters == adapters_) return absl::OkStatus();
  // Plan the two usual shapes with the new terms before committing, so a
  // failure (an arena too big) leaves the old set in place.
  std::swap(lora_, stack);
  auto old_steps = std::move(steps_);
  steps_.clear();
  absl::Status planned = StepFor(n_batch_, false).status();
  if (planned.ok()) planned = StepFor(1, false).status();
  if (!planned.ok()) {
    std::swap(lora_, stack);
    // A new arena may have been bound; the old graphs fit in it too.
    steps_ = std::move(old_steps);
    for (auto& [key, step] : steps_) step->graph.Bind(arena_);
    return planned;
  }
  adapters_ = std::move(adapters);
  Reset();
  return absl::OkStatus();
}

void Session::Reset() {
  n_past_ = 0;
  pending_ = -1;
  has_logits_ = false;
  history_.clear();
}

}  // namespace hearth
