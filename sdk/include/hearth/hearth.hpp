// hearth.hpp — header-only C++17 RAII over the public C ABI (hearth.h).
//
// A thin layer: every class owns one C handle (move-only, freed in the
// destructor), every failing call throws hearth::Error carrying the C code
// and message, and buffers come back as std::vector / std::string. It uses
// nothing but hearth.h, so it adds no ABI of its own: an app built with it
// depends only on libhearth.so.<major>. Borrowed pointers (info strings,
// logits) follow hearth.h's lifetimes; see docs/abi/ownership.md.
//
//   hearth::Runtime rt;
//   hearth::Model model(rt, "qwen2.5-0.5b-instruct-q8_0.gguf");
//   hearth::Session session(model);
//   session.Generate("Hello", nullptr, [](std::string_view piece) {
//     std::cout << piece << std::flush;
//     return true;  // keep going
//   });
#ifndef HEARTH_HPP_
#define HEARTH_HPP_

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hearth/hearth.h"

namespace hearth {

// A failed hearth call. code() is the hearth_status_code; what() the message.
class Error : public std::runtime_error {
 public:
  Error(hearth_status_code code, const std::string& message)
      : std::runtime_error(message), code_(code) {}
  hearth_status_code code() const noexcept { return code_; }

 private:
  hearth_status_code code_;
};

namespace detail {

struct ErrorFree {
  void operator()(hearth_error* e) const noexcept { hearth_error_free(e); }
};
struct RuntimeFree {
  void operator()(hearth_runtime* p) const noexcept { hearth_runtime_free(p); }
};
struct ModelFree {
  void operator()(hearth_model* p) const noexcept { hearth_model_free(p); }
};
struct SessionFree {
  void operator()(hearth_session* p) const noexcept { hearth_session_free(p); }
};
struct SamplerFree {
  void operator()(hearth_sampler* p) const noexcept { hearth_sampler_free(p); }
};
struct AdapterFree {
  void operator()(hearth_adapter* p) const noexcept { hearth_adapter_free(p); }
};
struct DatasetFree {
  void operator()(hearth_dataset* p) const noexcept { hearth_dataset_free(p); }
};
struct TrainerFree {
  void operator()(hearth_trainer* p) const noexcept { hearth_trainer_free(p); }
};

}  // namespace detail

// Takes ownership of `err`; throws hearth::Error when it is not NULL.
inline void Check(hearth_error* err) {
  if (err == nullptr) return;
  std::unique_ptr<hearth_error, detail::ErrorFree> owned(err);
  throw Error(hearth_error_code(err), hearth_error_message(err));
}

// (major << 16) | minor of the loaded library; compare with
// HEARTH_ABI_VERSION_MAJOR to detect a mismatched libhearth at run time.
inline uint32_t AbiVersion() { return hearth_abi_version(); }
inline std::string VersionString() { return hearth_version_string(); }

// Plugins and devices. Immutable; may be shared by threads.
class Runtime {
 public:
  // NULL params = defaults (HEARTH_RUNTIME_PARAMS_INIT).
  explicit Runtime(const hearth_runtime_params* params = nullptr) {
    hearth_runtime* rt = nullptr;
    Check(hearth_runtime_create(params, &rt));
    handle_.reset(rt);
  }
  explicit Runtime(const hearth_runtime_params& params) : Runtime(&params) {}

  hearth_runtime* get() const noexcept { return handle_.get(); }
  hearth_runtime* release() noexcept { return handle_.release(); }

  // Strings in the infos are borrowed from this runtime.
  std::vector<hearth_plugin_info> Plugins() const {
    std::vector<hearth_plugin_info> out(hearth_runtime_plugin_count(get()));
    for (size_t i = 0; i < out.size(); ++i) {
      out[i] = hearth_plugin_info HEARTH_PLUGIN_INFO_INIT;
      Check(hearth_runtime_plugin_info(get(), i, &out[i]));
    }
    return out;
  }
  std::vector<hearth_device_info> Devices() const {
    std::vector<hearth_device_info> out(hearth_runtime_device_count(get()));
    for (size_t i = 0; i < out.size(); ++i) {
      out[i] = hearth_device_info HEARTH_DEVICE_INFO_INIT;
      Check(hearth_runtime_device_info(get(), i, &out[i]));
    }
    return out;
  }

