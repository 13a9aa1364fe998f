// struct_fields.h — the fields of every struct_size struct of hearth.h, in
// order, so that capi_internal.h can refuse a struct_size that ends inside a
// field (12 for hearth_model_params cuts the `device` pointer in half: reading
// or writing that prefix would use half a pointer).
//
// A struct_size a released header can produce is the sizeof of a prefix of
// the struct: it ends after some field, or in the padding after it. So the
// rule is: no field may straddle struct_size. Each table is checked at
// compile time against the struct (every field listed, in order, nothing
// between them but padding, sizeof matching), so appending a field to hearth.h
// without listing it here fails the build where the struct is read.
#ifndef HEARTH_SDK_SRC_CAPI_STRUCT_FIELDS_H_
#define HEARTH_SDK_SRC_CAPI_STRUCT_FIELDS_H_

#include <cstddef>
#include <cstdint>

#include "hearth/hearth.h"

namespace hearth::capi {

struct FieldSpan {
  const char* name;
  size_t offset;
  size_t size;
  size_t align;
};

// Specialized below for each struct; a struct read without a table does not
// compile.
template <class T>
struct StructFields;

#define HEARTH_CAPI_FIELD(T, f) \
  FieldSpan { #f, offsetof(T, f), sizeof(T::f), alignof(decltype(T::f)) }
#define HEARTH_CAPI_STRUCT_FIELDS(T, ...)                 \
  template <>                                             \
  struct StructFields<T> {                                \
    static constexpr const char* kName = #T;              \
    static constexpr FieldSpan kFields[] = {__VA_ARGS__}; \
  }

#define F(f) HEARTH_CAPI_FIELD(hearth_runtime_params, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_runtime_params, F(struct_size), F(plugin_path), F(explicit_only),
                          F(log), F(log_user_data), F(log_level));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_plugin_info, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_plugin_info, F(struct_size), F(name), F(path), F(version),
                          F(abi_major), F(abi_minor), F(probe_score), F(load_error),
                          F(probe_reason));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_device_info, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_device_info, F(struct_size), F(name), F(plugin), F(vendor),
                          F(description), F(memory_total), F(memory_free), F(arch), F(simd_width),
                          F(compute_units));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_model_params, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_model_params, F(struct_size), F(device), F(n_threads));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_model_info, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_model_info, F(struct_size), F(architecture), F(name),
                          F(quantization), F(tokenizer), F(device), F(n_params), F(file_size),
                          F(n_vocab), F(n_ctx_train), F(n_embd), F(n_layer), F(n_head),
                          F(n_head_kv), F(token_bos), F(token_eos), F(tokenizer_kind),
                          F(decode_bytes_per_token));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_sampling_params, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_sampling_params, F(struct_size), F(temperature), F(top_k),
                          F(top_p), F(min_p), F(repeat_penalty), F(presence_penalty),
                          F(frequency_penalty), F(penalty_last_n), F(seed));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_session_params, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_session_params, F(struct_size), F(n_ctx), F(n_batch), F(n_threads),
                          F(kv_type));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_convert_params, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_convert_params, F(struct_size), F(type), F(progress), F(user_data),
                          F(progress_bytes));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_convert_progress, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_convert_progress, F(struct_size), F(index), F(count), F(tensor),
                          F(bytes_done), F(bytes_total));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_generate_params, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_generate_params, F(struct_size), F(max_tokens), F(sampling),
                          F(stop), F(n_stop), F(tokenize_flags), F(use_default_flags),
                          F(reuse_prefix), F(constraint), F(constraint_config));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_generate_result, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_generate_result, F(struct_size), F(n_prompt_tokens),
                          F(n_generated_tokens), F(stop_reason), F(prompt_seconds),
                          F(generate_seconds));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_adapter_params, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_adapter_params, F(struct_size), F(reserved),
                          F(ignore_base_fingerprint));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_adapter_info, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_adapter_info, F(struct_size), F(format), F(path),
                          F(base_architecture), F(base_model), F(rank), F(alpha), F(use_rslora),
                          F(n_targets), F(n_params), F(bound), F(provenance));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_adapter_target, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_adapter_target, F(struct_size), F(weight), F(source), F(rank),
                          F(scale), F(n_in), F(n_out));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_export_params, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_export_params, F(struct_size), F(merged_type));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_dataset_params, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_dataset_params, F(struct_size), F(max_tokens), F(truncate));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_dataset_info, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_dataset_info, F(struct_size), F(max_tokens), F(n_examples),
                          F(n_tokens), F(n_trained_tokens), F(longest), F(n_truncated), F(n_text),
                          F(n_prompt_completion), F(n_messages));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_trainer_params, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_trainer_params, F(struct_size), F(rank), F(alpha), F(use_rslora),
                          F(targets), F(lr), F(beta1), F(beta2), F(eps), F(weight_decay),
                          F(schedule), F(warmup_steps), F(max_grad_norm), F(batch), F(grad_accum),
                          F(epochs), F(eval_split), F(seed), F(n_threads), F(init_adapter),
                          F(bf16_products), F(lora_dropout));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_trainer_info, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_trainer_info, F(struct_size), F(step), F(total_steps), F(n_train),
                          F(n_eval));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_train_progress, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_train_progress, F(struct_size), F(step), F(total_steps), F(epoch),
                          F(loss), F(grad_norm), F(lr), F(n_tokens), F(n_trained));
