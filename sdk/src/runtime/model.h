// model.h — a loaded model: the mapped GGUF file, its tokenizer, its
// architecture and hyper-parameters, and its weights placed on one device.
// Immutable after Load; shared (shared_ptr) by every session made from it.
#ifndef HEARTH_SDK_SRC_RUNTIME_MODEL_H_
#define HEARTH_SDK_SRC_RUNTIME_MODEL_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "absl/status/statusor.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/model/architecture.h"
#include "sdk/src/plugin_host/plugin_host.h"
#include "sdk/src/tokenizer/tokenizer.h"

namespace hearth {

struct ModelLoadOptions {
  std::string device;      // "" = best device
  uint32_t n_threads = 0;  // 0 = all cores
};

class Model {
 public:
  static absl::StatusOr<std::shared_ptr<Model>> Load(std::shared_ptr<PluginHost> host,
                                                     const std::string& path,
                                                     const ModelLoadOptions& options);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const gguf::File& file() const { return *file_; }
  const tok::Tokenizer& tokenizer() const { return *tokenizer_; }
  const ModelConfig& config() const { return config_; }
  const Architecture& architecture() const { return *arch_; }
  const WeightSet& weights() const { return weights_; }
  const DeviceRef& device() const { return device_; }
  uint32_t n_threads() const { return n_threads_; }

  // Descriptive facts for hearth_model_info / `hearth info`.
  const std::string& name() const { return name_; }
  const std::string& quantization() const { return quantization_; }
  const std::string& tokenizer_description() const { return tokenizer_desc_; }
  uint64_t n_params() const { return n_params_; }
  // Bytes of weights a decode step reads (all tensors but the embedding
  // table, from which one row per token is gathered).
  uint64_t decode_weight_bytes() const { return decode_weight_bytes_; }
  // A metadata value rendered as text (cached; "" never means absent).
  const std::string* Meta(const std::string& key) const;
  // format::WeightsFingerprint of the file ("xxh64:…"), computed on first
  // use (reads every weight byte once: ~0.7 s for 2.5 GB of F16 weights)
  // and cached. Adapter provenance records and checks it.
  const std::string& fingerprint() const;
  // The runtime's plugins (extension plugins serve logits masks).
  const PluginHost& plugin_host() const { return *host_; }
  // The vocabulary as extension plugins see it (hearth_plugin.h): the bytes
  // each token adds to generated text. Built on first use; lives as long as
  // the model; safe to call from any thread.
  const hearth_pvocab& PluginVocab() const;

  // OK when `backend` (a context on this model's device) supports every
  // node of a one-token step graph with `lora` (may be null) attached; else
  // UNIMPLEMENTED naming the op.
  absl::Status CheckBackendSupport(Backend& backend, const LoraStack* lora) const;

 private:
  Model() = default;
  absl::Status PlaceWeights();
  void Describe();

  std::shared_ptr<PluginHost> host_;
  std::unique_ptr<gguf::File> file_;
  std::unique_ptr<tok::Tokenizer> tokenizer_;
  const Architecture* arch_ = nullptr;
  ModelConfig config_;
  DeviceRef device_;
  uint32_t n_threads_ = 0;
  std::unique_ptr<Backend> loader_;  // owns the weight buffer
  hearth_pbuffer* weight_buffer_ = nullptr;      // the whole file, when not placed per tensor
  std::vector<hearth_pbuffer*> placed_weights_;  // one per tensor (weight_place)
  WeightSet weights_;
  std::string name_, quantization_, tokenizer_desc_;
  struct VocabView {
    std::string text;
    std::vector<uint64_t> offsets;
    std::vector<uint8_t> is_control;
    hearth_pvocab view{};
  };
  mutable std::once_flag fingerprint_once_;
  mutable std::string fingerprint_;
  mutable std::once_flag vocab_once_;
  mutable std::unique_ptr<VocabView> vocab_view_;
  uint64_t n_params_ = 0, decode_weight_bytes_ = 0;
  // std containers: an allocation that throws leaves them intact (one
  // corrupts an Abseil hash table), and std::mutex never allocates (an
  // absl::Mutex may, and aborts if it cannot). docs/reliability.md,
  // "Out of memory".
  mutable std::unordered_map<std::string, std::string> meta_text_;  // stable addresses
  mutable std::mutex meta_mu_;
};

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_RUNTIME_MODEL_H_
