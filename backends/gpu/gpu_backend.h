// gpu_backend.h — the one call a GPU plugin's entry point makes: the
// handshake with the backend vtable of gpu_backend.cu, under the plugin's
// name ("cuda", "rocm", "gpu-emu"), which also names its devices ("cuda:0").
#ifndef HEARTH_BACKENDS_GPU_GPU_BACKEND_H_
#define HEARTH_BACKENDS_GPU_GPU_BACKEND_H_

#include "hearth/hearth_plugin.h"

namespace hearth::gpu {

hearth_pstatus PluginInit(hearth_plugin_init_info* info, const char* name, const char* version);

}  // namespace hearth::gpu

#endif  // HEARTH_BACKENDS_GPU_GPU_BACKEND_H_
