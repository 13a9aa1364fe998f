// session.cc — hearth_session_* of the C ABI.
#include <string>
#include <vector>

#include "hearth/hearth.h"
#include "sdk/src/capi/capi_internal.h"
#include "sdk/src/capi/handles.h"
#include "sdk/src/runtime/generate.h"

namespace {

// The parameters of hearth_session_generate(_chat): checked and converted.
// May throw std::bad_alloc (the callers' HEARTH_CAPI_TRY maps it).
hearth_error* ReadGenerateArgs(const char* func, const hearth::Session& s,
                               const hearth_generate_params* params,
                               hearth_generate_result* result,
                               hearth::GenerateOptions* options) {
  if (result != nullptr) {
    if (hearth_error* err = hearth::capi::CheckOutStruct(func, "result", result)) return err;
  }
  hearth_generate_params p;
  const hearth_generate_params defaults = HEARTH_GENERATE_PARAMS_INIT;
  if (hearth_error* err = hearth::capi::ReadParams(func, "params", params, defaults, &p)) {
    return err;
  }
  options->max_tokens = p.max_tokens;
  if (hearth_error* err = hearth::capi::ReadSamplingParams(func, "params->sampling", &p.sampling,
                                                           &options->sampling)) {
    return err;
  }
  if (p.stop == nullptr && p.n_stop > 0) {
    return hearth::capi::NullArgumentError(func, "params->stop");
  }
  for (size_t i = 0; i < p.n_stop; ++i) {
    if (p.stop[i] == nullptr) {
      return hearth::capi::MakeError(
          HEARTH_INVALID_ARGUMENT,
          std::string(func) + ": params->stop[" + std::to_string(i) + "] is NULL");
    }
    options->stop.emplace_back(p.stop[i]);
  }
  if (p.use_default_flags) {
    options->add_special = s.n_past() == 0;
    options->parse_special = false;
  } else {
    options->add_special = (p.tokenize_flags & HEARTH_TOKENIZE_ADD_SPECIAL) != 0;
    options->parse_special = (p.tokenize_flags & HEARTH_TOKENIZE_PARSE_SPECIAL) != 0;
  }
  options->reuse_prefix = p.reuse_prefix != 0;
  if (p.constraint != nullptr) options->constraint = p.constraint;
  if (p.constraint_config != nullptr) options->constraint_config = p.constraint_config;
  if (options->constraint.empty() && !options->constraint_config.empty()) {
    return hearth::capi::MakeError(
        HEARTH_INVALID_ARGUMENT,
        std::string(func) + ": params->constraint_config is set but params->constraint is not");
  }
  return nullptr;
}

hearth::TextSink StreamSink(hearth_stream_fn on_text, void* user_data) {
  if (on_text == nullptr) return {};
  return [on_text, user_data](std::string_view piece) {
    return on_text(piece.data(), piece.size(), user_data) == 0;
  };
}

void WriteResult(const hearth::GenerateStats& stats, hearth_generate_result* result) {
  if (result == nullptr) return;
  hearth_generate_result r = HEARTH_GENERATE_RESULT_INIT;
  r.n_prompt_tokens = static_cast<uint32_t>(stats.n_prompt_tokens);
  r.n_generated_tokens = static_cast<uint32_t>(stats.n_generated_tokens);
  r.stop_reason = static_cast<hearth_stop_reason>(stats.stop_reason);
  r.prompt_seconds = stats.prompt_seconds;
  r.generate_seconds = stats.generate_seconds;
  hearth::capi::WriteOutStruct(r, result);
}

}  // namespace

extern "C" {

hearth_error* hearth_session_create(hearth_model* model, const hearth_session_params* params,
                                    hearth_session** out) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(model);
  HEARTH_CAPI_CHECK_NOT_NULL(out);
  HEARTH_CAPI_CHECK_OWNER(model);
  hearth_session_params p;
  const hearth_session_params defaults = HEARTH_SESSION_PARAMS_INIT;
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::ReadParams(__func__, "params", params, defaults, &p));
  hearth::SessionOptions options;
  options.n_ctx = p.n_ctx;
  options.n_batch = p.n_batch;
  options.n_threads = p.n_threads;
  options.kv_type = p.kv_type;
  auto s = hearth::Session::Create(model->model, options);
  if (!s.ok()) return hearth::capi::ToError(s.status());
  *out = new hearth_session{std::move(s).value()};
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

