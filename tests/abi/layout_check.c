/* layout_check.c — the public headers compiled as plain C11 with
 * -pedantic -Wall -Wextra -Werror, and the layout of every public struct
 * pinned for x86_64 LP64. A failing _Static_assert here means a change moved
 * or resized a field of the ABI: within a major only appending at the end of
 * a struct is allowed (docs/abi/versioning.md). If the change is an intended
 * append, add a pin for the new field and update the size pin.
 *
 * Enum values and the INIT macros are checked too: values are append-only,
 * and -Wextra (missing-field-initializers) fails an INIT macro that forgot a
 * field.
 */
#include "hearth/hearth.h"
#include "hearth/hearth_plugin.h"

#include <stddef.h>

_Static_assert(HEARTH_ABI_VERSION_MAJOR == 1, "these pins describe hearth ABI 1.x");
_Static_assert(HEARTH_PLUGIN_ABI_MAJOR == 1, "these pins describe hearth plugin ABI 1.x");

/* Status codes mirror absl::StatusCode; plugin codes mirror them too. */
_Static_assert(HEARTH_OK == 0 && HEARTH_CANCELLED == 1 && HEARTH_UNKNOWN == 2, "status codes");
_Static_assert(HEARTH_INVALID_ARGUMENT == 3 && HEARTH_DEADLINE_EXCEEDED == 4, "status codes");
_Static_assert(HEARTH_NOT_FOUND == 5 && HEARTH_ALREADY_EXISTS == 6, "status codes");
_Static_assert(HEARTH_PERMISSION_DENIED == 7 && HEARTH_RESOURCE_EXHAUSTED == 8, "status codes");
_Static_assert(HEARTH_FAILED_PRECONDITION == 9 && HEARTH_ABORTED == 10, "status codes");
_Static_assert(HEARTH_OUT_OF_RANGE == 11 && HEARTH_UNIMPLEMENTED == 12, "status codes");
_Static_assert(HEARTH_INTERNAL == 13 && HEARTH_UNAVAILABLE == 14, "status codes");
_Static_assert(HEARTH_DATA_LOSS == 15 && HEARTH_UNAUTHENTICATED == 16, "status codes");
_Static_assert(HEARTH_P_OK == HEARTH_OK && HEARTH_P_INVALID_ARGUMENT == HEARTH_INVALID_ARGUMENT &&
                   HEARTH_P_NOT_FOUND == HEARTH_NOT_FOUND &&
                   HEARTH_P_OUT_OF_RANGE == HEARTH_OUT_OF_RANGE &&
                   HEARTH_P_RESOURCE_EXHAUSTED == HEARTH_RESOURCE_EXHAUSTED &&
                   HEARTH_P_FAILED_PRECONDITION == HEARTH_FAILED_PRECONDITION &&
                   HEARTH_P_UNIMPLEMENTED == HEARTH_UNIMPLEMENTED &&
                   HEARTH_P_INTERNAL == HEARTH_INTERNAL &&
                   HEARTH_P_UNAVAILABLE == HEARTH_UNAVAILABLE,
               "plugin status codes equal the public ones");
_Static_assert(HEARTH_STOP_MAX_TOKENS == 0 && HEARTH_STOP_EOG == 1 && HEARTH_STOP_STRING == 2 &&
                   HEARTH_STOP_CALLBACK == 3 && HEARTH_STOP_CONTEXT_FULL == 4 &&
                   HEARTH_STOP_CONSTRAINT == 5 && HEARTH_STOP_CANCELLED == 6 &&
                   HEARTH_STOP_ERROR == 7,
               "stop reasons");
_Static_assert(HEARTH_EVENT_TOKEN == 0 && HEARTH_EVENT_DONE == 1, "engine event kinds");
_Static_assert(HEARTH_KV_F32 == 0 && HEARTH_KV_F16 == 1, "KV cache types");
_Static_assert(HEARTH_TOKENIZER_SPM == 1 && HEARTH_TOKENIZER_BPE == 2, "tokenizer kinds");
_Static_assert(HEARTH_TOKENIZE_ADD_SPECIAL == 1u && HEARTH_TOKENIZE_PARSE_SPECIAL == 2u &&
                   HEARTH_DETOKENIZE_RENDER_SPECIAL == 1u,
               "token flags");
