// engine.cc — hearth_engine_* of the C ABI.
#include "sdk/src/runtime/engine.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hearth/hearth.h"
#include "sdk/src/capi/capi_internal.h"
#include "sdk/src/capi/handles.h"

struct hearth_engine {
  std::unique_ptr<hearth::Engine> engine;
  pid_t owner_pid = ::getpid();
};

namespace {

// The prompt of a request as token ids: exactly one of tokens, text and
// messages. May throw std::bad_alloc (the callers' HEARTH_CAPI_TRY maps it).
hearth_error* ReadPrompt(const char* func, const hearth::Model& model,
                         const hearth_request_params& p, std::vector<int32_t>* ids) {
  const int given = (p.tokens != nullptr || p.n_tokens > 0) + (p.text != nullptr) +
                    (p.messages != nullptr || p.n_messages > 0);
  if (given != 1) {
    return hearth::capi::MakeError(HEARTH_INVALID_ARGUMENT,
                                   std::string(func) +
                                       ": give exactly one of params->tokens, params->text and "
                                       "params->messages as the prompt (" +
                                       std::to_string(given) + " given)");
  }
  if (p.tokens != nullptr || p.n_tokens > 0) {
    if (p.tokens == nullptr) return hearth::capi::NullArgumentError(func, "params->tokens");
    ids->assign(p.tokens, p.tokens + p.n_tokens);
    return nullptr;
  }
  if (p.text != nullptr) {
    if (p.tokenize_flags & ~(HEARTH_TOKENIZE_ADD_SPECIAL | HEARTH_TOKENIZE_PARSE_SPECIAL)) {
      return hearth::capi::MakeError(HEARTH_INVALID_ARGUMENT,
                                     std::string(func) + ": params->tokenize_flags " +
                                         std::to_string(p.tokenize_flags) + " has unknown bits");
    }
    auto encoded = model.tokenizer().Encode(
        std::string_view(p.text, p.text_len), (p.tokenize_flags & HEARTH_TOKENIZE_ADD_SPECIAL) != 0,
        (p.tokenize_flags & HEARTH_TOKENIZE_PARSE_SPECIAL) != 0);
    if (!encoded.ok()) return hearth::capi::ToError(encoded.status());
    *ids = std::move(encoded).value();
    return nullptr;
  }
  if (p.messages == nullptr) return hearth::capi::NullArgumentError(func, "params->messages");
  return hearth::capi::EncodeChat(func, model, p.messages, p.n_messages, true, ids);
}

hearth::RequestCallback EventSink(hearth_request_fn fn, void* user_data) {
  if (fn == nullptr) return {};
  return [fn, user_data](const hearth::RequestEvent& e) {
    hearth_request_event ev;
    ev.struct_size = sizeof(ev);
    ev.request = e.request;
    ev.kind = e.kind == hearth::EventKind::kDone ? HEARTH_EVENT_DONE : HEARTH_EVENT_TOKEN;
    ev.text = e.text.data();
    ev.text_len = e.text.size();
    if (ev.text == nullptr) ev.text = "";
    ev.token = e.token;
    ev.logprob = e.logprob;
    ev.top_tokens = e.top_tokens.data();
    ev.top_logprobs = e.top_logprobs.data();
    ev.n_top = e.top_tokens.size();
    ev.finish_reason = static_cast<hearth_stop_reason>(e.finish_reason);
    ev.status = static_cast<hearth_status_code>(e.status.code());
    const std::string message(e.status.message());
    ev.message = message.c_str();
    ev.n_prompt_tokens = e.n_prompt_tokens;
    ev.n_cached_tokens = e.n_cached_tokens;
    ev.n_generated_tokens = e.n_generated_tokens;
    ev.first_token_seconds = e.first_token_seconds;
    return fn(&ev, user_data) == 0;
  };
}

}  // namespace

extern "C" {

hearth_error* hearth_engine_create(hearth_model* model, const hearth_engine_params* params,
                                   hearth_engine** out) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(model);
  HEARTH_CAPI_CHECK_NOT_NULL(out);
  HEARTH_CAPI_CHECK_OWNER(model);
  hearth_engine_params p;
  const hearth_engine_params defaults = HEARTH_ENGINE_PARAMS_INIT;
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::ReadParams(__func__, "params", params, defaults, &p));
  if (p.adapters == nullptr && p.n_adapters > 0) {
    return hearth::capi::NullArgumentError(__func__, "params->adapters");
  }
  hearth::EngineOptions options;
  options.n_seq = p.n_seq;
  options.n_ctx = p.n_ctx;
  options.max_step_tokens = p.max_step_tokens;
  options.n_threads = p.n_threads;
  options.max_waiting = p.max_waiting;
  options.kv_block_size = p.kv_block_size;
  options.kv_pages = p.kv_pages;
  options.kv_type = p.kv_type;
  for (size_t i = 0; i < p.n_adapters; ++i) {
    if (p.adapters[i] == nullptr) {
      return hearth::capi::MakeError(
          HEARTH_INVALID_ARGUMENT,
          std::string(__func__) + ": params->adapters[" + std::to_string(i) + "] is NULL");
    }
    options.adapters.push_back(p.adapters[i]->adapter);
  }
  auto e = hearth::Engine::Create(model->model, options);
  if (!e.ok()) return hearth::capi::ToError(e.status());
  *out = new hearth_engine{std::move(e).value()};
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

