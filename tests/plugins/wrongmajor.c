/* wrongmajor.c — test fixture: a plugin built for a future ABI major (2).
 * It answers the handshake with OK anyway, as a careless plugin might, so the
 * test shows that the host refuses it on the major alone. */
#include "hearth/hearth_plugin.h"

HEARTH_PLUGIN_EXPORT hearth_pstatus hearth_plugin_init(hearth_plugin_init_info* info) {
  info->plugin_abi_major = 2;
  info->plugin_abi_minor = 0;
  info->kind = HEARTH_PLUGIN_KIND_BACKEND;
  info->name = "wrongmajor";
  info->version = "2.0.0";
  info->vtable = NULL;
  return HEARTH_P_OK;
}
