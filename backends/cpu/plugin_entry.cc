// plugin_entry.cc — the one symbol libhearth-backend-cpu.so exports. All of
// the plugin lives in the hearth_cpu_kernels static library (backend.cc), so
// tests reach the same code without loading the shared object.
#include "backends/cpu/backend.h"
#include "hearth/hearth_plugin.h"

extern "C" HEARTH_PLUGIN_EXPORT hearth_pstatus hearth_plugin_init(hearth_plugin_init_info* info) {
  return hearth::cpu::PluginInit(info);
}
