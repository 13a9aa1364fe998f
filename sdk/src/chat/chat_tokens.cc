// chat_tokens.cc — conversation to ids, markup parsed, contents plain.
#include "sdk/src/chat/chat_tokens.h"

#include <algorithm>

namespace hearth::chat {

tok::TextLayout MarkupLayout(size_t text_size, std::vector<ContentSpan> spans) {
  std::sort(spans.begin(), spans.end(),
            [](const ContentSpan& a, const ContentSpan& b) { return a.begin < b.begin; });
  tok::TextLayout layout;
  size_t markup = 0;
  for (const ContentSpan& s : spans) {
    if (s.end == s.begin) continue;  // empty, or a message the format leaves out
    if (s.begin > markup) layout.special.emplace_back(markup, s.begin);
    markup = std::max(markup, s.end);
  }
  if (markup < text_size) layout.special.emplace_back(markup, text_size);
  return layout;
}

absl::StatusOr<std::vector<int32_t>> EncodeConversation(const tok::Tokenizer& tok,
                                                        const std::string& format,
                                                        const std::vector<Message>& messages,
                                                        bool add_generation_prompt) {
  std::vector<ContentSpan> spans;
  auto text = Render(format, messages, add_generation_prompt, &spans);
  if (!text.ok()) return text.status();
  return tok.EncodeLayout(*text, /*add_special=*/true, MarkupLayout(text->size(), spans), nullptr);
}

}  // namespace hearth::chat
