/* hearth.h — the public C ABI of hearth (C11, stable, versioned).
 *
 * Conventions (they hold for every declaration below unless it says otherwise):
 *
 * Errors.  Every fallible call returns `hearth_error*`; NULL means success.
 *   A non-NULL error is owned by the caller and freed with hearth_error_free().
 *   hearth_error_code() values mirror absl::StatusCode (switch with a
 *   `default:`); the message names the input that was wrong. On failure,
 *   out-parameters are left untouched. Nothing aborts or exits on bad input.
 *
 * Parameters.  Parameter structs begin with `uint32_t struct_size`, grow at
 *   the end only, and come with a HEARTH_*_INIT macro holding the defaults.
 *   The library reads min(struct_size, its sizeof) bytes and defaults the
 *   rest, so a program built against an older header keeps working.
 *   Passing NULL for a params pointer means "all defaults".
 *
 * Ownership.  See docs/abi/ownership.md. Every create or load function has a matching
 *   free function, which is void and accepts NULL. A returned `const char*` is
 *   borrowed: it lives as long as the object it came from unless stated.
 *   Strings passed to callbacks live for the duration of the callback only.
 *
 * Threads.  A hearth_runtime and a hearth_model are immutable once made and
 *   may be shared by any number of threads. A hearth_session and a
 *   hearth_sampler belong to one thread at a time. A model must outlive its
 *   sessions (hearth_model_free on a model with live sessions is refused
 *   politely: the model is kept until its last session is freed).
 *
 * Versioning.  See docs/abi/versioning.md. HEARTH_ABI_VERSION_MAJOR changes
 *   only with a new SONAME (libhearth.so.<major>); MINOR grows when
 *   declarations are appended. @since names the minor that added a thing.
 *
 * Text is UTF-8 everywhere; lengths are in bytes.
 */
#ifndef HEARTH_H_
#define HEARTH_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define HEARTH_API __declspec(dllimport)
#else
#define HEARTH_API __attribute__((visibility("default")))
#endif

/** @since 1.0 */
#define HEARTH_ABI_VERSION_MAJOR 1
/** @since 1.0 */
#define HEARTH_ABI_VERSION_MINOR 0

/** The ABI version of the loaded library: (major << 16) | minor. @since 1.0 */
HEARTH_API uint32_t hearth_abi_version(void);
/** The library's release version, e.g. "0.1.0". Static. @since 1.0 */
HEARTH_API const char* hearth_version_string(void);

/* ------------------------------------------------------------------------- */
/* Errors                                                                     */
/* ------------------------------------------------------------------------- */

/** @since 1.0 */
typedef struct hearth_error hearth_error;

/** Status codes mirror absl::StatusCode. @since 1.0 */
typedef enum hearth_status_code {
  HEARTH_OK = 0,
  HEARTH_CANCELLED = 1,
  HEARTH_UNKNOWN = 2,
  HEARTH_INVALID_ARGUMENT = 3,
  HEARTH_DEADLINE_EXCEEDED = 4,
  HEARTH_NOT_FOUND = 5,
  HEARTH_ALREADY_EXISTS = 6,
  HEARTH_PERMISSION_DENIED = 7,
  HEARTH_RESOURCE_EXHAUSTED = 8,
  HEARTH_FAILED_PRECONDITION = 9,
  HEARTH_ABORTED = 10,
  HEARTH_OUT_OF_RANGE = 11,
  HEARTH_UNIMPLEMENTED = 12,
  HEARTH_INTERNAL = 13,
  HEARTH_UNAVAILABLE = 14,
  HEARTH_DATA_LOSS = 15,
  HEARTH_UNAUTHENTICATED = 16
} hearth_status_code;

/** The code of `err`; HEARTH_OK for NULL. @since 1.0 */
HEARTH_API hearth_status_code hearth_error_code(const hearth_error* err);
/** The message of `err` (borrowed, lives as long as `err`); "" for NULL. @since 1.0 */
HEARTH_API const char* hearth_error_message(const hearth_error* err);
/** @since 1.0 */
HEARTH_API void hearth_error_free(hearth_error* err);

/* ------------------------------------------------------------------------- */
/* Runtime: plugins and devices                                               */
/* ------------------------------------------------------------------------- */

/** @since 1.0 */
typedef struct hearth_runtime hearth_runtime;

/** Log callback; `message` lives for the call only. @since 1.0 */
typedef void (*hearth_log_fn)(int level, const char* message, void* user_data);

/** @since 1.0 */
typedef struct hearth_runtime_params {
  uint32_t struct_size;
  /* Plugin files or folders to load first, ':'-separated; NULL for none. */
  const char* plugin_path;
  /* 0: also search HEARTH_PLUGIN_PATH (ignored when setuid) and
     <libdir>/hearth/plugins. 1: load only `plugin_path`. */
  uint32_t explicit_only;
  hearth_log_fn log; /* NULL: warnings and errors go to stderr */
  void* log_user_data;
  int32_t log_level; /* 0 error, 1 warn (default), 2 info, 3 debug */
} hearth_runtime_params;
#define HEARTH_RUNTIME_PARAMS_INIT \
  { sizeof(hearth_runtime_params), NULL, 0, NULL, NULL, 1 }

/** Discovers and loads plugins. Plugins that fail to load are recorded (see
 *  hearth_plugin_info.load_error) and do not fail the call. @since 1.0 */
HEARTH_API hearth_error* hearth_runtime_create(const hearth_runtime_params* params,
                                               hearth_runtime** out);
/** @since 1.0 */
HEARTH_API void hearth_runtime_free(hearth_runtime* rt);

/** One plugin file the runtime looked at. Strings live as long as the runtime.
 *  @since 1.0 */
typedef struct hearth_plugin_info {
  uint32_t struct_size;
  const char* name;       /* "cpu", or the file name when it failed to load */
  const char* path;
  const char* version;    /* plugin's own version; "" when unknown */
  uint32_t abi_major;     /* what the plugin declared; 0 when unknown */
  uint32_t abi_minor;     /* the minor in use: min(host, plugin) */
  int32_t probe_score;    /* 0: no usable device here */
  const char* load_error; /* NULL when loaded; else why not */
  const char* probe_reason; /* why a backend probed 0, in its words; else NULL @since 1.0 */
} hearth_plugin_info;
#define HEARTH_PLUGIN_INFO_INIT \
  { sizeof(hearth_plugin_info), NULL, NULL, NULL, 0, 0, 0, NULL, NULL }

/** @since 1.0 */
HEARTH_API size_t hearth_runtime_plugin_count(const hearth_runtime* rt);
/** Fills `out` (set out->struct_size first). @since 1.0 */
HEARTH_API hearth_error* hearth_runtime_plugin_info(const hearth_runtime* rt, size_t index,
                                                    hearth_plugin_info* out);

