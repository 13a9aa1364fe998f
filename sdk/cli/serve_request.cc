// serve_request.cc — OpenAI request bodies to ServeRequest (serve_request.h).
//
// Fields OpenAI defines that would change the answer and that hearth does not
// do (tools, response_format other than text, logit_bias, echo, suffix,
// best_of > 1) are refused by name rather than silently ignored; fields that
// do not change the answer (user, metadata, store, ...) and unknown ones are
// ignored, as OpenAI's own clients send new ones over time.
#include "serve_request.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

namespace hearth::cli {
namespace {

using Json = nlohmann::json;

// nlohmann's parser recurses once per nesting level: deeper documents are
// refused before it sees them, so no body can exhaust the stack.
constexpr int kMaxDepth = 64;

bool NestingWithin(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

ServeError Bad(std::string param, std::string message) {
  ServeError e;
  e.status = 400;
  e.param = std::move(param);
  e.message = std::move(message);
  return e;
}

ServeError Unsupported(const std::string& param, const std::string& what) {
  ServeError e = Bad(param, what + " is not supported by hearth serve");
  e.code = "unsupported_parameter";
  return e;
}

const char* TypeName(const Json& v) { return v.type_name(); }

// A present, non-null field of `body`, or NULL.
const Json* Field(const Json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

bool GetBool(const Json& body, const char* name, bool* out, ServeError* error) {
  const Json* v = Field(body, name);
  if (v == nullptr) return true;
  if (!v->is_boolean()) {
    *error = Bad(name, std::string(name) + " must be a boolean, not " + TypeName(*v));
    return false;
  }
  *out = v->get<bool>();
  return true;
}

bool GetInt(const Json& body, const char* name, int64_t min, int64_t max, int64_t* out,
            ServeError* error) {
  const Json* v = Field(body, name);
  if (v == nullptr) return true;
  int64_t x = 0;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    x = u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
            ? std::numeric_limits<int64_t>::max()
            : static_cast<int64_t>(u);
  } else if (v->is_number_integer()) {
    x = v->get<int64_t>();
  } else {
    *error = Bad(name, std::string(name) + " must be an integer, not " + TypeName(*v));
    return false;
  }
  if (x < min || x > max) {
    *error = Bad(name, std::string(name) + " = " + std::to_string(x) + " is outside [" +
                           std::to_string(min) + ", " + std::to_string(max) + "]");
    return false;
  }
  *out = x;
  return true;
}

bool GetFloat(const Json& body, const char* name, double min, double max, bool min_open, float* out,
              ServeError* error) {
  const Json* v = Field(body, name);
  if (v == nullptr) return true;
  if (!v->is_number()) {
    *error = Bad(name, std::string(name) + " must be a number, not " + TypeName(*v));
    return false;
  }
  const double x = v->get<double>();
  if (!std::isfinite(x) || x < min || x > max || (min_open && x == min)) {
    char range[96];
    std::snprintf(range, sizeof range, "%s%g, %g]", min_open ? "(" : "[", min, max);
    *error = Bad(name, std::string(name) + " = " + v->dump() + " is outside " + range);
    return false;
  }
  *out = static_cast<float>(x);
  return true;
}

bool HasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

// A message's content: a string, or an array of {"type": "text", "text": ...} parts.
bool GetContent(const Json& content, const std::string& param, std::string* out,
                ServeError* error) {
  if (content.is_string()) {
    *out = content.get<std::string>();
  } else if (content.is_array()) {
    out->clear();
    for (size_t i = 0; i < content.size(); ++i) {
      const Json& part = content[i];
      const std::string at = param + "[" + std::to_string(i) + "]";
      if (!part.is_object()) {
        *error = Bad(at, at + " must be an object");
        return false;
      }
      const Json* type = Field(part, "type");
      if (type == nullptr || !type->is_string() || type->get<std::string>() != "text") {
        *error = Unsupported(at + ".type", "a content part other than {\"type\": \"text\"}");
        return false;
      }
      const Json* text = Field(part, "text");
      if (text == nullptr || !text->is_string()) {
        *error = Bad(at + ".text", at + ".text must be a string");
        return false;
      }
      out->append(text->get_ref<const std::string&>());
    }
  } else {
    *error = Bad(param, param + " must be a string or an array of text parts, not " +
                            std::string(TypeName(content)));
    return false;
  }
  if (HasNul(*out)) {
    *error = Bad(param, param + " holds a NUL character");
    return false;
  }
  return true;
}

bool GetMessages(const Json& body, ServeRequest* out, ServeError* error) {
  const Json* messages = Field(body, "messages");
  if (messages == nullptr) {
    *error = Bad("messages", "messages is required");
    return false;
  }
  if (!messages->is_array() || messages->empty()) {
    *error = Bad("messages", "messages must be a non-empty array");
    return false;
  }
  for (size_t i = 0; i < messages->size(); ++i) {
    const Json& m = (*messages)[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) {
      *error = Bad(at, at + " must be an object");
      return false;
    }
    const Json* role = Field(m, "role");
    if (role == nullptr || !role->is_string()) {
      *error = Bad(at + ".role", at + ".role must be a string");
      return false;
    }
    ServeMessage msg;
    msg.role = role->get<std::string>();
    // OpenAI's newer name for the system role; chat formats know "system".
    if (msg.role == "developer") msg.role = "system";
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant") {
      *error = Bad(at + ".role", at + ".role must be system, developer, user or assistant");
      return false;
    }
    if (Field(m, "tool_calls") != nullptr || Field(m, "function_call") != nullptr) {
      *error = Unsupported(at + ".tool_calls", "tool calling");
      return false;
    }
    const Json* content = Field(m, "content");
    if (content == nullptr) {
      *error = Bad(at + ".content", at + ".content is required");
      return false;
    }
    if (!GetContent(*content, at + ".content", &msg.content, error)) return false;
    out->messages.push_back(std::move(msg));
  }
  return true;
}

bool GetTokenArray(const Json& v, const std::string& param, ServePrompt* out, ServeError* error) {
  out->is_tokens = true;
  for (const Json& t : v) {
    if (!t.is_number_integer() ||
        (t.is_number_unsigned() ? t.get<uint64_t>() > INT32_MAX
                                : t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)) {
      *error = Bad(param, param + " must hold token ids (integers in [0, 2^31))");
      return false;
    }
    out->tokens.push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
  if (out->tokens.empty()) {
    *error = Bad(param, param + " is empty");
    return false;
  }
  return true;
}

// prompt: a string, an array of strings, an array of token ids, or an array
// of arrays of token ids.
bool GetPrompts(const Json& body, ServeRequest* out, ServeError* error) {
  const Json* prompt = Field(body, "prompt");
  if (prompt == nullptr) {
    *error = Bad("prompt", "prompt is required");
    return false;
  }
  if (prompt->is_string()) {
    ServePrompt p;
    p.text = prompt->get<std::string>();
    out->prompts.push_back(std::move(p));
    return true;
  }
  if (!prompt->is_array() || prompt->empty()) {
    *error = Bad("prompt", "prompt must be a string, or a non-empty array of strings or tokens");
    return false;
  }
  if ((*prompt)[0].is_number()) {
    ServePrompt p;
    if (!GetTokenArray(*prompt, "prompt", &p, error)) return false;
    out->prompts.push_back(std::move(p));
    return true;
  }
  for (size_t i = 0; i < prompt->size(); ++i) {
    const Json& item = (*prompt)[i];
    const std::string at = "prompt[" + std::to_string(i) + "]";
    ServePrompt p;
    if (item.is_string()) {
      p.text = item.get<std::string>();
    } else if (item.is_array()) {
      if (!GetTokenArray(item, at, &p, error)) return false;
    } else {
      *error = Bad(at, at + " must be a string or an array of token ids");
      return false;
    }
    out->prompts.push_back(std::move(p));
  }
  return true;
}

bool GetStop(const Json& body, const ServeLimits& limits, ServeRequest* out, ServeError* error) {
  const Json* stop = Field(body, "stop");
  if (stop == nullptr) return true;
  std::vector<const Json*> items;
  if (stop->is_string()) {
    items.push_back(stop);
  } else if (stop->is_array()) {
    for (const Json& s : *stop) items.push_back(&s);
  } else {
    *error = Bad("stop", "stop must be a string or an array of strings");
    return false;
  }
  if (static_cast<int64_t>(items.size()) > limits.max_stop) {
    *error = Bad("stop", "stop holds " + std::to_string(items.size()) + " strings; at most " +
                             std::to_string(limits.max_stop));
    return false;
  }
  for (const Json* s : items) {
    if (!s->is_string()) {
      *error = Bad("stop", "stop must be a string or an array of strings");
      return false;
    }
    const std::string& text = s->get_ref<const std::string&>();
    if (text.empty()) continue;  // matches nothing
    if (text.size() > limits.max_stop_len || HasNul(text)) {
      *error = Bad("stop", "a stop string must be at most " + std::to_string(limits.max_stop_len) +
                               " bytes without NUL characters");
      return false;
    }
    out->stop.push_back(text);
  }
  return true;
}

ServeError UnknownModel(const std::string& name) {
  ServeError e;
  e.status = 404;
  e.param = "model";
  e.code = "model_not_found";
  e.message = "The model '" + name + "' does not exist; GET /v1/models lists them";
  return e;
}

int FindAdapter(const ServeCatalog& catalog, const std::string& name) {
  for (size_t i = 0; i < catalog.adapters.size(); ++i) {
    if (catalog.adapters[i] == name) return static_cast<int>(i);
  }
  return -1;
}

// model: the base's id, or BASE+NAME[+NAME...] naming --lora adapters (at
// their default scales); absent means the base.
bool GetModel(const Json& body, const ServeCatalog& catalog, ServeRequest* out, ServeError* error) {
  const Json* model = Field(body, "model");
  if (model == nullptr) {
    out->model = catalog.base;
    return true;
  }
  if (!model->is_string()) {
    *error = Bad("model", "model must be a string");
    return false;
  }
  out->model = model->get<std::string>();
  const std::string& id = out->model;
  if (id == catalog.base) return true;
  const std::string prefix = catalog.base + "+";
  if (id.compare(0, prefix.size(), prefix) != 0) {
    *error = UnknownModel(id);
    return false;
  }
  size_t start = prefix.size();
  while (true) {
    const size_t plus = id.find('+', start);
    const std::string name = id.substr(start, plus == std::string::npos ? plus : plus - start);
    const int index = FindAdapter(catalog, name);
    if (index < 0) {
      *error = UnknownModel(id);
      return false;
    }
    for (const auto& a : out->adapters) {
      if (a.first == static_cast<uint32_t>(index)) {
        *error = UnknownModel(id);
        return false;
      }
    }
    const float scale = static_cast<size_t>(index) < catalog.default_scales.size()
                            ? catalog.default_scales[index]
                            : 1.0f;
    out->adapters.emplace_back(static_cast<uint32_t>(index), scale);
    if (plus == std::string::npos) break;
    start = plus + 1;
  }
  return true;
}

// adapters: {"NAME": SCALE, ...}, ["NAME", ...] or [{"name": NAME, "scale":
// SCALE}, ...]; replaces the set `model` named.
bool GetAdapters(const Json& body, const ServeCatalog& catalog, ServeRequest* out,
                 ServeError* error) {
  const Json* adapters = Field(body, "adapters");
  if (adapters == nullptr) return true;
  out->adapters.clear();
  auto add = [&](const std::string& name, const Json* scale_json) {
    const int index = FindAdapter(catalog, name);
    if (index < 0) {
      ServeError e = UnknownModel(catalog.base + "+" + name);
      e.param = "adapters";
      e.message = "No adapter is named '" + name + "'; GET /v1/models lists them";
      *error = e;
      return false;
    }
    float scale = 1.0f;
    if (scale_json != nullptr) {
      if (!scale_json->is_number() || !std::isfinite(scale_json->get<double>()) ||
          std::fabs(scale_json->get<double>()) > 1e3) {
        *error = Bad("adapters",
                     "the scale of adapter '" + name + "' must be a number in [-1000, 1000]");
        return false;
      }
      scale = static_cast<float>(scale_json->get<double>());
    }
    for (const auto& a : out->adapters) {
      if (a.first == static_cast<uint32_t>(index)) {
        *error = Bad("adapters", "adapter '" + name + "' is named twice");
        return false;
      }
    }
    out->adapters.emplace_back(static_cast<uint32_t>(index), scale);
    return true;
  };
  if (adapters->is_object()) {
    for (auto it = adapters->begin(); it != adapters->end(); ++it) {
      if (!add(it.key(), &it.value())) return false;
    }
    return true;
  }
  if (adapters->is_array()) {
    for (const Json& a : *adapters) {
      if (a.is_string()) {
        if (!add(a.get<std::string>(), nullptr)) return false;
      } else if (a.is_object() && Field(a, "name") != nullptr && a["name"].is_string()) {
        if (!add(a["name"].get<std::string>(), Field(a, "scale"))) return false;
      } else {
        *error = Bad("adapters", "adapters items must be names or {\"name\", \"scale\"} objects");
        return false;
      }
    }
    return true;
  }
  *error = Bad("adapters", "adapters must be an object {name: scale} or an array of names");
  return false;
}

bool Refuse(const Json& body, ServeKind kind, ServeError* error) {
  for (const char* name : {"tools", "functions", "tool_choice", "function_call"}) {
    if (Field(body, name) != nullptr) {
      *error = Unsupported(name, "tool calling");
      return false;
    }
  }
  if (const Json* rf = Field(body, "response_format")) {
    const bool text = rf->is_object() && Field(*rf, "type") != nullptr &&
                      (*rf)["type"].is_string() && (*rf)["type"].get<std::string>() == "text";
    if (!text) {
      *error = Unsupported("response_format", "a response_format other than text");
      return false;
    }
  }
  if (const Json* lb = Field(body, "logit_bias")) {
    if (!(lb->is_object() && lb->empty())) {
      *error = Unsupported("logit_bias", "logit_bias");
      return false;
    }
  }
  if (kind == ServeKind::kCompletion) {
    if (const Json* echo = Field(body, "echo"); echo != nullptr && *echo != Json(false)) {
      *error = Unsupported("echo", "echo");
      return false;
    }
    if (const Json* suffix = Field(body, "suffix");
        suffix != nullptr && !(suffix->is_string() && suffix->get<std::string>().empty())) {
      *error = Unsupported("suffix", "suffix");
      return false;
    }
    if (const Json* best_of = Field(body, "best_of"); best_of != nullptr && *best_of != Json(1)) {
      *error = Unsupported("best_of", "best_of other than 1");
      return false;
    }
  }
  return true;
}

bool Parse(std::string_view body, ServeKind kind, const ServeCatalog& catalog,
           const ServeLimits& limits, ServeRequest* out, ServeError* error) {
  *out = ServeRequest();
  out->kind = kind;
  if (!NestingWithin(body, kMaxDepth)) {
    *error = Bad("", "The body nests deeper than " + std::to_string(kMaxDepth) + " levels");
    return false;
  }
  // Invalid UTF-8 in a string is a parse error here, so every string taken
  // from the body is valid UTF-8.
  const Json json = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    *error = Bad("", "The body is not valid JSON (UTF-8)");
    return false;
  }
  if (!json.is_object()) {
    *error = Bad("", "The body must be a JSON object");
    return false;
  }
  if (!Refuse(json, kind, error)) return false;
  if (!GetModel(json, catalog, out, error)) return false;
  if (!GetAdapters(json, catalog, out, error)) return false;
  if (kind == ServeKind::kChat) {
    if (!GetMessages(json, out, error)) return false;
  } else {
    if (!GetPrompts(json, out, error)) return false;
  }
  if (!GetBool(json, "stream", &out->stream, error)) return false;
  if (const Json* so = Field(json, "stream_options")) {
    if (!so->is_object()) {
      *error = Bad("stream_options", "stream_options must be an object");
      return false;
    }
    if (!GetBool(*so, "include_usage", &out->include_usage, error)) {
      error->param = "stream_options.include_usage";
      return false;
    }
  }
  // max_completion_tokens is the chat API's newer name; it wins.
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    if (!GetInt(json, name, 1, std::numeric_limits<int64_t>::max(), &out->max_tokens, error)) {
      return false;
    }
    if (Field(json, name) != nullptr && out->max_tokens > limits.max_tokens) {
      *error =
          Bad(name, std::string(name) + " = " + std::to_string(out->max_tokens) +
                        " is above this server's limit of " + std::to_string(limits.max_tokens));
      return false;
    }
  }
  // The legacy completions API generates 16 tokens unless told (never more
  // than the server's limit).
  if (kind == ServeKind::kCompletion && out->max_tokens < 0) {
    out->max_tokens = std::min<int64_t>(16, limits.max_tokens);
  }
  if (!GetFloat(json, "temperature", 0.0, 2.0, false, &out->temperature, error)) return false;
  if (!GetFloat(json, "top_p", 0.0, 1.0, true, &out->top_p, error)) return false;
  if (!GetFloat(json, "presence_penalty", -2.0, 2.0, false, &out->presence_penalty, error))
    return false;
  if (!GetFloat(json, "frequency_penalty", -2.0, 2.0, false, &out->frequency_penalty, error))
    return false;
  if (const Json* seed = Field(json, "seed")) {
    if (seed->is_number_unsigned()) {
      out->seed = seed->get<uint64_t>();
    } else if (seed->is_number_integer()) {
      out->seed = static_cast<uint64_t>(seed->get<int64_t>());
    } else {
      *error = Bad("seed", std::string("seed must be an integer, not ") + TypeName(*seed));
      return false;
    }
    out->has_seed = true;
  }
  if (!GetStop(json, limits, out, error)) return false;
  if (!GetInt(json, "n", 1, limits.max_choices, &out->n, error)) return false;
  const int64_t choices = out->n * static_cast<int64_t>(std::max<size_t>(1, out->prompts.size()));
  if (choices > limits.max_choices) {
    *error = Bad("n", "n x prompts = " + std::to_string(choices) + " choices; at most " +
                          std::to_string(limits.max_choices));
    return false;
  }
  if (kind == ServeKind::kChat) {
    if (!GetBool(json, "logprobs", &out->logprobs, error)) return false;
    if (!GetInt(json, "top_logprobs", 0, 20, &out->top_logprobs, error)) return false;
    if (Field(json, "top_logprobs") != nullptr && !out->logprobs) {
      *error = Bad("top_logprobs", "top_logprobs needs logprobs: true");
      return false;
    }
  } else {
    // The completions API's logprobs is the number of alternatives (0..5).
    int64_t n_top = -1;
    if (!GetInt(json, "logprobs", 0, 5, &n_top, error)) return false;
    out->logprobs = n_top >= 0;
    out->top_logprobs = n_top < 0 ? 0 : n_top;
  }
  return true;
}

}  // namespace

std::string ServeErrorJson(const ServeError& error) {
  Json e = {{"message", error.message},
            {"type", error.type},
            {"param", error.param.empty() ? Json(nullptr) : Json(error.param)},
            {"code", error.code.empty() ? Json(nullptr) : Json(error.code)}};
  return Json{{"error", e}}.dump(-1, ' ', false, Json::error_handler_t::replace);
}

bool ParseServeRequest(std::string_view body, ServeKind kind, const ServeCatalog& catalog,
                       const ServeLimits& limits, ServeRequest* out, ServeError* error) {
  try {
    return Parse(body, kind, catalog, limits, out, error);
  } catch (const std::exception& e) {
    // Only an allocation failure can get here; the body stays the client's problem.
    *error = Bad("", std::string("The request could not be read: ") + e.what());
    return false;
  }
}

}  // namespace hearth::cli