 private:
  std::unique_ptr<hearth_runtime, detail::RuntimeFree> handle_;
};

// A loaded model. Immutable; may be shared by threads. The runtime must
// outlive it; it may be destroyed before its sessions (hearth.h keeps it
// alive until the last one goes).
class Model {
 public:
  Model(Runtime& runtime, const std::string& path, const hearth_model_params* params = nullptr) {
    hearth_model* m = nullptr;
    Check(hearth_model_load(runtime.get(), path.c_str(), params, &m));
    handle_.reset(m);
  }
  Model(Runtime& runtime, const std::string& path, const hearth_model_params& params)
      : Model(runtime, path, &params) {}

  hearth_model* get() const noexcept { return handle_.get(); }
  hearth_model* release() noexcept { return handle_.release(); }

  // Strings are borrowed from the model.
  hearth_model_info Info() const {
    hearth_model_info info = HEARTH_MODEL_INFO_INIT;
    Check(hearth_model_get_info(get(), &info));
    return info;
  }
  // A metadata value rendered as text; nullopt when the key is absent.
  std::optional<std::string> Meta(const std::string& key) const {
    const char* v = hearth_model_meta(get(), key.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  }

  std::vector<int32_t> Tokenize(std::string_view text,
                                uint32_t flags = HEARTH_TOKENIZE_ADD_SPECIAL) const {
    size_t n = 0;
    Check(hearth_tokenize(get(), text.data(), text.size(), flags, nullptr, 0, &n));
    std::vector<int32_t> tokens(n);
    if (n > 0) {
      Check(hearth_tokenize(get(), text.data(), text.size(), flags, tokens.data(), tokens.size(),
                            &n));
      tokens.resize(n);
    }
    return tokens;
  }
  std::string Detokenize(const std::vector<int32_t>& tokens, uint32_t flags = 0) const {
    return Detokenize(tokens.data(), tokens.size(), flags);
  }
  std::string Detokenize(const int32_t* tokens, size_t n_tokens, uint32_t flags = 0) const {
    size_t len = 0;
    Check(hearth_detokenize(get(), tokens, n_tokens, flags, nullptr, 0, &len));
    std::string text(len, '\0');
    if (len > 0) {
      Check(hearth_detokenize(get(), tokens, n_tokens, flags, &text[0], text.size(), &len));
      text.resize(len);
    }
    return text;
  }
  // The raw bytes of one token (borrowed); throws OUT_OF_RANGE for a bad id.
  std::string_view TokenText(int32_t token) const {
    size_t len = 0;
    const char* p = hearth_token_text(get(), token, &len);
    if (p == nullptr) {
      throw Error(HEARTH_OUT_OF_RANGE, "token id " + std::to_string(token) + " is out of range");
    }
    return std::string_view(p, len);
  }
  bool IsEog(int32_t token) const { return hearth_token_is_eog(get(), token) != 0; }

 private:
  std::unique_ptr<hearth_model, detail::ModelFree> handle_;
};

// The sampling chain with its own history. One thread at a time.
class Sampler {
 public:
  explicit Sampler(const hearth_sampling_params* params = nullptr) {
    hearth_sampler* s = nullptr;
    Check(hearth_sampler_create(params, &s));
    handle_.reset(s);
  }
  explicit Sampler(const hearth_sampling_params& params) : Sampler(&params) {}

  hearth_sampler* get() const noexcept { return handle_.get(); }
  hearth_sampler* release() noexcept { return handle_.release(); }

  int32_t Sample(const float* logits, size_t n_vocab) {
    int32_t token = -1;
    Check(hearth_sampler_sample(get(), logits, n_vocab, &token));
    return token;
  }
  void Accept(int32_t token) { hearth_sampler_accept(get(), token); }
  void Reset() { hearth_sampler_reset(get()); }

 private:
  std::unique_ptr<hearth_sampler, detail::SamplerFree> handle_;
};

// Logits borrowed from a session until its next call.
struct LogitsView {
  const float* data = nullptr;
  size_t size = 0;
};

// A LoRA adapter, bound to a model (or to none, for inspection). Immutable;
// may be shared by threads and sessions.
class Adapter {
 public:
  // `model` may be NULL: the file is only parsed and checked.
  Adapter(Model* model, const std::string& path, const hearth_adapter_params* params = nullptr) {
    hearth_adapter* a = nullptr;
    Check(hearth_adapter_load(model ? model->get() : nullptr, path.c_str(), params, &a));
    handle_.reset(a);
  }
  // Takes ownership of `adapter` (from hearth_trainer_get_adapter, say).
  explicit Adapter(hearth_adapter* adapter) noexcept : handle_(adapter) {}

