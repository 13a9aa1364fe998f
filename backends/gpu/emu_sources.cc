// emu_sources.cc — the entry point of the emulator plugin; the GPU sources
// themselves are compiled as host C++ one by one (emu_*.cc).
#include "backends/gpu/gpu_backend.h"

#ifndef HEARTH_GPU_PLUGIN_VERSION
#define HEARTH_GPU_PLUGIN_VERSION "0.0.0"
#endif

extern "C" HEARTH_PLUGIN_EXPORT hearth_pstatus hearth_plugin_init(hearth_plugin_init_info* info) {
  return hearth::gpu::PluginInit(info, "gpu-emu", HEARTH_GPU_PLUGIN_VERSION);
}
