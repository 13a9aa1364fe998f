// dataset.cc — JSONL records to token ids and loss masks.
//
// Where the trained part of an example starts, the text is cut (see
// tok::TextLayout): at inference the prompt ends there and generation starts
// new tokens, so training on ids that merged across that point would teach
// the model a split it never sees. Markup outside message contents is parsed
// for control tokens; contents, prompts, completions and texts never are, so
// a record cannot smuggle in an end-of-turn.
#include "sdk/src/train/dataset.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "sdk/src/chat/chat_template.h"
#include "sdk/src/chat/chat_tokens.h"
#include "sdk/src/common/status.h"
#include "sdk/src/format/mapped_file.h"
#include "sdk/src/format/strict_json.h"

namespace hearth::train {
namespace {

using Json = nlohmann::ordered_json;
using Region = std::pair<size_t, size_t>;  // trained bytes [first, second)

// A record reduced to one text: what may hold control tokens, and what is trained.
struct Layout {
  std::string text;
  tok::TextLayout tok;
  std::vector<Region> trained;
  bool append_eos = false;  // text and completion records: the model learns to stop
};

// Errors of one record: "<file>:<line>: <message>".
class RecordError {
 public:
  RecordError(const std::string& name, int64_t line) : where_(absl::StrCat(name, ":", line)) {}
  absl::Status operator()(const std::string& message) const {
    return absl::InvalidArgumentError(absl::StrCat(where_, ": ", message));
  }
  const std::string& where() const { return where_; }

 private:
  std::string where_;
};

// object[key] as a string. `owner` names the object in errors: "" for the
// record itself ("'text' is …"), else e.g. "messages[2]" ("messages[2].content
// is …", "messages[2] has no 'content'").
absl::StatusOr<std::string> StringField(const Json& object, const char* key,
                                        const std::string& owner, const RecordError& error) {
  if (!object.contains(key)) {
    return error(absl::StrCat(owner.empty() ? "the record" : owner, " has no '", key, "'"));
  }
  const Json& v = object.at(key);
  if (!v.is_string()) {
    const std::string name =
        owner.empty() ? absl::StrCat("'", key, "'") : absl::StrCat(owner, ".", key);
    return error(absl::StrCat(name, " is ", format::JsonKind(v), ", expected a string"));
  }
  return v.get<std::string>();
}

size_t TrimTrailingSpace(const std::string& s, size_t begin, size_t end) {
  while (end > begin &&
         (s[end - 1] == '\n' || s[end - 1] == ' ' || s[end - 1] == '\r' || s[end - 1] == '\t')) {
    --end;
  }
  return end;
}

absl::StatusOr<std::vector<chat::Message>> ReadMessages(const Json& list,
                                                        const RecordError& error) {
  if (!list.is_array()) {
    return error(absl::StrCat("'messages' is ", format::JsonKind(list), ", expected an array"));
  }
  if (list.empty()) return error("'messages' is empty");
  std::vector<chat::Message> messages;
  for (size_t i = 0; i < list.size(); ++i) {
    const Json& m = list[i];
    const std::string where = absl::StrCat("messages[", i, "]");
    if (!m.is_object()) {
      return error(absl::StrCat(where, " is ", format::JsonKind(m), ", expected an object"));
    }
    for (const auto& [key, value] : m.items()) {
      if (key != "role" && key != "content") {
        // tool_calls, name, …: silently dropping them would train on another conversation.
        return error(absl::StrCat(where, " has '", format::ShowText(key),
                                  "', which hearth does not train on (a message has 'role' and "
                                  "'content')"));
      }
    }
    chat::Message msg;
    HEARTH_ASSIGN_OR_RETURN(msg.role, StringField(m, "role", where, error));
    HEARTH_ASSIGN_OR_RETURN(msg.content, StringField(m, "content", where, error));
    messages.push_back(std::move(msg));
  }
  return messages;
}

absl::StatusOr<Layout> LayoutMessages(const std::vector<chat::Message>& messages,
                                      const DatasetOptions& options, const RecordError& error) {
  if (options.chat_format.empty()) {
    return error(absl::StrCat("a 'messages' record needs the model's chat format: ",
                              options.no_chat_format_reason));
  }
  Layout out;
  std::vector<chat::ContentSpan> spans;
  std::vector<chat::TurnSpan> turns;
  auto full = chat::Render(options.chat_format, messages, false, &spans, &turns);
  if (!full.ok()) return error(std::string(full.status().message()));
  out.text = std::move(*full);
  out.tok = chat::MarkupLayout(out.text.size(), std::move(spans));

  // An assistant turn trains on what the model would write after the prompt
  // that precedes it: from the end of that prompt (with the assistant's
  // opening) to the end of the turn, its closing marker included. The
  // renderer reports both, so the conversation is rendered once.
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!chat::IsAssistantRole(messages[i].role)) continue;
    if (i == 0) {
      return error(
          "messages[0] is the assistant's: a conversation to train on starts with a "
          "user (or system) message");
    }
    const chat::TurnSpan& turn = turns[i];
    if (turn.open > turn.close || turn.close > out.text.size()) {
      return error(absl::StrCat("messages[", i, "]: the '", options.chat_format,
                                "' format does not render this turn as a continuation of the "
                                "ones before it, so hearth cannot tell what to train"));
    }
    const size_t end = TrimTrailingSpace(out.text, turn.open, turn.close);
    if (!out.trained.empty() && turn.open < out.trained.back().second) {
      return error(absl::StrCat("messages[", i, "]: this turn overlaps the previous one"));
    }
    out.trained.emplace_back(turn.open, end);
  }
  if (out.trained.empty()) {
    return error("'messages' has no assistant message: nothing to train on");
  }
  return out;
}

