// fuzz_chat_template.cc — libFuzzer target for chat rendering and format
// detection. The input is split into messages: lines of "role\tcontent"
// separated by '\x1e' (record separator), so content may hold newlines.
// The first byte picks add_generation_prompt. Every format renders the list;
// DetectFormat sees the whole input as a template source. Rendering reports
// where each message's content went (what tokenizing keeps free of control
// tokens); those spans must hold exactly the contents.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sdk/src/chat/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool gen = data[0] & 1;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);

  std::vector<hearth::chat::Message> messages;
  while (!in.empty() && messages.size() < 64) {
    size_t end = in.find('\x1e');
    std::string_view rec = in.substr(0, end);
    in = end == std::string_view::npos ? std::string_view() : in.substr(end + 1);
    size_t tab = rec.find('\t');
    hearth::chat::Message m;
    m.role = std::string(rec.substr(0, tab));
    if (tab != std::string_view::npos) m.content = std::string(rec.substr(tab + 1));
    messages.push_back(std::move(m));
  }

  for (const char* format : {"gemma", "chatml", "llama3", "llama2", "no-such-format"}) {
    std::vector<hearth::chat::ContentSpan> spans;
    auto text = hearth::chat::Render(format, messages, gen, &spans);
    if (!text.ok()) continue;
    // Every message's span holds exactly its content (or is empty: left out).
    if (spans.size() != messages.size()) __builtin_trap();
    for (size_t i = 0; i < spans.size(); ++i) {
      const hearth::chat::ContentSpan& sp = spans[i];
      if (sp.begin > sp.end || sp.end > text->size()) __builtin_trap();
      if (sp.end > sp.begin &&
          text->compare(sp.begin, sp.end - sp.begin, messages[i].content) != 0) {
        __builtin_trap();
      }
      if (sp.end == sp.begin && !messages[i].content.empty() && sp.begin != 0) __builtin_trap();
    }
  }
  const std::string source(reinterpret_cast<const char*>(data), size);
  // One vocabulary with every format's markup as control tokens, one with
  // ChatML's only.
  static const hearth::tok::VocabData* const kVocabs = [] {
    auto* v = new hearth::tok::VocabData[2];
    v[0].tokens = {"<s>",          "</s>",       "<start_of_turn>",     "<end_of_turn>",
                   "<|im_start|>", "<|im_end|>", "<|start_header_id|>", "<|end_header_id|>",
                   "<|eot_id|>"};
    v[1].tokens = {"<|im_start|>", "<|im_end|>", "<start_of_turn>"};
    for (int i = 0; i < 2; ++i) v[i].token_types.assign(v[i].tokens.size(), 3);
    v[1].token_types[2] = 1;  // present, but a normal token
    return v;
  }();
  for (const char* arch : {"", "llama", "qwen2", "gemma3", "unknown"}) {
    for (int v = 0; v < 2; ++v) {
      auto fmt = hearth::chat::DetectFormat(source, arch, kVocabs[v]);
      if (fmt.ok()) (void)hearth::chat::Render(*fmt, messages, gen);
    }
  }
  return 0;
}
