// plugin_host.h — finds, loads and negotiates with plugins, and wraps a
// backend plugin's C vtable in a C++ object whose calls return absl::Status.
//
// Discovery order: explicit paths from the app, then HEARTH_PLUGIN_PATH
// (ignored when the process is setuid/setgid), then <libdir>/hearth/plugins
// where <libdir> is the folder holding libhearth. The current working
// directory is never searched. Plugins are never dlclose'd while the host
// lives (objects made by a plugin may outlive any one user of it); in fact
// they are never dlclose'd at all, see docs/abi/plugins.md.
//
// Device names are unique within a host: when a second plugin reports a name
// already taken ("cpu"), it becomes "<name>:<k>" with the smallest k >= 1
// that is free ("cpu:1"). Names are given in load order, so the plugin found
// first (an explicit path before HEARTH_PLUGIN_PATH before libdir) keeps the
// plain name.
#ifndef HEARTH_SDK_SRC_PLUGIN_HOST_PLUGIN_HOST_H_
#define HEARTH_SDK_SRC_PLUGIN_HOST_PLUGIN_HOST_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "hearth/hearth_plugin.h"

namespace hearth {

class PluginHost;

struct PluginHostOptions {
  std::vector<std::string> explicit_paths;  // files or folders
  bool explicit_only = false;               // skip env and libdir
  // Where <libdir>/hearth/plugins lives; empty = next to libhearth.
  std::string libdir;
  int log_level = 1;
  void (*log)(int level, const char* message, void* user_data) = nullptr;
  void* log_user_data = nullptr;
};

struct LoadedPlugin {
  std::string name;       // from init, or the file name if loading failed
  std::string path;
  std::string version;
  uint32_t abi_major = 0;  // declared by the plugin
  uint32_t abi_minor = 0;  // in use: min(host, plugin)
  uint32_t kind = 0;
  int32_t probe_score = 0;
  std::string probe_reason;  // why a backend probed 0 (its own words)
  std::string load_error;  // empty when loaded
  const hearth_backend_vtable* backend = nullptr;  // backends that loaded
  const hearth_extension_vtable* extension = nullptr;  // extensions that loaded
  void* handle = nullptr;  // dlopen handle
  const PluginHost* host = nullptr;  // the host that loaded it
};

struct DeviceRef {
  std::string name;  // unique: "cpu", "cuda:0", …
  const LoadedPlugin* plugin = nullptr;
  uint32_t index = 0;  // within the plugin
  std::string vendor, description;
  uint64_t memory_total = 0, memory_free = 0;
  bool host_visible = false;
  uint32_t simd_width = 0;  // warp / wavefront / CPU vector lanes
  std::string arch;         // "sm_90", "gfx90a", "x86-64+avx2", …
  uint32_t compute_units = 0;
};

class PluginHost {
 public:
  static absl::StatusOr<std::unique_ptr<PluginHost>> Create(const PluginHostOptions& options);
  ~PluginHost();
  // Devices point into plugins_, so a host never moves.
  PluginHost(const PluginHost&) = delete;
  PluginHost& operator=(const PluginHost&) = delete;

  const std::vector<LoadedPlugin>& plugins() const { return plugins_; }
  // Devices of backends that probed > 0, best probe score first.
  const std::vector<DeviceRef>& devices() const { return devices_; }
  // By name; "" = the best. NOT_FOUND lists the devices there are.
  absl::StatusOr<const DeviceRef*> FindDevice(const std::string& name) const;
  // A services table not tied to any plugin file; valid for the life of the
  // process (plugins keep such pointers), not just of this host.
  const hearth_host_services* services() const { return services_; }

  // Sends one line to the app's log callback (or stderr when it has none)
  // when `level` (HEARTH_LOG_*) is at or below the configured level.
  void Log(int level, const std::string& message) const;

 private:
  enum class Origin { kExplicit, kEnv, kLibdir };
  PluginHost() = default;
  void AddPath(const std::string& path, Origin origin, std::set<std::string>* seen);
  void LoadFile(const std::string& path, Origin origin, std::set<std::string>* seen);
  absl::Status Negotiate(void* handle, LoadedPlugin* plugin);
  void RecordFailure(const std::string& path, const std::string& error);
  void BuildDeviceList();
  std::vector<LoadedPlugin> plugins_;
  std::vector<DeviceRef> devices_;
  const hearth_host_services* services_ = nullptr;
  PluginHostOptions options_;
  bool registered_ = false;
};

// Takes the error a plugin recorded through host->set_error on this thread
// and turns `code` into an absl::Status (OK for HEARTH_P_OK). `what` prefixes
// the message, e.g. "cpu: graph_compute".
absl::Status TakePluginStatus(hearth_pstatus code, const char* what);

// A context on one device of a backend plugin. Not thread-safe.
class Backend {
 public:
  static absl::StatusOr<std::unique_ptr<Backend>> Create(const DeviceRef& device,
                                                         uint32_t n_threads);
  ~Backend();
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  const DeviceRef& device() const { return device_; }

  absl::StatusOr<hearth_pbuffer*> Alloc(uint64_t size);
  void Free(hearth_pbuffer* buf);
  // Wraps host memory without copying when the plugin can; else allocates
  // and uploads. `*wrapped` says which happened.
  absl::StatusOr<hearth_pbuffer*> WrapOrUpload(const void* ptr, uint64_t size, bool* wrapped);
  absl::Status Upload(hearth_pbuffer* buf, uint64_t offset, const void* data, uint64_t size);
  absl::Status Download(const hearth_pbuffer* buf, uint64_t offset, void* data,
                        uint64_t size);
  void* HostPtr(hearth_pbuffer* buf);  // NULL if not host-visible
  // Device-to-device copy between two buffers of this device.
  absl::Status Copy(const hearth_pbuffer* src, uint64_t src_offset, hearth_pbuffer* dst,
                    uint64_t dst_offset, uint64_t size);
  // Whether the plugin places weights tensor by tensor (weight_place).
  bool CanPlaceWeights() const;
  // Places one weight through weight_place; *repacked says whether the
  // plugin keeps it in a layout of its own.
  absl::StatusOr<hearth_pbuffer*> PlaceWeight(const hearth_pweight& w, bool* repacked);
  bool Supports(const hearth_graph& graph, uint32_t node);
  absl::Status Compute(const hearth_graph& graph);

 private:
  Backend() = default;
  DeviceRef device_;
  const hearth_backend_vtable* vt_ = nullptr;
  hearth_pcontext* ctx_ = nullptr;
};

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_PLUGIN_HOST_PLUGIN_HOST_H_