absl::StatusOr<Layout> LayoutRecord(const Json& record, const DatasetOptions& options,
                                    const RecordError& error, RecordKind* kind) {
  if (!record.is_object()) {
    return error(absl::StrCat("a record is ", format::JsonKind(record), ", expected an object"));
  }
  const bool text = record.contains("text");
  const bool prompt = record.contains("prompt");
  const bool completion = record.contains("completion");
  const bool messages = record.contains("messages");
  if (int(text) + int(prompt || completion) + int(messages) != 1) {
    return error(text || prompt || completion || messages
                     ? "a record has one of 'text', 'prompt' + 'completion' or 'messages', "
                       "not several"
                     : "a record needs 'text', 'prompt' + 'completion' or 'messages'");
  }
  Layout out;
  if (text) {
    *kind = RecordKind::kText;
    HEARTH_ASSIGN_OR_RETURN(out.text, StringField(record, "text", "", error));
    if (out.text.empty()) return error("'text' is empty");
    out.trained.emplace_back(0, out.text.size());
    out.append_eos = true;
    return out;
  }
  if (prompt || completion) {
    *kind = RecordKind::kPromptCompletion;
    if (!prompt || !completion) {
      return error(prompt ? "'prompt' without 'completion'" : "'completion' without 'prompt'");
    }
    HEARTH_ASSIGN_OR_RETURN(std::string p, StringField(record, "prompt", "", error));
    HEARTH_ASSIGN_OR_RETURN(std::string c, StringField(record, "completion", "", error));
    if (c.empty()) return error("'completion' is empty: nothing to train on");
    out.text = p + c;
    out.trained.emplace_back(p.size(), out.text.size());
    out.append_eos = true;
    return out;
  }
  *kind = RecordKind::kMessages;
  HEARTH_ASSIGN_OR_RETURN(std::vector<chat::Message> list,
                          ReadMessages(record.at("messages"), error));
  return LayoutMessages(list, options, error);
}

// What Tokenize gives: the whole example's ids, or, for one over the limit,
// the ids of a prefix of its text that already holds more than the limit.
struct Encoded {
  Example ex;
  bool whole = true;
  size_t bytes_encoded = 0, text_bytes = 0;
};

// Marks the ids of each trained region; a region whose cut is past the ids
// (a prefix was encoded) runs to the end.
void MarkTrained(const std::vector<Region>& trained, const std::vector<size_t>& ids_at_cut,
                 Example* ex) {
  ex->trained.assign(ex->tokens.size(), 0);
  auto at = [&](size_t cut) {
    return std::min(cut < ids_at_cut.size() ? ids_at_cut[cut] : ex->tokens.size(),
                    ex->tokens.size());
  };
  for (size_t k = 0; k < trained.size(); ++k) {
    std::fill(ex->trained.begin() + static_cast<std::ptrdiff_t>(at(2 * k)),
              ex->trained.begin() + static_cast<std::ptrdiff_t>(at(2 * k + 1)), 1);
  }
}