#undef F

#define F(f) HEARTH_CAPI_FIELD(hearth_engine_params, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_engine_params, F(struct_size), F(n_seq), F(n_ctx),
                          F(max_step_tokens), F(n_threads), F(max_waiting), F(adapters),
                          F(n_adapters), F(kv_block_size), F(kv_pages), F(kv_type));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_request_params, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_request_params, F(struct_size), F(tokens), F(n_tokens), F(text),
                          F(text_len), F(tokenize_flags), F(messages), F(n_messages), F(max_tokens),
                          F(sampling), F(stop), F(n_stop), F(adapters), F(n_adapters), F(logprobs),
                          F(top_logprobs), F(on_event), F(user_data));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_request_event, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_request_event, F(struct_size), F(request), F(kind), F(text),
                          F(text_len), F(token), F(logprob), F(top_tokens), F(top_logprobs),
                          F(n_top), F(finish_reason), F(status), F(message), F(n_prompt_tokens),
                          F(n_cached_tokens), F(n_generated_tokens), F(first_token_seconds));
#undef F
#define F(f) HEARTH_CAPI_FIELD(hearth_engine_stats, f)
HEARTH_CAPI_STRUCT_FIELDS(hearth_engine_stats, F(struct_size), F(n_waiting), F(n_running), F(n_seq),
                          F(requests_submitted), F(requests_finished), F(requests_cancelled),
                          F(requests_failed), F(prompt_tokens), F(cached_prompt_tokens),
                          F(generated_tokens), F(steps), F(kv_tokens_used), F(kv_tokens_capacity),
                          F(step_seconds));
#undef F

#undef HEARTH_CAPI_STRUCT_FIELDS
#undef HEARTH_CAPI_FIELD

// True when StructFields<T> lists every field of T: the first at 0, each at
// the next offset its alignment allows after the one before, and the last
// ending where sizeof(T), less tail padding, does.
template <class T>
constexpr bool FieldsCoverStruct() {
  size_t end = 0;
  for (const FieldSpan& f : StructFields<T>::kFields) {
    const size_t at = (end + f.align - 1) / f.align * f.align;
    if (f.offset != at) return false;
    end = f.offset + f.size;
  }
  return (end + alignof(T) - 1) / alignof(T) * alignof(T) == sizeof(T);
}

// The field that `struct_size` ends inside of, or nullptr when it ends on a
// boundary, in padding, or past the struct (a newer caller's struct).
template <class T>
const FieldSpan* FieldCutBy(uint32_t struct_size) noexcept {
  static_assert(FieldsCoverStruct<T>(),
                "StructFields<T> (sdk/src/capi/struct_fields.h) must list every field of T");
  for (const FieldSpan& f : StructFields<T>::kFields) {
    if (struct_size > f.offset && struct_size < f.offset + f.size) return &f;
  }
  return nullptr;
}

}  // namespace hearth::capi

#endif  // HEARTH_SDK_SRC_CAPI_STRUCT_FIELDS_H_
