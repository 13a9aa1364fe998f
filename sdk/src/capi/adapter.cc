// adapter.cc — hearth_adapter_* and hearth_session_set_adapters of the C ABI.
#include <algorithm>
#include <string>
#include <utility>

#include "hearth/hearth.h"
#include "sdk/src/capi/capi_internal.h"
#include "sdk/src/capi/handles.h"
#include "sdk/src/lora/merge.h"

namespace {

// The (adapter, scale) list of a C call; scales may be NULL (1.0 each).
hearth_error* ReadAdapterSet(const char* func, const hearth_adapter* const* adapters,
                             const float* scales, size_t n, hearth::Session::AdapterSet* set) {
  for (size_t i = 0; i < n; ++i) {
    if (adapters[i] == nullptr) {
      return hearth::capi::MakeError(HEARTH_INVALID_ARGUMENT, std::string(func) + ": adapters[" +
                                                                  std::to_string(i) + "] is NULL");
    }
    set->emplace_back(adapters[i]->adapter, scales ? scales[i] : 1.0f);
  }
  return nullptr;
}

}  // namespace

extern "C" {

hearth_error* hearth_adapter_load(hearth_model* model, const char* path,
                                  const hearth_adapter_params* params, hearth_adapter** out) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(path);
  HEARTH_CAPI_CHECK_NOT_NULL(out);
  if (model != nullptr) HEARTH_CAPI_CHECK_OWNER(model);
  hearth_adapter_params p;
  const hearth_adapter_params defaults = HEARTH_ADAPTER_PARAMS_INIT;
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::ReadParams(__func__, "params", params, defaults, &p));
  std::shared_ptr<const hearth::Model> m;
  if (model != nullptr) m = model->model;
  auto a = hearth::Adapter::Load(std::move(m), path, p.ignore_base_fingerprint != 0);
  if (!a.ok()) return hearth::capi::ToError(a.status());
  auto handle = std::make_unique<hearth_adapter>();
  handle->adapter = std::move(a).value();
  const hearth::Adapter& ad = *handle->adapter;
  handle->base_architecture = !ad.file().base_arch.empty() ? ad.file().base_arch
                              : ad.model()                 ? ad.model()->config().arch
                                                           : std::string();
  *out = handle.release();
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

void hearth_adapter_free(hearth_adapter* adapter) { hearth::capi::FreeHandle(adapter); }

hearth_error* hearth_adapter_get_info(const hearth_adapter* adapter, hearth_adapter_info* out) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(adapter);
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::CheckOutStruct(__func__, "out", out));
  const hearth::LoraFile& f = adapter->adapter->file();
  hearth_adapter_info full = HEARTH_ADAPTER_INFO_INIT;
  full.format = f.format == hearth::LoraFormat::kPeft ? HEARTH_ADAPTER_PEFT : HEARTH_ADAPTER_GGUF;
  full.path = f.path.c_str();
  full.base_architecture = adapter->base_architecture.c_str();
  full.base_model = f.base_model.c_str();
  int64_t rank = 0;  // largest over targets (rank_pattern may raise some)
  for (const hearth::LoraTarget& t : f.targets) rank = std::max(rank, t.rank);
  full.rank = static_cast<uint32_t>(rank);
  full.alpha = f.alpha;
  full.use_rslora = f.use_rslora ? 1 : 0;
  full.n_targets = static_cast<uint32_t>(f.targets.size());
  full.n_params = f.n_params;
  full.bound = adapter->adapter->model() != nullptr ? 1 : 0;
  full.provenance = f.provenance.c_str();
  hearth::capi::WriteOutStruct(full, out);
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_adapter_get_target(const hearth_adapter* adapter, size_t index,
                                        hearth_adapter_target* out) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(adapter);
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::CheckOutStruct(__func__, "out", out));
  const hearth::LoraFile& f = adapter->adapter->file();
  if (index >= f.targets.size()) {
    return hearth::capi::MakeError(
        HEARTH_OUT_OF_RANGE, "hearth_adapter_get_target: index " + std::to_string(index) +
                                 " is past the adapter's " + std::to_string(f.targets.size()) +
                                 " targets");
  }
  const hearth::LoraTarget& t = f.targets[index];
  hearth_adapter_target full = HEARTH_ADAPTER_TARGET_INIT;
  full.weight = t.weight.c_str();
  full.source = t.source_module.c_str();
  full.rank = static_cast<uint32_t>(t.rank);
  full.scale = t.scale;
  full.n_in = t.a.ne[0];
  full.n_out = t.b.ne[1];
  hearth::capi::WriteOutStruct(full, out);
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_session_set_adapters(hearth_session* session,
                                          const hearth_adapter* const* adapters,
                                          const float* scales, size_t n) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(session);
  HEARTH_CAPI_CHECK_OWNER(session);
  if (adapters == nullptr && n > 0) return hearth::capi::NullArgumentError(__func__, "adapters");
  hearth::Session::AdapterSet set;
  HEARTH_CAPI_RETURN_IF_ERROR(ReadAdapterSet(__func__, adapters, scales, n, &set));
  return hearth::capi::ToError(session->session->SetAdapters(std::move(set)));
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_model_export_merged(const hearth_model* model,
                                         const hearth_adapter* const* adapters,
                                         const float* scales, size_t n, const char* path,
                                         const hearth_export_params* params) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(model);
  HEARTH_CAPI_CHECK_NOT_NULL(path);
  if (adapters == nullptr && n > 0) return hearth::capi::NullArgumentError(__func__, "adapters");
  hearth_export_params p;
  const hearth_export_params defaults = HEARTH_EXPORT_PARAMS_INIT;
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::ReadParams(__func__, "params", params, defaults, &p));
  hearth::Session::AdapterSet set;
  HEARTH_CAPI_RETURN_IF_ERROR(ReadAdapterSet(__func__, adapters, scales, n, &set));
  return hearth::capi::ToError(hearth::ExportMerged(
      *model->model, set, path, p.merged_type ? std::string(p.merged_type) : std::string()));
  HEARTH_CAPI_CATCH_ERROR
}

}  // extern "C"
