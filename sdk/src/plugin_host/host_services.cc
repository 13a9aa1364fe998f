// host_services.cc — the host services a plugin calls (set_error, log,
// alloc, free), the thread-local error slot, log routing, and
// TakePluginStatus, which turns a plugin's status code plus its recorded
// message into an absl::Status.
#include "sdk/src/plugin_host/host_services.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sdk/src/plugin_host/plugin_host.h"

namespace hearth {
namespace plugin_host_internal {
namespace {

// A plugin message longer than this is cut: it is meant for a human.
constexpr size_t kMaxMessageBytes = 64 * 1024;

// The ctx of one services table. `label` is guarded by RegistryMutex().
struct PluginCtx {
  std::string label;
  hearth_host_services services{};
};

struct ErrorSlot {
  bool set = false;
  hearth_pstatus code = HEARTH_P_OK;
  std::string message;
};

thread_local ErrorSlot t_error;
thread_local const PluginHost* t_log_target = nullptr;

std::mutex& RegistryMutex() {
  static std::mutex* mu = new std::mutex;  // leaked: used until the process ends
  return *mu;
}
// Guarded by RegistryMutex(). Values are leaked on purpose (see the header).
std::map<std::string, PluginCtx*>& CtxByPath() {
  static auto* m = new std::map<std::string, PluginCtx*>;
  return *m;
}
std::vector<const PluginHost*>& LiveHosts() {
  static auto* v = new std::vector<const PluginHost*>;
  return *v;
}

std::string Clip(const char* message) {
  if (message == nullptr) return "(no message)";
  std::string s(message, strnlen(message, kMaxMessageBytes));
  return s;
}

void SetError(void* /*ctx*/, hearth_pstatus code, const char* message) {
  try {
    t_error.set = true;
    t_error.code = code;
    t_error.message = Clip(message);
  } catch (...) {
    // Out of memory while recording an error: the status code still arrives.
    t_error.message.clear();
  }
}

void Log(void* ctx, int level, const char* message) {
  // Out-of-range levels from a plugin are read as the nearest real one.
  if (level < HEARTH_LOG_ERROR) level = HEARTH_LOG_ERROR;
  if (level > HEARTH_LOG_DEBUG) level = HEARTH_LOG_DEBUG;
  try {
    std::string line;
    std::unique_lock<std::mutex> lock(RegistryMutex());
    const auto* plugin = static_cast<const PluginCtx*>(ctx);
    line = absl::StrCat(plugin != nullptr ? plugin->label : std::string("plugin"), ": ",
                        Clip(message));
    if (t_log_target != nullptr) {
      // The host is alive: it is calling into the plugin on this thread.
      lock.unlock();
      t_log_target->Log(level, line);
      return;
    }
    // Held while calling out, so the host cannot be destroyed meanwhile.
    if (!LiveHosts().empty()) {
      LiveHosts().back()->Log(level, line);
      return;
    }
    lock.unlock();
    if (level <= HEARTH_LOG_WARN) std::fprintf(stderr, "hearth: %s\n", line.c_str());
  } catch (...) {
    // A log line is not worth failing the plugin's call for.
  }
}

void* Alloc(void* /*ctx*/, size_t size, size_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) return nullptr;
  // No object may be larger than PTRDIFF_MAX; refusing here also keeps
  // sanitizer runtimes from aborting on an absurd size.
  if (size > static_cast<size_t>(PTRDIFF_MAX)) return nullptr;
  if (alignment < sizeof(void*)) alignment = sizeof(void*);
  void* p = nullptr;
  if (posix_memalign(&p, alignment, size == 0 ? 1 : size) != 0) return nullptr;
  return p;
}

void Free(void* /*ctx*/, void* ptr) { std::free(ptr); }

void FillTable(PluginCtx* ctx) {
  ctx->services.struct_size = sizeof(hearth_host_services);
  ctx->services.ctx = ctx;
  ctx->services.set_error = &SetError;
  ctx->services.log = &Log;
  ctx->services.alloc = &Alloc;
  ctx->services.free = &Free;
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

const hearth_host_services* ServicesForPlugin(const std::string& real_path) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  PluginCtx*& ctx = CtxByPath()[real_path];
  if (ctx == nullptr) {
    ctx = new PluginCtx;
    ctx->label = BaseName(real_path);
    FillTable(ctx);
  }
  return &ctx->services;
}

void SetPluginLogName(const hearth_host_services* services, const std::string& name) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  static_cast<PluginCtx*>(services->ctx)->label = name;
}

const hearth_host_services* GenericServices() {
  static PluginCtx* ctx = [] {
    auto* c = new PluginCtx;
    c->label = "plugin";
    FillTable(c);
    return c;
  }();
  return &ctx->services;
}

void ClearPluginError() {
  t_error.set = false;
  t_error.code = HEARTH_P_OK;
  t_error.message.clear();
}

ScopedLogTarget::ScopedLogTarget(const PluginHost* host)
    : previous_(t_log_target), active_(host != nullptr) {
  if (active_) t_log_target = host;
}

ScopedLogTarget::~ScopedLogTarget() {
  if (active_) t_log_target = previous_;
}

void RegisterHost(const PluginHost* host) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  LiveHosts().push_back(host);
}

void UnregisterHost(const PluginHost* host) {
  std::lock_guard<std::mutex> lock(RegistryMutex());
  auto& hosts = LiveHosts();
  for (auto it = hosts.begin(); it != hosts.end(); ++it) {
    if (*it == host) {
      hosts.erase(it);
      break;
    }
  }
}

}  // namespace plugin_host_internal

absl::Status TakePluginStatus(hearth_pstatus code, const char* what) {
  using plugin_host_internal::ClearPluginError;
  plugin_host_internal::ErrorSlot& slot = plugin_host_internal::t_error;
  if (code == HEARTH_P_OK) {
    ClearPluginError();
    return absl::OkStatus();
  }
  std::string message = slot.set && !slot.message.empty()
                            ? slot.message
                            : absl::StrCat("failed with status ", code,
                                           " without a message (the plugin did not call "
                                           "set_error)");
  ClearPluginError();
  absl::StatusCode status_code;
  if (code > 0 && code <= static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    status_code = static_cast<absl::StatusCode>(code);
  } else {
    status_code = absl::StatusCode::kInternal;
    message = absl::StrCat(message, " (the plugin returned invalid status code ", code, ")");
  }
  return absl::Status(status_code, absl::StrCat(what, ": ", message));
}

}  // namespace hearth
