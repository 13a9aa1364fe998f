// plugin_host.cc — discovery (which files, in which order), loading and the
// init handshake, vtable validation, probing, and the runtime's device list.
// The services lent to plugins live in host_services.cc; the Backend wrapper
// in backend.cc.
#include "sdk/src/plugin_host/plugin_host.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <sys/auxv.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/memory/memory.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "sdk/src/plugin_host/host_services.h"

namespace hearth {
namespace {

using plugin_host_internal::ClearPluginError;
using plugin_host_internal::ScopedLogTarget;

constexpr char kPluginPrefix[] = "libhearth-";
constexpr char kPluginSuffix[] = ".so";
constexpr char kEnvVar[] = "HEARTH_PLUGIN_PATH";
// A plugin claiming more devices than this is broken, not big.
constexpr uint32_t kMaxDevicesPerPlugin = 1024;

bool IsPluginFileName(const std::string& name) {
  return name.size() > sizeof(kPluginPrefix) - 1 + sizeof(kPluginSuffix) - 1 &&
         absl::StartsWith(name, kPluginPrefix) && absl::EndsWith(name, kPluginSuffix);
}

std::string BaseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The kernel sets AT_SECURE for setuid/setgid (and capability-raising)
// executions; the environment then belongs to a less trusted user.
bool ProcessIsSecure() { return getauxval(AT_SECURE) != 0; }

// The folder of the binary this code is linked into: libhearth.so in an
// app, the test executable for a static test build.
std::string OwnLibDir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&OwnLibDir), &info) == 0 || info.dli_fname == nullptr) {
    return "";
  }
  char real[PATH_MAX];
  if (realpath(info.dli_fname, real) == nullptr) return "";
  const std::string path = real;
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

const char* LevelName(int level) {
  switch (level) {
    case HEARTH_LOG_ERROR: return "error";
    case HEARTH_LOG_WARN: return "warning";
    case HEARTH_LOG_INFO: return "info";
    default: return "debug";
  }
}

const char* OriginName(int origin) {
  switch (origin) {
    case 0: return "explicit path";
    case 1: return kEnvVar;
    default: return "libdir";
  }
}

// Every slot the host calls unconditionally. buffer_wrap_host and
// buffer_host_ptr are optional: absent or NULL means "not available".
struct RequiredSlot {
  const char* name;
  size_t end;  // offset + size: struct_size must reach this far
  bool (*is_set)(const hearth_backend_vtable* vt);  // call only when inside struct_size
};
#define HEARTH_REQUIRED_SLOT(member)                                                   \
  RequiredSlot {                                                                        \
    #member, offsetof(hearth_backend_vtable, member) + sizeof(hearth_backend_vtable::member), \
        [](const hearth_backend_vtable* vt) { return vt->member != nullptr; }           \
  }
const RequiredSlot kRequiredSlots[] = {
    HEARTH_REQUIRED_SLOT(probe),           HEARTH_REQUIRED_SLOT(device_count),
    HEARTH_REQUIRED_SLOT(device_info),     HEARTH_REQUIRED_SLOT(context_create),
    HEARTH_REQUIRED_SLOT(context_free),    HEARTH_REQUIRED_SLOT(buffer_alloc),
    HEARTH_REQUIRED_SLOT(buffer_free),     HEARTH_REQUIRED_SLOT(buffer_upload),
    HEARTH_REQUIRED_SLOT(buffer_download), HEARTH_REQUIRED_SLOT(supports),
    HEARTH_REQUIRED_SLOT(graph_compute),   HEARTH_REQUIRED_SLOT(buffer_copy),
};
#undef HEARTH_REQUIRED_SLOT

