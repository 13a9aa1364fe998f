// sampler.cc — hearth_sampler_*: the public face of sampling::Sampler, and
// the one conversion from hearth_sampling_params to sampling::SamplerConfig
// (hearth_session_generate's embedded params convert through it too).
#include "sdk/src/sampling/sampler.h"

#include <memory>

#include "hearth/hearth.h"
#include "sdk/src/capi/capi_internal.h"

struct hearth_sampler {
  std::unique_ptr<hearth::sampling::Sampler> impl;
};

namespace hearth::capi {

// Reads a caller's (possibly older or newer) hearth_sampling_params, NULL
// meaning the defaults, and validates it. Errors name `func` and the field.
hearth_error* ReadSamplingParams(const char* func, const char* arg,
                                 const hearth_sampling_params* user,
                                 sampling::SamplerConfig* out) noexcept {
  const hearth_sampling_params defaults = HEARTH_SAMPLING_PARAMS_INIT;
  hearth_sampling_params p;
  HEARTH_CAPI_RETURN_IF_ERROR(ReadParams(func, arg, user, defaults, &p));
  sampling::SamplerConfig c;
  c.temperature = p.temperature;
  c.top_k = p.top_k;
  c.top_p = p.top_p;
  c.min_p = p.min_p;
  c.repeat_penalty = p.repeat_penalty;
  c.presence_penalty = p.presence_penalty;
  c.frequency_penalty = p.frequency_penalty;
  c.penalty_last_n = p.penalty_last_n;
  c.seed = p.seed;
  if (absl::Status s = sampling::ValidateSamplerConfig(c); !s.ok()) {
    return MakeError(HEARTH_INVALID_ARGUMENT, std::string(func) + ": " + std::string(s.message()));
  }
  *out = c;
  return nullptr;
}

}  // namespace hearth::capi

extern "C" {

hearth_error* hearth_sampler_create(const hearth_sampling_params* params, hearth_sampler** out) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(out);
  hearth::sampling::SamplerConfig config;
  HEARTH_CAPI_RETURN_IF_ERROR(
      hearth::capi::ReadSamplingParams(__func__, "params", params, &config));
  auto impl = hearth::sampling::Sampler::Create(config);
  if (!impl.ok()) return hearth::capi::ToError(impl.status());
  *out = new hearth_sampler{std::move(impl).value()};
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

void hearth_sampler_free(hearth_sampler* sampler) { delete sampler; }

hearth_error* hearth_sampler_sample(hearth_sampler* sampler, const float* logits, size_t n_vocab,
                                    int32_t* token) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(sampler);
  HEARTH_CAPI_CHECK_NOT_NULL(logits);
  HEARTH_CAPI_CHECK_NOT_NULL(token);
  auto t = sampler->impl->Sample(absl::MakeConstSpan(logits, n_vocab));
  if (!t.ok()) {
    return hearth::capi::ToError(absl::Status(
        t.status().code(), std::string(__func__) + ": " + std::string(t.status().message())));
  }
  *token = *t;
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

void hearth_sampler_accept(hearth_sampler* sampler, int32_t token) {
  HEARTH_CAPI_TRY
  if (sampler != nullptr) sampler->impl->Accept(token);
  HEARTH_CAPI_CATCH_RETURN()
}

void hearth_sampler_reset(hearth_sampler* sampler) {
  HEARTH_CAPI_TRY
  if (sampler != nullptr) sampler->impl->Reset();
  HEARTH_CAPI_CATCH_RETURN()
}

}  // extern "C"
