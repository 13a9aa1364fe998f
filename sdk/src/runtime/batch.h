// batch.h — one step graph over several sequences of one model: a KV cache
// with a slot per sequence, and steps that advance any of them together
// (prompt chunks and single decode tokens alike), each row of the batch with
// its own LoRA adapters and scales. The foundation of the engine of issue 14:
// the engine schedules requests onto slots; the runner only computes.
//
// Graph layout (sdk/src/model/architecture.h, StepBatch): the T tokens of a
// step are the entries' tokens one after another; I32 inputs tokens[T],
// positions[T] (each token's position in its sequence) and seq[T] (its slot);
// the cache per layer is [head_dim, n_head_kv, n_ctx, n_seq]; logits come
// for the rows an I32 logit_rows[n_out] input lists (the last token of each
// entry that asks), [n_vocab, n_out]. Each adapter a step uses adds its
// LORA_MUL_MAT terms with an F32 [T] per-token scales input (0 on the rows
// of entries without it). Graphs are planned once per (T, n_out, adapters
// used) and kept; the arena only grows. One thread at a time per runner;
// runners (and sessions) of one model may run on different threads.
#ifndef HEARTH_SDK_SRC_RUNTIME_BATCH_H_
#define HEARTH_SDK_SRC_RUNTIME_BATCH_H_

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "sdk/src/graph/graph.h"
#include "sdk/src/lora/adapter.h"
#include "sdk/src/runtime/model.h"

namespace hearth {

struct BatchRunnerOptions {
  uint32_t n_seq = 1;       // sequences (KV cache slots), 1..256
  uint32_t n_ctx = 0;       // positions per slot; 0 = min(model's training context, 4096)
  uint32_t max_tokens = 0;  // tokens one step may carry, all entries together; 0 = 512
  uint32_t n_threads = 0;   // 0 = the model's
  // Paged KV cache: block_size > 0 gives every slot pages of block_size
  // positions from one pool of n_pages (0 = as many as n_seq full slots
  // need), taken as a slot grows and given back when it is reset or
  // rewound, so sequences of any length share one budget. n_ctx (a slot's
  // most) is rounded down to a multiple of block_size. 0: a fixed n_ctx per slot.
  uint32_t block_size = 0;
  uint32_t n_pages = 0;
  uint32_t kv_type = 0;  // hearth_kv_type of the cache
  // The adapters rows may use, by index (BatchAdapter::index); each must be
  // bound to this model. At most 64.
  std::vector<std::shared_ptr<const Adapter>> adapters;
};

// One adapter of an entry: index into BatchRunnerOptions::adapters and the
// user's scale (as Session::SetAdapters takes it).
struct BatchAdapter {
  uint32_t index = 0;
  float scale = 1.0f;
};

// One sequence's part of a step.
struct BatchEntry {
  int32_t slot = 0;                  // [0, n_seq); at most once per step
  absl::Span<const int32_t> tokens;  // at least one
  // Position of tokens[0] in the sequence, at most the slot's n_past(): the
  // slot keeps its first `start` tokens and drops any after them (a
  // rewind), so positions always follow each other.
  int64_t start = 0;
  bool want_logits = false;                 // logits of the entry's last token
  absl::Span<const BatchAdapter> adapters;  // empty: the base model
};

class BatchRunner {
 public:
  static absl::StatusOr<std::unique_ptr<BatchRunner>> Create(std::shared_ptr<const Model> model,
                                                             const BatchRunnerOptions& options);
  ~BatchRunner();
  BatchRunner(const BatchRunner&) = delete;
  BatchRunner& operator=(const BatchRunner&) = delete;

  // Runs `entries` as one graph. Input errors (a slot out of range or
  // repeated, a start past the slot's tokens, a position past n_ctx, a bad
  // token id or adapter, too few free pages) are found before anything runs
  // and change nothing; a device error leaves every slot's n_past as it was.
  absl::Status Step(absl::Span<const BatchEntry> entries);
  // Logits (n_vocab floats) of entry `i` of the last successful Step; empty
  // when it did not ask for them or the last Step failed.
  absl::Span<const float> logits(size_t i) const;

  // Tokens slot `slot` holds (0 for a slot out of range).
  int64_t n_past(int32_t slot) const;
  // Forgets a slot's tokens (its cache rows are overwritten by what comes
  // next; a paged slot gives its pages back).
  void ResetSlot(int32_t slot);