absl::Status CheckBackendVtable(const hearth_backend_vtable* vt, const std::string& path) {
  if (vt == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": backend plugin returned no vtable (init_info.vtable is NULL)"));
  }
  for (const RequiredSlot& slot : kRequiredSlots) {
    if (vt->struct_size < slot.end) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": backend vtable struct_size ", vt->struct_size,
          " is too small for the required slot '", slot.name, "' (needs at least ", slot.end,
          " bytes)"));
    }
    if (!slot.is_set(vt)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": the required backend slot '", slot.name, "' is NULL"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<PluginHost>> PluginHost::Create(const PluginHostOptions& options) {
  if (options.log_level < HEARTH_LOG_ERROR || options.log_level > HEARTH_LOG_DEBUG) {
    return absl::InvalidArgumentError(absl::StrCat("log_level ", options.log_level,
                                                   " is outside [0, 3] (error .. debug)"));
  }
  auto host = absl::WrapUnique(new PluginHost());
  host->options_ = options;
  host->services_ = plugin_host_internal::GenericServices();
  plugin_host_internal::RegisterHost(host.get());
  host->registered_ = true;
  ScopedLogTarget log_target(host.get());

  std::set<std::string> seen;  // real paths, so a file is loaded once
  for (const std::string& path : options.explicit_paths) {
    if (!path.empty()) host->AddPath(path, Origin::kExplicit, &seen);
  }
  if (!options.explicit_only) {
    const char* env = std::getenv(kEnvVar);
    if (env != nullptr && ProcessIsSecure()) {
      host->Log(HEARTH_LOG_INFO,
                absl::StrCat(kEnvVar, " ignored: the process runs setuid/setgid"));
    } else if (env != nullptr) {
      for (absl::string_view entry : absl::StrSplit(env, ':', absl::SkipEmpty())) {
        // A relative entry would search the working directory, which may be
        // anyone's (a downloads folder, a shared /tmp): refuse it.
        if (entry[0] != '/') {
          host->Log(HEARTH_LOG_WARN,
                    absl::StrCat(kEnvVar, ": ignoring relative entry '", entry,
                                 "' (plugins are never loaded relative to the working "
                                 "directory)"));
          continue;
        }
        host->AddPath(std::string(entry), Origin::kEnv, &seen);
      }
    }
    const std::string libdir = options.libdir.empty() ? OwnLibDir() : options.libdir;
    if (!libdir.empty()) host->AddPath(libdir + "/hearth/plugins", Origin::kLibdir, &seen);
  }
  host->BuildDeviceList();
  return host;
}

PluginHost::~PluginHost() {
  // Handles stay open on purpose: plugin threads, thread-locals and atexit
  // handlers may still run code from them (docs/abi/plugins.md).
  if (registered_) plugin_host_internal::UnregisterHost(this);
}

void PluginHost::Log(int level, const std::string& message) const {
  if (level > options_.log_level) return;
  if (options_.log != nullptr) {
    options_.log(level, message.c_str(), options_.log_user_data);
  } else {
    std::fprintf(stderr, "hearth: %s: %s\n", LevelName(level), message.c_str());
  }
}

void PluginHost::RecordFailure(const std::string& path, const std::string& error) {
  LoadedPlugin p;
  p.name = BaseName(path);
  p.path = path;
  p.load_error = error;
  p.host = this;
  plugins_.push_back(std::move(p));
  Log(HEARTH_LOG_WARN, absl::StrCat("plugin not loaded: ", error));
}

void PluginHost::AddPath(const std::string& path, Origin origin, std::set<std::string>* seen) {
  const bool is_explicit = origin == Origin::kExplicit;
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    const std::string why = absl::StrCat(path, ": ", std::strerror(errno));
    // Only a path the app named is worth a record; the default folders are
    // allowed to be absent.
    if (is_explicit) {
      RecordFailure(path, why);
    } else {
      Log(HEARTH_LOG_DEBUG, absl::StrCat(OriginName(static_cast<int>(origin)), ": ", why));
    }
    return;
  }
  if (S_ISREG(st.st_mode)) {
    LoadFile(path, origin, seen);
    return;
  }
  if (!S_ISDIR(st.st_mode)) {
    if (is_explicit) RecordFailure(path, absl::StrCat(path, ": not a file or a folder"));
    return;
  }
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) {
    const std::string why = absl::StrCat(path, ": ", std::strerror(errno));
    if (is_explicit) {
      RecordFailure(path, why);
    } else {
      Log(HEARTH_LOG_WARN, absl::StrCat(OriginName(static_cast<int>(origin)), ": ", why));
    }
    return;
  }
  std::vector<std::string> names;
  while (const dirent* entry = readdir(dir)) {
    if (IsPluginFileName(entry->d_name)) names.emplace_back(entry->d_name);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());  // readdir order is arbitrary
  const std::string folder = path.back() == '/' ? path : path + "/";
  for (const std::string& name : names) {
    const std::string file = folder + name;
    struct stat fst {};
    if (stat(file.c_str(), &fst) == 0 && S_ISREG(fst.st_mode)) LoadFile(file, origin, seen);
  }
}

