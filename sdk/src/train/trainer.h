// trainer.h — LoRA fine-tuning of a loaded model on a Dataset: trainable
// F32 A/B pairs beside the chosen projections, the model's own step graph
// with its backward appended (autograd.h), masked cross-entropy on the
// dataset's trained tokens, AdamW with a warmup + linear/cosine schedule,
// global-norm clipping and gradient accumulation. Everything runs as graphs
// on the model's device through the plugin ABI; the base weights (quantized
// ones included) are only read. The result is a PEFT adapter (file or
// in-memory runtime Adapter).
//
// Examples are run one per graph, each on a fresh KV cache (positions from
// 0), padded at the end to a multiple of 16 tokens with masked targets so a
// handful of graph shapes serve every length (causal attention makes the
// padding exact: no real token sees a pad, and pads carry no loss).
#ifndef HEARTH_SDK_SRC_TRAIN_TRAINER_H_
#define HEARTH_SDK_SRC_TRAIN_TRAINER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sdk/src/graph/graph.h"
#include "sdk/src/lora/adapter.h"
#include "sdk/src/runtime/model.h"
#include "sdk/src/train/dataset.h"

namespace hearth::train {

enum class Schedule { kConstant = 0, kLinear = 1, kCosine = 2 };

struct TrainerOptions {
  int64_t rank = 16;
  float alpha = 32;
  bool use_rslora = false;  // scale alpha / sqrt(rank) instead of alpha / rank
  // Projections: q k v o gate up down (also q_proj …, attn_q …), "all".
  std::string targets = "q,k,v,o,gate,up,down";
  float lr = 2e-4f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
  float weight_decay = 0.0f;
  Schedule schedule = Schedule::kLinear;
  int64_t warmup_steps = 0;
  float max_grad_norm = 1.0f;  // 0 = no clipping
  int64_t batch = 1;           // examples per micro-batch
  int64_t grad_accum = 1;      // micro-batches per optimizer step
  int64_t epochs = 1;
  float eval_split = 0.0f;  // fraction of examples held out, [0, 0.5]
  // PEFT's lora_dropout: each LoRA term reads dropout(x) (training only).
  float lora_dropout = 0.0f;
  uint64_t seed = 42;
  uint32_t n_threads = 0;  // 0 = the model's
  // Mixed precision: the base model's products round activations and
  // weights to BF16 (F32 accumulation; LoRA factors, their gradients and
  // AdamW stay F32), as torch's bf16 training does. Several times faster on
  // CPUs with AMX or AVX512-BF16; elsewhere the backend keeps F32.
  bool bf16_products = false;
  std::string hearth_version;  // recorded in the adapter's provenance
  // Start from this adapter (PEFT directory or GGUF LoRA) instead of a fresh
  // init: continue training. It must hold a pair of this rank and scale for
  // every target and no other (trainer_init.cc).
  std::string init_adapter;
};

struct StepMetrics {
  int64_t step = 0;       // optimizer steps done, after this one
  int64_t epoch = 0;      // 0-based epoch this step belongs to
  double loss = 0;        // mean over the step's trained tokens
  double grad_norm = 0;   // before clipping
  double lr = 0;          // the learning rate this step used
  int64_t n_tokens = 0;   // tokens run (padding excluded)
  int64_t n_trained = 0;  // tokens the loss counted
};

// One trainable pair, as the graph reads it (see LoraTerm).
struct TrainTarget {
  std::string weight;  // "blk.3.attn_q.weight"
  int64_t layer = 0;
  std::string projection;  // "attn_q"
  int64_t n_in = 0, n_out = 0;
};

class Trainer {
 public:
  // Splits `examples` into train/eval (seeded), creates A (kaiming-uniform,
  // PEFT's init: U(-1/sqrt(n_in), 1/sqrt(n_in))) and B (zeros) on the
  // model's device, and checks the backend runs every op training needs.
  static absl::StatusOr<std::unique_ptr<Trainer>> Create(std::shared_ptr<const Model> model,
                                                         std::vector<Example> examples,
                                                         const TrainerOptions& options);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // One optimizer step (batch x grad_accum examples, fewer at an epoch's
  // end). OUT_OF_RANGE once every epoch is done.
  absl::StatusOr<StepMetrics> Step();
  bool done() const { return step_ >= total_steps_; }
  int64_t step() const { return step_; }
  int64_t total_steps() const { return total_steps_; }
  int64_t n_train() const { return static_cast<int64_t>(train_.size()); }
  int64_t n_eval() const { return static_cast<int64_t>(eval_.size()); }

  // Mean loss per trained token over the eval split (NaN when empty).
  absl::StatusOr<double> Evaluate();
  // Mean loss per trained token over `examples` with the current adapter.
  absl::StatusOr<double> Loss(const std::vector<Example>& examples);
  // d(mean loss over `examples`)/d(A), d(B^T) for every target, without
  // stepping: grads[i] = {dA ([rank][n_in] row-major), dB^T ([rank][n_out])}.
  // `loss` (may be null) receives that mean loss, computed by the training
  // graphs: with LoRA dropout, under the same masks as the gradients.
  absl::StatusOr<std::vector<std::pair<std::vector<float>, std::vector<float>>>> Gradients(
      const std::vector<Example>& examples, double* loss = nullptr);