/** A device of a loaded plugin. Strings live as long as the runtime. @since 1.0 */
typedef struct hearth_device_info {
  uint32_t struct_size;
  const char* name;        /* unique in the runtime: "cpu", "cuda:0" … */
  const char* plugin;      /* plugin name */
  const char* vendor;
  const char* description;
  uint64_t memory_total;
  uint64_t memory_free;
  const char* arch;       /* "sm_90", "gfx90a", "x86-64+avx2" …; "" when unknown */
  uint32_t simd_width;    /* warp/wavefront width, or a CPU's F32 lanes; 0 = unknown */
  uint32_t compute_units; /* SMs, CUs or cores; 0 = unknown */
} hearth_device_info;
#define HEARTH_DEVICE_INFO_INIT \
  { sizeof(hearth_device_info), NULL, NULL, NULL, NULL, 0, 0, NULL, 0, 0 }

/** Devices of every plugin that probed > 0, best first. @since 1.0 */
HEARTH_API size_t hearth_runtime_device_count(const hearth_runtime* rt);
/** @since 1.0 */
HEARTH_API hearth_error* hearth_runtime_device_info(const hearth_runtime* rt, size_t index,
                                                    hearth_device_info* out);

/* ------------------------------------------------------------------------- */
/* Models                                                                     */
/* ------------------------------------------------------------------------- */

/** @since 1.0 */
typedef struct hearth_model hearth_model;

/** @since 1.0 */
typedef struct hearth_model_params {
  uint32_t struct_size;
  const char* device; /* device name; NULL or "" = the best device */
  uint32_t n_threads; /* CPU threads for compute; 0 = all cores */
} hearth_model_params;
#define HEARTH_MODEL_PARAMS_INIT { sizeof(hearth_model_params), NULL, 0 }

/** Loads a GGUF file. The file is validated before anything in it is
 *  trusted; weights are memory-mapped where the device can use host memory.
 *  The runtime must outlive the model. @since 1.0 */
HEARTH_API hearth_error* hearth_model_load(hearth_runtime* rt, const char* path,
                                           const hearth_model_params* params,
                                           hearth_model** out);
/** @since 1.0 */
HEARTH_API void hearth_model_free(hearth_model* model);

/** Tokenizer kinds. @since 1.0 */
#define HEARTH_TOKENIZER_SPM 1
#define HEARTH_TOKENIZER_BPE 2

/** What a model is. Strings live as long as the model. @since 1.0 */
typedef struct hearth_model_info {
  uint32_t struct_size;
  const char* architecture;  /* "llama", "qwen2", … */
  const char* name;          /* general.name, or "" */
  const char* quantization;  /* e.g. "Q4_K (mostly), Q6_K, F32" */
  const char* tokenizer;     /* "llama (SentencePiece BPE)", "gpt2 (byte-level BPE, qwen2)" */
  const char* device;        /* where it was placed */
  uint64_t n_params;
  uint64_t file_size;        /* bytes */
  uint32_t n_vocab;
  uint32_t n_ctx_train;
  uint32_t n_embd;
  uint32_t n_layer;
  uint32_t n_head;
  uint32_t n_head_kv;
  int32_t token_bos;         /* -1 when the model has none */
  int32_t token_eos;
  uint32_t tokenizer_kind;   /* HEARTH_TOKENIZER_* */
  /* Weight bytes one decode step reads: every tensor but the token-embedding
     table (one row is gathered), plus that table when the output layer
     shares it. What `hearth bench` divides by to get a bandwidth fraction. */
  uint64_t decode_bytes_per_token;
} hearth_model_info;
#define HEARTH_MODEL_INFO_INIT \
  { sizeof(hearth_model_info), NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0, 0, -1, -1, 0, 0 }

/** @since 1.0 */
HEARTH_API hearth_error* hearth_model_get_info(const hearth_model* model, hearth_model_info* out);

/** A metadata value of the model file rendered as text, or NULL when the key
 *  is absent. Arrays render as "[n items]". Borrowed from the model. @since 1.0 */
HEARTH_API const char* hearth_model_meta(const hearth_model* model, const char* key);

/* ------------------------------------------------------------------------- */
/* Tokens                                                                     */
/* ------------------------------------------------------------------------- */

/** Tokenize flags. @since 1.0 */
#define HEARTH_TOKENIZE_ADD_SPECIAL 1u   /* add BOS/EOS as the model asks */
#define HEARTH_TOKENIZE_PARSE_SPECIAL 2u /* "<|im_start|>" in text becomes its token */

/** Tokenizes `len` bytes of `text` (invalid UTF-8 is an error).
 *  With `tokens` NULL and `capacity` 0, only *n_tokens is written (the count
 *  needed). Otherwise fails with HEARTH_RESOURCE_EXHAUSTED if `capacity` is
 *  too small. @since 1.0 */
HEARTH_API hearth_error* hearth_tokenize(const hearth_model* model, const char* text, size_t len,
                                         uint32_t flags, int32_t* tokens, size_t capacity,
                                         size_t* n_tokens);

/** Detokenize flags. @since 1.0 */
#define HEARTH_DETOKENIZE_RENDER_SPECIAL 1u /* write "<s>" etc. instead of skipping them */

/** Turns token ids back into text. Same capacity protocol as hearth_tokenize;
 *  the result is not NUL-terminated. An id outside [0, n_vocab) is an error
 *  naming the id and its position. @since 1.0 */
HEARTH_API hearth_error* hearth_detokenize(const hearth_model* model, const int32_t* tokens,
                                           size_t n_tokens, uint32_t flags, char* text,
                                           size_t capacity, size_t* text_len);

/** The text of one token (raw bytes; may be a partial UTF-8 sequence).
 *  Borrowed from the model. NULL for an id out of range. @since 1.0 */
HEARTH_API const char* hearth_token_text(const hearth_model* model, int32_t token, size_t* len);

/** 1 if `token` ends generation (EOS, EOT, <|im_end|> …). @since 1.0 */
HEARTH_API int hearth_token_is_eog(const hearth_model* model, int32_t token);

/* ------------------------------------------------------------------------- */
/* Sampling                                                                   */
/* ------------------------------------------------------------------------- */

/** The sampling chain, applied in this order: repetition penalties
 *  (repeat, presence, frequency over the last `penalty_last_n` tokens),
 *  top-k, top-p, min-p, temperature, then a draw. temperature <= 0 is greedy
 *  (argmax, deterministic). @since 1.0 */
typedef struct hearth_sampling_params {
  uint32_t struct_size;
  float temperature;       /* 0.8 */
  int32_t top_k;           /* 40; <= 0 disables */
  float top_p;             /* 0.95; 1 disables */
  float min_p;             /* 0.05; 0 disables */
  float repeat_penalty;    /* 1.0 = off (llama.cpp's CTRL-style penalty) */
  float presence_penalty;  /* 0 = off */
  float frequency_penalty; /* 0 = off */
  int32_t penalty_last_n;  /* 64; -1 = whole context */
  uint64_t seed;           /* same seed, same model, same prompt: same text */
} hearth_sampling_params;
#define HEARTH_SAMPLING_PARAMS_INIT \
  { sizeof(hearth_sampling_params), 0.8f, 40, 0.95f, 0.05f, 1.0f, 0.0f, 0.0f, 64, 0xC0FFEEu }

/** @since 1.0 */
typedef struct hearth_sampler hearth_sampler;

/** Invalid values (top_p outside (0,1], NaN temperature …) are errors.
 *  @since 1.0 */
HEARTH_API hearth_error* hearth_sampler_create(const hearth_sampling_params* params,
                                               hearth_sampler** out);
