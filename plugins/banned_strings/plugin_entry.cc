// plugin_entry.cc — the one symbol libhearth-ext-banned-strings.so exports.
#include "hearth/hearth_plugin.h"
#include "plugins/banned_strings/banned_strings.h"

extern "C" HEARTH_PLUGIN_EXPORT hearth_pstatus hearth_plugin_init(hearth_plugin_init_info* info) {
  return hearth::banned_strings::PluginInit(info);
}