  const std::vector<TrainTarget>& targets() const { return targets_; }
  const TrainerOptions& options() const { return options_; }
  float scale() const { return scale_; }
  // A of target i ([rank][n_in]) and B^T ([rank][n_out], outputs in the
  // model's row order) as the device holds them.
  absl::Status GetValues(size_t i, std::vector<float>* a, std::vector<float>* b_t);
  absl::Status SetValues(size_t i, const std::vector<float>& a, const std::vector<float>& b_t);

  // The adapter as PEFT files: adapter_config.json text and the
  // safetensors image (lora_B in PEFT's [n_out, rank], q/k rows back in
  // Hugging Face order on interleaved-RoPE models).
  absl::Status RenderPeft(std::string* config_json, std::vector<uint8_t>* safetensors);
  // Writes `dir` (created if missing) atomically file by file.
  absl::Status SavePeft(const std::string& dir);
  // The same adapter as one GGUF LoRA file (lora/gguf_writer.h); dtype "f32"
  // or "f16".
  absl::Status SaveGguf(const std::string& path, const std::string& dtype);
  // The current adapter, bound to the model and ready for a session.
  absl::StatusOr<std::shared_ptr<Adapter>> MakeAdapter();

  // The PEFT files plus `dir`/hearth-checkpoint.bin: everything a later
  // trainer needs to go on exactly from here (A, B, AdamW m and v, step,
  // epoch, position in the epoch's order), each file written atomically.
  // trainer_checkpoint.cc has the format.
  absl::Status SaveCheckpoint(const std::string& dir);
  // Restores a checkpoint SaveCheckpoint wrote. This trainer must have been
  // made from the same model, data and options (threads aside); a
  // difference is an error naming it, and a damaged file is DATA_LOSS.
  absl::Status Resume(const std::string& dir);

 private:
  struct StepGraph {
    Graph graph;
    int tokens = -1, positions = -1, targets = -1, loss = -1;
    int dropout_offset = -1;  // I32 [2], when training with LoRA dropout
    uint64_t arena_bytes = 0;
  };
  Trainer() = default;
  absl::Status Init(std::vector<Example> examples);
  absl::StatusOr<StepGraph*> GraphFor(int64_t n_tokens, bool backward);
  // Runs one example; adds its summed loss and counts. `visit` tells one
  // pass over an example from another (LoRA dropout's masks).
  absl::Status RunExample(const Example& e, bool backward, double* loss_sum, int64_t* n_trained,
                          int64_t* n_tokens, uint64_t visit = 0);
  absl::Status ZeroGrads();
  absl::StatusOr<double> GradSumSq();
  absl::Status ApplyAdamW(double lr, double grad_scale);
  double LearningRate(int64_t step) const;
  int64_t Padded(int64_t n) const;
  void ShuffleEpoch();
  // The provenance record both writers store (JSON object text).
  std::string ProvenanceJson() const;
  absl::Status InitFromAdapter(const std::string& path);
  // What a checkpoint must agree on to be resumed here: "key=value;" pairs.
  std::string RunSignature() const;

  std::shared_ptr<const Model> model_;
  TrainerOptions options_;
  std::unique_ptr<Backend> backend_;
  std::vector<Example> train_, eval_;
  std::vector<TrainTarget> targets_;
  int64_t rank_ = 0;
  float scale_ = 1;
  int64_t max_len_ = 0;  // padded length of the longest example
  std::string data_hash_;  // provenance: "xxh64:…" of the examples (Init)
  // One buffer: A, B^T, grads, m, v of every target (F32).
  hearth_pbuffer* params_buf_ = nullptr;
  struct Slot {
    hearth_tensor_desc a, b, ga, gb, ma, mb, va, vb;
  };
  std::vector<Slot> slots_;
  uint64_t grads_offset_ = 0, grads_bytes_ = 0;
  hearth_pbuffer* kv_buf_ = nullptr;
  KvCacheRefs kv_;
  hearth_pbuffer* arena_ = nullptr;
  uint64_t arena_bytes_ = 0;
  std::map<std::pair<int64_t, bool>, std::unique_ptr<StepGraph>> graphs_;
  std::unique_ptr<Graph> norm_graph_;
  std::vector<int> norm_outputs_;
  hearth_pbuffer* norm_arena_ = nullptr;
  // Progress.
  int64_t step_ = 0, total_steps_ = 0, steps_per_epoch_ = 0;
  int64_t epoch_ = 0;
  size_t cursor_ = 0;  // next index into order_
  std::vector<size_t> order_;
};

// "q,k,v" → GGUF projections ("attn_q", …) in forward order; errors name
// the unknown entry.
absl::StatusOr<std::vector<std::string>> ParseTargets(const std::string& spec);

}  // namespace hearth::train

#endif  // HEARTH_SDK_SRC_TRAIN_TRAINER_H_
