// engine.cc — see engine.h.
#include "sdk/src/runtime/engine.h"

#include <algorithm>
#include <cmath>
#include <new>

#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"

namespace hearth {
namespace {

constexpr uint32_t kDefaultSeq = 8;
constexpr uint32_t kDefaultStepTokens = 256;
constexpr uint32_t kDefaultWaiting = 1024;

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The length of the common start of `a` and `b`, at most `limit`.
size_t CommonPrefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b, size_t limit) {
  const size_t n = std::min({a.size(), b.size(), limit});
  size_t c = 0;
  while (c < n && a[c] == b[c]) ++c;
  return c;
}

bool SameAdapters(const std::vector<BatchAdapter>& a, const std::vector<BatchAdapter>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].index != b[i].index || a[i].scale != b[i].scale) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(std::shared_ptr<const Model> model,
                                                       const EngineOptions& options) {
  if (model == nullptr) return absl::InvalidArgumentError("engine: no model");
  BatchRunnerOptions ro;
  ro.n_seq = options.n_seq ? options.n_seq : kDefaultSeq;
  ro.n_ctx = options.n_ctx;
  ro.max_tokens = options.max_step_tokens ? options.max_step_tokens : kDefaultStepTokens;
  if (ro.max_tokens < ro.n_seq) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_step_tokens ", ro.max_tokens, " is below n_seq ", ro.n_seq,
                     ": a step must carry the next token of every running request"));
  }
  ro.n_threads = options.n_threads;
  ro.block_size = options.kv_block_size;
  ro.n_pages = options.kv_pages;
  ro.kv_type = options.kv_type;
  ro.adapters = options.adapters;
  std::unique_ptr<Engine> e(new Engine());
  HEARTH_ASSIGN_OR_RETURN(e->runner_, BatchRunner::Create(std::move(model), ro));
  e->max_waiting_ = options.max_waiting ? options.max_waiting : kDefaultWaiting;
  e->max_step_tokens_ = e->runner_->max_tokens();
  e->n_adapters_ = options.adapters.size();
  const size_t n_seq = static_cast<size_t>(e->runner_->n_seq());
  e->slots_.resize(n_seq);
  e->decode_tokens_.assign(n_seq, 0);
  e->entries_.reserve(n_seq);
  e->entry_request_.reserve(n_seq);
  e->running_.reserve(n_seq);
  e->running_slots_.reserve(n_seq);
  e->stats_.n_seq = static_cast<uint32_t>(n_seq);
  e->stats_.kv_tokens_capacity =
      e->runner_->block_size() > 0
          ? static_cast<uint64_t>(e->runner_->n_pages() * e->runner_->block_size())
          : static_cast<uint64_t>(n_seq * e->runner_->n_ctx());
  return e;
}

Engine::~Engine() {
  // Every request still waiting or running gets its DONE (cancelled) event.
  // Nothing here allocates but what telling a request takes; if memory runs
  // out even for that, the requests left are released without their event
  // (a destructor cannot throw).
  try {
    Stop();
    std::lock_guard<std::mutex> step(step_mu_);
    for (;;) {
      std::unique_ptr<Request> r;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (waiting_.empty()) break;
        r = std::move(waiting_.front());
        waiting_.pop_front();
      }
      Finish(r.get(), StopReason::kCancelled, absl::OkStatus(), "");  // r is not in running_
    }
    while (!running_.empty()) {
      Finish(running_.front().get(), StopReason::kCancelled, absl::OkStatus(), "");
    }
  } catch (const std::bad_alloc&) {
  }
}