/** @since 1.0 */
HEARTH_API void hearth_sampler_free(hearth_sampler* sampler);
/** Picks a token from `logits` (n_vocab floats), considering the tokens
 *  accepted so far for penalties. Does not accept it. @since 1.0 */
HEARTH_API hearth_error* hearth_sampler_sample(hearth_sampler* sampler, const float* logits,
                                               size_t n_vocab, int32_t* token);
/** Records `token` as part of the history (prompt or generated). @since 1.0 */
HEARTH_API void hearth_sampler_accept(hearth_sampler* sampler, int32_t token);
/** Forgets the history and reseeds. @since 1.0 */
HEARTH_API void hearth_sampler_reset(hearth_sampler* sampler);

/* ------------------------------------------------------------------------- */
/* Sessions                                                                   */
/* ------------------------------------------------------------------------- */

/** A conversation's state: KV cache and buffers, planned once. @since 1.0 */
typedef struct hearth_session hearth_session;

/** What a KV cache stores keys and values as. @since 1.0 */
typedef enum hearth_kv_type {
  HEARTH_KV_F32 = 0, /* float: exact (the default) */
  HEARTH_KV_F16 = 1  /* half precision: half the memory, and half the bytes
                        attention reads per token of context; k and v are
                        rounded to F16 as they are stored */
} hearth_kv_type;

/** @since 1.0 */
typedef struct hearth_session_params {
  uint32_t struct_size;
  uint32_t n_ctx;     /* context length in tokens; 0 = min(model's, 4096) */
  uint32_t n_batch;   /* tokens per prompt-processing step; 0 = 256 */
  uint32_t n_threads; /* 0 = the model's */
  uint32_t kv_type;   /* hearth_kv_type; 0 = F32. Another value is INVALID_ARGUMENT. */
} hearth_session_params;
#define HEARTH_SESSION_PARAMS_INIT \
  { sizeof(hearth_session_params), 0, 0, 0, 0 }

/** @since 1.0 */
HEARTH_API hearth_error* hearth_session_create(hearth_model* model,
                                               const hearth_session_params* params,
                                               hearth_session** out);
/** @since 1.0 */
HEARTH_API void hearth_session_free(hearth_session* session);

/** Runs `n_tokens` tokens through the model, appending them to the context.
 *  Ids out of range and contexts that would overflow are errors that change
 *  nothing. Afterwards the logits of the last token are available. @since 1.0 */
HEARTH_API hearth_error* hearth_session_feed(hearth_session* session, const int32_t* tokens,
                                             size_t n_tokens);

/** The logits of the last fed token: n_vocab floats, borrowed until the next
 *  call on the session. FAILED_PRECONDITION before anything was fed. @since 1.0 */
HEARTH_API hearth_error* hearth_session_logits(const hearth_session* session,
                                               const float** logits, size_t* n_vocab);

/** Tokens in the context so far. @since 1.0 */
HEARTH_API size_t hearth_session_n_past(const hearth_session* session);
/** Context size in tokens. @since 1.0 */
HEARTH_API size_t hearth_session_n_ctx(const hearth_session* session);
/** Forgets the context (keeps the buffers). @since 1.0 */
HEARTH_API void hearth_session_reset(hearth_session* session);
/** Keeps only the first `n_past` tokens of the context, as if the rest had
 *  never been fed (a chat rewinding a turn, a benchmark decoding again at the
 *  same depth); free: the dropped tokens' KV rows are overwritten by what is
 *  fed next. Logits are unavailable until the next feed unless nothing was
 *  dropped. `n_past` above hearth_session_n_past is OUT_OF_RANGE.
 *  @since 1.0 */
HEARTH_API hearth_error* hearth_session_truncate(hearth_session* session, size_t n_past);

/** Streaming callback: `piece` (valid UTF-8, `len` bytes, not NUL-terminated,
 *  lives for the call only) is the next text. Return non-zero to stop.
 *  @since 1.0 */
typedef int (*hearth_stream_fn)(const char* piece, size_t len, void* user_data);

/** Why generation ended. @since 1.0 */
typedef enum hearth_stop_reason {
  HEARTH_STOP_MAX_TOKENS = 0,
  HEARTH_STOP_EOG = 1,          /* the model produced an end-of-generation token */
  HEARTH_STOP_STRING = 2,       /* a stop string appeared (it is not emitted) */
  HEARTH_STOP_CALLBACK = 3,     /* the callback asked to stop */
  HEARTH_STOP_CONTEXT_FULL = 4, /* the context filled up */
  HEARTH_STOP_CONSTRAINT = 5,   /* the constraint (logits mask) allowed no token */
  HEARTH_STOP_CANCELLED = 6,    /* engine: hearth_engine_cancel, or the engine was freed */
  HEARTH_STOP_ERROR = 7         /* engine: the request failed (the DONE event says why) */
} hearth_stop_reason;

/** @since 1.0 */
typedef struct hearth_generate_params {
  uint32_t struct_size;
  int32_t max_tokens;        /* 256; 0 generates nothing; < 0 = until context is full */
  hearth_sampling_params sampling;
  const char* const* stop;   /* stop strings, may be NULL */
  size_t n_stop;
  uint32_t tokenize_flags;   /* for the prompt; default ADD_SPECIAL when the
                                session is empty, else 0 */
  uint32_t use_default_flags; /* 1 (default): ignore tokenize_flags and use the rule above */
  /* 1: `prompt` is the whole conversation so far (e.g. a re-rendered chat).
     The session keeps the longest token prefix it already holds (its KV
     cache) and computes only the rest. 0 (default): `prompt` is appended. */
  uint32_t reuse_prefix;
  /* Constrained decoding: the name of an extension plugin that offers a
     logits mask (docs/abi/plugins.md; hearth ships "banned-strings"), NULL
     or "" for none, and its configuration in the plugin's own format (for
     banned-strings: the strings, one per line). A name no loaded plugin has
     is NOT_FOUND. @since 1.0 */
  const char* constraint;
  const char* constraint_config;
} hearth_generate_params;
#define HEARTH_GENERATE_PARAMS_INIT \
  { sizeof(hearth_generate_params), 256, HEARTH_SAMPLING_PARAMS_INIT, NULL, 0, 0, 1, 0, NULL, NULL }

/** Figures of one generation. @since 1.0 */
typedef struct hearth_generate_result {
  uint32_t struct_size;
  uint32_t n_prompt_tokens;
  uint32_t n_generated_tokens;
  hearth_stop_reason stop_reason;
  double prompt_seconds;
  double generate_seconds;
} hearth_generate_result;
#define HEARTH_GENERATE_RESULT_INIT \
  { sizeof(hearth_generate_result), 0, 0, HEARTH_STOP_MAX_TOKENS, 0.0, 0.0 }

/** Tokenizes `prompt`, feeds it, then samples and streams text until
 *  max_tokens, end of generation, a stop string or the callback says stop.
 *  Text is streamed UTF-8-safe and held back while it could be the start of
 *  a stop string. `on_text` may be NULL; `result` may be NULL. A prompt that
 *  does not fit in the context is an error (INVALID_ARGUMENT, naming both
 *  lengths). @since 1.0 */
