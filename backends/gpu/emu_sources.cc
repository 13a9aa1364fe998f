// emu_sources.cc — the GPU sources compiled as host C++ for the emulator
// plugin (gpu_port.h, HEARTH_GPU_EMU), plus its entry point.
#include "backends/gpu/gpu_backend.cu"
#include "backends/gpu/gpu_kernels.cu"

#ifndef HEARTH_GPU_PLUGIN_VERSION
#define HEARTH_GPU_PLUGIN_VERSION "0.0.0"
#endif

extern "C" HEARTH_PLUGIN_EXPORT hearth_pstatus hearth_plugin_init(hearth_plugin_init_info* info) {
  return hearth::gpu::PluginInit(info, "gpu-emu", HEARTH_GPU_PLUGIN_VERSION);
}