  hearth_adapter* get() const noexcept { return handle_.get(); }
  hearth_adapter* release() noexcept { return handle_.release(); }

  // Strings are borrowed from the adapter.
  hearth_adapter_info Info() const {
    hearth_adapter_info info = HEARTH_ADAPTER_INFO_INIT;
    Check(hearth_adapter_get_info(get(), &info));
    return info;
  }
  std::vector<hearth_adapter_target> Targets() const {
    std::vector<hearth_adapter_target> out(Info().n_targets);
    for (size_t i = 0; i < out.size(); ++i) {
      out[i] = hearth_adapter_target HEARTH_ADAPTER_TARGET_INIT;
      Check(hearth_adapter_get_target(get(), i, &out[i]));
    }
    return out;
  }

 private:
  std::unique_ptr<hearth_adapter, detail::AdapterFree> handle_;
};

// Training data read from a JSONL file for a model. Immutable once loaded.
class Dataset {
 public:
  Dataset(const Model& model, const std::string& path,
          const hearth_dataset_params* params = nullptr) {
    hearth_dataset* d = nullptr;
    Check(hearth_dataset_load(model.get(), path.c_str(), params, &d));
    handle_.reset(d);
  }

  hearth_dataset* get() const noexcept { return handle_.get(); }

  hearth_dataset_info Info() const {
    hearth_dataset_info info = HEARTH_DATASET_INFO_INIT;
    Check(hearth_dataset_get_info(get(), &info));
    return info;
  }
  // Example `index`: its ids, a 0/1 per id (1: trained), and its line in the file.
  void Example(size_t index, std::vector<int32_t>* tokens, std::vector<uint8_t>* trained,
               uint64_t* line = nullptr) const {
    size_t n = 0;
    Check(hearth_dataset_get_example(get(), index, nullptr, nullptr, 0, &n, line));
    tokens->resize(n);
    trained->resize(n);
    Check(hearth_dataset_get_example(get(), index, tokens->data(), trained->data(), n, &n, line));
  }

 private:
  std::unique_ptr<hearth_dataset, detail::DatasetFree> handle_;
};

// Trains a LoRA adapter on a model and a dataset (docs/finetune.md). One
// thread at a time; the dataset may go once the trainer is made.
class Trainer {
 public:
  Trainer(Model& model, const Dataset& data, const hearth_trainer_params* params = nullptr) {
    hearth_trainer* t = nullptr;
    Check(hearth_trainer_create(model.get(), data.get(), params, &t));
    handle_.reset(t);
  }

  hearth_trainer* get() const noexcept { return handle_.get(); }

  hearth_trainer_info Info() const {
    hearth_trainer_info info = HEARTH_TRAINER_INFO_INIT;
    Check(hearth_trainer_get_info(get(), &info));
    return info;
  }
  bool Done() const {
    const hearth_trainer_info i = Info();
    return i.step >= i.total_steps;
  }
  // One optimizer step and what it did.
  hearth_train_progress Step() {
    hearth_train_progress p = HEARTH_TRAIN_PROGRESS_INIT;
    Check(hearth_trainer_step(get(), &p));
    return p;
  }
  // Mean loss over the eval split; NaN when there is none.
  double Evaluate() {
    double loss = 0;
    Check(hearth_trainer_evaluate(get(), &loss));
    return loss;
  }
  void Save(const std::string& dir) { Check(hearth_trainer_save(get(), dir.c_str())); }
  // The adapter as one GGUF LoRA file (dtype "f32" or "f16").
  void SaveGguf(const std::string& path, const std::string& dtype = "f32") {
    Check(hearth_trainer_save_gguf(get(), path.c_str(), dtype.c_str()));
  }
  // Save plus the state Resume needs (dir/hearth-checkpoint.bin).
  void SaveCheckpoint(const std::string& dir) {
    Check(hearth_trainer_save_checkpoint(get(), dir.c_str()));
  }
  // Goes on from the checkpoint in `dir` (same model, data and params).
  void Resume(const std::string& dir) { Check(hearth_trainer_resume(get(), dir.c_str())); }
  // The adapter as trained so far, bound to the model.
  Adapter GetAdapter() {
    hearth_adapter* a = nullptr;
    Check(hearth_trainer_get_adapter(get(), &a));
    return Adapter(a);
  }