HEARTH_API hearth_error* hearth_session_generate(hearth_session* session, const char* prompt,
                                                 size_t prompt_len,
                                                 const hearth_generate_params* params,
                                                 hearth_stream_fn on_text, void* user_data,
                                                 hearth_generate_result* result);

/** Feeds `tokens` like hearth_session_feed and scores them: logprobs[i]
 *  (caller-allocated, n_tokens - 1 floats; may be NULL when n_tokens < 2)
 *  is the natural-log probability the model gave tokens[i + 1] after
 *  everything before it. Computes logits at every position, so it is slower
 *  than a feed; perplexity is exp(-mean(logprobs)). Afterwards the logits of
 *  the last token are available as after a feed. @since 1.0 */
HEARTH_API hearth_error* hearth_session_score(hearth_session* session, const int32_t* tokens,
                                              size_t n_tokens, float* logprobs);

/* ------------------------------------------------------------------------- */
/* Chat                                                                       */
/* ------------------------------------------------------------------------- */

/** One chat turn. role: "system", "user" or "assistant" ("model" is an
 *  alias). @since 1.0 */
typedef struct hearth_chat_message {
  const char* role;
  const char* content;
} hearth_chat_message;

/** Renders `messages` in the model's chat format (detected from the file's
 *  tokenizer.chat_template, else from its architecture: Gemma, ChatML,
 *  Llama 3, Llama 2; DeepSeek-R1 and its distills from the template only)
 *  and, when `add_generation_prompt` is non-zero, opens the assistant's
 *  turn. The text holds special-token markers and no BOS:
 *  generate from it with HEARTH_TOKENIZE_PARSE_SPECIAL (plus ADD_SPECIAL for
 *  a fresh session). Same capacity protocol as hearth_detokenize. A model
 *  with no known format is NOT_FOUND. Note that parsing the whole text
 *  parses the messages too: a message that spells "<|im_end|>" becomes that
 *  control token. For text from users, prefer hearth_chat_tokenize or
 *  hearth_session_generate_chat. @since 1.0 */
HEARTH_API hearth_error* hearth_chat_format(const hearth_model* model,
                                            const hearth_chat_message* messages,
                                            size_t n_messages, int add_generation_prompt,
                                            char* text, size_t capacity, size_t* text_len);

/** The token ids of a conversation, as hearth_chat_format renders it, BOS
 *  as the model asks: only the format's markup becomes control tokens; what
 *  the messages say is always plain text, even where it spells a marker
 *  (no template injection). Same capacity protocol as hearth_tokenize.
 *  @since 1.0 */
HEARTH_API hearth_error* hearth_chat_tokenize(const hearth_model* model,
                                              const hearth_chat_message* messages,
                                              size_t n_messages, int add_generation_prompt,
                                              int32_t* tokens, size_t capacity,
                                              size_t* n_tokens);

/** hearth_session_generate with a conversation as the prompt: its ids are
 *  hearth_chat_tokenize(messages, add_generation_prompt = 1), so the reply
 *  is the assistant's next turn and no message can inject control tokens.
 *  params->tokenize_flags and use_default_flags do not apply. With
 *  params->reuse_prefix, pass the whole conversation each turn: the session
 *  computes only what is new. @since 1.0 */
HEARTH_API hearth_error* hearth_session_generate_chat(hearth_session* session,
                                                      const hearth_chat_message* messages,
                                                      size_t n_messages,
                                                      const hearth_generate_params* params,
                                                      hearth_stream_fn on_text, void* user_data,
                                                      hearth_generate_result* result);

/* ------------------------------------------------------------------------- */
/* LoRA adapters                                                              */
/* ------------------------------------------------------------------------- */

/** A LoRA adapter: pairs (A, B) of low-rank matrices beside some of a
 *  model's projections. Attached to a session with a scale s, each target
 *  computes y = W x + s * scale_file * B (A x); the base weights are never
 *  modified. @since 1.0 */
typedef struct hearth_adapter hearth_adapter;

/** @since 1.0 */
typedef struct hearth_adapter_params {
  uint32_t struct_size;
  uint32_t reserved; /* 0 */
  /* 1: load an adapter whose provenance records another base model's weights
     fingerprint (refused by default, naming both fingerprints). @since 1.0 */
  uint32_t ignore_base_fingerprint;
} hearth_adapter_params;
#define HEARTH_ADAPTER_PARAMS_INIT \
  { sizeof(hearth_adapter_params), 0, 0 }

/** Loads a LoRA adapter from `path`: a PEFT directory (adapter_config.json
 *  and adapter_model.safetensors), either of those two files, or a GGUF
 *  LoRA file (general.type = adapter, as llama.cpp's converter writes it).
 *  Everything is validated against `model`: the base architecture, every
 *  target weight present, shapes, ranks, pairs complete, alpha finite and
 *  non-zero; errors name the file and the tensor. The adapter's weights are
 *  placed on the model's device and the adapter holds a reference to the
 *  model. `model` may be NULL: the file is then only parsed and checked on
 *  its own (for inspection, `hearth info --lora`); such an adapter cannot be
 *  attached. `params` may be NULL. @since 1.0 */
HEARTH_API hearth_error* hearth_adapter_load(hearth_model* model, const char* path,
                                             const hearth_adapter_params* params,
                                             hearth_adapter** out);
/** Safe while sessions use the adapter (they hold their own reference).
 *  @since 1.0 */
HEARTH_API void hearth_adapter_free(hearth_adapter* adapter);

/** Adapter file formats. @since 1.0 */
#define HEARTH_ADAPTER_PEFT 1
#define HEARTH_ADAPTER_GGUF 2

/** What an adapter is. Strings live as long as the adapter. @since 1.0 */
typedef struct hearth_adapter_info {
  uint32_t struct_size;
  uint32_t format;               /* HEARTH_ADAPTER_* */
  const char* path;
  const char* base_architecture; /* GGUF: general.architecture; PEFT: the model's
                                    when bound, else "" */
  const char* base_model;        /* PEFT base_model_name_or_path, GGUF general.name,
                                    or "" */
  uint32_t rank;                 /* the adapter's r (largest over targets) */
  float alpha;                   /* lora_alpha / adapter.lora.alpha */
  uint32_t use_rslora;           /* 1: scale = alpha / sqrt(r), else alpha / r */
  uint32_t n_targets;
  uint64_t n_params;
  uint32_t bound;                /* 1 when loaded against a model */
  /* Provenance of an adapter hearth trained: adapter_config.json's "hearth"
     object as compact JSON (base_fingerprint, data_hash, hearth_version,
     hyper-parameters; docs/finetune.md), or "". @since 1.0 */
  const char* provenance;
} hearth_adapter_info;
#define HEARTH_ADAPTER_INFO_INIT \
  { sizeof(hearth_adapter_info), 0, NULL, NULL, NULL, 0, 0.0f, 0, 0, 0, 0, NULL }

/** @since 1.0 */
HEARTH_API hearth_error* hearth_adapter_get_info(const hearth_adapter* adapter,
                                                 hearth_adapter_info* out);

/** One projection an adapter modifies. Strings live as long as the adapter.
 *  @since 1.0 */