absl::StatusOr<uint64_t> Engine::Submit(RequestOptions options) {
  const tok::Tokenizer& tok = model().tokenizer();
  const int64_t n_prompt = static_cast<int64_t>(options.prompt.size());
  if (n_prompt == 0) return absl::InvalidArgumentError("the prompt has no tokens");
  if (n_prompt > runner_->n_ctx()) {
    return absl::InvalidArgumentError(absl::StrCat("the prompt is ", n_prompt,
                                                   " tokens but a request's context holds ",
                                                   runner_->n_ctx(), " (n_ctx)"));
  }
  const int32_t n_vocab = tok.n_vocab();
  for (size_t i = 0; i < options.prompt.size(); ++i) {
    if (options.prompt[i] < 0 || options.prompt[i] >= n_vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt token ", i, " is id ", options.prompt[i],
                       ", outside the vocabulary [0, ", n_vocab, ")"));
    }
  }
  if (options.max_tokens == 0) {
    return absl::InvalidArgumentError("max_tokens is 0: a request must generate something");
  }
  if (options.top_logprobs > kMaxTopLogprobs) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_logprobs ", options.top_logprobs, " is above ", kMaxTopLogprobs));
  }
  if (options.top_logprobs > 0 && !options.logprobs) {
    return absl::InvalidArgumentError("top_logprobs needs logprobs");
  }
  for (size_t i = 0; i < options.adapters.size(); ++i) {
    const BatchAdapter& a = options.adapters[i];
    if (a.index >= n_adapters_) {
      return absl::InvalidArgumentError(absl::StrCat(
          "adapter index ", a.index, " is not one of the engine's ", n_adapters_, " adapters"));
    }
    if (!std::isfinite(a.scale)) {
      return absl::InvalidArgumentError(
          absl::StrCat("adapter ", a.index, ": scale ", a.scale, " is not finite"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (options.adapters[j].index == a.index) {
        return absl::InvalidArgumentError(
            absl::StrCat("adapter ", a.index, " is given twice; give it once with one scale"));
      }
    }
  }
  const int64_t pages = PagesToReserve(options);
  if (pages > runner_->n_pages()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the request may take ", pages, " KV pages (", n_prompt, " prompt tokens and max_tokens ",
        options.max_tokens, ") but the engine's paged cache has ", runner_->n_pages()));
  }
  auto r = std::make_unique<Request>();
  r->reserved_pages = pages;
  HEARTH_ASSIGN_OR_RETURN(r->sampler, sampling::Sampler::Create(options.sampling));
  // Penalties see the prompt too, as in Generate.
  for (int32_t id : options.prompt) r->sampler->Accept(id);
  r->decoder = std::make_unique<tok::StreamDecoder>(tok);
  r->filter = std::make_unique<StopFilter>(options.stop);
  r->options = std::move(options);
  r->submitted = std::chrono::steady_clock::now();
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (waiting_.size() >= max_waiting_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("the engine's queue is full: ", waiting_.size(),
                       " requests are waiting (max_waiting ", max_waiting_, ")"));
    }
    id = next_id_++;
    r->id = id;
    live_[id] = r.get();
    waiting_.push_back(std::move(r));
    ++stats_.requests_submitted;
  }
  work_cv_.notify_all();
  return id;
}

absl::Status Engine::Cancel(uint64_t id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(id);
    if (it == live_.end()) {
      return absl::NotFoundError(absl::StrCat("request ", id, " is unknown or has ended"));
    }
    it->second->cancel = true;
    cancel_seen_ = true;
  }
  work_cv_.notify_all();
  return absl::OkStatus();
}

absl::StatusOr<size_t> Engine::Step() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (thread_running_) {
      return absl::FailedPreconditionError(
          "the engine's own thread is stepping (it was started); stop it first");
    }
  }
  std::unique_lock<std::mutex> step(step_mu_, std::try_to_lock);
  if (!step.owns_lock()) {
    return absl::FailedPreconditionError("another thread is in a step of this engine");
  }
  return StepLocked();
}

absl::Status Engine::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_running_) return absl::FailedPreconditionError("the engine's thread already runs");
  thread_running_ = true;
  stop_thread_ = false;
  thread_ = std::thread([this] { ThreadMain(); });
  return absl::OkStatus();
}

void Engine::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!thread_running_) return;
    stop_thread_ = true;
  }
  work_cv_.notify_all();
  thread_.join();
  std::lock_guard<std::mutex> lock(mu_);
  thread_running_ = false;
  stop_thread_ = false;
}

