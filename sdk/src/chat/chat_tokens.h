// chat_tokens.h — a conversation to token ids without template injection:
// only the format's markup may become control tokens; what the messages say
// is always plain text, even where it spells <|im_end|>. Used by
// hearth_chat_tokenize / hearth_session_generate_chat and by training data.
#ifndef HEARTH_SDK_SRC_CHAT_CHAT_TOKENS_H_
#define HEARTH_SDK_SRC_CHAT_CHAT_TOKENS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sdk/src/chat/chat_template.h"
#include "sdk/src/tokenizer/tokenizer.h"

namespace hearth::chat {

// The markup of a rendered text of `text_size` bytes: everything outside the
// (non-empty) content spans, as TextLayout::special ranges.
tok::TextLayout MarkupLayout(size_t text_size, std::vector<ContentSpan> spans);

// Renders `messages` in `format` and encodes the text with BOS as the
// vocabulary asks, control tokens parsed in the markup only.
absl::StatusOr<std::vector<int32_t>> EncodeConversation(const tok::Tokenizer& tok,
                                                        const std::string& format,
                                                        const std::vector<Message>& messages,
                                                        bool add_generation_prompt);

}  // namespace hearth::chat

#endif  // HEARTH_SDK_SRC_CHAT_CHAT_TOKENS_H_