typedef struct hearth_adapter_target {
  uint32_t struct_size;
  const char* weight; /* the base weight, GGUF naming: "blk.3.attn_q.weight" */
  const char* source; /* its name in the adapter file, e.g. "model.layers.3.self_attn.q_proj" */
  uint32_t rank;
  float scale;        /* the file's own factor: alpha / r (or / sqrt(r)) for this target */
  int64_t n_in;       /* columns of A */
  int64_t n_out;      /* rows of B */
} hearth_adapter_target;
#define HEARTH_ADAPTER_TARGET_INIT { sizeof(hearth_adapter_target), NULL, NULL, 0, 0.0f, 0, 0 }

/** Target `index` (< n_targets), in file order by layer. @since 1.0 */
HEARTH_API hearth_error* hearth_adapter_get_target(const hearth_adapter* adapter, size_t index,
                                                   hearth_adapter_target* out);

/** Replaces the session's adapters by `adapters[i]` at `scales[i]` (n = 0
 *  detaches all; scales may be NULL for 1.0 each). Several adapters stack:
 *  their terms add up. Each adapter must have been loaded for the session's
 *  model. When the set or any scale changes, the context is reset: its KV
 *  cache was computed with other weights. Other sessions are unaffected.
 *  On error nothing changes. @since 1.0 */
HEARTH_API hearth_error* hearth_session_set_adapters(hearth_session* session,
                                                     const hearth_adapter* const* adapters,
                                                     const float* scales, size_t n);

/** @since 1.0 */
typedef struct hearth_export_params {
  uint32_t struct_size;
  /* Type of the merged (modified) tensors: "f32", "f16", "bf16", "q8_0", or NULL/""
     for the default: the base tensor's own type when it is F32/F16/BF16,
     else Q8_0 (hearth does not re-quantize to K-quants). Tensors no adapter
     touches are copied byte for byte. */
  const char* merged_type;
} hearth_export_params;
#define HEARTH_EXPORT_PARAMS_INIT { sizeof(hearth_export_params), NULL }

/** Writes a standalone GGUF model to `path`: the model's file with
 *  W + sum_i scales[i] * scale_file * B_i A_i in place of every targeted
 *  weight, metadata kept. The merge runs on the model's device; the file is
 *  written to a temporary name and renamed when complete. @since 1.0 */
HEARTH_API hearth_error* hearth_model_export_merged(const hearth_model* model,
                                                    const hearth_adapter* const* adapters,
                                                    const float* scales, size_t n,
                                                    const char* path,
                                                    const hearth_export_params* params);

/* ------------------------------------------------------------------------- */
/* Training data                                                              */
/* ------------------------------------------------------------------------- */

/** Training examples read from a JSONL file and tokenized for a model: each
 *  example is token ids plus a flag per id saying whether the loss trains
 *  the model to predict it. One JSON object per line (blank lines skipped):
 *    {"text": "..."}                             every id trained, EOS added
 *    {"prompt": "...", "completion": "..."}      the completion's ids and EOS
 *    {"messages": [{"role": "user", "content": "..."}, ...]}
 *      rendered in the model's chat format (as hearth_chat_format does);
 *      each assistant turn is trained, its closing marker included.
 *  Text in a record is never parsed for control tokens. Other keys of a
 *  record are ignored; other keys of a message are an error. Where the
 *  trained part starts the text is cut, so the ids there are those a session
 *  would generate after the prompt. docs/training-data.md. @since 1.0 */
typedef struct hearth_dataset hearth_dataset;

/** @since 1.0 */
typedef struct hearth_dataset_params {
  uint32_t struct_size;
  uint32_t max_tokens; /* longest example; 0 = the model's training context */
  int32_t truncate;    /* non-zero: cut longer examples at max_tokens (from the end)
                          instead of failing */
} hearth_dataset_params;
#define HEARTH_DATASET_PARAMS_INIT { sizeof(hearth_dataset_params), 0, 0 }

/** Reads and tokenizes the JSONL file at `path` for `model`. Every record is
 *  checked; the first bad one fails the load with an error naming the file,
 *  the line and the field (INVALID_ARGUMENT). `params` may be NULL.
 *  @since 1.0 */
HEARTH_API hearth_error* hearth_dataset_load(const hearth_model* model, const char* path,
                                             const hearth_dataset_params* params,
                                             hearth_dataset** out);
/** @since 1.0 */
HEARTH_API void hearth_dataset_free(hearth_dataset* dataset);

/** @since 1.0 */
typedef struct hearth_dataset_info {
  uint32_t struct_size;
  uint32_t max_tokens;         /* the limit applied */
  uint64_t n_examples;
  uint64_t n_tokens;           /* over all examples */
  uint64_t n_trained_tokens;   /* ids the loss includes */
  uint64_t longest;            /* ids of the longest example */
  uint64_t n_truncated;
  uint64_t n_text;             /* examples of each record kind */
  uint64_t n_prompt_completion;
  uint64_t n_messages;
} hearth_dataset_info;
#define HEARTH_DATASET_INFO_INIT \
  { sizeof(hearth_dataset_info), 0, 0, 0, 0, 0, 0, 0, 0, 0 }

/** @since 1.0 */
HEARTH_API hearth_error* hearth_dataset_get_info(const hearth_dataset* dataset,
                                                 hearth_dataset_info* out);

/** Example `index` (< n_examples), in file order: its ids into `tokens` and
 *  one 0/1 per id into `trained` (either may be NULL), with the capacity
 *  protocol of hearth_tokenize (both NULL and capacity 0: *n_tokens gets the
 *  length). `line` (may be NULL) gets the record's 1-based line in the file.
 *  @since 1.0 */
HEARTH_API hearth_error* hearth_dataset_get_example(const hearth_dataset* dataset, size_t index,
                                                    int32_t* tokens, uint8_t* trained,
                                                    size_t capacity, size_t* n_tokens,
                                                    uint64_t* line);

/* ------------------------------------------------------------------------- */
/* LoRA fine-tuning (docs/finetune.md)                                        */
/* ------------------------------------------------------------------------- */

/** Trains a LoRA adapter on a model and a dataset, on the model's device.
 *  The trainer holds a reference to the model and copies the dataset's
 *  examples, so the dataset may be freed after create. One thread at a
 *  time. @since 1.0 */
typedef struct hearth_trainer hearth_trainer;

/** Learning-rate schedules (Hugging Face's, after warmup). @since 1.0 */
#define HEARTH_SCHEDULE_CONSTANT 0
#define HEARTH_SCHEDULE_LINEAR 1
#define HEARTH_SCHEDULE_COSINE 2

