// chat.cc — hearth_chat_format of the C ABI.
#include <string>
#include <vector>

#include "hearth/hearth.h"
#include "sdk/src/capi/capi_internal.h"
#include "sdk/src/capi/handles.h"
#include "sdk/src/chat/chat_template.h"

extern "C" {

hearth_error* hearth_chat_format(const hearth_model* model, const hearth_chat_message* messages,
                                 size_t n_messages, int add_generation_prompt, char* text,
                                 size_t capacity, size_t* text_len) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(model);
  HEARTH_CAPI_CHECK_NOT_NULL(text_len);
  if (messages == nullptr && n_messages > 0) {
    return hearth::capi::NullArgumentError(__func__, "messages");
  }
  std::vector<hearth::chat::Message> list;
  for (size_t i = 0; i < n_messages; ++i) {
    if (messages[i].role == nullptr || messages[i].content == nullptr) {
      return hearth::capi::MakeError(HEARTH_INVALID_ARGUMENT,
                                     std::string(__func__) + ": messages[" + std::to_string(i) +
                                         "] has a NULL role or content");
    }
    list.push_back({messages[i].role, messages[i].content});
  }
  const hearth::Model& m = *model->model;
  const std::string* source = m.Meta("tokenizer.chat_template");
  auto format = hearth::chat::DetectFormat(source ? *source : "", m.config().arch);
  if (!format.ok()) return hearth::capi::ToError(format.status());
  auto rendered = hearth::chat::Render(*format, list, add_generation_prompt != 0);
  if (!rendered.ok()) return hearth::capi::ToError(rendered.status());
  return hearth::capi::CopyOut(__func__, rendered->data(), rendered->size(), text, capacity,
                               text_len);
  HEARTH_CAPI_CATCH_ERROR
}

}  // extern "C"
