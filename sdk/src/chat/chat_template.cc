// chat_template.cc — the chat formats hearth knows, one function each, and
// the table that names them. Adding a format: one function and one row.
#include "sdk/src/chat/chat_template.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

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

// DeepSeek-R1's markup: <｜User｜>, <｜Assistant｜> and <｜end▁of▁sentence｜>
// (fullwidth vertical bars U+FF5C, U+2581 between the words). Split literals:
// a hex escape would otherwise swallow the letters after it.
constexpr char kDsUser[] =
    "<\xef\xbd\x9c"
    "User\xef\xbd\x9c>";
constexpr char kDsAssistant[] =
    "<\xef\xbd\x9c"
    "Assistant\xef\xbd\x9c>";
constexpr char kDsEos[] =
    "<\xef\xbd\x9c"
    "end\xe2\x96\x81"
    "of\xe2\x96\x81"
    "sentence\xef\xbd\x9c>";

// DeepSeek-R1 and its distills (Qwen2 and Llama bodies): the system prompt
// first with no markup, then <｜User｜> and <｜Assistant｜> turns, an
// assistant turn closed by the end-of-sentence token. The reply opens with
// the model's own <think> … </think> reasoning (the generation prompt does
// not force it open: then every turn span is where prefix renderings end).
absl::StatusOr<std::string> RenderDeepseekR1(const std::vector<Message>& m, bool gen,
                                             Spans* spans) {
  std::string out;
  bool seen_turn = false;
  for (size_t i = 0; i < m.size(); ++i) {
    auto role = CanonicalRole(m, i);
    if (!role.ok()) return role.status();
    if (*role == "system") {
      if (seen_turn) {
        return absl::InvalidArgumentError(
            absl::StrCat("message ", i, ": deepseek-r1 takes system messages only first"));
      }
      PutContent(m, i, &out, spans);
      continue;
    }
    seen_turn = true;
    if (*role == "user") {
      out.append(kDsUser);
      PutContent(m, i, &out, spans);
    } else {
      out.append(kDsAssistant);
      spans->turn[i].open = out.size();
      PutContent(m, i, &out, spans);
      out.append(kDsEos);
      spans->turn[i].close = out.size();
    }
  }
  if (gen) out.append(kDsAssistant);
  return out;
}

struct Format {
  const char* name;
  const char* marker;  // text of tokenizer.chat_template that identifies it
  const char* arch;    // architecture that uses it when the file has no template
  Renderer render;
  // What the markup writes that must be a control token of the vocabulary,
  // so that it encodes as one id (Llama 2's [INST] is plain text there).
  const char* control[3];
};

constexpr Format kFormats[] = {
    {"gemma", "<start_of_turn>", "gemma3", RenderGemma, {"<start_of_turn>", "<end_of_turn>"}},
    {"chatml", "<|im_start|>", "qwen2", RenderChatml, {"<|im_start|>", "<|im_end|>"}},
    {"llama3",
     "<|start_header_id|>",
     "",
     RenderLlama3,
     {"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}},
    {"llama2", "[INST]", "llama", RenderLlama2, {"<s>", "</s>"}},
    {"deepseek-r1", kDsAssistant, "", RenderDeepseekR1, {kDsUser, kDsAssistant, kDsEos}},
};

// The template without its Jinja comments ({# ... #}, one left open runs to
// the end): nothing there is ever written, so a marker named in one says
// nothing about the format.
std::string WithoutComments(const std::string& source) {
  std::string out;
  size_t at = 0;
  while (at < source.size()) {
    const size_t open = source.find("{#", at);
    out.append(source, at, open == std::string::npos ? std::string::npos : open - at);
    if (open == std::string::npos) break;
    const size_t close = source.find("#}", open + 2);
    at = close == std::string::npos ? source.size() : close + 2;
  }
  return out;
}

// "" if every markup token of `f` is a control token of `vocab`, else why not.
std::string MissingControlToken(const Format& f, const tok::VocabData& vocab) {
  for (const char* text : f.control) {
    if (text == nullptr) break;
    const auto it = std::find(vocab.tokens.begin(), vocab.tokens.end(), text);
    if (it == vocab.tokens.end()) {
      return absl::StrCat("'", text, "' is not in the vocabulary");
    }
    const size_t id = static_cast<size_t>(it - vocab.tokens.begin());
    const int32_t type = id < vocab.token_types.size() ? vocab.token_types[id] : tok::kNormal;
    if (type != tok::kControl) {
      return absl::StrCat("'", text, "' (id ", id, ") is a ",
                          type == tok::kUserDefined ? "user-defined"
                          : type == tok::kUnknown   ? "unknown"
                          : type == tok::kUnused    ? "unused"
                          : type == tok::kByte      ? "byte"
                                                    : "normal",
                          " token of the vocabulary, not a control token");
    }
  }
  return "";
}

}  // namespace

bool IsAssistantRole(const std::string& role) { return role == "assistant" || role == "model"; }

absl::StatusOr<std::string> DetectFormat(const std::string& source, const std::string& arch,
                                         const tok::VocabData& vocab) {
  const std::string written = WithoutComments(source);
  std::vector<const Format*> candidates;
  for (const Format& f : kFormats) {
    if (written.find(f.marker) != std::string::npos) candidates.push_back(&f);
  }
  const bool from_template = !candidates.empty();
  if (!from_template) {
    for (const Format& f : kFormats) {
      if (arch == f.arch) candidates.push_back(&f);
    }
  }
  if (candidates.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "no known chat format for this model (architecture '", arch, "'",
        source.empty() ? ", no tokenizer.chat_template" : ", unrecognized tokenizer.chat_template",
        ")"));
  }
  std::vector<std::string> why;
  for (const Format* f : candidates) {
    std::string missing = MissingControlToken(*f, vocab);
    if (missing.empty()) return std::string(f->name);
    why.push_back(absl::StrCat(
        from_template ? absl::StrCat("tokenizer.chat_template writes ", f->marker, " (the '",
                                     f->name, "' format)")
                      : absl::StrCat("architecture '", arch, "' uses the '", f->name, "' format"),
        ", but ", missing));
  }
  return absl::NotFoundError(
      absl::StrCat("no chat format fits this model: ", absl::StrJoin(why, "; "),
                   " (its markup would be encoded as plain text)"));
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
