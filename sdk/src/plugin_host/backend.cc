// backend.cc — hearth::Backend, a context on one device of a backend plugin.
// Every call clears the thread's plugin error slot, calls the vtable, and
// turns the plugin's status plus its set_error message into an absl::Status
// prefixed "<plugin>: <call>". Plugin log lines emitted during a call go to
// the runtime that loaded the plugin.
#include <string>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "sdk/src/common/status.h"
#include "sdk/src/graph/graph.h"
#include "sdk/src/plugin_host/host_services.h"
#include "sdk/src/plugin_host/plugin_host.h"

namespace hearth {
namespace {

using plugin_host_internal::ClearPluginError;
using plugin_host_internal::ScopedLogTarget;

std::string What(const DeviceRef& device, const char* call) {
  return absl::StrCat(device.plugin != nullptr ? device.plugin->name : device.name, ": ", call);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> Backend::Create(const DeviceRef& device,
                                                         uint32_t n_threads) {
  if (device.plugin == nullptr || device.plugin->backend == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("device '", device.name, "' does not belong to a loaded backend plugin"));
  }
  auto backend = absl::WrapUnique(new Backend());
  backend->device_ = device;
  backend->vt_ = device.plugin->backend;

  ScopedLogTarget log_target(device.plugin->host);
  hearth_pcontext_options options{};
  options.struct_size = sizeof(options);
  options.device = device.index;
  options.n_threads = n_threads;
  hearth_pcontext* ctx = nullptr;
  ClearPluginError();
  HEARTH_RETURN_IF_ERROR(TakePluginStatus(backend->vt_->context_create(&options, &ctx),
                                          What(device, "context_create").c_str()));
  if (ctx == nullptr) {
    return absl::InternalError(
        absl::StrCat(What(device, "context_create"), ": returned OK but no context"));
  }
  backend->ctx_ = ctx;
  return backend;
}

Backend::~Backend() {
  if (ctx_ == nullptr) return;
  ScopedLogTarget log_target(device_.plugin->host);
  ClearPluginError();
  vt_->context_free(ctx_);
  ClearPluginError();
}

absl::StatusOr<hearth_pbuffer*> Backend::Alloc(uint64_t size) {
  ScopedLogTarget log_target(device_.plugin->host);
  hearth_pbuffer* buf = nullptr;
  ClearPluginError();
  HEARTH_RETURN_IF_ERROR(
      TakePluginStatus(vt_->buffer_alloc(ctx_, size, &buf), What(device_, "buffer_alloc").c_str()));
  if (buf == nullptr) {
    return absl::InternalError(
        absl::StrCat(What(device_, "buffer_alloc"), ": returned OK but no buffer (", size,
                     " bytes)"));
  }
  RegisterBufferIdentity(buf);
  return buf;
}

void Backend::Free(hearth_pbuffer* buf) {
  if (buf == nullptr) return;
  ForgetBufferIdentity(buf);
  ScopedLogTarget log_target(device_.plugin->host);
  ClearPluginError();
  vt_->buffer_free(ctx_, buf);
  ClearPluginError();
}

absl::StatusOr<hearth_pbuffer*> Backend::WrapOrUpload(const void* ptr, uint64_t size,
                                                      bool* wrapped) {
  ScopedLogTarget log_target(device_.plugin->host);
  *wrapped = false;
  if (HEARTH_PLUGIN_HAS_SLOT(vt_, hearth_backend_vtable, buffer_wrap_host) &&
      vt_->buffer_wrap_host != nullptr) {
    hearth_pbuffer* buf = nullptr;
    ClearPluginError();
    // The plugin only reads through a wrapped buffer of weights; the vtable
    // takes void* because a writable wrap is the general case.
    const absl::Status st =
        TakePluginStatus(vt_->buffer_wrap_host(ctx_, const_cast<void*>(ptr), size, &buf),
                         What(device_, "buffer_wrap_host").c_str());
    if (st.ok() && buf != nullptr) {
      *wrapped = true;
      RegisterBufferIdentity(buf);
      return buf;
    }
    // A backend may refuse some memory (alignment, size); copying still works.
    if (device_.plugin->host != nullptr) {
      device_.plugin->host->Log(
          HEARTH_LOG_DEBUG,
          absl::StrCat(st.ok() ? What(device_, "buffer_wrap_host: no buffer") : st.ToString(),
                       "; copying instead"));
    }
  }
  HEARTH_ASSIGN_OR_RETURN(hearth_pbuffer * buf, Alloc(size));
  absl::Status st = Upload(buf, 0, ptr, size);
  if (!st.ok()) {
    Free(buf);
    return st;
  }
  return buf;
}

absl::Status Backend::Upload(hearth_pbuffer* buf, uint64_t offset, const void* data,
                             uint64_t size) {
  ScopedLogTarget log_target(device_.plugin->host);
  ClearPluginError();
  return TakePluginStatus(vt_->buffer_upload(ctx_, buf, offset, data, size),
                          What(device_, "buffer_upload").c_str());
}

absl::Status Backend::Download(const hearth_pbuffer* buf, uint64_t offset, void* data,
                               uint64_t size) {
  ScopedLogTarget log_target(device_.plugin->host);
  ClearPluginError();
  return TakePluginStatus(vt_->buffer_download(ctx_, buf, offset, data, size),
                          What(device_, "buffer_download").c_str());
}

void* Backend::HostPtr(hearth_pbuffer* buf) {
  if (buf == nullptr || !HEARTH_PLUGIN_HAS_SLOT(vt_, hearth_backend_vtable, buffer_host_ptr) ||
      vt_->buffer_host_ptr == nullptr) {
    return nullptr;
  }
  ScopedLogTarget log_target(device_.plugin->host);
  ClearPluginError();
  void* p = vt_->buffer_host_ptr(ctx_, buf);
  ClearPluginError();
  return p;
}

bool Backend::Supports(const hearth_graph& graph, uint32_t node) {
  ScopedLogTarget log_target(device_.plugin->host);
  ClearPluginError();
  const bool yes = vt_->supports(ctx_, &graph, node) == 1;
  ClearPluginError();
  return yes;
}

absl::Status Backend::Copy(const hearth_pbuffer* src, uint64_t src_offset, hearth_pbuffer* dst,
                           uint64_t dst_offset, uint64_t size) {
  ScopedLogTarget log_target(device_.plugin->host);
  ClearPluginError();
  return TakePluginStatus(vt_->buffer_copy(ctx_, src, src_offset, dst, dst_offset, size),
                          What(device_, "buffer_copy").c_str());
}

bool Backend::CanPlaceWeights() const {
  return HEARTH_PLUGIN_HAS_SLOT(vt_, hearth_backend_vtable, weight_place) &&
         vt_->weight_place != nullptr;
}

absl::StatusOr<hearth_pbuffer*> Backend::PlaceWeight(const hearth_pweight& w, bool* repacked) {
  if (!CanPlaceWeights()) {
    return absl::UnimplementedError(What(device_, "weight_place: the plugin has no such slot"));
  }
  ScopedLogTarget log_target(device_.plugin->host);
  hearth_pbuffer* buf = nullptr;
  uint32_t packed = 0;
  ClearPluginError();
  HEARTH_RETURN_IF_ERROR(TakePluginStatus(
      vt_->weight_place(ctx_, &w, &buf, &packed),
      absl::StrCat(What(device_, "weight_place"), " (", w.name != nullptr ? w.name : "?", ")")
          .c_str()));
  if (buf == nullptr) {
    return absl::InternalError(
        absl::StrCat(What(device_, "weight_place"), " (", w.name, "): returned OK but no buffer"));
  }
  RegisterBufferIdentity(buf);
  *repacked = packed != 0;
  return buf;
}

absl::Status Backend::Compute(const hearth_graph& graph) {
  ScopedLogTarget log_target(device_.plugin->host);
  ClearPluginError();
  return TakePluginStatus(vt_->graph_compute(ctx_, &graph),
                          What(device_, "graph_compute").c_str());
}

}  // namespace hearth