/** @since 1.0 */
typedef struct hearth_trainer_params {
  uint32_t struct_size;
  uint32_t rank;       /* LoRA r, >= 1 */
  float alpha;         /* lora_alpha; the scale is alpha / rank */
  uint32_t use_rslora; /* 1: the scale is alpha / sqrt(rank) */
  const char* targets; /* "q,k,v,o,gate,up,down" (or q_proj…, attn_q…, "all") */
  float lr;
  float beta1, beta2, eps;
  float weight_decay; /* decoupled (AdamW) */
  uint32_t schedule;  /* HEARTH_SCHEDULE_* */
  uint32_t warmup_steps;
  float max_grad_norm; /* clip the global gradient norm to it; 0 = no clipping */
  uint32_t batch;      /* examples per micro-batch, >= 1 */
  uint32_t grad_accum; /* micro-batches per optimizer step, >= 1 */
  uint32_t epochs;     /* >= 1 */
  float eval_split;    /* fraction of examples held out for evaluation, [0, 0.5] */
  uint64_t seed;       /* A's init, the eval split and the shuffling */
  uint32_t n_threads;  /* 0 = the model's */
  /* An adapter to continue training (PEFT directory or GGUF LoRA file,
     loaded as hearth_adapter_load does) instead of a fresh init, or NULL.
     It must pair every target, at this rank and scale, and nothing else.
     @since 1.0 */
  const char* init_adapter;
  /* Non-zero: mixed precision. The base model's products round activations
     and weights to bfloat16 and accumulate in F32 (the LoRA factors, their
     gradients and AdamW stay F32), as torch's bf16 training does: several
     times faster on CPUs with AMX or AVX512-BF16; a backend without fast
     BF16 computes in F32. 0: F32 throughout (the default). @since 1.0 */
  uint32_t bf16_products;
  /* PEFT's lora_dropout: while training, each LoRA term reads its input
     through dropout with this probability (0 <= p < 1; 0 = off). The masks
     follow from the seed, the step and the example, so a resumed run drops
     the same elements. @since 1.0 */
  float lora_dropout;
} hearth_trainer_params;
#define HEARTH_TRAINER_PARAMS_INIT                                                            \
  {                                                                                           \
    sizeof(hearth_trainer_params), 16, 32.0f, 0, "q,k,v,o,gate,up,down", 2e-4f, 0.9f, 0.999f, \
        1e-8f, 0.0f, HEARTH_SCHEDULE_LINEAR, 0, 1.0f, 1, 1, 1, 0.0f, 42, 0, NULL, 0, 0.0f     \
  }

/** What one optimizer step did. @since 1.0 */
typedef struct hearth_train_progress {
  uint32_t struct_size;
  uint64_t step; /* optimizer steps done, this one included */
  uint64_t total_steps;
  uint64_t epoch;     /* 0-based epoch of this step */
  double loss;        /* mean over the step's trained tokens */
  double grad_norm;   /* global gradient norm before clipping */
  double lr;          /* learning rate the step used */
  uint64_t n_tokens;  /* tokens run in the step */
  uint64_t n_trained; /* tokens the loss counted */
} hearth_train_progress;
#define HEARTH_TRAIN_PROGRESS_INIT \
  { sizeof(hearth_train_progress), 0, 0, 0, 0.0, 0.0, 0.0, 0, 0 }

/** Where a trainer stands (hearth_trainer_get_info). @since 1.0 */
typedef struct hearth_trainer_info {
  uint32_t struct_size;
  uint64_t step;        /* optimizer steps done so far */
  uint64_t total_steps; /* epochs x steps per epoch */
  uint64_t n_train;     /* examples trained on */
  uint64_t n_eval;      /* examples held out for hearth_trainer_evaluate */
} hearth_trainer_info;
#define HEARTH_TRAINER_INFO_INIT \
  { sizeof(hearth_trainer_info), 0, 0, 0, 0 }

/** Called after each step of hearth_trainer_run; return non-zero to stop
 *  (the run then returns NULL with the steps done so far kept). `progress`
 *  lives for the call only. @since 1.0 */
typedef int (*hearth_train_callback)(const hearth_train_progress* progress, void* user_data);

/** Creates a trainer: every example of `dataset` (minus the eval split),
 *  fresh LoRA pairs on every layer's `targets` (A as PEFT initialises it,
 *  B = 0). Errors: no examples, no trained token, a target the model lacks,
 *  a parameter out of range, a device without the backward ops. @since 1.0 */
HEARTH_API hearth_error* hearth_trainer_create(hearth_model* model, const hearth_dataset* dataset,
                                               const hearth_trainer_params* params,
                                               hearth_trainer** out);
/** @since 1.0 */
HEARTH_API void hearth_trainer_free(hearth_trainer* trainer);

/** One optimizer step; `progress` (may be NULL; struct_size set) gets its
 *  metrics. HEARTH_OUT_OF_RANGE once every epoch is done. @since 1.0 */
HEARTH_API hearth_error* hearth_trainer_step(hearth_trainer* trainer,
                                             hearth_train_progress* progress);
/** Steps until done or until `callback` (may be NULL) returns non-zero.
 *  @since 1.0 */
HEARTH_API hearth_error* hearth_trainer_run(hearth_trainer* trainer, hearth_train_callback callback,
                                            void* user_data);
/** Mean loss per trained token over the eval split (NaN when there is
 *  none). @since 1.0 */
HEARTH_API hearth_error* hearth_trainer_evaluate(hearth_trainer* trainer, double* loss);
/** Writes the adapter as a PEFT directory (adapter_config.json +
 *  adapter_model.safetensors; created if missing), each file atomically.
 *  @since 1.0 */
HEARTH_API hearth_error* hearth_trainer_save(hearth_trainer* trainer, const char* dir);
/** Writes the adapter as one GGUF LoRA file (llama.cpp's layout:
 *  general.type "adapter", adapter.lora.alpha, "<weight>.lora_a"/"lora_b"),
 *  which hearth_adapter_load, `hearth --lora` and llama.cpp's --lora read;
 *  the provenance record goes under hearth.provenance. `dtype`: "f32"
 *  (NULL) or "f16". Written atomically. @since 1.0 */
HEARTH_API hearth_error* hearth_trainer_save_gguf(hearth_trainer* trainer, const char* path,
                                                  const char* dtype);
/** Like hearth_trainer_save, plus `dir`/hearth-checkpoint.bin: the LoRA
 *  tensors, the AdamW state, the step and the data order, so that
 *  hearth_trainer_resume goes on exactly from here. Every file is written
 *  to a temporary name, fsync'ed and renamed: a kill at any moment leaves
 *  either the previous complete file or the new one. @since 1.0 */
HEARTH_API hearth_error* hearth_trainer_save_checkpoint(hearth_trainer* trainer, const char* dir);
/** Restores the checkpoint in `dir` into a trainer just created from the
 *  same model, dataset and params (n_threads aside): training then
 *  continues as if it had never stopped, and the same seed gives the same
 *  adapter. NOT_FOUND without a checkpoint; FAILED_PRECONDITION naming the
 *  first setting that differs; DATA_LOSS for a damaged file. @since 1.0 */
HEARTH_API hearth_error* hearth_trainer_resume(hearth_trainer* trainer, const char* dir);
/** Steps done and to do, and the split sizes; `info`'s struct_size must be
 *  set. Known from create on, before the first step. @since 1.0 */
HEARTH_API hearth_error* hearth_trainer_get_info(const hearth_trainer* trainer,
                                                 hearth_trainer_info* info);
/** The adapter as trained so far, bound to the trainer's model, ready for
 *  hearth_session_set_adapters; free it with hearth_adapter_free. Later
 *  steps do not change it. @since 1.0 */
HEARTH_API hearth_error* hearth_trainer_get_adapter(hearth_trainer* trainer, hearth_adapter** out);

