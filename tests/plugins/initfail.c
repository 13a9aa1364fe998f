/* initfail.c — test fixture: a plugin whose init fails the way the plugin
 * ABI asks (fill the major, call set_error once, return non-zero). */
#include "hearth/hearth_plugin.h"

HEARTH_PLUGIN_EXPORT hearth_pstatus hearth_plugin_init(hearth_plugin_init_info* info) {
  info->plugin_abi_major = HEARTH_PLUGIN_ABI_MAJOR;
  info->plugin_abi_minor = HEARTH_PLUGIN_ABI_MINOR;
  info->host->set_error(info->host->ctx, HEARTH_P_UNAVAILABLE,
                        "libfakegpu.so.3 not found (driver not installed?)");
  return HEARTH_P_UNAVAILABLE;
}