_Static_assert(HEARTH_DTYPE_F32 == 0 && HEARTH_DTYPE_F16 == 1 && HEARTH_DTYPE_BF16 == 2 &&
                   HEARTH_DTYPE_I32 == 3 && HEARTH_DTYPE_Q8_0 == 4 && HEARTH_DTYPE_Q4_0 == 5 &&
                   HEARTH_DTYPE_Q5_0 == 6 && HEARTH_DTYPE_Q4_K == 7 && HEARTH_DTYPE_Q6_K == 8 &&
                   HEARTH_DTYPE_Q4_1 == 9,
               "dtypes are append-only");
_Static_assert(HEARTH_OP_NONE == 0 && HEARTH_OP_GET_ROWS == 1 && HEARTH_OP_MUL_MAT == 2 &&
                   HEARTH_OP_ADD == 3 && HEARTH_OP_MUL == 4 && HEARTH_OP_SCALE == 5 &&
                   HEARTH_OP_RMS_NORM == 6 && HEARTH_OP_ROPE == 7 && HEARTH_OP_ATTENTION == 8 &&
                   HEARTH_OP_SILU_MUL == 9 && HEARTH_OP_GELU_MUL == 10 && HEARTH_OP_SOFTMAX == 11 &&
                   HEARTH_OP_COPY == 12 && HEARTH_OP_LORA_MUL_MAT == 13 &&
                   HEARTH_OP_MUL_MAT_T == 14 && HEARTH_OP_OUTER == 15 &&
                   HEARTH_OP_RMS_NORM_BACK == 16 && HEARTH_OP_ROPE_BACK == 17 &&
                   HEARTH_OP_ATTENTION_BACK == 18 && HEARTH_OP_SILU_MUL_BACK == 19 &&
                   HEARTH_OP_GELU_MUL_BACK == 20 && HEARTH_OP_CROSS_ENTROPY == 21 &&
                   HEARTH_OP_CROSS_ENTROPY_BACK == 22 && HEARTH_OP_ADAMW_STEP == 23 &&
                   HEARTH_OP_SUM_SQ == 24,
               "ops are append-only");
_Static_assert(HEARTH_MUL_MAT_FLOAT_ACTIVATIONS == 1u, "mul_mat flags");
_Static_assert(HEARTH_WEIGHT_USE_MATMUL == 1u && HEARTH_WEIGHT_USE_ROWS == 2u &&
                   HEARTH_WEIGHT_USE_OTHER == 4u,
               "weight usage bits");
_Static_assert(HEARTH_ROPE_NORMAL == 0 && HEARTH_ROPE_NEOX == 2, "rope modes");
_Static_assert(HEARTH_LOG_ERROR == 0 && HEARTH_LOG_WARN == 1 && HEARTH_LOG_INFO == 2 &&
                   HEARTH_LOG_DEBUG == 3,
               "log levels");
_Static_assert(HEARTH_PLUGIN_KIND_BACKEND == 1 && HEARTH_PLUGIN_KIND_EXTENSION == 2,
               "plugin kinds");

/* Every INIT macro is a complete, valid C initializer. */
static const hearth_runtime_params kRuntimeParams = HEARTH_RUNTIME_PARAMS_INIT;
static const hearth_plugin_info kPluginInfo = HEARTH_PLUGIN_INFO_INIT;
static const hearth_device_info kDeviceInfo = HEARTH_DEVICE_INFO_INIT;
static const hearth_model_params kModelParams = HEARTH_MODEL_PARAMS_INIT;
static const hearth_model_info kModelInfo = HEARTH_MODEL_INFO_INIT;
static const hearth_sampling_params kSamplingParams = HEARTH_SAMPLING_PARAMS_INIT;
static const hearth_session_params kSessionParams = HEARTH_SESSION_PARAMS_INIT;
static const hearth_generate_params kGenerateParams = HEARTH_GENERATE_PARAMS_INIT;
static const hearth_generate_result kGenerateResult = HEARTH_GENERATE_RESULT_INIT;
static const hearth_adapter_params kAdapterParams = HEARTH_ADAPTER_PARAMS_INIT;
static const hearth_adapter_info kAdapterInfo = HEARTH_ADAPTER_INFO_INIT;
static const hearth_adapter_target kAdapterTarget = HEARTH_ADAPTER_TARGET_INIT;
static const hearth_export_params kExportParams = HEARTH_EXPORT_PARAMS_INIT;
static const hearth_convert_params kConvertParams = HEARTH_CONVERT_PARAMS_INIT;
static const hearth_convert_progress kConvertProgress = HEARTH_CONVERT_PROGRESS_INIT;
static const hearth_dataset_params kDatasetParams = HEARTH_DATASET_PARAMS_INIT;
static const hearth_dataset_info kDatasetInfo = HEARTH_DATASET_INFO_INIT;
static const hearth_trainer_params kTrainerParams = HEARTH_TRAINER_PARAMS_INIT;
static const hearth_train_progress kTrainProgress = HEARTH_TRAIN_PROGRESS_INIT;
static const hearth_trainer_info kTrainerInfo = HEARTH_TRAINER_INFO_INIT;
static const hearth_engine_params kEngineParams = HEARTH_ENGINE_PARAMS_INIT;
static const hearth_request_params kRequestParams = HEARTH_REQUEST_PARAMS_INIT;
static const hearth_engine_stats kEngineStats = HEARTH_ENGINE_STATS_INIT;