/* ------------------------------------------------------------------------- */
/* Engine: many requests over one model, batched                              */
/* ------------------------------------------------------------------------- */

/** Serves many requests from one model: each engine step advances every
 *  running request by one token, and admits waiting prompts in chunks, in
 *  one graph over the whole batch (continuous batching), so N users cost one
 *  pass over the weights per step instead of N. Each request may use its own
 *  adapters with its own scales; they share the batch. docs/runtime.md
 *  ("The engine") describes scheduling, prefix reuse and the guarantees.
 *
 *  Threads: hearth_engine_submit, hearth_engine_cancel and
 *  hearth_engine_get_stats may be called from any thread at any time (also
 *  from inside a request callback). Steps run either on the engine's own
 *  thread (hearth_engine_start) or on the caller's (hearth_engine_step, one
 *  thread at a time); request callbacks run on the thread that steps.
 *  @since 1.0 */
typedef struct hearth_engine hearth_engine;

/** @since 1.0 */
typedef struct hearth_engine_params {
  uint32_t struct_size;
  uint32_t n_seq;           /* requests computed together (KV cache slots); 0 = 8; at most 256 */
  uint32_t n_ctx;           /* tokens per request, prompt + reply; 0 = min(model's, 4096) */
  uint32_t max_step_tokens; /* tokens one step carries, all requests together; 0 = 256;
                               at least n_seq. Long prompts are split into chunks of what
                               is left after every running request's next token. */
  uint32_t n_threads;       /* 0 = the model's */
  uint32_t max_waiting;     /* requests waiting for a slot; 0 = 1024. Beyond it
                               hearth_engine_submit is RESOURCE_EXHAUSTED. */
  /* The adapters requests may use, referred to by index
     (hearth_engine_adapter.index); each loaded onto this engine's model; at
     most 64. The engine keeps its own references: the caller may free them. */
  const hearth_adapter* const* adapters;
  size_t n_adapters;
  /* Paged KV cache: > 0 gives requests pages of kv_block_size positions
     from one pool of kv_pages (0 = as many as n_seq full contexts need), so
     requests of any length share one budget; a request is admitted when the
     pool can hold its prompt plus max_tokens (its whole n_ctx for
     max_tokens < 0) besides what running requests may still take, and the
     pages of finished requests stay as prefix cache until needed. Requests
     share pages: one whose prompt starts with whole pages another slot
     holds (a running request's or a finished one's, computed with the same
     adapters and scales) reads those pages instead of computing them, so a
     system prompt common to requests in flight is computed once. n_ctx is
     rounded down to a multiple of kv_block_size. 0 (default): n_seq fixed
     slots of n_ctx positions (reuse only of a finished request's slot). */
  uint32_t kv_block_size;
  uint32_t kv_pages;
  uint32_t kv_type; /* hearth_kv_type of the engine's KV cache; 0 = F32 */
} hearth_engine_params;
#define HEARTH_ENGINE_PARAMS_INIT \
  { sizeof(hearth_engine_params), 0, 0, 0, 0, 0, NULL, 0, 0, 0, 0 }

/** @since 1.0 */
HEARTH_API hearth_error* hearth_engine_create(hearth_model* model,
                                              const hearth_engine_params* params,
                                              hearth_engine** out);
/** Stops the engine's thread if it runs; every request not finished gets
 *  its DONE event (HEARTH_STOP_CANCELLED) first, on the calling thread.
 *  Must not be called from a request callback. @since 1.0 */
HEARTH_API void hearth_engine_free(hearth_engine* engine);

/** One adapter of a request: an index into hearth_engine_params.adapters and
 *  its scale (as hearth_session_set_adapters takes it). @since 1.0 */
typedef struct hearth_engine_adapter {
  uint32_t index;
  float scale;
} hearth_engine_adapter;

/** @since 1.0 */
typedef enum hearth_event_kind {
  HEARTH_EVENT_TOKEN = 0, /* a token was generated */
  HEARTH_EVENT_DONE = 1   /* the request ended; always the last event, exactly once */
} hearth_event_kind;

/** What a request callback receives. Every pointer lives for the call only.
 *  @since 1.0 */
typedef struct hearth_request_event {
  uint32_t struct_size;
  uint64_t request; /* the id hearth_engine_submit returned */
  hearth_event_kind kind;
  /* Text released by this event: valid UTF-8, never half a code point, with
     anything that could still become a stop string held back until decided.
     A TOKEN event may release none (or the text of earlier tokens); the DONE
     event releases what was held back (a stop string itself never is). */
  const char* text;
  size_t text_len;
  /* TOKEN: the token, and with hearth_request_params.logprobs its natural-log
     probability under the model (before penalties, temperature and top-k/p)
     and the n_top most likely tokens with theirs, most likely first. An
     end-of-generation token is not reported as a TOKEN event. */
  int32_t token;
  float logprob;
  const int32_t* top_tokens;
  const float* top_logprobs;
  size_t n_top;
  /* DONE: why it ended, and for HEARTH_STOP_ERROR what went wrong. */
  hearth_stop_reason finish_reason;
  hearth_status_code status;
  const char* message; /* "" unless status is an error */
  /* Counts (in both kinds, so far): prompt tokens, of which taken from the
     KV cache of an earlier request (prefix reuse), generated tokens. */
  uint32_t n_prompt_tokens;
  uint32_t n_cached_tokens;
  uint32_t n_generated_tokens;
  /* Seconds from submit to the first generated token (0 before it). */
  double first_token_seconds;
} hearth_request_event;

/** A request's callback. Return non-zero to end the request (DONE follows
 *  with HEARTH_STOP_CALLBACK). It must not call hearth_engine_step or
 *  hearth_engine_free on its engine. @since 1.0 */
typedef int (*hearth_request_fn)(const hearth_request_event* event, void* user_data);

/** A request. Exactly one of `tokens`, `text` and `messages` is the prompt;
 *  everything it points to is copied by hearth_engine_submit. @since 1.0 */
typedef struct hearth_request_params {
  uint32_t struct_size;
  const int32_t* tokens; /* prompt token ids, as given */
  size_t n_tokens;
  const char* text; /* prompt text, tokenized with tokenize_flags */
  size_t text_len;
  uint32_t tokenize_flags;             /* default HEARTH_TOKENIZE_ADD_SPECIAL */
  const hearth_chat_message* messages; /* a conversation, as hearth_chat_tokenize
                                          renders it with the assistant's turn open */
  size_t n_messages;
  int32_t max_tokens; /* 256; < 0 = until the request's context is full; 0 is an error */
  hearth_sampling_params sampling;
  const char* const* stop; /* stop strings, may be NULL */
  size_t n_stop;
  const hearth_engine_adapter* adapters; /* may be NULL: the base model */
  size_t n_adapters;
  uint32_t logprobs;          /* 1: TOKEN events carry logprob */
  uint32_t top_logprobs;      /* with logprobs: how many alternatives, 0..20 */
  hearth_request_fn on_event; /* may be NULL (then only stats see the request) */
  void* user_data;
} hearth_request_params;
#define HEARTH_REQUEST_PARAMS_INIT                                                              \
  {                                                                                             \
    sizeof(hearth_request_params), NULL, 0, NULL, 0, HEARTH_TOKENIZE_ADD_SPECIAL, NULL, 0, 256, \
        HEARTH_SAMPLING_PARAMS_INIT, NULL, 0, NULL, 0, 0, 0, NULL, NULL                         \
  }

