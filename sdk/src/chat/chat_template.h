// chat_template.h — turns a list of chat messages into the prompt text a
// model was trained on. Formats register by name; which one a model uses is
// detected from its `tokenizer.chat_template` (by the markers it contains,
// outside Jinja comments) or, failing that, from its architecture, and must
// fit its vocabulary (its markers are control tokens there).
#ifndef HEARTH_SDK_SRC_CHAT_CHAT_TEMPLATE_H_
#define HEARTH_SDK_SRC_CHAT_CHAT_TEMPLATE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sdk/src/tokenizer/tokenizer.h"

namespace hearth::chat {

struct Message {
  std::string role;  // "system", "user", "assistant" ("model" is an alias)
  std::string content;
};

// "assistant" or its alias "model".
bool IsAssistantRole(const std::string& role);

// The name of the format for a model ("gemma", "chatml", "llama3",
// "llama2", "deepseek-r1"). Candidates are the formats whose marker (e.g. <start_of_turn>)
// the template names outside its {# comments #}, in table order, else the
// architecture's; the first whose markup tokens (<start_of_turn> and
// <end_of_turn>, <|im_start|> and <|im_end|>, …) are all control tokens of
// `vocab` is chosen. A marker named only in a string the template never
// writes (an error message, a test) is thus outvoted by the vocabulary.
// Otherwise NOT_FOUND, naming the architecture or the token that is missing
// (rendering the format anyway would encode its markers as plain text, and a
// model trained on that learns to print "<end_of_turn>" and never stop).
absl::StatusOr<std::string> DetectFormat(const std::string& chat_template_source,
                                         const std::string& architecture,
                                         const tok::VocabData& vocab);

// Where a message's content lies in the rendered text: [begin, end).
struct ContentSpan {
  size_t begin = 0, end = 0;
};

// Where an assistant message's turn lies in the rendered text, as training
// needs it: `open` is where the model's own writing starts (text[0, open) is
// what Render gives for the messages before it with add_generation_prompt),
// `close` where its turn ends, closing markup included (text[0, close) is
// what Render gives for the messages up to it without). Reported by the
// renderer in the one pass, so a conversation of N turns costs O(N), not
// the O(N^2) of rendering every prefix.
struct TurnSpan {
  size_t open = 0, close = 0;
};

// Renders `messages` (without BOS: the tokenizer adds it) and, when
// `add_generation_prompt`, the opening of the assistant's turn. Unknown
// roles, an empty list, or a format's own rules (e.g. Gemma: no assistant
// turn first) are INVALID_ARGUMENT naming the message index. Linear in the
// size of the output.
// `content_spans`, when given, gets one span per message: everything outside
// them is the format's markup, which is what may be parsed as control
// tokens (content never is: see tok::TextLayout).
// `turn_spans`, when given, gets one span per message, set for assistant
// messages ({0, 0} for the others).
absl::StatusOr<std::string> Render(const std::string& format, const std::vector<Message>& messages,
                                   bool add_generation_prompt,
                                   std::vector<ContentSpan>* content_spans = nullptr,
                                   std::vector<TurnSpan>* turn_spans = nullptr);

}  // namespace hearth::chat

#endif  // HEARTH_SDK_SRC_CHAT_CHAT_TEMPLATE_H_