 private:
  std::unique_ptr<hearth_trainer, detail::TrainerFree> handle_;
};

// A conversation's state. One thread at a time.
class Session {
 public:
  // Receives each piece of generated text (valid UTF-8, borrowed for the
  // call). Return true to keep going, false to stop.
  using TextCallback = std::function<bool(std::string_view piece)>;

  explicit Session(Model& model, const hearth_session_params* params = nullptr) {
    hearth_session* s = nullptr;
    Check(hearth_session_create(model.get(), params, &s));
    handle_.reset(s);
  }
  Session(Model& model, const hearth_session_params& params) : Session(model, &params) {}

  hearth_session* get() const noexcept { return handle_.get(); }
  hearth_session* release() noexcept { return handle_.release(); }

  void Feed(const std::vector<int32_t>& tokens) { Feed(tokens.data(), tokens.size()); }
  void Feed(const int32_t* tokens, size_t n_tokens) {
    Check(hearth_session_feed(get(), tokens, n_tokens));
  }
  LogitsView Logits() const {
    LogitsView v;
    Check(hearth_session_logits(get(), &v.data, &v.size));
    return v;
  }
  // Replaces the session's adapters (empty: none); resets the context when
  // the set changes.
  void SetAdapters(const std::vector<std::pair<const Adapter*, float>>& adapters) {
    std::vector<const hearth_adapter*> handles;
    std::vector<float> scales;
    for (const auto& [a, s] : adapters) {
      handles.push_back(a ? a->get() : nullptr);
      scales.push_back(s);
    }
    Check(hearth_session_set_adapters(get(), handles.data(), scales.data(), handles.size()));
  }
  size_t NPast() const { return hearth_session_n_past(get()); }
  size_t NCtx() const { return hearth_session_n_ctx(get()); }
  void Reset() { hearth_session_reset(get()); }

  // Streams text to `on_text` (may be empty). An exception thrown by
  // `on_text` stops generation and is rethrown here.
  hearth_generate_result Generate(std::string_view prompt,
                                  const hearth_generate_params* params = nullptr,
                                  const TextCallback& on_text = nullptr) {
    return Stream(on_text, [&](hearth_stream_fn fn, void* data, hearth_generate_result* r) {
      return hearth_session_generate(get(), prompt.data(), prompt.size(), params, fn, data, r);
    });
  }
  // A reply to a conversation (hearth_session_generate_chat): the messages
  // are rendered in the model's chat format and cannot inject control tokens.
  hearth_generate_result GenerateChat(const std::vector<hearth_chat_message>& messages,
                                      const hearth_generate_params* params = nullptr,
                                      const TextCallback& on_text = nullptr) {
    return Stream(on_text, [&](hearth_stream_fn fn, void* data, hearth_generate_result* r) {
      return hearth_session_generate_chat(get(), messages.data(), messages.size(), params, fn,
                                          data, r);
    });
  }
  // The whole generated text at once.
  std::string GenerateText(std::string_view prompt,
                           const hearth_generate_params* params = nullptr,
                           hearth_generate_result* result = nullptr) {
    std::string text;
    hearth_generate_result r = Generate(prompt, params, [&text](std::string_view piece) {
      text.append(piece.data(), piece.size());
      return true;
    });
    if (result != nullptr) *result = r;
    return text;
  }

 private:
  // Runs one C generate call with `on_text` behind a Trampoline; an
  // exception `on_text` threw is rethrown here, else a C error is thrown.
  template <class CCall>
  static hearth_generate_result Stream(const TextCallback& on_text, CCall&& call) {
    Trampoline t{&on_text, nullptr};
    hearth_generate_result result = HEARTH_GENERATE_RESULT_INIT;
    hearth_error* err = call(on_text ? &Trampoline::Call : nullptr, &t, &result);
    if (t.exception) {
      hearth_error_free(err);
      std::rethrow_exception(t.exception);
    }
    Check(err);
    return result;
  }

  struct Trampoline {
    const TextCallback* callback;
    std::exception_ptr exception;
    // No exception may cross the C boundary: it is parked and rethrown.
    static int Call(const char* piece, size_t len, void* user_data) noexcept {
      auto* self = static_cast<Trampoline*>(user_data);
      try {
        return (*self->callback)(std::string_view(piece, len)) ? 0 : 1;
      } catch (...) {
        self->exception = std::current_exception();
        return 1;
      }
    }
  };

  std::unique_ptr<hearth_session, detail::SessionFree> handle_;
};

}  // namespace hearth

#endif  // HEARTH_HPP_
