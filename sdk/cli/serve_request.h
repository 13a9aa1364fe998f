// serve_request.h — `hearth serve`'s request parser: the JSON body of an
// OpenAI-style /v1/chat/completions or /v1/completions request becomes one
// plain ServeRequest, or an OpenAI-shaped error (status, message, type,
// param, code). It knows nothing of hearth.h, so the fuzz target
// (fuzz/fuzz_serve_request.cc) links it alone; cli_serve.cc turns a
// ServeRequest into hearth_engine_submit calls.
#ifndef HEARTH_SDK_CLI_SERVE_REQUEST_H_
#define HEARTH_SDK_CLI_SERVE_REQUEST_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hearth::cli {

// The error body {"error": {"message", "type", "param", "code"}} and its
// HTTP status. `param` and `code` are empty when they do not apply (written
// as null).
struct ServeError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;
  std::string code;
};
// The JSON text of `error` (valid UTF-8 whatever the message holds).
std::string ServeErrorJson(const ServeError& error);

// What the server offers: the base model's id and one id per --lora name
// ("BASE+NAME"). The adapter index is the position in `adapters`.
struct ServeCatalog {
  std::string base;
  std::vector<std::string> adapters;
  // The scale each adapter gets when a request names it through `model`
  // (default 1); the `adapters` field gives its own.
  std::vector<float> default_scales;
};

// The server's limits on what one request may ask.
struct ServeLimits {
  int64_t max_tokens = 4096;  // max_tokens above it is a 400
  int64_t max_choices = 16;   // n x prompts
  int64_t max_stop = 16;      // stop strings
  size_t max_stop_len = 256;  // bytes per stop string
};

enum class ServeKind { kChat, kCompletion };

struct ServeMessage {
  std::string role;
  std::string content;
};

// One prompt of a completions request: text, or token ids.
struct ServePrompt {
  std::string text;
  std::vector<int32_t> tokens;
  bool is_tokens = false;
};

struct ServeRequest {
  ServeKind kind = ServeKind::kChat;
  std::string model;                   // as the client named it (echoed back)
  std::vector<ServeMessage> messages;  // chat
  std::vector<ServePrompt> prompts;    // completions: one or more
  int64_t n = 1;                       // choices per prompt
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  // Tokens to generate; -1 = the server's limit (the request's context bounds it too).
  int64_t max_tokens = -1;
  float temperature = 1.0f;
  float top_p = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  bool has_seed = false;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  bool logprobs = false;
  int64_t top_logprobs = 0;
  // (index into ServeCatalog::adapters, scale), from `model` or `adapters`.
  std::vector<std::pair<uint32_t, float>> adapters;
};

// Parses `body` for `kind`. On failure returns false with `error` set (400,
// or 404 for an unknown model). Never throws, whatever `body` holds.
bool ParseServeRequest(std::string_view body, ServeKind kind, const ServeCatalog& catalog,
                       const ServeLimits& limits, ServeRequest* out, ServeError* error);

}  // namespace hearth::cli

#endif  // HEARTH_SDK_CLI_SERVE_REQUEST_H_