void Engine::ThreadMain() {
  std::lock_guard<std::mutex> step(step_mu_);
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [this] {
        return stop_thread_ || cancel_seen_ || !waiting_.empty() || !running_.empty();
      });
      if (stop_thread_) return;
    }
    // Errors of a step end the requests it carried; there is nothing else
    // to report them to.
    (void)StepLocked();
  }
}

EngineStats Engine::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  EngineStats s = stats_;
  s.n_waiting = static_cast<uint32_t>(waiting_.size());
  s.n_running = static_cast<uint32_t>(running_.size());
  return s;
}

int64_t Engine::PagesToReserve(const RequestOptions& r) const {
  if (runner_->block_size() == 0) return 0;
  const int64_t n = r.max_tokens < 0
                        ? runner_->n_ctx()
                        : std::min<int64_t>(static_cast<int64_t>(r.prompt.size()) + r.max_tokens,
                                            runner_->n_ctx());
  return runner_->PagesFor(n);
}

void Engine::MakeRoomForStep() {
  int64_t need = 0, available = 0;
  runner_->StepPages(entries_, &need, &available);
  while (need > available) {
    int32_t victim = -1;
    for (size_t s = 0; s < slots_.size(); ++s) {
      if (slots_[s].request != nullptr || runner_->slot_pages(static_cast<int32_t>(s)) == 0) {
        continue;
      }
      if (victim < 0 || slots_[s].last_use < slots_[static_cast<size_t>(victim)].last_use) {
        victim = static_cast<int32_t>(s);
      }
    }
    if (victim < 0) return;  // cannot happen with reservations; the step then reports it
    available += runner_->ReleasablePages(victim);
    runner_->ResetSlot(victim);
    slots_[static_cast<size_t>(victim)].held.clear();
  }
}

void Engine::Admit(std::unique_ptr<Request> r) {
  // The free slot whose kept tokens share the longest prefix with the
  // prompt (computed with the same adapters); ties go to the least recently
  // used, so often-shared prefixes stay.
  const std::vector<int32_t>& prompt = r->options.prompt;
  int32_t best = -1;
  size_t best_common = 0;
  for (size_t s = 0; s < slots_.size(); ++s) {
    const SlotState& st = slots_[s];
    if (st.request != nullptr) continue;
    const size_t common = SameAdapters(st.adapters, r->options.adapters)
                              ? CommonPrefix(st.held, prompt, prompt.size())
                              : 0;
    if (best < 0 || common > best_common ||
        (common == best_common && st.last_use < slots_[static_cast<size_t>(best)].last_use)) {
      best = static_cast<int32_t>(s);
      best_common = common;
    }
  }
  // At least the last prompt token is computed: its logits are needed.
  size_t start = std::min(best_common, prompt.size() - 1);
  // Rows another slot shares are never rewritten: start at the page.
  if (runner_->WritesSharedPage(best, static_cast<int64_t>(start))) {
    const size_t bs = static_cast<size_t>(runner_->block_size());
    start = start / bs * bs;
  }
  SlotState& slot = slots_[static_cast<size_t>(best)];
  slot.request = r.get();
  slot.held.resize(start);
  slot.adapters = r->options.adapters;
  slot.last_use = ++use_clock_;
  r->slot = best;
  r->n_done = static_cast<int64_t>(start);
  r->n_cached = static_cast<int64_t>(start);
  stats_.cached_prompt_tokens += start;
  running_.push_back(std::move(r));
}