void PluginHost::LoadFile(const std::string& path, Origin origin, std::set<std::string>* seen) {
  char real_buf[PATH_MAX];
  if (realpath(path.c_str(), real_buf) == nullptr) {
    RecordFailure(path, absl::StrCat(path, ": ", std::strerror(errno)));
    return;
  }
  // Always absolute, so dlopen never searches its own paths for it.
  const std::string real = real_buf;
  if (!seen->insert(real).second) {
    Log(HEARTH_LOG_DEBUG, absl::StrCat(path, ": already loaded as ", real));
    return;
  }
  Log(HEARTH_LOG_DEBUG,
      absl::StrCat("loading plugin ", real, " (from ", OriginName(static_cast<int>(origin)), ")"));
  // Backends may bring an OpenMP runtime (the CPU plugin's oneDNN does),
  // which reads its settings once, when it is loaded. Its default is to
  // spin for a while after each parallel region, stealing the cores our own
  // decode threads need next; ask for passive waiting unless the user chose.
  setenv("OMP_WAIT_POLICY", "passive", /*overwrite=*/0);
  dlerror();
  void* handle = dlopen(real.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    RecordFailure(real, err != nullptr ? std::string(err) : real + ": dlopen failed");
    return;
  }
  LoadedPlugin p;
  p.name = BaseName(real);
  p.path = real;
  p.handle = handle;
  p.host = this;
  absl::Status status = Negotiate(handle, &p);
  if (!status.ok()) {
    p.load_error = std::string(status.message());
    p.name = BaseName(real);  // hearth.h: a failed plugin is known by its file
    p.backend = nullptr;
    p.probe_score = 0;
    Log(HEARTH_LOG_WARN, absl::StrCat("plugin not loaded: ", p.load_error));
  } else {
    Log(HEARTH_LOG_INFO, absl::StrCat("plugin '", p.name, "' ", p.version, " loaded from ", real,
                                      " (ABI ", p.abi_major, ".", p.abi_minor, ", probe ",
                                      p.probe_score, ")"));
  }
  plugins_.push_back(std::move(p));
}

absl::Status PluginHost::Negotiate(void* handle, LoadedPlugin* p) {
  const std::string& path = p->path;
  dlerror();
  void* sym = dlsym(handle, HEARTH_PLUGIN_INIT_SYMBOL);
  if (sym == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": no symbol ", HEARTH_PLUGIN_INIT_SYMBOL, " (not a hearth plugin?)"));
  }
  const auto init = reinterpret_cast<hearth_plugin_init_fn>(sym);
  const hearth_host_services* services = plugin_host_internal::ServicesForPlugin(path);
  // The name is unknown until init returns: lines logged during init carry
  // the file name, every time (init runs once per runtime).
  plugin_host_internal::SetPluginLogName(services, BaseName(path));

  hearth_plugin_init_info info{};
  info.struct_size = sizeof(info);
  info.host_abi_major = HEARTH_PLUGIN_ABI_MAJOR;
  info.host_abi_minor = HEARTH_PLUGIN_ABI_MINOR;
  info.host = services;
  ClearPluginError();
  const hearth_pstatus rc = init(&info);
  const absl::Status init_status =
      TakePluginStatus(rc, absl::StrCat(path, ": ", HEARTH_PLUGIN_INIT_SYMBOL).c_str());

  p->abi_major = info.plugin_abi_major;
  // A mismatched major explains any other failure, so it is reported first;
  // a plugin that failed without declaring a major gets its own message.
  if (info.plugin_abi_major != 0 && info.plugin_abi_major != HEARTH_PLUGIN_ABI_MAJOR) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": plugin ABI major ", info.plugin_abi_major, " does not match the host's ABI major ",
        HEARTH_PLUGIN_ABI_MAJOR, " (rebuild the plugin against hearth_plugin.h ",
        HEARTH_PLUGIN_ABI_MAJOR, ".x)"));
  }
  if (!init_status.ok()) return init_status;
  if (info.plugin_abi_major == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": plugin did not declare its ABI version (plugin_abi_major is 0)"));
  }
  p->abi_minor = std::min<uint32_t>(info.plugin_abi_minor, HEARTH_PLUGIN_ABI_MINOR);
  if (info.name == nullptr || info.name[0] == '\0') {
    return absl::InvalidArgumentError(absl::StrCat(path, ": plugin gave no name"));
  }
  p->name = info.name;
  p->version = info.version != nullptr ? info.version : "";
  p->kind = info.kind;
  plugin_host_internal::SetPluginLogName(services, p->name);

  switch (info.kind) {
    case HEARTH_PLUGIN_KIND_BACKEND: {
      const auto* vt = static_cast<const hearth_backend_vtable*>(info.vtable);
      absl::Status vt_status = CheckBackendVtable(vt, path);
      if (!vt_status.ok()) return vt_status;
      p->backend = vt;
      ClearPluginError();
      const char* reason = nullptr;
      p->probe_score = vt->probe(&reason);
      ClearPluginError();  // probe has no status: whatever it recorded is noise
      if (p->probe_score <= 0) {
        p->probe_reason = reason != nullptr && reason[0] != '\0'
                              ? std::string(reason)
                              : std::string("the plugin gave no reason");
      }
      return absl::OkStatus();
    }
    case HEARTH_PLUGIN_KIND_EXTENSION: {
      const auto* vt = static_cast<const hearth_extension_vtable*>(info.vtable);
      if (vt == nullptr || vt->struct_size < sizeof(uint32_t)) {
        return absl::InvalidArgumentError(
            absl::StrCat(path,
                         ": extension plugin returned no vtable (or one "
                         "with struct_size < 4)"));
      }
      p->extension = vt;
      return absl::OkStatus();
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": unknown plugin kind ", info.kind, " (this host knows ",
                       HEARTH_PLUGIN_KIND_BACKEND, " = backend and ", HEARTH_PLUGIN_KIND_EXTENSION,
                       " = extension)"));
  }
}

