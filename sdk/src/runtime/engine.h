// engine.h — many requests over one model: a scheduler on a BatchRunner.
//
// Requests (prompt ids, sampling, stop strings, max tokens, adapters with
// scales, logprobs) are submitted from any thread and get an id. Each step
// (on the engine's own thread, or on the caller's) ends the requests that
// were cancelled, admits waiting ones into free KV slots, and runs one graph
// that carries every running request's next token plus chunks of the
// prompts still being read, as many prompt tokens as the step's token
// budget leaves (continuous batching at token granularity: a long prompt
// never stalls the others for more than a chunk). After the graph each
// request whose logits came back samples its next token, and its callback
// gets the token with the text it released (whole UTF-8 code points, stop
// strings held back), and at the end exactly one DONE event.
//
// Prefix reuse: a slot keeps the tokens of the request that last used it;
// a new request goes to the free slot whose kept tokens share the longest
// prefix with its prompt (same adapters and scales: they change the K and
// V rows), and only the rest of the prompt is computed. With a paged cache
// requests also share between slots, running ones included: before a chunk
// of its prompt is computed, a request takes the whole pages of its prompt
// start that any other slot holds (refcounted, never rewritten), and waits
// a step while a request admitted before it computes more of the same
// start. A system prompt shared by many requests is so computed once.
//
// The KV cache is n_seq slots of up to n_ctx positions (BatchRunner), fixed
// or paged from one pool (EngineOptions::kv_block_size): when no slot, or
// not enough pages for a request's prompt plus reply, is free, requests
// wait in submission order (the queue is bounded) and running ones are
// never failed for room.
#ifndef HEARTH_SDK_SRC_RUNTIME_ENGINE_H_
#define HEARTH_SDK_SRC_RUNTIME_ENGINE_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "sdk/src/runtime/batch.h"
#include "sdk/src/runtime/generate.h"
#include "sdk/src/sampling/sampler.h"
#include "sdk/src/tokenizer/tokenizer.h"

namespace hearth {

struct EngineOptions {
  uint32_t n_seq = 0;            // KV slots; 0 = 8
  uint32_t n_ctx = 0;            // positions per slot; 0 = min(model's, 4096)
  uint32_t max_step_tokens = 0;  // tokens per step, all requests; 0 = 256; >= n_seq
  uint32_t n_threads = 0;        // 0 = the model's
  uint32_t max_waiting = 0;      // 0 = 1024
  // Paged KV cache (BatchRunnerOptions::block_size, n_pages): slots take
  // pages of kv_block_size positions from one pool of kv_pages as they grow.
  // A request is admitted when the pool can hold its prompt plus its
  // max_tokens (its whole n_ctx for max_tokens < 0) besides what running
  // requests may still take; the pages of finished requests stay as prefix
  // cache until someone needs them. 0: n_seq fixed slots of n_ctx.
  uint32_t kv_block_size = 0;
  uint32_t kv_pages = 0;
  uint32_t kv_type = 0;  // hearth_kv_type
  std::vector<std::shared_ptr<const Adapter>> adapters;
};

enum class EventKind { kToken = 0, kDone = 1 };

struct RequestEvent {
  uint64_t request = 0;
  EventKind kind = EventKind::kToken;
  std::string_view text;
  int32_t token = -1;
  float logprob = 0.0f;
  absl::Span<const int32_t> top_tokens;
  absl::Span<const float> top_logprobs;
  StopReason finish_reason = StopReason::kMaxTokens;
  absl::Status status;  // kDone: OK or why it failed
  uint32_t n_prompt_tokens = 0, n_cached_tokens = 0, n_generated_tokens = 0;
  double first_token_seconds = 0.0;
};

// Returns false to end the request (DONE follows with kCallback).
using RequestCallback = std::function<bool(const RequestEvent&)>;

struct RequestOptions {
  std::vector<int32_t> prompt;  // ids
  int32_t max_tokens = 256;     // < 0: until the slot is full; 0 is an error
  sampling::SamplerConfig sampling;
  std::vector<std::string> stop;
  std::vector<BatchAdapter> adapters;  // indices into EngineOptions::adapters
  bool logprobs = false;
  uint32_t top_logprobs = 0;  // 0..kMaxTopLogprobs, with logprobs
  RequestCallback on_event;
};

struct EngineStats {
  uint32_t n_waiting = 0, n_running = 0, n_seq = 0;
  uint64_t requests_submitted = 0, requests_finished = 0, requests_cancelled = 0,
           requests_failed = 0;
  uint64_t prompt_tokens = 0, cached_prompt_tokens = 0, generated_tokens = 0, steps = 0;
  uint64_t kv_tokens_used = 0, kv_tokens_capacity = 0;
  double step_seconds = 0.0;
};

class Engine {
 public:
  static constexpr uint32_t kMaxTopLogprobs = 20;