bool Engine::SharePrompt(Request* r, size_t order) {
  const int64_t bs = runner_->block_size();
  const std::vector<int32_t>& prompt = r->options.prompt;
  // Whole pages only, and never the last prompt token: its logits are needed.
  const int64_t limit = (static_cast<int64_t>(prompt.size()) - 1) / bs * bs;
  if (limit <= r->n_done) return false;
  auto common = [&](const std::vector<int32_t>& ids) {
    return static_cast<int64_t>(CommonPrefix(ids, prompt, static_cast<size_t>(limit))) / bs * bs;
  };
  int32_t from = -1;
  int64_t best = r->n_done;
  for (size_t s = 0; s < slots_.size(); ++s) {
    const SlotState& st = slots_[s];
    if (static_cast<int32_t>(s) == r->slot || !SameAdapters(st.adapters, r->options.adapters)) {
      continue;
    }
    const int64_t c = common(st.held);
    if (c > best) {
      best = c;
      from = static_cast<int32_t>(s);
    }
  }
  if (from >= 0 && runner_->SharePrefix(r->slot, from, best / bs).ok()) {
    slots_[static_cast<size_t>(r->slot)].held.assign(prompt.begin(), prompt.begin() + best);
    std::lock_guard<std::mutex> lock(mu_);
    stats_.cached_prompt_tokens += static_cast<uint64_t>(best - r->n_cached);
    r->n_cached = best;
    r->n_done = best;
  }
  // A request admitted earlier that is still reading a prompt starting
  // like this one, past what this one has: wait for its pages.
  for (size_t k = 0; k < order; ++k) {
    const Request* q = running_[k].get();
    if (q->pending >= 0 || !SameAdapters(q->options.adapters, r->options.adapters)) continue;
    const int64_t c = common(q->options.prompt);
    if (c > r->n_done && q->n_done < c) return true;
  }
  return false;
}

bool Engine::Emit(Request* r, const RequestEvent& ev) {
  if (!r->options.on_event) return true;
  return r->options.on_event(ev);
}

void Engine::Finish(Request* r, StopReason reason, absl::Status status, std::string_view text) {
  RequestEvent ev;
  ev.request = r->id;
  ev.kind = EventKind::kDone;
  ev.text = text;
  ev.finish_reason = reason;
  ev.status = std::move(status);
  ev.n_prompt_tokens = static_cast<uint32_t>(r->options.prompt.size());
  ev.n_cached_tokens = static_cast<uint32_t>(r->n_cached);
  ev.n_generated_tokens = static_cast<uint32_t>(r->n_generated);
  ev.first_token_seconds = r->first_token_seconds;
  {
    // Unknown to Cancel from here on: once DONE is out, a cancel is NOT_FOUND.
    std::lock_guard<std::mutex> lock(mu_);
    live_.erase(r->id);
  }
  (void)Emit(r, ev);
  std::unique_ptr<Request> owned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.requests_finished;
    if (reason == StopReason::kCancelled) ++stats_.requests_cancelled;
    if (reason == StopReason::kError) ++stats_.requests_failed;
    if (r->slot >= 0) {
      slots_[static_cast<size_t>(r->slot)].request = nullptr;
      reserved_pages_ -= r->reserved_pages;
    }
    auto it = std::find_if(running_.begin(), running_.end(),
                           [r](const std::unique_ptr<Request>& p) { return p.get() == r; });
    if (it != running_.end()) {
      owned = std::move(*it);
      running_.erase(it);
    }
  }
  // `owned` (the request) is destroyed here, outside the lock.
}

