// chat_template.cc — the chat formats hearth knows, one function each, and
// the table that names them. Adding a format: one function and one row.
#include "sdk/src/chat/chat_template.h"

#include "absl/strings/str_cat.h"

namespace hearth::chat {
namespace {

// Where each message's content went in the output (see Render).
using Spans = std::vector<ContentSpan>;
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
  (*spans)[i].begin = out->size();
  out->append(m[i].content);
  (*spans)[i].end = out->size();
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
    if (!seen_turn) {
      for (size_t s : system) {
        PutContent(m, s, &out, spans);
        out.append("\n\n");
      }
    }
    PutContent(m, i, &out, spans);
    out.append("<end_of_turn>\n");
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
    PutContent(m, i, &out, spans);
    out.append("<|im_end|>\n");
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
    PutContent(m, i, &out, spans);
    out.append("<|eot_id|>");
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
      out.append(" ");
      PutContent(m, i, &out, spans);
      out.append(" </s>");
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

absl::StatusOr<std::string> Render(const std::string& format,
                                   const std::vector<Message>& messages,
                                   bool add_generation_prompt,
                                   std::vector<ContentSpan>* content_spans) {
  if (messages.empty()) return absl::InvalidArgumentError("no messages to format");
  for (const Format& f : kFormats) {
    if (format != f.name) continue;
    Spans local;
    Spans* spans = content_spans != nullptr ? content_spans : &local;
    spans->assign(messages.size(), ContentSpan{});
    return f.render(messages, add_generation_prompt, spans);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown chat format '", format, "'"));
}

}  // namespace hearth::chat
