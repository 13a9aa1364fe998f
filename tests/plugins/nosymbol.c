/* nosymbol.c — test fixture: a shared library named like a plugin that does
 * not export hearth_plugin_init (a typo'd entry point). */
#include "hearth/hearth_plugin.h"

HEARTH_PLUGIN_EXPORT hearth_pstatus hearth_plugin_initialize(hearth_plugin_init_info* info) {
  (void)info;
  return HEARTH_P_OK;
}