void hearth_engine_free(hearth_engine* engine) { hearth::capi::FreeHandle(engine); }

hearth_error* hearth_engine_submit(hearth_engine* engine, const hearth_request_params* params,
                                   uint64_t* id) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(engine);
  HEARTH_CAPI_CHECK_NOT_NULL(params);
  HEARTH_CAPI_CHECK_NOT_NULL(id);
  HEARTH_CAPI_CHECK_OWNER(engine);
  hearth_request_params p;
  const hearth_request_params defaults = HEARTH_REQUEST_PARAMS_INIT;
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::ReadParams(__func__, "params", params, defaults, &p));
  hearth::RequestOptions r;
  HEARTH_CAPI_RETURN_IF_ERROR(ReadPrompt(__func__, engine->engine->model(), p, &r.prompt));
  r.max_tokens = p.max_tokens;
  HEARTH_CAPI_RETURN_IF_ERROR(
      hearth::capi::ReadSamplingParams(__func__, "params->sampling", &p.sampling, &r.sampling));
  if (p.stop == nullptr && p.n_stop > 0) {
    return hearth::capi::NullArgumentError(__func__, "params->stop");
  }
  for (size_t i = 0; i < p.n_stop; ++i) {
    if (p.stop[i] == nullptr) {
      return hearth::capi::MakeError(
          HEARTH_INVALID_ARGUMENT,
          std::string(__func__) + ": params->stop[" + std::to_string(i) + "] is NULL");
    }
    r.stop.emplace_back(p.stop[i]);
  }
  if (p.adapters == nullptr && p.n_adapters > 0) {
    return hearth::capi::NullArgumentError(__func__, "params->adapters");
  }
  for (size_t i = 0; i < p.n_adapters; ++i) {
    r.adapters.push_back({p.adapters[i].index, p.adapters[i].scale});
  }
  r.logprobs = p.logprobs != 0;
  r.top_logprobs = p.top_logprobs;
  r.on_event = EventSink(p.on_event, p.user_data);
  auto submitted = engine->engine->Submit(std::move(r));
  if (!submitted.ok()) return hearth::capi::ToError(submitted.status());
  *id = *submitted;
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_engine_cancel(hearth_engine* engine, uint64_t id) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(engine);
  HEARTH_CAPI_CHECK_OWNER(engine);
  return hearth::capi::ToError(engine->engine->Cancel(id));
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_engine_step(hearth_engine* engine, size_t* n_active) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(engine);
  HEARTH_CAPI_CHECK_OWNER(engine);
  auto n = engine->engine->Step();
  if (!n.ok()) return hearth::capi::ToError(n.status());
  if (n_active != nullptr) *n_active = *n;
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_engine_start(hearth_engine* engine) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(engine);
  HEARTH_CAPI_CHECK_OWNER(engine);
  return hearth::capi::ToError(engine->engine->Start());
  HEARTH_CAPI_CATCH_ERROR
}

void hearth_engine_stop(hearth_engine* engine) {
  if (engine != nullptr) engine->engine->Stop();
}

hearth_error* hearth_engine_get_stats(const hearth_engine* engine, hearth_engine_stats* out) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(engine);
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::CheckOutStruct(__func__, "out", out));
  const hearth::EngineStats s = engine->engine->stats();
  hearth_engine_stats full = HEARTH_ENGINE_STATS_INIT;
  full.n_waiting = s.n_waiting;
  full.n_running = s.n_running;
  full.n_seq = s.n_seq;
  full.requests_submitted = s.requests_submitted;
  full.requests_finished = s.requests_finished;
  full.requests_cancelled = s.requests_cancelled;
  full.requests_failed = s.requests_failed;
  full.prompt_tokens = s.prompt_tokens;
  full.cached_prompt_tokens = s.cached_prompt_tokens;
  full.generated_tokens = s.generated_tokens;
  full.steps = s.steps;
  full.kv_tokens_used = s.kv_tokens_used;
  full.kv_tokens_capacity = s.kv_tokens_capacity;
  full.step_seconds = s.step_seconds;
  hearth::capi::WriteOutStruct(full, out);
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

}  // extern "C"
