// serve_response.cc — OpenAI-shaped JSON for `hearth serve` (serve_response.h).
#include "serve_response.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace hearth::cli {
namespace {

using Json = nlohmann::json;

// A token's piece may be half a code point: the string field gets U+FFFD
// for what is not valid UTF-8 (OpenAI does the same) and `bytes` is exact.
std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Json Bytes(const std::string& piece) {
  Json out = Json::array();
  for (unsigned char c : piece) out.push_back(c);
  return out;
}

// The chat API's entry: {"token", "logprob", "bytes", "top_logprobs": [...]}.
Json ChatEntry(const TokenLogprob& lp) {
  Json top = Json::array();
  for (const auto& [piece, logprob] : lp.top) {
    top.push_back({{"token", piece}, {"logprob", logprob}, {"bytes", Bytes(piece)}});
  }
  return {{"token", lp.piece},
          {"logprob", lp.logprob},
          {"bytes", Bytes(lp.piece)},
          {"top_logprobs", top}};
}

Json ChatLogprobs(const TokenLogprob* begin, const TokenLogprob* end) {
  Json content = Json::array();
  for (const TokenLogprob* lp = begin; lp != end; ++lp) content.push_back(ChatEntry(*lp));
  return {{"content", content}, {"refusal", nullptr}};
}

// The completions API's: parallel arrays, text_offset counted in bytes of
// the generated text from `offset`.
Json CompletionLogprobs(const TokenLogprob* begin, const TokenLogprob* end, size_t offset) {
  Json tokens = Json::array(), logprobs = Json::array(), tops = Json::array(),
       offsets = Json::array();
  for (const TokenLogprob* lp = begin; lp != end; ++lp) {
    tokens.push_back(lp->piece);
    logprobs.push_back(lp->logprob);
    Json top = Json::object();
    for (const auto& [piece, logprob] : lp->top) top[piece] = logprob;
    tops.push_back(top);
    offsets.push_back(offset);
    offset += lp->piece.size();
  }
  return {{"tokens", tokens},
          {"token_logprobs", logprobs},
          {"top_logprobs", tops},
          {"text_offset", offsets}};
}

Json UsageObject(const Usage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", usage.cached_tokens}}}};
}

Json Head(const ResponseMeta& meta, bool chunk) {
  const char* object = meta.kind == ServeKind::kChat
                           ? (chunk ? "chat.completion.chunk" : "chat.completion")
                           : "text_completion";
  return {{"id", meta.id},
          {"object", object},
          {"created", meta.created},
          {"model", meta.model},
          {"system_fingerprint", "hearth"}};
}

std::string Event(const Json& j) { return "data: " + Dump(j) + "\n\n"; }

// A streamed chunk carrying one choice.
std::string ChoiceChunk(const ResponseMeta& meta, Json choice) {
  Json j = Head(meta, true);
  j["choices"] = Json::array({std::move(choice)});
  return Event(j);
}

}  // namespace

std::string ResponseJson(const ResponseMeta& meta, const std::vector<ChoiceResult>& choices,
                         const Usage& usage) {
  Json j = Head(meta, false);
  Json list = Json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceResult& c = choices[i];
    const TokenLogprob* b = c.logprobs.data();
    const TokenLogprob* e = b + c.logprobs.size();
    Json choice = {{"index", i}, {"finish_reason", c.finish_reason}};
    if (meta.kind == ServeKind::kChat) {
      choice["message"] = {{"role", "assistant"}, {"content", c.text}, {"refusal", nullptr}};
      if (!c.reasoning.empty()) choice["message"]["reasoning_content"] = c.reasoning;
      choice["logprobs"] = meta.logprobs ? ChatLogprobs(b, e) : Json(nullptr);
    } else {
      choice["text"] = c.text;
      choice["logprobs"] = meta.logprobs ? CompletionLogprobs(b, e, 0) : Json(nullptr);
    }
    list.push_back(std::move(choice));
  }
  j["choices"] = std::move(list);
  j["usage"] = UsageObject(usage);
  return Dump(j);
}

std::string RoleChunk(const ResponseMeta& meta, size_t index) {
  return ChoiceChunk(meta, {{"index", index},
                            {"delta", {{"role", "assistant"}, {"content", ""}}},
                            {"logprobs", nullptr},
                            {"finish_reason", nullptr}});
}

