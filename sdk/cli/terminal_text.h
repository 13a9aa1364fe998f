// terminal_text.h — text that came from a file or a plugin (a model's
// general.name, an adapter's base model, a plugin's name or description, a
// training example), made safe to print on a terminal.
//
// Why: a GGUF whose general.name holds "ESC]0;…BEL ESC[2J" retitled and
// cleared the terminal of whoever ran `hearth info` on it; escape sequences
// can also rewrite what was printed before, or, on some terminals, answer
// back. Every string the CLI prints that it did not write itself goes
// through one of these.
#ifndef HEARTH_SDK_CLI_TERMINAL_TEXT_H_
#define HEARTH_SDK_CLI_TERMINAL_TEXT_H_

#include <string>
#include <string_view>

namespace hearth::cli {

// `s` with every control character escaped: C0 and DEL as \xNN, C1
// (U+0080..U+009F, which some terminals take as ESC sequences) and the
// bidirectional overrides (U+202A..U+202E, U+2066..U+2069) as \uNNNN, and
// bytes that are not UTF-8 as \xNN. Everything else is kept as is.
std::string Printable(std::string_view s);

// Printable for multi-line text (training examples, error messages): the
// same, but newline and tab are kept.
std::string PrintableText(std::string_view s);

// Printable(s), or "-" for NULL or "".
std::string PrintableOrDash(const char* s);

}  // namespace hearth::cli

#endif  // HEARTH_SDK_CLI_TERMINAL_TEXT_H_