void hearth_session_free(hearth_session* session) { hearth::capi::FreeHandle(session); }

hearth_error* hearth_session_feed(hearth_session* session, const int32_t* tokens,
                                  size_t n_tokens) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(session);
  HEARTH_CAPI_CHECK_OWNER(session);
  if (tokens == nullptr && n_tokens > 0) return hearth::capi::NullArgumentError(__func__, "tokens");
  return hearth::capi::ToError(
      session->session->Feed(absl::Span<const int32_t>(tokens, n_tokens)));
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_session_logits(const hearth_session* session, const float** logits,
                                    size_t* n_vocab) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(session);
  HEARTH_CAPI_CHECK_NOT_NULL(logits);
  HEARTH_CAPI_CHECK_NOT_NULL(n_vocab);
  const hearth::Session& s = *session->session;
  if (!s.has_logits()) {
    return hearth::capi::MakeError(HEARTH_FAILED_PRECONDITION,
                                   "hearth_session_logits: nothing has been fed yet");
  }
  *logits = s.logits().data();
  *n_vocab = s.logits().size();
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

size_t hearth_session_n_past(const hearth_session* session) {
  return session ? static_cast<size_t>(session->session->n_past()) : 0;
}

size_t hearth_session_n_ctx(const hearth_session* session) {
  return session ? static_cast<size_t>(session->session->n_ctx()) : 0;
}

void hearth_session_reset(hearth_session* session) {
  if (session) session->session->Reset();
}

hearth_error* hearth_session_truncate(hearth_session* session, size_t n_past) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(session);
  hearth::Session& s = *session->session;
  if (n_past > static_cast<size_t>(s.n_past())) {
    return hearth::capi::MakeError(HEARTH_OUT_OF_RANGE,
                                   "hearth_session_truncate: n_past " + std::to_string(n_past) +
                                       " is more than the " + std::to_string(s.n_past()) +
                                       " tokens in the context");
  }
  s.TruncateTo(static_cast<int64_t>(n_past));
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_session_generate(hearth_session* session, const char* prompt,
                                      size_t prompt_len, const hearth_generate_params* params,
                                      hearth_stream_fn on_text, void* user_data,
                                      hearth_generate_result* result) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(session);
  HEARTH_CAPI_CHECK_OWNER(session);
  if (prompt == nullptr && prompt_len > 0) {
    return hearth::capi::NullArgumentError(__func__, "prompt");
  }
  hearth::GenerateOptions options;
  HEARTH_CAPI_RETURN_IF_ERROR(ReadGenerateArgs(__func__, *session->session, params, result,
                                               &options));
  hearth::GenerateStats stats;
  absl::Status st =
      hearth::Generate(*session->session, std::string_view(prompt ? prompt : "", prompt_len),
                       options, StreamSink(on_text, user_data), &stats);
  if (!st.ok()) return hearth::capi::ToError(st);
  WriteResult(stats, result);
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_session_generate_chat(hearth_session* session,
                                           const hearth_chat_message* messages, size_t n_messages,
                                           const hearth_generate_params* params,
                                           hearth_stream_fn on_text, void* user_data,
                                           hearth_generate_result* result) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(session);
  HEARTH_CAPI_CHECK_OWNER(session);
  hearth::GenerateOptions options;
  HEARTH_CAPI_RETURN_IF_ERROR(ReadGenerateArgs(__func__, *session->session, params, result,
                                               &options));
  std::vector<int32_t> ids;
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::EncodeChat(__func__, session->session->model(),
                                                       messages, n_messages, true, &ids));
  hearth::GenerateStats stats;
  absl::Status st = hearth::GenerateFromIds(*session->session, std::move(ids), options,
                                            StreamSink(on_text, user_data), &stats);
  if (!st.ok()) return hearth::capi::ToError(st);
  WriteResult(stats, result);
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_session_score(hearth_session* session, const int32_t* tokens,
                                   size_t n_tokens, float* logprobs) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(session);
  HEARTH_CAPI_CHECK_OWNER(session);
  if (tokens == nullptr && n_tokens > 0) return hearth::capi::NullArgumentError(__func__, "tokens");
  if (logprobs == nullptr && n_tokens > 1) {
    return hearth::capi::NullArgumentError(__func__, "logprobs");
  }
  return hearth::capi::ToError(session->session->Score(
      absl::Span<const int32_t>(tokens, n_tokens), logprobs));
  HEARTH_CAPI_CATCH_ERROR
}

}  // extern "C"
