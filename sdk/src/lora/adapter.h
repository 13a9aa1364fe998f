// adapter.h — a LoRA adapter bound to a loaded model: the parsed file (see
// sdk/src/lora/lora_file.h), checked against the model's architecture
// and weight shapes, with its A and B matrices placed on the model's device.
// Immutable after Load and shared (shared_ptr) by every session using it.
#ifndef HEARTH_SDK_SRC_LORA_ADAPTER_H_
#define HEARTH_SDK_SRC_LORA_ADAPTER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sdk/src/lora/lora_file.h"
#include "sdk/src/model/architecture.h"
#include "sdk/src/runtime/model.h"

namespace hearth {

class Adapter {
 public:
  // Parses `path` and, when `model` is not null, validates it against the
  // model and uploads it. Errors name the file and the tensor. An adapter
  // whose provenance records another base's weights fingerprint is refused,
  // naming both, unless `ignore_base_fingerprint`.
  static absl::StatusOr<std::shared_ptr<Adapter>> Load(std::shared_ptr<const Model> model,
                                                       const std::string& path,
                                                       bool ignore_base_fingerprint = false);
  // A PEFT adapter held in memory (adapter_config.json text and the
  // safetensors image), validated and uploaded as Load does; `name` stands
  // for the path in errors and file().path. The trainer hands out what it
  // trained this way, without a trip through the file system.
  static absl::StatusOr<std::shared_ptr<Adapter>> FromPeftMemory(
      std::shared_ptr<const Model> model, std::string config_json,
      std::vector<uint8_t> safetensors_image, const std::string& name);
  ~Adapter();
  Adapter(const Adapter&) = delete;
  Adapter& operator=(const Adapter&) = delete;

  const LoraFile& file() const { return *file_; }
  // Null for an adapter loaded for inspection only.
  const Model* model() const { return model_.get(); }
  std::shared_ptr<const Model> model_ptr() const { return model_; }

  // Adds every target's term at `scale` times the file's own factor; with
  // `row_scales` >= 0 (a graph's F32 [n_tokens] input, LoraTerm::row_scales)
  // each token's term is further multiplied by its entry there.
  void AddTo(float scale, LoraStack* stack, int row_scales = -1) const;
  // The device tensors of target i (same order as file().targets); only
  // for a bound adapter. B is stored transposed ([n_out, rank]: rank rows
  // of n_out, as LORA_MUL_MAT takes it), its outputs in the model's order.
  const LoraTerm& term(size_t i) const { return terms_[i]; }

 private:
  Adapter() = default;
  // Uploads A and B (laid out by LoraDeviceB) into one device buffer.
  absl::Status Place();

  std::shared_ptr<const Model> model_;
  std::vector<uint8_t> image_;  // FromPeftMemory: the bytes file_ points into
  std::unique_ptr<LoraFile> file_;
  std::unique_ptr<Backend> backend_;  // owns buffer_
  hearth_pbuffer* buffer_ = nullptr;
  std::vector<LoraTerm> terms_;       // scale = the file's factor
};

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_LORA_ADAPTER_H_