void PluginHost::BuildDeviceList() {
  std::set<std::string> taken;
  std::vector<std::pair<int32_t, DeviceRef>> found;  // (probe score, device)
  for (const LoadedPlugin& p : plugins_) {
    if (p.backend == nullptr || p.probe_score <= 0) continue;
    ClearPluginError();
    uint32_t n = p.backend->device_count();
    if (n > kMaxDevicesPerPlugin) {
      Log(HEARTH_LOG_WARN, absl::StrCat(p.name, ": device_count ", n, " is implausible; using the first ",
                                        kMaxDevicesPerPlugin));
      n = kMaxDevicesPerPlugin;
    }
    for (uint32_t i = 0; i < n; ++i) {
      hearth_pdevice_info info{};
      info.struct_size = sizeof(info);
      ClearPluginError();
      const absl::Status st =
          TakePluginStatus(p.backend->device_info(i, &info),
                           absl::StrCat(p.name, ": device_info(", i, ")").c_str());
      if (!st.ok()) {
        Log(HEARTH_LOG_WARN, absl::StrCat("device skipped: ", st.message()));
        continue;
      }
      DeviceRef d;
      d.plugin = &p;
      d.index = i;
      d.name = (info.name != nullptr && info.name[0] != '\0') ? std::string(info.name)
                                                              : absl::StrCat(p.name, ":", i);
      if (!taken.insert(d.name).second) {
        std::string unique;
        for (int k = 1;; ++k) {
          unique = absl::StrCat(d.name, ":", k);
          if (taken.insert(unique).second) break;
        }
        Log(HEARTH_LOG_INFO, absl::StrCat(p.name, ": device name '", d.name,
                                          "' is taken; this one is '", unique, "'"));
        d.name = unique;
      }
      d.vendor = info.vendor != nullptr ? info.vendor : "";
      d.description = info.description != nullptr ? info.description : "";
      d.memory_total = info.memory_total;
      d.memory_free = info.memory_free;
      d.host_visible = info.host_visible != 0;
      d.simd_width = info.simd_width;
      d.arch = info.arch != nullptr ? info.arch : "";
      d.compute_units = info.compute_units;
      found.emplace_back(p.probe_score, std::move(d));
    }
  }
  // Stable: equal scores keep discovery order.
  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  devices_.clear();
  for (auto& f : found) devices_.push_back(std::move(f.second));
}

absl::StatusOr<const DeviceRef*> PluginHost::FindDevice(const std::string& name) const {
  if (name.empty()) {
    if (!devices_.empty()) return &devices_.front();
    std::vector<std::string> looked;
    for (const LoadedPlugin& p : plugins_) {
      looked.push_back(!p.load_error.empty()
                           ? absl::StrCat(p.path, " (not loaded: ", p.load_error, ")")
                       : p.probe_score <= 0 && !p.probe_reason.empty()
                           ? absl::StrCat(p.path, " (probe 0: ", p.probe_reason, ")")
                           : absl::StrCat(p.path, " (probe ", p.probe_score, ")"));
    }
    return absl::NotFoundError(
        absl::StrCat("no usable device: no backend plugin probed a device here; plugin "
                     "files looked at: ",
                     looked.empty() ? std::string("none (is libhearth-backend-cpu.so installed in "
                                                  "<libdir>/hearth/plugins?)")
                                    : absl::StrJoin(looked, "; ")));
  }
  for (const DeviceRef& d : devices_) {
    if (d.name == name) return &d;
  }
  std::vector<std::string> names;
  for (const DeviceRef& d : devices_) names.push_back(d.name);
  return absl::NotFoundError(absl::StrCat("device '", name, "' not found; devices here: ",
                                          names.empty() ? "none" : absl::StrJoin(names, ", ")));
}

}  // namespace hearth
