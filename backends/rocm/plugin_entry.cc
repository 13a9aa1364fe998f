// plugin_entry.cc — libhearth-backend-rocm.so: the shared GPU backend
// (backends/gpu) compiled by hipcc, under the name "rocm".
#include "backends/gpu/gpu_backend.h"

#ifndef HEARTH_GPU_PLUGIN_VERSION
#define HEARTH_GPU_PLUGIN_VERSION "0.0.0"
#endif

extern "C" HEARTH_PLUGIN_EXPORT hearth_pstatus hearth_plugin_init(hearth_plugin_init_info* info) {
  return hearth::gpu::PluginInit(info, "rocm", HEARTH_GPU_PLUGIN_VERSION);
}
