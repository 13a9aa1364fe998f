// convert.cc — hearth_convert and hearth_quantize: model files in, GGUF out
// (sdk/src/convert, sdk/src/quant).
#include <string>

#include "sdk/src/capi/capi_internal.h"
#include "sdk/src/convert/hf_convert.h"
#include "sdk/src/quant/quantize_model.h"

namespace {

hearth::quant::Progress ToProgress(const hearth_convert_params& p) {
  if (p.progress == nullptr && p.progress_bytes == nullptr) return nullptr;
  return [cb = p.progress, cb_bytes = p.progress_bytes, user = p.user_data](
             int64_t index, int64_t count, const std::string& name, uint64_t bytes_done,
             uint64_t bytes_total) {
    if (cb != nullptr &&
        cb(static_cast<size_t>(index), static_cast<size_t>(count), name.c_str(), user) != 0) {
      return false;
    }
    if (cb_bytes == nullptr) return true;
    hearth_convert_progress progress = HEARTH_CONVERT_PROGRESS_INIT;
    progress.index = static_cast<size_t>(index);
    progress.count = static_cast<size_t>(count);
    progress.tensor = name.c_str();
    progress.bytes_done = bytes_done;
    progress.bytes_total = bytes_total;
    return cb_bytes(&progress, user) == 0;
  };
}

}  // namespace

extern "C" {

hearth_error* hearth_convert(const char* hf_dir, const char* out_path,
                             const hearth_convert_params* params) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(hf_dir);
  HEARTH_CAPI_CHECK_NOT_NULL(out_path);
  hearth_convert_params p;
  const hearth_convert_params defaults = HEARTH_CONVERT_PARAMS_INIT;
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::ReadParams(__func__, "params", params, defaults, &p));
  hearth::convert::ConvertOptions options;
  if (p.type != nullptr && p.type[0] != '\0') options.type = p.type;
  options.progress = ToProgress(p);
  return hearth::capi::ToError(hearth::convert::ConvertHfModel(hf_dir, out_path, options));
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_quantize(const char* in_path, const char* out_path,
                              const hearth_convert_params* params) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(in_path);
  HEARTH_CAPI_CHECK_NOT_NULL(out_path);
  hearth_convert_params p;
  const hearth_convert_params defaults = HEARTH_CONVERT_PARAMS_INIT;
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::ReadParams(__func__, "params", params, defaults, &p));
  if (p.type == nullptr || p.type[0] == '\0') {
    return hearth::capi::MakeError(HEARTH_INVALID_ARGUMENT,
                                   "hearth_quantize: params->type is required (e.g. \"q4_k_m\")");
  }
  return hearth::capi::ToError(
      hearth::quant::QuantizeModel(in_path, out_path, p.type, ToProgress(p)));
  HEARTH_CAPI_CATCH_ERROR
}

}  // extern "C"
