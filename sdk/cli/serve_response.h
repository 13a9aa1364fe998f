// serve_response.h — the JSON `hearth serve` answers with, in OpenAI's
// shapes: whole responses, streamed chunks (server-sent events) and
// logprobs, for both /v1/chat/completions and /v1/completions. Pure
// formatting: the text and tokens come from cli_serve.cc.
#ifndef HEARTH_SDK_CLI_SERVE_RESPONSE_H_
#define HEARTH_SDK_CLI_SERVE_RESPONSE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "serve_request.h"

namespace hearth::cli {

// One generated token's bytes (its own detokenized piece, maybe a partial
// UTF-8 sequence) and log-probability, with the alternatives asked for.
struct TokenLogprob {
  std::string piece;
  float logprob = 0.0f;
  std::vector<std::pair<std::string, float>> top;
};

struct ChoiceResult {
  std::string text;
  std::string reasoning;  // chat: the <think> part, when the server splits it off
  std::vector<TokenLogprob> logprobs;
  std::string finish_reason;  // "stop" or "length"
};

struct Usage {
  uint64_t prompt_tokens = 0;
  uint64_t cached_tokens = 0;
  uint64_t completion_tokens = 0;
};

// What every object of one response repeats.
struct ResponseMeta {
  ServeKind kind = ServeKind::kChat;
  std::string id;  // "chatcmpl-..." or "cmpl-..."
  int64_t created = 0;
  std::string model;
  bool logprobs = false;
};

// The whole non-streamed response.
std::string ResponseJson(const ResponseMeta& meta, const std::vector<ChoiceResult>& choices,
                         const Usage& usage);

// One "data: {...}\n\n" event of a stream for choice `index`: the
// assistant's role (chat only, first), released text with the logprobs of
// the token that released it (`lp` may be NULL), or the end with
// `finish_reason` (non-empty). `text_offset`: the token's byte offset in
// the generated text (completions' logprobs).
std::string RoleChunk(const ResponseMeta& meta, size_t index);
// `reasoning` (chat only) goes out as delta.reasoning_content.
std::string TextChunk(const ResponseMeta& meta, size_t index, const std::string& text,
                      const TokenLogprob* lp, size_t text_offset,
                      const std::string& reasoning = std::string());
std::string FinishChunk(const ResponseMeta& meta, size_t index, const std::string& finish_reason);
// The last chunk before [DONE] with stream_options.include_usage.
std::string UsageChunk(const ResponseMeta& meta, const Usage& usage);
// An error inside a stream (the status line has gone out already).
std::string ErrorChunk(const ServeError& error);
// Splits a chat reply that starts with a <think>...</think> block (DeepSeek-R1
// and its distills) into reasoning and content as text arrives, for
// `reasoning_content`. What could still be the start of a tag is held back;
// tags are ASCII, so every piece it gives out is valid UTF-8 when its input
// is. A reply that does not start with <think> (after blank space) is all
// content.
class ReasoningSplitter {
 public:
  // Appends what `text` decides to `reasoning` and `content`.
  void Feed(std::string_view text, std::string* reasoning, std::string* content);
  // The end of the reply: what was held back.
  void Finish(std::string* reasoning, std::string* content);

 private:
  enum class State { kStart, kThinking, kContent };
  void Content(std::string_view text, std::string* content);
  State state_ = State::kStart;
  std::string held_;
  bool content_started_ = false;
};

// GET /v1/models: the base and BASE+NAME for each adapter.
std::string ModelsJson(const ServeCatalog& catalog, int64_t created);
// GET /v1/models/ID: one of them, or "" when `id` is none of them.
std::string ModelJson(const ServeCatalog& catalog, const std::string& id, int64_t created);

inline constexpr char kDoneEvent[] = "data: [DONE]\n\n";

}  // namespace hearth::cli

#endif  // HEARTH_SDK_CLI_SERVE_RESPONSE_H_