  static absl::StatusOr<std::unique_ptr<Engine>> Create(std::shared_ptr<const Model> model,
                                                        const EngineOptions& options);
  // Stops the thread, then ends every request left (kCancelled) on the
  // calling thread.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Checks everything about the request (an error means no event will
  // come) and queues it. Any thread.
  absl::StatusOr<uint64_t> Submit(RequestOptions request);
  // NOT_FOUND for an unknown or ended id. Any thread.
  absl::Status Cancel(uint64_t id);
  // One step on the calling thread; returns the requests waiting or running
  // afterwards. FAILED_PRECONDITION while the engine's thread runs or
  // another thread is in a step.
  absl::StatusOr<size_t> Step();
  absl::Status Start();
  void Stop();
  EngineStats stats() const;

  const Model& model() const { return runner_->model(); }
  int64_t n_ctx() const { return runner_->n_ctx(); }

 private:
  struct Request {
    uint64_t id = 0;
    RequestOptions options;
    std::unique_ptr<sampling::Sampler> sampler;
    std::unique_ptr<tok::StreamDecoder> decoder;
    std::unique_ptr<StopFilter> filter;
    std::chrono::steady_clock::time_point submitted;
    bool cancel = false;  // under mu_
    int32_t slot = -1;
    int64_t n_done = 0;    // prompt tokens in the cache (cached ones included)
    int64_t n_cached = 0;  // of which reused from the slot's previous request
    int32_t pending = -1;  // sampled, to be fed by the next step
    int32_t n_generated = 0;
    double first_token_seconds = 0.0;
    int64_t reserved_pages = 0;  // paged cache: the most it may take
  };
  // What a slot's cache rows hold: the ids and the adapters they were
  // computed with.
  struct SlotState {
    Request* request = nullptr;  // running request, or none
    std::vector<int32_t> held;
    std::vector<BatchAdapter> adapters;
    uint64_t last_use = 0;
  };

  Engine() = default;
  // Paged cache: pages request `r` may take at most.
  int64_t PagesToReserve(const RequestOptions& r) const;
  // Paged cache: gives back pages of idle slots' prefix caches, least
  // recently used first, until this step's entries fit.
  void MakeRoomForStep();
  absl::StatusOr<size_t> StepLocked();     // with step_mu_ held
  void Admit(std::unique_ptr<Request> r);  // with mu_ held
  // Paged cache, before a chunk of r's prompt (r is running_[order]): takes
  // the longest run of whole pages another slot holds of the prompt (same
  // adapters and scales) instead of computing it; returns true when r
  // should skip this step because a request admitted before it is still
  // computing pages of the same prompt start that r can take next step.
  bool SharePrompt(Request* r, size_t order);
  // Sends DONE and forgets the request (slot freed). Not under mu_.
  void Finish(Request* r, StopReason reason, absl::Status status, std::string_view text);
  // Samples after a step; returns false when the request ended.
  void AfterLogits(Request* r, absl::Span<const float> logits);
  bool Emit(Request* r, const RequestEvent& ev);
  void ThreadMain();

  std::unique_ptr<BatchRunner> runner_;
  uint32_t max_waiting_ = 0;
  int64_t max_step_tokens_ = 0;
  size_t n_adapters_ = 0;

  std::mutex step_mu_;  // one step at a time
  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::deque<std::unique_ptr<Request>> waiting_;
  // Every request submitted and not ended, waiting or running.
  std::unordered_map<uint64_t, Request*> live_;
  std::vector<std::unique_ptr<Request>> running_;  // owned while in a slot
  bool cancel_seen_ = false;
  uint64_t next_id_ = 1;
  EngineStats stats_;
  bool stop_thread_ = false;
  bool thread_running_ = false;
  std::thread thread_;

  // The stepping thread's own state.
  std::vector<SlotState> slots_;
  uint64_t use_clock_ = 0;
  uint64_t step_generated_ = 0;
  int64_t reserved_pages_ = 0;  // paged cache: running requests' reservations
  std::vector<BatchEntry> entries_;
  std::vector<Request*> entry_request_;
  std::vector<int32_t> decode_tokens_;  // one per slot: the fed token's storage
  std::vector<int32_t> running_slots_;  // stats: the running requests' slots
};

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_RUNTIME_ENGINE_H_