// The ids of the text up to a cut are the first ids of the whole text: no id
// spans a cut, and nothing after one changes how the text before it encodes
// (see tok::TextLayout). So a record far over the limit (40,000 chat
// messages took 45 s; issue 17) is found, and truncated, by encoding
// prefixes ending at cuts, each at least twice the last, until one has more
// ids than the limit: the work is linear in what the limit keeps, not in the
// record. An example within the limit is encoded once, whole.
absl::StatusOr<Encoded> Tokenize(Layout layout, const tok::Tokenizer& tok, int64_t max_tokens,
                                 const RecordError& error) {
  std::vector<size_t>& cuts = layout.tok.cuts;
  for (const Region& r : layout.trained) {
    cuts.push_back(r.first);
    cuts.push_back(r.second);
  }
  const std::string_view text = layout.text;
  const size_t limit = static_cast<size_t>(max_tokens);
  Encoded out;
  out.text_bytes = text.size();
  std::vector<size_t> ids_at_cut;
  // A generous first guess of the bytes `limit` ids cover.
  size_t budget = limit > text.size() / 8 ? text.size() : 8 * (limit + 2);
  for (;;) {
    const auto next = std::lower_bound(cuts.begin(), cuts.end(), budget);
    if (next == cuts.end() || *next >= text.size()) break;
    const size_t end = *next;
    tok::TextLayout prefix;
    prefix.cuts.assign(cuts.begin(), next + 1);
    for (const auto& [first, second] : layout.tok.special) {
      if (first < end) prefix.special.emplace_back(first, std::min(second, end));
    }
    auto ids = tok.EncodeLayout(text.substr(0, end), /*add_special=*/true, prefix, &ids_at_cut);
    if (!ids.ok()) return error(std::string(ids.status().message()));
    if (tok.vocab().add_eos && !ids->empty()) ids->pop_back();  // the whole text's comes last
    if (ids->size() > limit) {
      out.ex.tokens = std::move(*ids);
      MarkTrained(layout.trained, ids_at_cut, &out.ex);
      out.ex.trained[0] = 0;
      out.whole = false;
      out.bytes_encoded = end;
      return out;
    }
    budget = 2 * end;
  }

  auto ids = tok.EncodeLayout(text, /*add_special=*/true, layout.tok, &ids_at_cut);
  if (!ids.ok()) return error(std::string(ids.status().message()));
  Example& ex = out.ex;
  ex.tokens = std::move(*ids);
  MarkTrained(layout.trained, ids_at_cut, &ex);
  const int32_t eos = tok.vocab().eos;
  if (layout.append_eos && eos >= 0) {
    if (ex.tokens.empty() || ex.tokens.back() != eos) {
      ex.tokens.push_back(eos);
      ex.trained.push_back(1);
    } else {
      ex.trained.back() = 1;  // the vocabulary adds EOS itself
    }
  }
  if (!ex.trained.empty()) ex.trained[0] = 0;
  out.bytes_encoded = text.size();
  return out;
}

int64_t CountTrained(const Example& ex) {
  return std::count(ex.trained.begin(), ex.trained.end(), uint8_t{1});
}

}  // namespace

absl::StatusOr<Dataset> Dataset::Load(const std::string& path, const tok::Tokenizer& tok,
                                      const DatasetOptions& options) {
  HEARTH_ASSIGN_OR_RETURN(format::MappedFile file, format::MappedFile::Map(path));
  return Parse(std::string_view(reinterpret_cast<const char*>(file.data()), file.size()), path, tok,
               options);
}

absl::StatusOr<Dataset> Dataset::Parse(std::string_view jsonl, std::string_view name_view,
                                       const tok::Tokenizer& tok, const DatasetOptions& options) {
  const std::string name(name_view);
  if (options.max_tokens <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": the longest example must be at least 1 token, got ", options.max_tokens));
  }
  if (jsonl.substr(0, 3) == "\xEF\xBB\xBF") jsonl.remove_prefix(3);  // a UTF-8 byte order mark
  Dataset d;
  int64_t line = 0;
  while (!jsonl.empty()) {
    ++line;
    const size_t nl = jsonl.find('\n');
    std::string_view text = jsonl.substr(0, nl);
    jsonl.remove_prefix(nl == std::string_view::npos ? jsonl.size() : nl + 1);
    if (text.find_first_not_of(" \t\r") == std::string_view::npos) continue;  // blank
    const RecordError error(name, line);
    auto record = format::ParseStrictJson(text, error.where());
    if (!record.ok()) return record.status();
    const format::JsonReleaser release_record(&record);
    RecordKind kind = RecordKind::kText;
    HEARTH_ASSIGN_OR_RETURN(Layout layout, LayoutRecord(*record, options, error, &kind));
    HEARTH_ASSIGN_OR_RETURN(Encoded encoded,
                            Tokenize(std::move(layout), tok, options.max_tokens, error));
    Example& ex = encoded.ex;
    ex.line = line;
    ex.kind = kind;
    const int64_t n = static_cast<int64_t>(ex.tokens.size());
    if (n > options.max_tokens) {
      if (!options.truncate) {
        return error(absl::StrCat(
            "the example is ",
            encoded.whole
                ? absl::StrCat(n, " tokens")
                : absl::StrCat("at least ", n, " tokens (in its first ", encoded.bytes_encoded,
                               " of ", encoded.text_bytes, " bytes)"),
            ", more than the limit of ", options.max_tokens,
            "; shorten it, raise the limit or truncate"));
      }
      ex.tokens.resize(static_cast<size_t>(options.max_tokens));
      ex.trained.resize(static_cast<size_t>(options.max_tokens));
      ex.truncated = true;
    }
    const int64_t trained = CountTrained(ex);
    if (trained == 0) {
      return error(ex.truncated
                       ? absl::StrCat("nothing is left to train after truncation to ",
                                      options.max_tokens, " tokens (the prompt is longer)")
                       : std::string("nothing to train on (the trained part has no tokens)"));
    }
    DatasetStats& s = d.stats_;
    ++s.n_examples;
    s.n_tokens += static_cast<int64_t>(ex.tokens.size());
    s.n_trained += trained;
    s.longest = std::max<int64_t>(s.longest, static_cast<int64_t>(ex.tokens.size()));
    s.n_truncated += ex.truncated ? 1 : 0;
    ++s.by_kind[static_cast<int>(kind)];
    d.examples_.push_back(std::move(ex));
  }
  if (d.examples_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": no records (the file is empty)"));
  }
  return d;
}

}  // namespace hearth::train
