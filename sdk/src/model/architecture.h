// architecture.h — what a model architecture provides to the runtime: read
// its hyper-parameters from GGUF metadata, check that the file holds every
// weight it needs with the right shape, and build the graph of one step.
//
// Architectures are listed in registry.cc (one line each); their code lives
// in one file per family (llama.cc holds llama and qwen2).
#ifndef HEARTH_SDK_SRC_MODEL_ARCHITECTURE_H_
#define HEARTH_SDK_SRC_MODEL_ARCHITECTURE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "hearth/hearth_plugin.h"
#include "sdk/src/common/tables.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/graph/graph.h"
#include "sdk/src/lora/lora_terms.h"

namespace hearth {

// Plain hyper-parameters, named as in the papers and GGUF keys.
struct ModelConfig {
  std::string arch;
  int64_t n_vocab = 0;      // rows of the token embedding
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;     // per head, for q and k
  int64_t head_dim_v = 0;   // per head, for v
  int64_t n_ff = 0;
  int64_t n_ctx_train = 0;
  int64_t n_rot = 0;        // rotated dims per head
  float rope_theta = 10000.0f;
  float rope_freq_scale = 1.0f;
  float rms_eps = 1e-5f;
  int32_t rope_mode = HEARTH_ROPE_NORMAL;
  float attn_scale = 0.0f;  // 0: 1/sqrt(head_dim)
  float embd_scale = 1.0f;  // token embeddings are multiplied by this
  // Interleaved local attention (Gemma 3): layers l with
  // (l + 1) % sliding_window_pattern != 0 attend to the last
  // `sliding_window` positions with RoPE base rope_theta_local.
  int64_t sliding_window = 0;
  int64_t sliding_window_pattern = 0;
  float rope_theta_local = 0.0f;
};

// The model's weights as descriptors (already pointing at backend buffers).
class WeightSet {
 public:
  void Add(std::string name, const hearth_tensor_desc& desc);
  const hearth_tensor_desc* Find(std::string_view name) const;
  // The tensor `name` with exactly the dims `ne` (trailing 1s implied);
  // errors name the tensor and both shapes.
  absl::StatusOr<hearth_tensor_desc> Require(std::string_view name,
                                             std::initializer_list<int64_t> ne) const;
  // Same, but absence is fine (returns dtype COUNT_ sentinel via `present`).
  absl::StatusOr<bool> Optional(std::string_view name, std::initializer_list<int64_t> ne,
                                hearth_tensor_desc* out) const;

 private:
  StringMap<hearth_tensor_desc> by_name_;
};

// Adds each weight to a graph once, however often the graph reads it.
class WeightBinder {
 public:
  WeightBinder(const WeightSet& w, Graph* g) : w_(w), g_(g) {}
  // The graph tensor for weight `name`, or -1 when the file lacks it.
  int operator()(const std::string& name);

 private:
  const WeightSet& w_;
  Graph* g_;
  StringMap<int> bound_;
};

// The KV cache of a step graph: per layer, k and v of [head_dim, n_head_kv,
// n_ctx] for one sequence (a session), or [head_dim, n_head_kv, n_ctx, n_seq]
// for a batch of sequences (slot s = ne[3], as HEARTH_OP_ATTENTION reads it).
struct KvCacheRefs {
  std::vector<hearth_tensor_desc> k, v;
  int64_t n_ctx = 0;
  int64_t n_seq = 1;  // slots; > 1 only with StepBatch::multi_seq graphs
  // Paged (block_size > 0, multi_seq graphs only): k and v are
  // [head_dim, n_head_kv, block_size, n_pages]; an I32 [max_blocks, n_seq]
  // `blocks` input lists each sequence's pages, and n_ctx is
  // max_blocks * block_size.
  int64_t block_size = 0;
  int64_t max_blocks = 0;
  // Training: every ATTENTION node also writes its extra output lse
  // ([n_head, T]), which ATTENTION_BACK needs (sdk/src/train/autograd.h).
  bool with_lse = false;
  // Training: every MUL_MAT reads its activations in float
  // (HEARTH_MUL_MAT_FLOAT_ACTIVATIONS), so the forward is the smooth function
  // the backward differentiates, and a quantized base behaves as its
  // dequantized weights do (QLoRA; parity with PEFT).
  bool float_activations = false;
  // Mixed-precision training: MUL_MATs may also round x and the weights to
  // BF16 (HEARTH_MUL_MAT_BF16; the backward's MUL_MAT_T follows them).
  bool bf16_products = false;

