// banned_strings.h — the "banned-strings" extension plugin: a logits mask
// (hearth_plugin.h, hearth_extension_vtable) that forbids every token whose
// text would complete one of the configured strings in the generated text.
// So the generated text never contains a banned string (byte for byte).
//
// Config: the banned strings, one per line ("\n"; a trailing "\r" is part of
// nothing and dropped). Empty lines are ignored; at least one string is
// required. Control tokens (empty text) are always allowed.
#ifndef HEARTH_PLUGINS_BANNED_STRINGS_BANNED_STRINGS_H_
#define HEARTH_PLUGINS_BANNED_STRINGS_BANNED_STRINGS_H_

#include "hearth/hearth_plugin.h"

namespace hearth::banned_strings {

hearth_pstatus PluginInit(hearth_plugin_init_info* info);
const hearth_extension_vtable* Vtable();

}  // namespace hearth::banned_strings

#endif  // HEARTH_PLUGINS_BANNED_STRINGS_BANNED_STRINGS_H_