void Engine::AfterLogits(Request* r, absl::Span<const float> logits) {
  const tok::Tokenizer& tok = model().tokenizer();
  absl::StatusOr<int32_t> sampled = r->sampler->Sample(logits);
  if (!sampled.ok()) {
    Finish(r, StopReason::kError, sampled.status(), "");
    return;
  }
  const int32_t id = *sampled;
  r->sampler->Accept(id);
  // The text still held back when the request ends for a reason other than
  // a stop string (which drops it).
  auto rest = [r](StopReason* reason) {
    bool hit = false;
    std::string out = r->filter->Add(r->decoder->Flush(), &hit);
    if (hit) {
      *reason = StopReason::kStopString;
    } else {
      out += r->filter->Flush();
    }
    return out;
  };
  if (tok.IsEog(id)) {
    StopReason reason = StopReason::kEog;
    std::string text = rest(&reason);
    Finish(r, reason, absl::OkStatus(), text);
    return;
  }
  ++r->n_generated;
  ++step_generated_;
  if (r->n_generated == 1) r->first_token_seconds = SecondsSince(r->submitted);
  RequestEvent ev;
  ev.request = r->id;
  ev.kind = EventKind::kToken;
  ev.token = id;
  ev.n_prompt_tokens = static_cast<uint32_t>(r->options.prompt.size());
  ev.n_cached_tokens = static_cast<uint32_t>(r->n_cached);
  ev.n_generated_tokens = static_cast<uint32_t>(r->n_generated);
  ev.first_token_seconds = r->first_token_seconds;
  int32_t top_ids[kMaxTopLogprobs];
  float top_lp[kMaxTopLogprobs];
  if (r->options.logprobs) {
    // log softmax of the raw logits, in double.
    float mx = -INFINITY;
    for (float x : logits) mx = std::max(mx, x);
    double sum = 0.0;
    for (float x : logits) sum += std::exp(static_cast<double>(x) - mx);
    const double lse = mx + std::log(sum);
    ev.logprob = static_cast<float>(logits[static_cast<size_t>(id)] - lse);
    // The n most likely: insertion into a sorted list of at most 20.
    const size_t n = r->options.top_logprobs;
    size_t have = 0;
    for (size_t v = 0; v < logits.size() && n > 0; ++v) {
      const float x = logits[v];
      if (have == n && !(x > top_lp[n - 1])) continue;
      size_t at = have < n ? have++ : n - 1;
      while (at > 0 && x > top_lp[at - 1]) {
        top_lp[at] = top_lp[at - 1];
        top_ids[at] = top_ids[at - 1];
        --at;
      }
      top_lp[at] = x;
      top_ids[at] = static_cast<int32_t>(v);
    }
    for (size_t k = 0; k < have; ++k) top_lp[k] = static_cast<float>(top_lp[k] - lse);
    ev.top_tokens = absl::MakeConstSpan(top_ids, have);
    ev.top_logprobs = absl::MakeConstSpan(top_lp, have);
  }
  bool hit = false;
  const std::string text = r->filter->Add(r->decoder->Push(id), &hit);
  ev.text = text;
  const bool go_on = Emit(r, ev);
  if (hit) {
    Finish(r, StopReason::kStopString, absl::OkStatus(), "");
    return;
  }
  if (!go_on) {
    Finish(r, StopReason::kCallback, absl::OkStatus(), "");
    return;
  }
  const bool at_max = r->options.max_tokens > 0 && r->n_generated >= r->options.max_tokens;
  const bool full =
      static_cast<int64_t>(slots_[static_cast<size_t>(r->slot)].held.size()) >= runner_->n_ctx();
  if (at_max || full) {
    StopReason reason = at_max ? StopReason::kMaxTokens : StopReason::kContextFull;
    std::string tail = rest(&reason);
    Finish(r, reason, absl::OkStatus(), tail);
    return;
  }
  r->pending = id;
}

