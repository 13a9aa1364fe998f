// logits_mask.cc — the logits-mask sampler stage over an extension plugin.
#include "sdk/src/runtime/logits_mask.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sdk/src/common/status.h"
#include "sdk/src/plugin_host/host_services.h"
#include "sdk/src/runtime/model.h"

namespace hearth {
namespace {

bool OffersMasks(const LoadedPlugin& p) {
  const hearth_extension_vtable* vt = p.extension;
  return vt != nullptr && HEARTH_PLUGIN_HAS_SLOT(vt, hearth_extension_vtable, mask_apply) &&
         vt->mask_create != nullptr && vt->mask_free != nullptr && vt->mask_apply != nullptr;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LogitsMask>> LogitsMask::Create(const Model& model,
                                                               const std::string& plugin,
                                                               const std::string& config) {
  const PluginHost& host = model.plugin_host();
  const LoadedPlugin* found = nullptr;
  std::vector<std::string> offered;
  for (const LoadedPlugin& p : host.plugins()) {
    if (!OffersMasks(p)) continue;
    offered.push_back(p.name);
    if (p.name == plugin) found = &p;
  }
  if (found == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "constraint plugin '", plugin, "' is not loaded; extension plugins with logits masks: ",
        offered.empty() ? "none" : absl::StrJoin(offered, ", "),
        " (plugins are looked for in the runtime's plugin path, HEARTH_PLUGIN_PATH and "
        "<libdir>/hearth/plugins)"));
  }
  auto mask = absl::WrapUnique(new LogitsMask());
  mask->plugin_ = found;
  mask->allowed_.resize(static_cast<size_t>(model.tokenizer().n_vocab()));
  plugin_host_internal::ScopedLogTarget log_target(found->host);
  plugin_host_internal::ClearPluginError();
  hearth_pmask* state = nullptr;
  HEARTH_RETURN_IF_ERROR(
      TakePluginStatus(found->extension->mask_create(config.c_str(), &model.PluginVocab(), &state),
                       absl::StrCat(found->name, ": mask_create").c_str()));
  if (state == nullptr) {
    return absl::InternalError(absl::StrCat(found->name, ": mask_create returned OK but no mask"));
  }
  mask->mask_ = state;
  return mask;
}

LogitsMask::~LogitsMask() {
  if (mask_ == nullptr) return;
  plugin_host_internal::ScopedLogTarget log_target(plugin_->host);
  plugin_host_internal::ClearPluginError();
  plugin_->extension->mask_free(mask_);
  plugin_host_internal::ClearPluginError();
}

absl::Status LogitsMask::Apply(absl::Span<const int32_t> generated, absl::Span<float> logits,
                               bool* any_allowed) {
  const size_t n = std::min(logits.size(), allowed_.size());
  std::fill(allowed_.begin(), allowed_.end(), uint8_t{1});
  plugin_host_internal::ScopedLogTarget log_target(plugin_->host);
  plugin_host_internal::ClearPluginError();
  HEARTH_RETURN_IF_ERROR(TakePluginStatus(
      plugin_->extension->mask_apply(mask_, generated.data(),
                                     static_cast<uint32_t>(generated.size()), allowed_.data(),
                                     static_cast<uint32_t>(allowed_.size())),
      absl::StrCat(plugin_->name, ": mask_apply").c_str()));
  bool any = false;
  for (size_t i = 0; i < n; ++i) {
    if (allowed_[i] == 0) {
      logits[i] = -std::numeric_limits<float>::infinity();
    } else if (std::isfinite(logits[i])) {
      any = true;
    }
  }
  *any_allowed = any;
  return absl::OkStatus();
}

}  // namespace hearth