  // Paged cache: slot `slot` forgets its tokens and holds instead the first
  // `n_pages` pages of slot `from` (which must hold that many full pages):
  // the two slots read the same KV rows for positions [0, n_pages *
  // block_size) and `slot` goes on from there. Pages are counted by
  // reference and go back to the pool when no slot holds them. A shared
  // page is never written: a step that would write into one (an entry
  // whose start falls inside a page another slot holds) is refused, so a
  // rewind onto a shared prefix must start at a page boundary (see
  // WritesSharedPage). Changes nothing on error.
  absl::Status SharePrefix(int32_t slot, int32_t from, int64_t n_pages);
  // Whether an entry of `slot` starting at position `start` would write
  // into a page that another slot also holds.
  bool WritesSharedPage(int32_t slot, int64_t start) const;
  // Pages that ResetSlot(slot) would give back to the pool (those no other
  // slot holds).
  int64_t ReleasablePages(int32_t slot) const;
  // Positions the given slots (in range, each once) hold, a shared page's
  // counted once: the KV cache they occupy.
  int64_t HeldPositions(absl::Span<const int32_t> slots) const;

  // Paged cache (0 when not paged): positions per page, pages in all, pages
  // free, pages a slot holds, and the pages n positions take.
  int64_t block_size() const { return block_size_; }
  int64_t n_pages() const { return n_pages_; }
  int64_t free_pages() const { return static_cast<int64_t>(free_pages_.size()); }
  int64_t slot_pages(int32_t slot) const;
  // Pages `entries` (slots in range) need beyond what their slots keep, and
  // those available to them: the free pool plus what their rewinds give back.
  // Step refuses a step whose need is above what is available.
  void StepPages(absl::Span<const BatchEntry> entries, int64_t* need, int64_t* available) const;
  int64_t PagesFor(int64_t n) const {
    return block_size_ ? (n + block_size_ - 1) / block_size_ : 0;
  }

  int64_t n_seq() const { return n_seq_; }
  int64_t n_ctx() const { return n_ctx_; }
  int64_t max_tokens() const { return max_tokens_; }
  const Model& model() const { return *model_; }

 private:
  struct StepGraph {
    Graph graph;
    StepTensors io;
    std::vector<std::pair<uint32_t, int>> row_scales;  // (adapter, F32 [T] input)
    uint64_t last_use = 0;
  };
  using Key = std::tuple<int64_t, int64_t, uint64_t>;  // (T, n_out, adapters used)
  BatchRunner() = default;
  absl::Status Validate(absl::Span<const BatchEntry> entries, int64_t* n_tokens, int64_t* n_out,
                        uint64_t* adapters_used);
  absl::StatusOr<StepGraph*> StepFor(int64_t n_tokens, int64_t n_out, uint64_t adapters_used);
  absl::Status Run(StepGraph* step, absl::Span<const BatchEntry> entries, int64_t n_tokens,
                   int64_t n_out);
  // Paged cache: the pages of `slot` an entry starting at `start` keeps (the
  // rest it drops), and dropping one reference to page `p` (back to the pool
  // at the last one).
  size_t KeptPages(int32_t slot, int64_t start) const;
  void ReleasePage(int32_t p);

  std::shared_ptr<const Model> model_;
  std::unique_ptr<Backend> backend_;
  std::vector<std::shared_ptr<const Adapter>> adapters_;
  int64_t n_seq_ = 0, n_ctx_ = 0, max_tokens_ = 0;
  hearth_pbuffer* kv_buffer_ = nullptr;
  KvCacheRefs kv_;
  hearth_pbuffer* arena_ = nullptr;
  uint64_t arena_bytes_ = 0;
  std::map<Key, std::unique_ptr<StepGraph>> steps_;
  uint64_t use_clock_ = 0;
  std::vector<int64_t> n_past_;  // per slot
  // Paged cache: each slot's pages in order, the slots holding each page,
  // the free pool, and the [max_blocks, n_seq] table the graph reads
  // (unused entries 0).
  int64_t block_size_ = 0, n_pages_ = 0, max_blocks_ = 0;
  std::vector<std::vector<int32_t>> pages_;
  std::vector<int32_t> page_refs_;
  // Per-page counts of StepPages and HeldPositions, all 0 between calls.
  mutable std::vector<int32_t> page_count_;
  std::vector<int32_t> free_pages_;
  std::vector<int32_t> blocks_;
  // Host staging, sized at Create so a step allocates nothing.
  std::vector<int32_t> tokens_, positions_, seq_, logit_rows_;
  std::vector<float> scales_;       // [T] of one adapter
  std::vector<float> logits_;       // [n_vocab, n_seq]: rows of the last step
  std::vector<float> logits_next_;  // a step's logits until they all arrived
  std::vector<int64_t> entry_row_;  // per entry of the last step: its logits row or -1
  std::vector<uint8_t> slot_seen_;  // Validate: slots already in the step
};

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_RUNTIME_BATCH_H_
