// host_services.h — the process-wide half of the plugin host: the
// hearth_host_services tables lent to plugins, the thread-local slot behind
// set_error (read by TakePluginStatus), and the routing of plugin log lines
// to the runtime that is calling the plugin.
//
// Why process-wide: a plugin file is mapped once per process however many
// runtimes load it, and it keeps the services pointer it got at init for as
// long as it is mapped, which is forever (we never dlclose). So each plugin
// file gets one table for the life of the process, and the table's ctx never
// points into a PluginHost that could be destroyed under it.
#ifndef HEARTH_SDK_SRC_PLUGIN_HOST_HOST_SERVICES_H_
#define HEARTH_SDK_SRC_PLUGIN_HOST_HOST_SERVICES_H_

#include <string>

#include "hearth/hearth_plugin.h"

namespace hearth {

class PluginHost;

namespace plugin_host_internal {

// The table lent to the plugin file at `real_path` (same pointer on every
// call with the same path). Never freed.
const hearth_host_services* ServicesForPlugin(const std::string& real_path);
// Sets the label that prefixes the plugin's log lines ("cpu: …"; the file
// name while init runs).
void SetPluginLogName(const hearth_host_services* services, const std::string& name);
// A table not tied to a plugin file (PluginHost::services()); lines are
// labelled "plugin". Never freed.
const hearth_host_services* GenericServices();

// Forgets any error recorded through set_error on this thread. Called before
// each plugin call so a stale message never lands on the wrong status.
void ClearPluginError();

// While alive, plugin log lines emitted on this thread go to `host` (which
// may be null: no change). Nested scopes restore the previous target.
class ScopedLogTarget {
 public:
  explicit ScopedLogTarget(const PluginHost* host);
  ~ScopedLogTarget();
  ScopedLogTarget(const ScopedLogTarget&) = delete;
  ScopedLogTarget& operator=(const ScopedLogTarget&) = delete;

 private:
  const PluginHost* previous_;
  bool active_;
};

// Live hosts. A plugin line from a thread no host is calling on (a plugin's
// own worker thread) goes to the most recently created live host, or to
// stderr when there is none.
void RegisterHost(const PluginHost* host);
void UnregisterHost(const PluginHost* host);

}  // namespace plugin_host_internal
}  // namespace hearth

#endif  // HEARTH_SDK_SRC_PLUGIN_HOST_HOST_SERVICES_H_
