// chat_template.cc — the chat formats hearth knows, one function each, and
// the table that names them. Adding a format: one function and one row.
#include "sdk/src/chat/chat_template.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace hearth::chat {
namespace {

// Where each message's content and turn went in the output (see Render).
struct Spans {
  std::vector<ContentSpan> content;
  std::vector<TurnSpan> turn;
};
using Renderer = absl::StatusOr<std::string> (*)(const std::vector<Message>&, bool, Spans*);

absl::StatusOr<std::string> CanonicalRole(const std::vector<Message>& m, size_t i) {
  const std::string& r = m[i].role;
  if (r == "system" || r == "user") return r;
  if (IsAssistantRole(r)) return std::string("assistant");
  return absl::InvalidArgumentError(absl::StrCat("message ", i, ": unknown role '", r,
                                                 "' (use system, user or assistant)"));
}

// Appends message i's content to `out` and notes its span.
void PutContent(const std::vector<Message>& m, size_t i, std::string* out, Spans* spans) {
  spans->content[i].begin = out->size();
  out->append(m[i].content);
  spans->content[i].end = out->size();
}

// Gemma: user/model turns; no system role, so system messages are put in
// front of the first user turn, as Google's template does.
absl::StatusOr<std::string> RenderGemma(const std::vector<Message>& m, bool gen, Spans* spans) {
  std::string out;
  std::vector<size_t> system;
  bool seen_turn = false;
  for (size_t i = 0; i < m.size(); ++i) {
    auto role = CanonicalRole(m, i);
    if (!role.ok()) return role.status();
    if (*role == "system") {
      if (seen_turn) {
        return absl::InvalidArgumentError(
            absl::StrCat("message ", i, ": gemma takes a system message only first"));
      }
      system.push_back(i);
      continue;
    }
    if (!seen_turn && *role != "user") {
      return absl::InvalidArgumentError(
          absl::StrCat("message ", i, ": gemma conversations start with a user turn"));
    }
    absl::StrAppend(&out, "<start_of_turn>", *role == "user" ? "user" : "model", "\n");
    spans->turn[i].open = out.size();
    if (!seen_turn) {
      for (size_t s : system) {
        PutContent(m, s, &out, spans);
        out.append("\n\n");
      }
    }
    PutContent(m, i, &out, spans);
    out.append("<end_of_turn>\n");
    spans->turn[i].close = out.size();
    seen_turn = true;
  }
  if (gen) absl::StrAppend(&out, "<start_of_turn>model\n");
  return out;
}

absl::StatusOr<std::string> RenderChatml(const std::vector<Message>& m, bool gen, Spans* spans) {
  std::string out;
  for (size_t i = 0; i < m.size(); ++i) {
    auto role = CanonicalRole(m, i);
    if (!role.ok()) return role.status();
    absl::StrAppend(&out, "<|im_start|>", *role, "\n");
    spans->turn[i].open = out.size();
    PutContent(m, i, &out, spans);
    out.append("<|im_end|>\n");
    spans->turn[i].close = out.size();
  }
  if (gen) absl::StrAppend(&out, "<|im_start|>assistant\n");
  return out;
}

absl::StatusOr<std::string> RenderLlama3(const std::vector<Message>& m, bool gen, Spans* spans) {
  std::string out;
  for (size_t i = 0; i < m.size(); ++i) {
    auto role = CanonicalRole(m, i);
    if (!role.ok()) return role.status();
    absl::StrAppend(&out, "<|start_header_id|>", *role, "<|end_header_id|>\n\n");
    spans->turn[i].open = out.size();
    PutContent(m, i, &out, spans);
    out.append("<|eot_id|>");
    spans->turn[i].close = out.size();
  }
  if (gen) absl::StrAppend(&out, "<|start_header_id|>assistant<|end_header_id|>\n\n");
  return out;
}

// Llama 2 / Mistral: [INST] blocks; the system prompt goes inside the first.
absl::StatusOr<std::string> RenderLlama2(const std::vector<Message>& m, bool gen, Spans* spans) {
  std::string out;
  std::vector<size_t> system;
  bool first_user = true, open = false;
  for (size_t i = 0; i < m.size(); ++i) {
    auto role = CanonicalRole(m, i);
    if (!role.ok()) return role.status();
    if (*role == "system") {
      system.push_back(i);
    } else if (*role == "user") {
      absl::StrAppend(&out, first_user ? "" : "<s>", "[INST] ");
      if (first_user) {
        for (size_t s : system) {
          out.append("<<SYS>>\n");
          PutContent(m, s, &out, spans);
          out.append("\n<</SYS>>\n\n");
        }
      }
      PutContent(m, i, &out, spans);
      out.append(" [/INST]");
      first_user = false;
      open = true;
    } else {
      if (!open) {
        return absl::InvalidArgumentError(
            absl::StrCat("message ", i, ": an assistant turn must follow a user turn"));
      }
      spans->turn[i].open = out.size();  // [/INST] opened the turn; the model writes the space
      out.append(" ");
      PutContent(m, i, &out, spans);
      out.append(" </s>");
      spans->turn[i].close = out.size();
      open = false;
    }
  }
  (void)gen;  // the [/INST] already opens the assistant's turn
  return out;
}

struct Format {
  const char* name;
  const char* marker;     // text of tokenizer.chat_template that identifies it
  const char* arch;       // architecture that uses it when the file has no template
  Renderer render;
};

constexpr Format kFormats[] = {
    {"gemma", "<start_of_turn>", "gemma3", RenderGemma},
    {"chatml", "<|im_start|>", "qwen2", RenderChatml},
    {"llama3", "<|start_header_id|>", "", RenderLlama3},
    {"llama2", "[INST]", "llama", RenderLlama2},
};

}  // namespace

bool IsAssistantRole(const std::string& role) { return role == "assistant" || role == "model"; }

absl::StatusOr<std::string> DetectFormat(const std::string& source, const std::string& arch) {
  if (!source.empty()) {
    for (const Format& f : kFormats) {
      if (source.find(f.marker) != std::string::npos) return std::string(f.name);
    }
  }
  for (const Format& f : kFormats) {
    if (arch == f.arch) return std::string(f.name);
  }
  return absl::NotFoundError(absl::StrCat(
      "no known chat format for this model (architecture '", arch, "'",
      source.empty() ? ", no tokenizer.chat_template" : ", unrecognized tokenizer.chat_template",
      ")"));
}

absl::StatusOr<std::string> Render(const std::string& format, const std::vector<Message>& messages,
                                   bool add_generation_prompt,
                                   std::vector<ContentSpan>* content_spans,
                                   std::vector<TurnSpan>* turn_spans) {
  if (messages.empty()) return absl::InvalidArgumentError("no messages to format");
  for (const Format& f : kFormats) {
    if (format != f.name) continue;
    Spans spans;
    spans.content.assign(messages.size(), ContentSpan{});
    spans.turn.assign(messages.size(), TurnSpan{});
    auto text = f.render(messages, add_generation_prompt, &spans);
    if (text.ok()) {
      for (size_t i = 0; i < messages.size(); ++i) {
        if (!IsAssistantRole(messages[i].role)) spans.turn[i] = TurnSpan{};
      }
      if (content_spans != nullptr) *content_spans = std::move(spans.content);
      if (turn_spans != nullptr) *turn_spans = std::move(spans.turn);
    }
    return text;
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown chat format '", format, "'"));
}

}  // namespace hearth::chat
