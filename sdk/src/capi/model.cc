// model.cc — hearth_model_* and the token functions of the C ABI.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hearth/hearth.h"
#include "sdk/src/capi/capi_internal.h"
#include "sdk/src/capi/handles.h"

namespace {

using hearth::capi::CopyOut;
using hearth::capi::ToError;

}  // namespace

extern "C" {

hearth_error* hearth_model_load(hearth_runtime* rt, const char* path,
                                const hearth_model_params* params, hearth_model** out) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(rt);
  HEARTH_CAPI_CHECK_NOT_NULL(path);
  HEARTH_CAPI_CHECK_NOT_NULL(out);
  HEARTH_CAPI_CHECK_OWNER(rt);
  hearth_model_params p;
  const hearth_model_params defaults = HEARTH_MODEL_PARAMS_INIT;
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::ReadParams(__func__, "params", params, defaults, &p));
  hearth::ModelLoadOptions options;
  options.device = p.device ? p.device : "";
  options.n_threads = p.n_threads;
  auto model = hearth::Model::Load(rt->host, path, options);
  if (!model.ok()) return ToError(model.status());
  auto handle = std::make_unique<hearth_model>();
  handle->model = std::move(model).value();
  *out = handle.release();
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

void hearth_model_free(hearth_model* model) { hearth::capi::FreeHandle(model); }

hearth_error* hearth_model_get_info(const hearth_model* model, hearth_model_info* out) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(model);
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::CheckOutStruct(__func__, "out", out));
  const hearth::Model& m = *model->model;
  const hearth::ModelConfig& c = m.config();
  const auto& vocab = m.tokenizer().vocab();
  hearth_model_info info = HEARTH_MODEL_INFO_INIT;
  info.architecture = c.arch.c_str();
  info.name = m.name().c_str();
  info.quantization = m.quantization().c_str();
  info.tokenizer = m.tokenizer_description().c_str();
  info.device = m.device().name.c_str();
  info.n_params = m.n_params();
  info.file_size = m.file().file_size();
  info.n_vocab = static_cast<uint32_t>(c.n_vocab);
  info.n_ctx_train = static_cast<uint32_t>(c.n_ctx_train);
  info.n_embd = static_cast<uint32_t>(c.n_embd);
  info.n_layer = static_cast<uint32_t>(c.n_layer);
  info.n_head = static_cast<uint32_t>(c.n_head);
  info.n_head_kv = static_cast<uint32_t>(c.n_head_kv);
  info.token_bos = vocab.bos;
  info.token_eos = vocab.eos;
  info.tokenizer_kind = vocab.model == "gpt2" ? HEARTH_TOKENIZER_BPE : HEARTH_TOKENIZER_SPM;
  info.decode_bytes_per_token = m.decode_weight_bytes();
  hearth::capi::WriteOutStruct(info, out);
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

const char* hearth_model_meta(const hearth_model* model, const char* key) {
  HEARTH_CAPI_TRY
  if (model == nullptr || key == nullptr) return nullptr;
  const std::string* v = model->model->Meta(key);
  return v ? v->c_str() : nullptr;
  HEARTH_CAPI_CATCH_RETURN(nullptr)
}

hearth_error* hearth_tokenize(const hearth_model* model, const char* text, size_t len,
                              uint32_t flags, int32_t* tokens, size_t capacity,
                              size_t* n_tokens) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(model);
  HEARTH_CAPI_CHECK_NOT_NULL(n_tokens);
  if (text == nullptr && len > 0) return hearth::capi::NullArgumentError(__func__, "text");
  auto ids = model->model->tokenizer().Encode(std::string_view(text ? text : "", len),
                                              (flags & HEARTH_TOKENIZE_ADD_SPECIAL) != 0,
                                              (flags & HEARTH_TOKENIZE_PARSE_SPECIAL) != 0);
  if (!ids.ok()) return ToError(ids.status());
  return CopyOut(__func__, ids->data(), ids->size(), tokens, capacity, n_tokens);
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_detokenize(const hearth_model* model, const int32_t* tokens,
                                size_t n_tokens, uint32_t flags, char* text, size_t capacity,
                                size_t* text_len) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(model);
  HEARTH_CAPI_CHECK_NOT_NULL(text_len);
  if (tokens == nullptr && n_tokens > 0) return hearth::capi::NullArgumentError(__func__, "tokens");
  std::vector<int32_t> ids(tokens, tokens + n_tokens);
  auto s = model->model->tokenizer().Decode(ids, (flags & HEARTH_DETOKENIZE_RENDER_SPECIAL) != 0);
  if (!s.ok()) return ToError(s.status());
  return CopyOut(__func__, s->data(), s->size(), text, capacity, text_len);
  HEARTH_CAPI_CATCH_ERROR
}

const char* hearth_token_text(const hearth_model* model, int32_t token, size_t* len) {
  HEARTH_CAPI_TRY
  if (model == nullptr) return nullptr;
  const hearth::tok::Tokenizer& tok = model->model->tokenizer();
  if (token < 0 || token >= tok.n_vocab()) return nullptr;
  std::call_once(model->pieces_once, [&] {
    model->pieces.reserve(static_cast<size_t>(tok.n_vocab()));
    for (int32_t i = 0; i < tok.n_vocab(); ++i) model->pieces.push_back(tok.TokenToPiece(i, true));
  });
  const std::string& piece = model->pieces[static_cast<size_t>(token)];
  if (len) *len = piece.size();
  return piece.c_str();
  HEARTH_CAPI_CATCH_RETURN(nullptr)
}

int hearth_token_is_eog(const hearth_model* model, int32_t token) {
  if (model == nullptr) return 0;
  const hearth::tok::Tokenizer& tok = model->model->tokenizer();
  if (token < 0 || token >= tok.n_vocab()) return 0;
  return tok.IsEog(token) ? 1 : 0;
}

}  // extern "C"
