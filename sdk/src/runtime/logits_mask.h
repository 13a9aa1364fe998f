// logits_mask.h — the sampler stage that lets an extension plugin constrain
// decoding: before each token is sampled, the plugin's mask_apply marks which
// tokens may come next, and every other token's logit becomes -inf.
//
// The plugin sees the vocabulary as the bytes each token adds to the text
// (Model::PluginVocab) and the tokens generated so far in the request.
#ifndef HEARTH_SDK_SRC_RUNTIME_LOGITS_MASK_H_
#define HEARTH_SDK_SRC_RUNTIME_LOGITS_MASK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "hearth/hearth_plugin.h"
#include "sdk/src/plugin_host/plugin_host.h"

namespace hearth {

class Model;

class LogitsMask {
 public:
  // A mask of the extension plugin named `plugin` (loaded by the model's
  // runtime), configured by `config`. NOT_FOUND lists the extension plugins
  // that offer masks when none by that name does.
  static absl::StatusOr<std::unique_ptr<LogitsMask>> Create(const Model& model,
                                                            const std::string& plugin,
                                                            const std::string& config);
  ~LogitsMask();
  LogitsMask(const LogitsMask&) = delete;
  LogitsMask& operator=(const LogitsMask&) = delete;

  // Sets the logits of tokens the plugin forbids after `generated` to -inf
  // (logits has one entry per vocabulary id). *any_allowed is false when the
  // plugin allowed nothing, in which case generation must end.
  absl::Status Apply(absl::Span<const int32_t> generated, absl::Span<float> logits,
                     bool* any_allowed);

 private:
  LogitsMask() = default;
  const LoadedPlugin* plugin_ = nullptr;
  hearth_pmask* mask_ = nullptr;
  std::vector<uint8_t> allowed_;
};

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_RUNTIME_LOGITS_MASK_H_