std::string TextChunk(const ResponseMeta& meta, size_t index, const std::string& text,
                      const TokenLogprob* lp, size_t text_offset, const std::string& reasoning) {
  Json choice = {{"index", index}, {"finish_reason", nullptr}};
  if (meta.kind == ServeKind::kChat) {
    choice["delta"] = Json::object();
    if (!reasoning.empty()) choice["delta"]["reasoning_content"] = reasoning;
    if (!text.empty() || reasoning.empty()) choice["delta"]["content"] = text;
    choice["logprobs"] = lp != nullptr ? ChatLogprobs(lp, lp + 1) : Json(nullptr);
  } else {
    choice["text"] = text;
    choice["logprobs"] =
        lp != nullptr ? CompletionLogprobs(lp, lp + 1, text_offset) : Json(nullptr);
  }
  return ChoiceChunk(meta, std::move(choice));
}

std::string FinishChunk(const ResponseMeta& meta, size_t index, const std::string& finish_reason) {
  Json choice = {{"index", index}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
  if (meta.kind == ServeKind::kChat) {
    choice["delta"] = Json::object();
  } else {
    choice["text"] = "";
  }
  return ChoiceChunk(meta, std::move(choice));
}

std::string UsageChunk(const ResponseMeta& meta, const Usage& usage) {
  Json j = Head(meta, true);
  j["choices"] = Json::array();
  j["usage"] = UsageObject(usage);
  return Event(j);
}

namespace {
constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";

// The length of the longest end of `text` that `tag` starts with.
size_t PartialTagAtEnd(std::string_view text, std::string_view tag) {
  for (size_t n = std::min(text.size(), tag.size() - 1); n > 0; --n) {
    if (text.substr(text.size() - n) == tag.substr(0, n)) return n;
  }
  return 0;
}

bool IsBlank(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }
}  // namespace

void ReasoningSplitter::Content(std::string_view text, std::string* content) {
  // The blank line between </think> and the answer is not the answer's.
  if (!content_started_) {
    while (!text.empty() && IsBlank(text.front())) text.remove_prefix(1);
    if (text.empty()) return;
    content_started_ = true;
  }
  content->append(text.data(), text.size());
}

void ReasoningSplitter::Feed(std::string_view text, std::string* reasoning, std::string* content) {
  if (state_ == State::kContent) {
    Content(text, content);
    return;
  }
  held_.append(text.data(), text.size());
  if (state_ == State::kStart) {
    size_t start = 0;
    while (start < held_.size() && IsBlank(held_[start])) ++start;
    const std::string_view rest = std::string_view(held_).substr(start);
    if (rest.size() < kThinkOpen.size() && kThinkOpen.substr(0, rest.size()) == rest) return;
    if (rest.substr(0, kThinkOpen.size()) != kThinkOpen) {
      state_ = State::kContent;
      content_started_ = true;  // an ordinary reply keeps its leading blanks
      std::string all;
      all.swap(held_);
      Content(all, content);
      return;
    }
    held_.erase(0, start + kThinkOpen.size());
    state_ = State::kThinking;
  }
  const size_t close = held_.find(kThinkClose);
  if (close != std::string::npos) {
    reasoning->append(held_, 0, close);
    std::string after = held_.substr(close + kThinkClose.size());
    held_.clear();
    state_ = State::kContent;
    Content(after, content);
    return;
  }
  const size_t keep = PartialTagAtEnd(held_, kThinkClose);
  reasoning->append(held_, 0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
}

void ReasoningSplitter::Finish(std::string* reasoning, std::string* content) {
  if (state_ == State::kThinking) {
    reasoning->append(held_);
  } else if (!held_.empty()) {
    content->append(held_);
  }
  held_.clear();
}

namespace {
Json ModelObject(const std::string& id, int64_t created) {
  return {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "hearth"}};
}
}  // namespace

std::string ModelsJson(const ServeCatalog& catalog, int64_t created) {
  Json data = Json::array();
  data.push_back(ModelObject(catalog.base, created));
  for (const std::string& a : catalog.adapters) {
    data.push_back(ModelObject(catalog.base + "+" + a, created));
  }
  return Dump({{"object", "list"}, {"data", data}});
}

std::string ModelJson(const ServeCatalog& catalog, const std::string& id, int64_t created) {
  bool known = id == catalog.base;
  for (const std::string& a : catalog.adapters) known = known || id == catalog.base + "+" + a;
  return known ? Dump(ModelObject(id, created)) : std::string();
}

std::string ErrorChunk(const ServeError& error) {
  return "data: " + ServeErrorJson(error) + "\n\n";
}

}  // namespace hearth::cli