/* Referenced so the objects above are not unused; never called. */
size_t hearth_abi_layout_check_total_(void);
size_t hearth_abi_layout_check_total_(void) {
  return kRuntimeParams.struct_size + kPluginInfo.struct_size + kDeviceInfo.struct_size +
         kModelParams.struct_size + kModelInfo.struct_size + kSamplingParams.struct_size +
         kSessionParams.struct_size + kGenerateParams.struct_size + kGenerateResult.struct_size +
         kGenerateParams.sampling.struct_size + kAdapterParams.struct_size +
         kAdapterInfo.struct_size + kAdapterTarget.struct_size + kExportParams.struct_size +
         kConvertParams.struct_size + kConvertProgress.struct_size + kDatasetParams.struct_size +
         kDatasetInfo.struct_size + kTrainerParams.struct_size + kTrainProgress.struct_size +
         kTrainerInfo.struct_size + kEngineParams.struct_size + kRequestParams.struct_size +
         kEngineStats.struct_size;
}

#if defined(__x86_64__) && defined(__LP64__)

#define PIN_SIZE(type, size) _Static_assert(sizeof(type) == (size), "sizeof(" #type ") changed")
#define PIN_OFFSET(type, member, off) \
  _Static_assert(offsetof(type, member) == (off), #type "." #member " moved")

PIN_SIZE(hearth_runtime_params, 48);
PIN_OFFSET(hearth_runtime_params, struct_size, 0);
PIN_OFFSET(hearth_runtime_params, plugin_path, 8);
PIN_OFFSET(hearth_runtime_params, explicit_only, 16);
PIN_OFFSET(hearth_runtime_params, log, 24);
PIN_OFFSET(hearth_runtime_params, log_user_data, 32);
PIN_OFFSET(hearth_runtime_params, log_level, 40);

PIN_SIZE(hearth_plugin_info, 64);
PIN_OFFSET(hearth_plugin_info, struct_size, 0);
PIN_OFFSET(hearth_plugin_info, name, 8);
PIN_OFFSET(hearth_plugin_info, path, 16);
PIN_OFFSET(hearth_plugin_info, version, 24);
PIN_OFFSET(hearth_plugin_info, abi_major, 32);
PIN_OFFSET(hearth_plugin_info, abi_minor, 36);
PIN_OFFSET(hearth_plugin_info, probe_score, 40);
PIN_OFFSET(hearth_plugin_info, load_error, 48);
PIN_OFFSET(hearth_plugin_info, probe_reason, 56);

PIN_SIZE(hearth_device_info, 72);
PIN_OFFSET(hearth_device_info, struct_size, 0);
PIN_OFFSET(hearth_device_info, name, 8);
PIN_OFFSET(hearth_device_info, plugin, 16);
PIN_OFFSET(hearth_device_info, vendor, 24);
PIN_OFFSET(hearth_device_info, description, 32);
PIN_OFFSET(hearth_device_info, memory_total, 40);
PIN_OFFSET(hearth_device_info, memory_free, 48);
PIN_OFFSET(hearth_device_info, arch, 56);
PIN_OFFSET(hearth_device_info, simd_width, 64);
PIN_OFFSET(hearth_device_info, compute_units, 68);

PIN_SIZE(hearth_model_params, 24);
PIN_OFFSET(hearth_model_params, struct_size, 0);
PIN_OFFSET(hearth_model_params, device, 8);
PIN_OFFSET(hearth_model_params, n_threads, 16);

PIN_SIZE(hearth_model_info, 112);
PIN_OFFSET(hearth_model_info, struct_size, 0);
PIN_OFFSET(hearth_model_info, architecture, 8);
PIN_OFFSET(hearth_model_info, name, 16);
PIN_OFFSET(hearth_model_info, quantization, 24);
PIN_OFFSET(hearth_model_info, tokenizer, 32);
PIN_OFFSET(hearth_model_info, device, 40);
PIN_OFFSET(hearth_model_info, n_params, 48);
PIN_OFFSET(hearth_model_info, file_size, 56);
PIN_OFFSET(hearth_model_info, n_vocab, 64);
PIN_OFFSET(hearth_model_info, n_ctx_train, 68);
PIN_OFFSET(hearth_model_info, n_embd, 72);
PIN_OFFSET(hearth_model_info, n_layer, 76);
PIN_OFFSET(hearth_model_info, n_head, 80);
PIN_OFFSET(hearth_model_info, n_head_kv, 84);
PIN_OFFSET(hearth_model_info, token_bos, 88);
PIN_OFFSET(hearth_model_info, token_eos, 92);
PIN_OFFSET(hearth_model_info, tokenizer_kind, 96);
PIN_OFFSET(hearth_model_info, decode_bytes_per_token, 104);

PIN_SIZE(hearth_sampling_params, 48);
PIN_OFFSET(hearth_sampling_params, struct_size, 0);
PIN_OFFSET(hearth_sampling_params, temperature, 4);
PIN_OFFSET(hearth_sampling_params, top_k, 8);
PIN_OFFSET(hearth_sampling_params, top_p, 12);
PIN_OFFSET(hearth_sampling_params, min_p, 16);
PIN_OFFSET(hearth_sampling_params, repeat_penalty, 20);
PIN_OFFSET(hearth_sampling_params, presence_penalty, 24);
PIN_OFFSET(hearth_sampling_params, frequency_penalty, 28);
PIN_OFFSET(hearth_sampling_params, penalty_last_n, 32);
PIN_OFFSET(hearth_sampling_params, seed, 40);

PIN_SIZE(hearth_session_params, 20);
PIN_OFFSET(hearth_session_params, struct_size, 0);
PIN_OFFSET(hearth_session_params, n_ctx, 4);
PIN_OFFSET(hearth_session_params, n_batch, 8);
PIN_OFFSET(hearth_session_params, n_threads, 12);
PIN_OFFSET(hearth_session_params, kv_type, 16);

PIN_SIZE(hearth_generate_params, 104);
PIN_OFFSET(hearth_generate_params, struct_size, 0);
PIN_OFFSET(hearth_generate_params, max_tokens, 4);
PIN_OFFSET(hearth_generate_params, sampling, 8);
PIN_OFFSET(hearth_generate_params, stop, 56);
PIN_OFFSET(hearth_generate_params, n_stop, 64);
PIN_OFFSET(hearth_generate_params, tokenize_flags, 72);
PIN_OFFSET(hearth_generate_params, use_default_flags, 76);
PIN_OFFSET(hearth_generate_params, reuse_prefix, 80);
PIN_OFFSET(hearth_generate_params, constraint, 88);
PIN_OFFSET(hearth_generate_params, constraint_config, 96);
PIN_SIZE(hearth_chat_message, 16);
PIN_OFFSET(hearth_chat_message, role, 0);
PIN_OFFSET(hearth_chat_message, content, 8);

PIN_SIZE(hearth_generate_result, 32);
PIN_OFFSET(hearth_generate_result, struct_size, 0);
PIN_OFFSET(hearth_generate_result, n_prompt_tokens, 4);
PIN_OFFSET(hearth_generate_result, n_generated_tokens, 8);
PIN_OFFSET(hearth_generate_result, stop_reason, 12);
PIN_OFFSET(hearth_generate_result, prompt_seconds, 16);
PIN_OFFSET(hearth_generate_result, generate_seconds, 24);

PIN_SIZE(hearth_adapter_params, 12);
PIN_OFFSET(hearth_adapter_params, reserved, 4);
PIN_OFFSET(hearth_adapter_params, ignore_base_fingerprint, 8);

PIN_SIZE(hearth_adapter_info, 72);
PIN_OFFSET(hearth_adapter_info, format, 4);
PIN_OFFSET(hearth_adapter_info, path, 8);
PIN_OFFSET(hearth_adapter_info, base_architecture, 16);
PIN_OFFSET(hearth_adapter_info, base_model, 24);
PIN_OFFSET(hearth_adapter_info, rank, 32);
PIN_OFFSET(hearth_adapter_info, alpha, 36);
PIN_OFFSET(hearth_adapter_info, use_rslora, 40);
PIN_OFFSET(hearth_adapter_info, n_targets, 44);
PIN_OFFSET(hearth_adapter_info, n_params, 48);
PIN_OFFSET(hearth_adapter_info, bound, 56);
PIN_OFFSET(hearth_adapter_info, provenance, 64);

PIN_SIZE(hearth_adapter_target, 48);
PIN_OFFSET(hearth_adapter_target, weight, 8);
PIN_OFFSET(hearth_adapter_target, source, 16);
PIN_OFFSET(hearth_adapter_target, rank, 24);
PIN_OFFSET(hearth_adapter_target, scale, 28);
PIN_OFFSET(hearth_adapter_target, n_in, 32);
PIN_OFFSET(hearth_adapter_target, n_out, 40);

PIN_SIZE(hearth_export_params, 16);
PIN_OFFSET(hearth_export_params, merged_type, 8);

PIN_SIZE(hearth_convert_params, 40);
PIN_OFFSET(hearth_convert_params, type, 8);
PIN_OFFSET(hearth_convert_params, progress, 16);
PIN_OFFSET(hearth_convert_params, user_data, 24);
PIN_OFFSET(hearth_convert_params, progress_bytes, 32);
PIN_SIZE(hearth_convert_progress, 48);
PIN_OFFSET(hearth_convert_progress, index, 8);
PIN_OFFSET(hearth_convert_progress, count, 16);
PIN_OFFSET(hearth_convert_progress, tensor, 24);
PIN_OFFSET(hearth_convert_progress, bytes_done, 32);
PIN_OFFSET(hearth_convert_progress, bytes_total, 40);

PIN_SIZE(hearth_dataset_params, 12);
PIN_OFFSET(hearth_dataset_params, max_tokens, 4);
PIN_OFFSET(hearth_dataset_params, truncate, 8);

PIN_SIZE(hearth_dataset_info, 72);
PIN_OFFSET(hearth_dataset_info, max_tokens, 4);
PIN_OFFSET(hearth_dataset_info, n_examples, 8);
PIN_OFFSET(hearth_dataset_info, n_tokens, 16);
PIN_OFFSET(hearth_dataset_info, n_trained_tokens, 24);
PIN_OFFSET(hearth_dataset_info, longest, 32);
PIN_OFFSET(hearth_dataset_info, n_truncated, 40);
PIN_OFFSET(hearth_dataset_info, n_text, 48);
PIN_OFFSET(hearth_dataset_info, n_prompt_completion, 56);
PIN_OFFSET(hearth_dataset_info, n_messages, 64);

PIN_SIZE(hearth_trainer_params, 104);
PIN_OFFSET(hearth_trainer_params, rank, 4);
PIN_OFFSET(hearth_trainer_params, alpha, 8);
PIN_OFFSET(hearth_trainer_params, use_rslora, 12);
PIN_OFFSET(hearth_trainer_params, targets, 16);
PIN_OFFSET(hearth_trainer_params, lr, 24);
PIN_OFFSET(hearth_trainer_params, beta1, 28);
PIN_OFFSET(hearth_trainer_params, beta2, 32);
PIN_OFFSET(hearth_trainer_params, eps, 36);
PIN_OFFSET(hearth_trainer_params, weight_decay, 40);
PIN_OFFSET(hearth_trainer_params, schedule, 44);
PIN_OFFSET(hearth_trainer_params, warmup_steps, 48);
PIN_OFFSET(hearth_trainer_params, max_grad_norm, 52);
PIN_OFFSET(hearth_trainer_params, batch, 56);
PIN_OFFSET(hearth_trainer_params, grad_accum, 60);
PIN_OFFSET(hearth_trainer_params, epochs, 64);
PIN_OFFSET(hearth_trainer_params, eval_split, 68);
PIN_OFFSET(hearth_trainer_params, seed, 72);
PIN_OFFSET(hearth_trainer_params, n_threads, 80);
PIN_OFFSET(hearth_trainer_params, init_adapter, 88);

PIN_SIZE(hearth_train_progress, 72);
PIN_OFFSET(hearth_train_progress, step, 8);
PIN_OFFSET(hearth_train_progress, total_steps, 16);
PIN_OFFSET(hearth_train_progress, epoch, 24);
PIN_OFFSET(hearth_train_progress, loss, 32);
PIN_OFFSET(hearth_train_progress, grad_norm, 40);
PIN_OFFSET(hearth_trainer_params, bf16_products, 96);
PIN_OFFSET(hearth_trainer_params, lora_dropout, 100);
PIN_OFFSET(hearth_train_progress, lr, 48);
PIN_OFFSET(hearth_train_progress, n_tokens, 56);
PIN_OFFSET(hearth_train_progress, n_trained, 64);

PIN_SIZE(hearth_trainer_info, 40);
PIN_OFFSET(hearth_trainer_info, step, 8);
PIN_OFFSET(hearth_trainer_info, total_steps, 16);
PIN_OFFSET(hearth_trainer_info, n_train, 24);
PIN_OFFSET(hearth_trainer_info, n_eval, 32);

PIN_SIZE(hearth_status_code, 4);

PIN_SIZE(hearth_stop_reason, 4);

PIN_SIZE(hearth_tensor_desc, 88);
PIN_OFFSET(hearth_tensor_desc, dtype, 0);
PIN_OFFSET(hearth_tensor_desc, n_dims, 4);
PIN_OFFSET(hearth_tensor_desc, ne, 8);
PIN_OFFSET(hearth_tensor_desc, nb, 40);
PIN_OFFSET(hearth_tensor_desc, buffer, 72);
PIN_OFFSET(hearth_tensor_desc, offset, 80);

PIN_SIZE(hearth_node, 24);
PIN_OFFSET(hearth_node, op, 0);
PIN_OFFSET(hearth_node, output, 4);
PIN_OFFSET(hearth_node, first_input, 8);
PIN_OFFSET(hearth_node, n_inputs, 12);
PIN_OFFSET(hearth_node, n_extra_outputs, 14);
PIN_OFFSET(hearth_node, params_offset, 16);
PIN_OFFSET(hearth_node, params_size, 20);

PIN_SIZE(hearth_graph, 80);
PIN_OFFSET(hearth_graph, struct_size, 0);
PIN_OFFSET(hearth_graph, n_tensors, 4);
PIN_OFFSET(hearth_graph, tensors, 8);
PIN_OFFSET(hearth_graph, n_nodes, 16);
PIN_OFFSET(hearth_graph, nodes, 24);
PIN_OFFSET(hearth_graph, n_node_inputs, 32);
PIN_OFFSET(hearth_graph, node_inputs, 40);
PIN_OFFSET(hearth_graph, params_bytes, 48);
PIN_OFFSET(hearth_graph, params, 56);
PIN_OFFSET(hearth_graph, plan_key, 64);
PIN_OFFSET(hearth_graph, binding_key, 72);

/* Params blocks: append-only, read as min(params_size, sizeof). */
PIN_SIZE(hearth_scale_params, 4);
PIN_SIZE(hearth_rms_norm_params, 4);
PIN_SIZE(hearth_rope_params, 16);
PIN_OFFSET(hearth_rope_params, theta_base, 0);
PIN_OFFSET(hearth_rope_params, freq_scale, 4);
PIN_OFFSET(hearth_rope_params, n_rot, 8);
PIN_OFFSET(hearth_rope_params, mode, 12);
PIN_SIZE(hearth_attention_params, 12);
PIN_OFFSET(hearth_attention_params, scale, 0);
PIN_OFFSET(hearth_attention_params, softcap, 4);
PIN_OFFSET(hearth_attention_params, window, 8);
PIN_SIZE(hearth_adamw_params, 32);
PIN_OFFSET(hearth_adamw_params, lr, 0);
PIN_OFFSET(hearth_adamw_params, beta1, 4);
PIN_OFFSET(hearth_adamw_params, beta2, 8);
PIN_OFFSET(hearth_adamw_params, eps, 12);
PIN_OFFSET(hearth_adamw_params, weight_decay, 16);
PIN_OFFSET(hearth_adamw_params, bias_correction1, 20);
PIN_OFFSET(hearth_adamw_params, bias_correction2, 24);
PIN_OFFSET(hearth_adamw_params, grad_scale, 28);
PIN_SIZE(hearth_cross_entropy_params, 4);
PIN_SIZE(hearth_mul_mat_params, 4);
PIN_SIZE(hearth_cross_entropy_back_params, 8);
PIN_OFFSET(hearth_cross_entropy_back_params, scale, 0);
PIN_OFFSET(hearth_cross_entropy_back_params, ignore_index, 4);

PIN_SIZE(hearth_pweight, 128);
PIN_OFFSET(hearth_pweight, struct_size, 0);
PIN_OFFSET(hearth_pweight, usage, 4);
PIN_OFFSET(hearth_pweight, name, 8);
PIN_OFFSET(hearth_pweight, desc, 16);
PIN_OFFSET(hearth_pweight, data, 104);
PIN_OFFSET(hearth_pweight, size, 112);
PIN_OFFSET(hearth_pweight, data_outlives, 120);

PIN_SIZE(hearth_pvocab, 32);
PIN_OFFSET(hearth_pvocab, struct_size, 0);
PIN_OFFSET(hearth_pvocab, n_vocab, 4);
PIN_OFFSET(hearth_pvocab, text, 8);
PIN_OFFSET(hearth_pvocab, offsets, 16);
PIN_OFFSET(hearth_pvocab, is_control, 24);

PIN_SIZE(hearth_extension_vtable, 32);
PIN_OFFSET(hearth_extension_vtable, struct_size, 0);
PIN_OFFSET(hearth_extension_vtable, mask_create, 8);
PIN_OFFSET(hearth_extension_vtable, mask_free, 16);
PIN_OFFSET(hearth_extension_vtable, mask_apply, 24);

PIN_SIZE(hearth_host_services, 48);
PIN_OFFSET(hearth_host_services, struct_size, 0);
PIN_OFFSET(hearth_host_services, ctx, 8);
PIN_OFFSET(hearth_host_services, set_error, 16);
PIN_OFFSET(hearth_host_services, log, 24);
PIN_OFFSET(hearth_host_services, alloc, 32);
PIN_OFFSET(hearth_host_services, free, 40);

PIN_SIZE(hearth_pdevice_info, 72);
PIN_OFFSET(hearth_pdevice_info, struct_size, 0);
PIN_OFFSET(hearth_pdevice_info, name, 8);
PIN_OFFSET(hearth_pdevice_info, vendor, 16);
PIN_OFFSET(hearth_pdevice_info, description, 24);
PIN_OFFSET(hearth_pdevice_info, memory_total, 32);
PIN_OFFSET(hearth_pdevice_info, memory_free, 40);
PIN_OFFSET(hearth_pdevice_info, host_visible, 48);
PIN_OFFSET(hearth_pdevice_info, simd_width, 52);
PIN_OFFSET(hearth_pdevice_info, arch, 56);
PIN_OFFSET(hearth_pdevice_info, compute_units, 64);

PIN_SIZE(hearth_pcontext_options, 12);
PIN_OFFSET(hearth_pcontext_options, struct_size, 0);
PIN_OFFSET(hearth_pcontext_options, device, 4);
PIN_OFFSET(hearth_pcontext_options, n_threads, 8);

PIN_SIZE(hearth_backend_vtable, 128);
PIN_OFFSET(hearth_backend_vtable, struct_size, 0);
PIN_OFFSET(hearth_backend_vtable, probe, 8);
PIN_OFFSET(hearth_backend_vtable, device_count, 16);
PIN_OFFSET(hearth_backend_vtable, device_info, 24);
PIN_OFFSET(hearth_backend_vtable, context_create, 32);
PIN_OFFSET(hearth_backend_vtable, context_free, 40);
PIN_OFFSET(hearth_backend_vtable, buffer_alloc, 48);
PIN_OFFSET(hearth_backend_vtable, buffer_free, 56);
PIN_OFFSET(hearth_backend_vtable, buffer_wrap_host, 64);
PIN_OFFSET(hearth_backend_vtable, buffer_upload, 72);
PIN_OFFSET(hearth_backend_vtable, buffer_download, 80);
PIN_OFFSET(hearth_backend_vtable, buffer_host_ptr, 88);
PIN_OFFSET(hearth_backend_vtable, supports, 96);
PIN_OFFSET(hearth_backend_vtable, graph_compute, 104);
PIN_OFFSET(hearth_backend_vtable, buffer_copy, 112);
PIN_OFFSET(hearth_backend_vtable, weight_place, 120);

PIN_SIZE(hearth_plugin_init_info, 64);
PIN_OFFSET(hearth_plugin_init_info, struct_size, 0);
PIN_OFFSET(hearth_plugin_init_info, host_abi_major, 4);
PIN_OFFSET(hearth_plugin_init_info, host_abi_minor, 8);
PIN_OFFSET(hearth_plugin_init_info, host, 16);
PIN_OFFSET(hearth_plugin_init_info, plugin_abi_major, 24);
PIN_OFFSET(hearth_plugin_init_info, plugin_abi_minor, 28);
PIN_OFFSET(hearth_plugin_init_info, kind, 32);
PIN_OFFSET(hearth_plugin_init_info, name, 40);
PIN_OFFSET(hearth_plugin_init_info, version, 48);
PIN_OFFSET(hearth_plugin_init_info, vtable, 56);

PIN_SIZE(hearth_engine_params, 56);
PIN_OFFSET(hearth_engine_params, n_seq, 4);
PIN_OFFSET(hearth_engine_params, n_ctx, 8);
PIN_OFFSET(hearth_engine_params, max_step_tokens, 12);
PIN_OFFSET(hearth_engine_params, n_threads, 16);
PIN_OFFSET(hearth_engine_params, max_waiting, 20);
PIN_OFFSET(hearth_engine_params, adapters, 24);
PIN_OFFSET(hearth_engine_params, n_adapters, 32);
PIN_OFFSET(hearth_engine_params, kv_block_size, 40);
PIN_OFFSET(hearth_engine_params, kv_pages, 44);
PIN_OFFSET(hearth_engine_params, kv_type, 48);
PIN_SIZE(hearth_engine_adapter, 8);
PIN_OFFSET(hearth_engine_adapter, index, 0);
PIN_OFFSET(hearth_engine_adapter, scale, 4);
PIN_SIZE(hearth_request_event, 112);
PIN_OFFSET(hearth_request_event, request, 8);
PIN_OFFSET(hearth_request_event, kind, 16);
PIN_OFFSET(hearth_request_event, text, 24);
PIN_OFFSET(hearth_request_event, text_len, 32);
PIN_OFFSET(hearth_request_event, token, 40);
PIN_OFFSET(hearth_request_event, logprob, 44);
PIN_OFFSET(hearth_request_event, top_tokens, 48);
PIN_OFFSET(hearth_request_event, top_logprobs, 56);
PIN_OFFSET(hearth_request_event, n_top, 64);
PIN_OFFSET(hearth_request_event, finish_reason, 72);
PIN_OFFSET(hearth_request_event, status, 76);
PIN_OFFSET(hearth_request_event, message, 80);
PIN_OFFSET(hearth_request_event, n_prompt_tokens, 88);
PIN_OFFSET(hearth_request_event, n_cached_tokens, 92);
PIN_OFFSET(hearth_request_event, n_generated_tokens, 96);
PIN_OFFSET(hearth_request_event, first_token_seconds, 104);
PIN_SIZE(hearth_request_params, 176);
PIN_OFFSET(hearth_request_params, tokens, 8);
PIN_OFFSET(hearth_request_params, n_tokens, 16);
PIN_OFFSET(hearth_request_params, text, 24);
PIN_OFFSET(hearth_request_params, text_len, 32);
PIN_OFFSET(hearth_request_params, tokenize_flags, 40);
PIN_OFFSET(hearth_request_params, messages, 48);
PIN_OFFSET(hearth_request_params, n_messages, 56);
PIN_OFFSET(hearth_request_params, max_tokens, 64);
PIN_OFFSET(hearth_request_params, sampling, 72);
PIN_OFFSET(hearth_request_params, stop, 120);
PIN_OFFSET(hearth_request_params, n_stop, 128);
PIN_OFFSET(hearth_request_params, adapters, 136);
PIN_OFFSET(hearth_request_params, n_adapters, 144);
PIN_OFFSET(hearth_request_params, logprobs, 152);
PIN_OFFSET(hearth_request_params, top_logprobs, 156);
PIN_OFFSET(hearth_request_params, on_event, 160);
PIN_OFFSET(hearth_request_params, user_data, 168);
PIN_SIZE(hearth_engine_stats, 104);
PIN_OFFSET(hearth_engine_stats, n_waiting, 4);
PIN_OFFSET(hearth_engine_stats, n_running, 8);
PIN_OFFSET(hearth_engine_stats, n_seq, 12);
PIN_OFFSET(hearth_engine_stats, requests_submitted, 16);
PIN_OFFSET(hearth_engine_stats, requests_finished, 24);
PIN_OFFSET(hearth_engine_stats, requests_cancelled, 32);
PIN_OFFSET(hearth_engine_stats, requests_failed, 40);
PIN_OFFSET(hearth_engine_stats, prompt_tokens, 48);
PIN_OFFSET(hearth_engine_stats, cached_prompt_tokens, 56);
PIN_OFFSET(hearth_engine_stats, generated_tokens, 64);
PIN_OFFSET(hearth_engine_stats, steps, 72);
PIN_OFFSET(hearth_engine_stats, kv_tokens_used, 80);
PIN_OFFSET(hearth_engine_stats, kv_tokens_capacity, 88);
PIN_OFFSET(hearth_engine_stats, step_seconds, 96);

#endif /* x86_64 LP64 */