absl::StatusOr<size_t> Engine::StepLocked() {
  const auto t0 = std::chrono::steady_clock::now();
  // 1. Cancellations.
  std::vector<std::unique_ptr<Request>> gone;
  std::vector<Request*> cancelled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cancel_seen_) {
      cancel_seen_ = false;
      for (auto it = waiting_.begin(); it != waiting_.end();) {
        if ((*it)->cancel) {
          gone.push_back(std::move(*it));
          it = waiting_.erase(it);
        } else {
          ++it;
        }
      }
      for (const std::unique_ptr<Request>& r : running_) {
        if (r->cancel) cancelled.push_back(r.get());
      }
    }
  }
  for (std::unique_ptr<Request>& r : gone) {
    cancelled.push_back(r.get());
    std::lock_guard<std::mutex> lock(mu_);
    running_.push_back(std::move(r));  // so Finish finds and frees it
  }
  for (Request* r : cancelled) Finish(r, StopReason::kCancelled, absl::OkStatus(), "");

  // 2. Admission into free slots, in submission order.
  {
    std::lock_guard<std::mutex> lock(mu_);
    while (!waiting_.empty() && running_.size() < slots_.size()) {
      // Paged: admitted only when its reservation fits beside the others'.
      const int64_t pages = waiting_.front()->reserved_pages;
      if (reserved_pages_ + pages > runner_->n_pages() && runner_->block_size() > 0) break;
      reserved_pages_ += pages;
      std::unique_ptr<Request> r = std::move(waiting_.front());
      waiting_.pop_front();
      Admit(std::move(r));
    }
  }

  // 3. The batch: every running request's next token first, then prompt
  // chunks in admission order while the step's budget lasts.
  entries_.clear();
  entry_request_.clear();
  int64_t budget = max_step_tokens_;
  for (const std::unique_ptr<Request>& up : running_) {
    Request* r = up.get();
    if (r->pending < 0) continue;
    const size_t s = static_cast<size_t>(r->slot);
    decode_tokens_[s] = r->pending;
    BatchEntry e;
    e.slot = r->slot;
    e.tokens = absl::MakeConstSpan(&decode_tokens_[s], 1);
    e.start = static_cast<int64_t>(slots_[s].held.size());
    e.want_logits = true;
    e.adapters = r->options.adapters;
    entries_.push_back(e);
    entry_request_.push_back(r);
    --budget;
  }
  for (size_t k = 0; k < running_.size(); ++k) {
    Request* r = running_[k].get();
    const int64_t n_prompt = static_cast<int64_t>(r->options.prompt.size());
    if (r->pending >= 0 || r->n_done >= n_prompt || budget <= 0) continue;
    if (runner_->block_size() > 0 && SharePrompt(r, k)) continue;
    const int64_t chunk = std::min(n_prompt - r->n_done, budget);
    BatchEntry e;
    e.slot = r->slot;
    e.tokens =
        absl::MakeConstSpan(r->options.prompt.data() + r->n_done, static_cast<size_t>(chunk));
    e.start = r->n_done;
    e.want_logits = r->n_done + chunk == n_prompt;
    e.adapters = r->options.adapters;
    entries_.push_back(e);
    entry_request_.push_back(r);
    budget -= chunk;
  }
  if (entries_.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_.size() + running_.size();
  }

  // 4. One graph over the batch.
  if (runner_->block_size() > 0) MakeRoomForStep();
  const absl::Status run = runner_->Step(entries_);
  uint64_t prompt_tokens = 0;
  if (!run.ok()) {
    for (size_t i = 0; i < entries_.size(); ++i) {
      Request* r = entry_request_[i];
      runner_->ResetSlot(r->slot);
      slots_[static_cast<size_t>(r->slot)].held.clear();
      Finish(r, StopReason::kError, run, "");
    }
  } else {
    // 5. Bookkeeping, then sampling and events (a request may end there).
    for (size_t i = 0; i < entries_.size(); ++i) {
      Request* r = entry_request_[i];
      const BatchEntry& e = entries_[i];
      SlotState& slot = slots_[static_cast<size_t>(r->slot)];
      slot.held.insert(slot.held.end(), e.tokens.begin(), e.tokens.end());
      if (r->pending >= 0) {
        r->pending = -1;
      } else {
        r->n_done += static_cast<int64_t>(e.tokens.size());
        prompt_tokens += e.tokens.size();
      }
    }
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].want_logits) AfterLogits(entry_request_[i], runner_->logits(i));
    }
  }

  std::lock_guard<std::mutex> lock(mu_);
  running_slots_.clear();
  for (const std::unique_ptr<Request>& r : running_) running_slots_.push_back(r->slot);
  const uint64_t kv = static_cast<uint64_t>(runner_->HeldPositions(running_slots_));
  ++stats_.steps;
  stats_.prompt_tokens += prompt_tokens;
  stats_.generated_tokens += step_generated_;
  step_generated_ = 0;
  stats_.kv_tokens_used = kv;
  stats_.step_seconds += SecondsSince(t0);
  return waiting_.size() + running_.size();
}

}  // namespace hearth
