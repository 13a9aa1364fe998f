// session.h — one conversation's state on one device: the KV cache, one
// arena for activations, and the step graphs (planned once per batch size
// and reused every step, so decoding allocates nothing).
#ifndef HEARTH_SDK_SRC_RUNTIME_SESSION_H_
#define HEARTH_SDK_SRC_RUNTIME_SESSION_H_

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "sdk/src/graph/graph.h"
#include "sdk/src/lora/adapter.h"
#include "sdk/src/runtime/model.h"

namespace hearth {

struct SessionOptions {
  uint32_t n_ctx = 0;     // 0 = min(model's training context, 4096)
  uint32_t n_batch = 0;   // 0 = 256
  uint32_t n_threads = 0; // 0 = the model's
  uint32_t kv_type = 0;   // hearth_kv_type
};

class Session {
 public:
  static absl::StatusOr<std::unique_ptr<Session>> Create(std::shared_ptr<const Model> model,
                                                         const SessionOptions& options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Appends `tokens` to the context. Bad ids or overflow change nothing.
  // A pending token (see SetPending) is fed first.
  absl::Status Feed(absl::Span<const int32_t> tokens);
  // A sampled token that belongs to the conversation but has not been run
  // yet: generation ends without paying a step for its last token, and the
  // next Feed runs it first. Counted by n_past().
  void SetPending(int32_t token) { pending_ = token; }

  // Feeds `tokens` and scores them: logprobs[i] = log p(tokens[i + 1] |
  // everything before it), natural log, for i < tokens.size() - 1. Computes
  // logits at every position, in chunks small enough that a chunk's logits
  // stay under ~64 MiB.
  absl::Status Score(absl::Span<const int32_t> tokens, float* logprobs);

  // Keeps only the first `n` tokens of the context (n <= n_past()); later
  // KV entries are simply overwritten by what comes next, since attention
  // never reads past a query's own position.
  void TruncateTo(int64_t n);
  // Logits of the last fed token (n_vocab floats); empty before any feed.
  absl::Span<const float> logits() const { return logits_; }
  bool has_logits() const { return has_logits_; }

  // The session's LoRA adapters and their scales; replaces the previous
  // set. Each must be bound to this session's model. A different set (or
  // scale) resets the context, whose KV cache was computed without it, and
  // re-plans the step graphs. On error nothing changes.
  using AdapterSet = std::vector<std::pair<std::shared_ptr<const Adapter>, float>>;
  absl::Status SetAdapters(AdapterSet adapters);
  const AdapterSet& adapters() const { return adapters_; }

  int64_t n_past() const { return n_past_ + (pending_ >= 0 ? 1 : 0); }
  int64_t n_ctx() const { return n_ctx_; }
  void Reset();

  const Model& model() const { return *model_; }
  std::shared_ptr<const Model> model_ptr() const { return model_; }
  // Every token fed so far, in order (for penalties and inspection); a
  // pending token is not included.
  const std::vector<int32_t>& history() const { return history_; }
  // The pending token, or -1.
  int32_t pending() const { return pending_; }

 private:
  struct Step {
    Graph graph;
    StepTensors io;
    uint64_t arena_bytes = 0;
  };
  Session() = default;
  absl::StatusOr<Step*> StepFor(int64_t n_tokens, bool all_logits);
  absl::Status ValidateNew(absl::Span<const int32_t> tokens, size_t first_user,
                           size_t n_user) const;
  // Runs one chunk (t <= n_batch tokens at position n_past_) and advances.
  absl::StatusOr<Step*> RunChunk(const int32_t* tokens, int64_t t, bool all_logits);
  absl::Status FeedSteps(absl::Span<const int32_t> tokens);
  absl::Status ScoreSteps(absl::Span<const int32_t> tokens);
  // What a failed Feed or Score puts back.
  struct Checkpoint {
    int64_t n_past;
    size_t history;
    int32_t pending;
  };
  Checkpoint Save() const;
  void Restore(const Checkpoint& c);

  std::shared_ptr<const Model> model_;
  std::unique_ptr<Backend> backend_;
  int64_t n_ctx_ = 0, n_batch_ = 0;
  hearth_pbuffer* kv_buffer_ = nullptr;
  KvCacheRefs kv_;
  hearth_pbuffer* arena_ = nullptr;
  uint64_t arena_bytes_ = 0;
  std::map<std::pair<int64_t, bool>, std::unique_ptr<Step>> steps_;  // by (n_tokens, all_logits)
  AdapterSet adapters_;
  LoraStack lora_;  // the terms of adapters_, what step graphs are built with
  std::vector<float> logits_;
  std::vector<int32_t> positions_;
  std::vector<int32_t> history_;
  bool has_logits_ = false;
  int32_t pending_ = -1;
  std::vector<int32_t> feed_scratch_;
  std::vector<float> score_scratch_;  // [n_vocab, chunk] logits while scoring
  std::vector<float> logprob_scratch_;  // a Score's results until it succeeded
  std::vector<float> logits_scratch_;   // a Feed's logits until they all arrived
  int64_t n_past_ = 0;
};

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_RUNTIME_SESSION_H_
