// dataset.cc — hearth_dataset_* of the C ABI: training data read for a model.
#include "sdk/src/train/dataset.h"

#include <memory>
#include <string>
#include <utility>

#include "hearth/hearth.h"
#include "sdk/src/capi/capi_internal.h"
#include "sdk/src/capi/handles.h"

struct hearth_dataset {
  hearth::train::Dataset dataset;
  uint32_t max_tokens = 0;
};

extern "C" {

hearth_error* hearth_dataset_load(const hearth_model* model, const char* path,
                                  const hearth_dataset_params* params, hearth_dataset** out) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(model);
  HEARTH_CAPI_CHECK_NOT_NULL(path);
  HEARTH_CAPI_CHECK_NOT_NULL(out);
  hearth_dataset_params p;
  const hearth_dataset_params defaults = HEARTH_DATASET_PARAMS_INIT;
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::ReadParams(__func__, "params", params, defaults, &p));
  const hearth::Model& m = *model->model;
  hearth::train::DatasetOptions options;
  options.max_tokens = p.max_tokens != 0 ? p.max_tokens : m.config().n_ctx_train;
  options.truncate = p.truncate != 0;
  auto format = hearth::capi::ModelChatFormat(m);
  if (format.ok()) {
    options.chat_format = *format;
  } else {
    options.no_chat_format_reason = std::string(format.status().message());
  }
  auto d = hearth::train::Dataset::Load(path, m.tokenizer(), options);
  if (!d.ok()) return hearth::capi::ToError(d.status());
  auto handle = std::make_unique<hearth_dataset>();
  handle->dataset = *std::move(d);
  handle->max_tokens = static_cast<uint32_t>(options.max_tokens);
  *out = handle.release();
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

void hearth_dataset_free(hearth_dataset* dataset) { delete dataset; }

hearth_error* hearth_dataset_get_info(const hearth_dataset* dataset, hearth_dataset_info* out) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(dataset);
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::CheckOutStruct(__func__, "out", out));
  const hearth::train::DatasetStats& s = dataset->dataset.stats();
  using hearth::train::RecordKind;
  hearth_dataset_info full = HEARTH_DATASET_INFO_INIT;
  full.max_tokens = dataset->max_tokens;
  full.n_examples = static_cast<uint64_t>(s.n_examples);
  full.n_tokens = static_cast<uint64_t>(s.n_tokens);
  full.n_trained_tokens = static_cast<uint64_t>(s.n_trained);
  full.longest = static_cast<uint64_t>(s.longest);
  full.n_truncated = static_cast<uint64_t>(s.n_truncated);
  full.n_text = static_cast<uint64_t>(s.by_kind[static_cast<int>(RecordKind::kText)]);
  full.n_prompt_completion =
      static_cast<uint64_t>(s.by_kind[static_cast<int>(RecordKind::kPromptCompletion)]);
  full.n_messages = static_cast<uint64_t>(s.by_kind[static_cast<int>(RecordKind::kMessages)]);
  hearth::capi::WriteOutStruct(full, out);
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_dataset_get_example(const hearth_dataset* dataset, size_t index,
                                         int32_t* tokens, uint8_t* trained, size_t capacity,
                                         size_t* n_tokens, uint64_t* line) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(dataset);
  HEARTH_CAPI_CHECK_NOT_NULL(n_tokens);
  const auto& examples = dataset->dataset.examples();
  if (index >= examples.size()) {
    return hearth::capi::MakeError(HEARTH_OUT_OF_RANGE,
                                   std::string(__func__) + ": index " + std::to_string(index) +
                                       " is past the dataset's " + std::to_string(examples.size()) +
                                       " examples");
  }
  const hearth::train::Example& ex = examples[index];
  const size_t n = ex.tokens.size();
  if (tokens == nullptr && trained == nullptr) {
    if (capacity != 0) return hearth::capi::NullArgumentError(__func__, "output buffer");
  } else if (capacity < n) {
    return hearth::capi::MakeError(HEARTH_RESOURCE_EXHAUSTED, std::string(__func__) +
                                                                  ": capacity " +
                                                                  std::to_string(capacity) + " < " +
                                                                  std::to_string(n) + " needed");
  } else {
    if (tokens != nullptr) std::copy(ex.tokens.begin(), ex.tokens.end(), tokens);
    if (trained != nullptr) std::copy(ex.trained.begin(), ex.trained.end(), trained);
  }
  *n_tokens = n;
  if (line != nullptr) *line = static_cast<uint64_t>(ex.line);
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

}  // extern "C"
