// chat.cc — the chat functions of the C ABI: hearth_chat_format and
// hearth_chat_tokenize, and the conversation reading that
// hearth_session_generate_chat shares.
#include <string>
#include <vector>

#include "hearth/hearth.h"
#include "sdk/src/capi/capi_internal.h"
#include "sdk/src/capi/handles.h"
#include "sdk/src/chat/chat_template.h"
#include "sdk/src/chat/chat_tokens.h"

namespace hearth::capi {
namespace {

hearth_error* ReadMessages(const char* func, const hearth_chat_message* messages, size_t n_messages,
                           std::vector<chat::Message>* list) {
  if (messages == nullptr && n_messages > 0) return NullArgumentError(func, "messages");
  for (size_t i = 0; i < n_messages; ++i) {
    if (messages[i].role == nullptr || messages[i].content == nullptr) {
      return MakeError(
          HEARTH_INVALID_ARGUMENT,
          std::string(func) + ": messages[" + std::to_string(i) + "] has a NULL role or content");
    }
    list->push_back({messages[i].role, messages[i].content});
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<std::string> ModelChatFormat(const Model& m) {
  const std::string* source = m.Meta("tokenizer.chat_template");
  return chat::DetectFormat(source ? *source : "", m.config().arch, m.tokenizer().vocab());
}

hearth_error* EncodeChat(const char* func, const Model& model, const hearth_chat_message* messages,
                         size_t n_messages, bool add_generation_prompt, std::vector<int32_t>* ids) {
  std::vector<chat::Message> list;
  if (hearth_error* err = ReadMessages(func, messages, n_messages, &list)) return err;
  auto format = ModelChatFormat(model);
  if (!format.ok()) return ToError(format.status());
  auto encoded = chat::EncodeConversation(model.tokenizer(), *format, list, add_generation_prompt);
  if (!encoded.ok()) return ToError(encoded.status());
  *ids = std::move(*encoded);
  return nullptr;
}

}  // namespace hearth::capi

extern "C" {

hearth_error* hearth_chat_format(const hearth_model* model, const hearth_chat_message* messages,
                                 size_t n_messages, int add_generation_prompt, char* text,
                                 size_t capacity, size_t* text_len) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(model);
  HEARTH_CAPI_CHECK_NOT_NULL(text_len);
  std::vector<hearth::chat::Message> list;
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::ReadMessages(__func__, messages, n_messages, &list));
  auto format = hearth::capi::ModelChatFormat(*model->model);
  if (!format.ok()) return hearth::capi::ToError(format.status());
  auto rendered = hearth::chat::Render(*format, list, add_generation_prompt != 0);
  if (!rendered.ok()) return hearth::capi::ToError(rendered.status());
  return hearth::capi::CopyOut(__func__, rendered->data(), rendered->size(), text, capacity,
                               text_len);
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_chat_tokenize(const hearth_model* model, const hearth_chat_message* messages,
                                   size_t n_messages, int add_generation_prompt, int32_t* tokens,
                                   size_t capacity, size_t* n_tokens) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(model);
  HEARTH_CAPI_CHECK_NOT_NULL(n_tokens);
  std::vector<int32_t> ids;
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::EncodeChat(
      __func__, *model->model, messages, n_messages, add_generation_prompt != 0, &ids));
  return hearth::capi::CopyOut(__func__, ids.data(), ids.size(), tokens, capacity, n_tokens);
  HEARTH_CAPI_CATCH_ERROR
}

}  // extern "C"
