// runtime.cc — the version queries and the hearth_runtime entry points:
// creating a runtime (plugin discovery through hearth::PluginHost) and
// listing its plugins and devices.
#include <cstddef>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sdk/src/capi/capi_internal.h"

#ifndef HEARTH_VERSION_STRING
#error "HEARTH_VERSION_STRING must be defined by the build (sdk/CMakeLists.txt)"
#endif

namespace {

// Info structs point into the host's std::strings, which live as long as
// the runtime; NULL only where hearth.h says so (load_error).
const char* Borrow(const std::string& s) { return s.c_str(); }

}  // namespace

extern "C" {

uint32_t hearth_abi_version(void) {
  return (static_cast<uint32_t>(HEARTH_ABI_VERSION_MAJOR) << 16) |
         static_cast<uint32_t>(HEARTH_ABI_VERSION_MINOR);
}

const char* hearth_version_string(void) { return HEARTH_VERSION_STRING; }

hearth_error* hearth_runtime_create(const hearth_runtime_params* params, hearth_runtime** out) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(out);
  const hearth_runtime_params defaults = HEARTH_RUNTIME_PARAMS_INIT;
  hearth_runtime_params p;
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::ReadParams(__func__, "params", params, defaults, &p));
  if (p.log_level < HEARTH_LOG_ERROR || p.log_level > HEARTH_LOG_DEBUG) {
    return hearth::capi::MakeError(
        HEARTH_INVALID_ARGUMENT,
        absl::StrCat(__func__, ": params->log_level is ", p.log_level,
                     "; expected 0 (error), 1 (warn), 2 (info) or 3 (debug)"));
  }
  if (p.explicit_only > 1) {
    return hearth::capi::MakeError(
        HEARTH_INVALID_ARGUMENT,
        absl::StrCat(__func__, ": params->explicit_only is ", p.explicit_only, "; expected 0 or 1"));
  }

  hearth::PluginHostOptions options;
  if (p.plugin_path != nullptr) {
    for (absl::string_view entry : absl::StrSplit(p.plugin_path, ':', absl::SkipEmpty())) {
      options.explicit_paths.emplace_back(entry);
    }
  }
  options.explicit_only = p.explicit_only != 0;
  options.log_level = p.log_level;
  options.log = p.log;
  options.log_user_data = p.log_user_data;

  auto host = hearth::PluginHost::Create(options);
  if (!host.ok()) return hearth::capi::ToError(host.status());
  auto* rt = new hearth_runtime;
  rt->host = std::move(*host);
  *out = rt;
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

void hearth_runtime_free(hearth_runtime* rt) {
  HEARTH_CAPI_TRY
  hearth::capi::FreeHandle(rt);
  HEARTH_CAPI_CATCH_RETURN()
}

size_t hearth_runtime_plugin_count(const hearth_runtime* rt) {
  return rt == nullptr ? 0 : rt->host->plugins().size();
}

hearth_error* hearth_runtime_plugin_info(const hearth_runtime* rt, size_t index,
                                         hearth_plugin_info* out) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(rt);
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::CheckOutStruct(__func__, "out", out));
  const auto& plugins = rt->host->plugins();
  if (index >= plugins.size()) {
    return hearth::capi::MakeError(
        HEARTH_OUT_OF_RANGE, absl::StrCat(__func__, ": index ", index, " is out of range (the runtime has ",
                                          plugins.size(), " plugins)"));
  }
  const hearth::LoadedPlugin& lp = plugins[index];
  hearth_plugin_info info = HEARTH_PLUGIN_INFO_INIT;
  info.name = Borrow(lp.name);
  info.path = Borrow(lp.path);
  info.version = Borrow(lp.version);
  info.abi_major = lp.abi_major;
  info.abi_minor = lp.abi_minor;
  info.probe_score = lp.probe_score;
  info.load_error = lp.load_error.empty() ? nullptr : Borrow(lp.load_error);
  info.probe_reason = lp.probe_reason.empty() ? nullptr : Borrow(lp.probe_reason);
  hearth::capi::WriteOutStruct(info, out);
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

size_t hearth_runtime_device_count(const hearth_runtime* rt) {
  return rt == nullptr ? 0 : rt->host->devices().size();
}

hearth_error* hearth_runtime_device_info(const hearth_runtime* rt, size_t index,
                                         hearth_device_info* out) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(rt);
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::CheckOutStruct(__func__, "out", out));
  const auto& devices = rt->host->devices();
  if (index >= devices.size()) {
    return hearth::capi::MakeError(
        HEARTH_OUT_OF_RANGE, absl::StrCat(__func__, ": index ", index, " is out of range (the runtime has ",
                                          devices.size(), " devices)"));
  }
  const hearth::DeviceRef& d = devices[index];
  hearth_device_info info = HEARTH_DEVICE_INFO_INIT;
  info.name = Borrow(d.name);
  info.plugin = Borrow(d.plugin->name);
  info.vendor = Borrow(d.vendor);
  info.description = Borrow(d.description);
  info.memory_total = d.memory_total;
  info.memory_free = d.memory_free;
  info.arch = Borrow(d.arch);
  info.simd_width = d.simd_width;
  info.compute_units = d.compute_units;
  hearth::capi::WriteOutStruct(info, out);
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

}  // extern "C"