/** Queues a request and returns its id (never 0). Everything about it is
 *  checked here (prompt tokens in the vocabulary, the prompt shorter than
 *  n_ctx, sampling values, adapter indices and scales, top_logprobs): an
 *  error means no event will ever come. A full queue is RESOURCE_EXHAUSTED.
 *  @since 1.0 */
HEARTH_API hearth_error* hearth_engine_submit(hearth_engine* engine,
                                              const hearth_request_params* params, uint64_t* id);
/** Ends a request: its DONE event (HEARTH_STOP_CANCELLED) comes from the
 *  next step at the latest and its slot is free for the next request.
 *  NOT_FOUND when the id is unknown or the request already ended. @since 1.0 */
HEARTH_API hearth_error* hearth_engine_cancel(hearth_engine* engine, uint64_t id);

/** Runs one step on the calling thread: cancellations, admission, one graph,
 *  sampling and events. `*n_active` (may be NULL) is the number of requests
 *  still waiting or running afterwards; 0 means there is nothing to do. A
 *  failed graph ends the requests it carried (DONE, HEARTH_STOP_ERROR) and
 *  is not an error of the step. FAILED_PRECONDITION while the engine's own
 *  thread runs. @since 1.0 */
HEARTH_API hearth_error* hearth_engine_step(hearth_engine* engine, size_t* n_active);
/** Starts the engine's own thread, which steps whenever there is work and
 *  sleeps otherwise. FAILED_PRECONDITION when it already runs. @since 1.0 */
HEARTH_API hearth_error* hearth_engine_start(hearth_engine* engine);
/** Stops the engine's thread after its current step (requests stay queued
 *  or running). No effect when it does not run. @since 1.0 */
HEARTH_API void hearth_engine_stop(hearth_engine* engine);

/** Counters since the engine was created, and its state now. @since 1.0 */
typedef struct hearth_engine_stats {
  uint32_t struct_size;
  uint32_t n_waiting; /* submitted, not yet holding a slot */
  uint32_t n_running; /* holding a slot */
  uint32_t n_seq;     /* slots */
  uint64_t requests_submitted;
  uint64_t requests_finished; /* ended for any reason, cancelled and failed included */
  uint64_t requests_cancelled;
  uint64_t requests_failed;
  uint64_t prompt_tokens;        /* computed */
  uint64_t cached_prompt_tokens; /* reused from the KV cache instead */
  uint64_t generated_tokens;
  uint64_t steps;
  uint64_t kv_tokens_used;     /* tokens held by running requests */
  uint64_t kv_tokens_capacity; /* n_seq * n_ctx */
  double step_seconds;         /* time spent computing steps */
} hearth_engine_stats;
#define HEARTH_ENGINE_STATS_INIT \
  { sizeof(hearth_engine_stats), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0 }

/** @since 1.0 */
HEARTH_API hearth_error* hearth_engine_get_stats(const hearth_engine* engine,
                                                 hearth_engine_stats* out);

/* ------------------------------------------------------------------------- */
/* Model files: converting and quantizing                                     */
/* ------------------------------------------------------------------------- */

/** Called before each tensor hearth_convert or hearth_quantize encodes:
 *  `index` of `count` tensors, `tensor` its GGUF name (lives for the call).
 *  Return non-zero to stop: the call then returns HEARTH_CANCELLED and the
 *  output file is not created. @since 1.0 */
typedef int (*hearth_convert_callback)(size_t index, size_t count, const char* tensor,
                                       void* user_data);

/** Where a hearth_convert or hearth_quantize job stands before a tensor,
 *  in tensors and in bytes: the time a job takes goes with the bytes (an
 *  embedding table against a norm), so a rate or an ETA should use them.
 *  @since 1.0 */
typedef struct hearth_convert_progress {
  uint32_t struct_size;
  size_t index;         /* the tensor about to be encoded, of `count` */
  size_t count;         /* all tensors (hearth_quantize reports those it encodes) */
  const char* tensor;   /* its GGUF name; lives for the call */
  uint64_t bytes_done;  /* bytes of the input tensors before it, as stored */
  uint64_t bytes_total; /* bytes of all input tensors written */
} hearth_convert_progress;
#define HEARTH_CONVERT_PROGRESS_INIT \
  { sizeof(hearth_convert_progress), 0, 0, NULL, 0, 0 }

/** hearth_convert_params.progress_bytes: called at the same moments as
 *  hearth_convert_callback (after it when both are set); non-zero stops
 *  the job the same way. @since 1.0 */
typedef int (*hearth_convert_progress_callback)(const hearth_convert_progress* progress,
                                                void* user_data);

/** @since 1.0 */
typedef struct hearth_convert_params {
  uint32_t struct_size;
  /* Weight type of the model written: "f32", "f16", "bf16", "q8_0", "q4_0",
     "q4_k", "q6_k" or "q4_k_m" (llama.cpp's mix; docs/convert.md). 1-D
     tensors (norms, biases) stay F32. NULL or "": "f16" for hearth_convert;
     hearth_quantize needs a type. */
  const char* type;
  hearth_convert_callback progress; /* may be NULL */
  void* user_data;                  /* given to both callbacks */
  hearth_convert_progress_callback progress_bytes; /* may be NULL; with bytes */
} hearth_convert_params;
#define HEARTH_CONVERT_PARAMS_INIT \
  { sizeof(hearth_convert_params), NULL, NULL, NULL, NULL }

/** Converts a Hugging Face model directory (config.json, model.safetensors
 *  or model.safetensors.index.json with its shards, tokenizer.json,
 *  tokenizer_config.json, the chat template) of a llama, qwen2 or gemma3
 *  model into one GGUF file at `out_path`, in llama.cpp's conventions, so
 *  that hearth and llama.cpp load it. Tensors are read one at a time from
 *  the mapped files; the output is written to a temporary name and renamed
 *  when complete. Errors name the file and the key or tensor at fault:
 *  HEARTH_NOT_FOUND (a file is missing), HEARTH_UNIMPLEMENTED (an
 *  architecture, tokenizer or setting hearth does not convert),
 *  HEARTH_INVALID_ARGUMENT (malformed). @since 1.0 */
HEARTH_API hearth_error* hearth_convert(const char* hf_dir, const char* out_path,
                                        const hearth_convert_params* params);

/** Rewrites the GGUF model `in_path` with the weight type params->type
 *  (required) to `out_path`: 2-D weights are encoded from F32, F16 or BF16
 *  (a tensor already quantized otherwise is HEARTH_FAILED_PRECONDITION),
 *  other tensors and all metadata are copied; general.file_type is set.
 *  Q8_0, Q4_0 and Q5_0 bytes equal those of the `gguf` Python package;
 *  Q4_K and Q6_K follow llama.cpp's reference quantizers. Written
 *  atomically. @since 1.0 */
HEARTH_API hearth_error* hearth_quantize(const char* in_path, const char* out_path,
                                         const hearth_convert_params* params);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* HEARTH_H_ */
