// fuzz_serve_request.cc — libFuzzer target for `hearth serve`'s request
// parser (sdk/cli/serve_request.cc): any body, for either endpoint, against
// a catalog with two adapters, must come back as a request or as an
// OpenAI-shaped error, never a crash, and what is accepted must hold:
//  - a refusal has a 400 or 404 status and a message, and its JSON is valid;
//  - an accepted request respects the limits it was parsed under (n x
//    prompts, max_tokens, stop strings, top_logprobs), names only known
//    adapters, once each, and carries no NUL where the C ABI reads a C string.
// The first byte picks the endpoint (bit 0) and the max_tokens limit.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>

#include "sdk/cli/serve_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  using hearth::cli::ServeKind;
  const ServeKind kind = (data[0] & 1) ? ServeKind::kCompletion : ServeKind::kChat;
  hearth::cli::ServeLimits limits;
  limits.max_tokens = 1 + (data[0] >> 1) * 64;
  hearth::cli::ServeCatalog catalog;
  catalog.base = "base";
  catalog.adapters = {"cardiology", "triage"};
  catalog.default_scales = {1.0f, 0.5f};
  const std::string_view body(reinterpret_cast<const char*>(data) + 1, size - 1);

  hearth::cli::ServeRequest req;
  hearth::cli::ServeError error;
  if (!hearth::cli::ParseServeRequest(body, kind, catalog, limits, &req, &error)) {
    if (error.status != 400 && error.status != 404) __builtin_trap();
    if (error.message.empty()) __builtin_trap();
    if (!nlohmann::json::accept(hearth::cli::ServeErrorJson(error))) __builtin_trap();
    return 0;
  }
  if (req.kind != kind) __builtin_trap();
  const size_t prompts = kind == ServeKind::kChat ? 1 : req.prompts.size();
  if (prompts == 0 || req.n < 1 || req.n * static_cast<int64_t>(prompts) > limits.max_choices)
    __builtin_trap();
  if (kind == ServeKind::kChat && req.messages.empty()) __builtin_trap();
  if (req.max_tokens == 0 || req.max_tokens > limits.max_tokens) __builtin_trap();
  if (static_cast<int64_t>(req.stop.size()) > limits.max_stop) __builtin_trap();
  if (req.top_logprobs < 0 || req.top_logprobs > 20) __builtin_trap();
  if (!(req.temperature >= 0 && req.temperature <= 2)) __builtin_trap();
  if (!(req.top_p > 0 && req.top_p <= 1)) __builtin_trap();
  std::set<uint32_t> seen;
  for (const auto& [index, scale] : req.adapters) {
    if (index >= catalog.adapters.size() || !seen.insert(index).second) __builtin_trap();
    if (!(scale >= -1000 && scale <= 1000)) __builtin_trap();
  }
  for (const auto& s : req.stop) {
    if (s.empty() || s.find('\0') != std::string::npos) __builtin_trap();
  }
  for (const auto& m : req.messages) {
    if (m.role.find('\0') != std::string::npos || m.content.find('\0') != std::string::npos)
      __builtin_trap();
  }
  for (const auto& p : req.prompts) {
    if (p.is_tokens && p.tokens.empty()) __builtin_trap();
    for (int32_t t : p.tokens) {
      if (t < 0) __builtin_trap();
    }
  }
  return 0;
}