  // The hearth_mul_mat_params flags of the graph's weight products.
  uint32_t mul_mat_flags() const {
    return (float_activations ? HEARTH_MUL_MAT_FLOAT_ACTIVATIONS : 0u) |
           (bf16_products ? HEARTH_MUL_MAT_BF16 : 0u);
  }
};

// The shape of one step graph: how many tokens, whether they come from
// several sequences, and which of them get logits.
struct StepBatch {
  enum class Logits {
    kLast,  // the last token's: [n_vocab, 1]
    kAll,   // every token's: [n_vocab, n_tokens] (scoring, training)
    kRows,  // the n_out tokens an I32 [n_out] `logit_rows` input lists: [n_vocab, n_out]
  };
  int64_t n_tokens = 0;
  // false: every token belongs to the one sequence of a session's cache (the
  // graph has no `seq` input). true: an I32 [n_tokens] `seq` input gives each
  // token's sequence, a slot in [0, kv.n_seq) of the cache.
  bool multi_seq = false;
  Logits logits = Logits::kLast;
  int64_t n_out = 0;  // with kRows, >= 1
};

// Tensors of one step graph the runtime fills or reads.
struct StepTensors {
  int tokens = -1;      // I32 [n_tokens], uploaded before compute
  int positions = -1;   // I32 [n_tokens]: each token's position in its sequence
  int seq = -1;         // I32 [n_tokens]: each token's cache slot (multi_seq only)
  int blocks = -1;      // I32 [max_blocks, n_seq]: each slot's cache pages (paged cache only)
  int logit_rows = -1;  // I32 [n_out]: token rows that get logits (Logits::kRows only)
  int logits = -1;      // F32 [n_vocab, 1 | n_tokens | n_out], as StepBatch::logits says
};

// Helpers the architectures share for the batch inputs: the `tokens`,
// `positions` (and `seq`) inputs of `batch`, after checking that `batch`
// makes sense for `kv`; and the final hidden rows that get logits
// ([n_embd, rows] of x [n_embd, n_tokens]; sets *rows).
absl::Status AddStepInputs(Graph* g, const KvCacheRefs& kv, const StepBatch& batch,
                           StepTensors* io);
int LogitRows(Graph* g, const StepBatch& batch, int x, StepTensors* io, int64_t* rows);

// y = W x (MUL_MAT of weight `name` over x [n_in, T]) plus one
// LORA_MUL_MAT per term `lora` holds for that weight (lora may be null).
// `w` is the graph tensor of the weight (WeightBinder); mul_mat_flags as
// KvCacheRefs::mul_mat_flags() says.
int Project(Graph* g, int w, const std::string& name, const LoraStack* lora, int x, int64_t rows,
            int64_t n_tokens, uint32_t mul_mat_flags = 0);

// The ATTENTION node of a layer over q, k, v ([head_dim(_v), heads, T]),
// the layer's caches and the step's positions (and seq, when io.seq >= 0);
// with kv.with_lse it also writes lse ([n_head, T]).
struct AttentionInputs {
  int q, k, v, k_cache, v_cache;
};
int Attention(Graph* g, const KvCacheRefs& kv, const Shape& out, int64_t n_head, int64_t n_tokens,
              const AttentionInputs& in, const StepTensors& io,
              const hearth_attention_params& params);

class Architecture {
 public:
  virtual ~Architecture() = default;
  virtual absl::Status ReadConfig(const gguf::File& file, ModelConfig* config) const = 0;
  // Every weight the graph will use exists with the right shape and a dtype
  // the graph can use it in; run once at load.
  virtual absl::Status CheckWeights(const ModelConfig& config, const WeightSet& w) const = 0;
  // The graph for one step of `batch` (StepBatch says which tokens, from
  // which sequences, get logits) over the cache `kv`. `lora` (may be null)
  // adds adapter terms beside the projections it names; every projection
  // goes through Project() so any of them can carry one.
  virtual absl::StatusOr<StepTensors> BuildStep(const ModelConfig& config, const WeightSet& w,
                                                const KvCacheRefs& kv, const StepBatch& batch,
                                                const LoraStack* lora, Graph* graph) const = 0;
  // One sequence: a step of `n_tokens` tokens with logits for every token
  // when `all_logits` (scoring, perplexity, training), else for the last one.
  absl::StatusOr<StepTensors> Build(const ModelConfig& config, const WeightSet& w,
                                    const KvCacheRefs& kv, int64_t n_tokens, bool all_logits,
                                    const LoraStack* lora, Graph* graph) const {
    StepBatch batch;
    batch.n_tokens = n_tokens;
    batch.logits = all_logits ? StepBatch::Logits::kAll : StepBatch::Logits::kLast;
    return BuildStep(config, w, kv, batch, lora, graph);
  }
};

// nullptr when no architecture has that name.
const Architecture* FindArchitecture(std::string_view name);
// Names of every registered architecture, for error messages.
std::string ArchitectureNames();

// Factories of the families (one per file), listed in registry.cc.
std::unique_ptr<Architecture> NewLlamaArchitecture(bool qwen2);
std::unique_ptr<Architecture> NewGemma3Architecture();

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_MODEL_ARCHITECTURE_H_
