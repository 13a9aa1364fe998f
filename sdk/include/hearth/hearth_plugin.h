/* hearth_plugin.h — the plugin ABI of hearth (C11, stable, versioned).
 *
 * Conventions (read once; declarations below only say what is special):
 *
 * - A plugin is a shared library that exports exactly one symbol,
 *   `hearth_plugin_init`. It never links libhearth: everything it needs from
 *   the host comes through `hearth_host_services`.
 * - Negotiation, not equality: the host passes its ABI major/minor; the
 *   plugin answers with its own. Majors must match; the minor in use is
 *   min(host, plugin). Every vtable and info struct starts with `struct_size`,
 *   so a reader checks that a slot lies inside `struct_size` before using it
 *   (HEARTH_PLUGIN_HAS_SLOT).
 * - Errors: fallible calls return a `hearth_pstatus` (0 = OK, other values
 *   mirror absl::StatusCode / hearth_error_code). Before returning non-zero a
 *   plugin calls `host->set_error(host->ctx, code, message)` once, so the
 *   host can report which input was wrong. Plugins never abort on input.
 * - Ownership: objects a plugin creates (contexts, buffers) are freed by the
 *   matching plugin call. Strings a plugin returns in info structs are static
 *   or live as long as the plugin is loaded.
 * - Threads: `probe`, `device_count`, `device_info` may be called from any
 *   thread. A context is used by one thread at a time. Buffers belong to the
 *   device: any context of the same device may read them in graph_compute
 *   (one model's weights serve many sessions, each with its own context),
 *   and any context of that device may free them.
 * - Tensors: up to 4 dims, ggml-style order: ne[0] is the innermost
 *   (contiguous) dimension, nb[i] are byte strides. For block-quantized
 *   dtypes ne[0] counts elements and nb[1] bytes per row of blocks.
 *
 * Every enum is append-only. @since marks the ABI minor that added a thing.
 */
#ifndef HEARTH_PLUGIN_H_
#define HEARTH_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @since 1.0 */
#define HEARTH_PLUGIN_ABI_MAJOR 1
/** @since 1.0 */
#define HEARTH_PLUGIN_ABI_MINOR 0

#if defined(_WIN32)
#define HEARTH_PLUGIN_EXPORT __declspec(dllexport)
#else
#define HEARTH_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/** True when `ptr` (a struct with struct_size first) holds `member`. @since 1.0 */
#define HEARTH_PLUGIN_HAS_SLOT(ptr, type, member) \
  ((ptr)->struct_size >= offsetof(type, member) + sizeof(((type*)0)->member))

/** Status codes, same values as hearth_status_code / absl::StatusCode. @since 1.0 */
typedef int32_t hearth_pstatus;
#define HEARTH_P_OK 0
#define HEARTH_P_INVALID_ARGUMENT 3
#define HEARTH_P_NOT_FOUND 5
#define HEARTH_P_OUT_OF_RANGE 11
#define HEARTH_P_RESOURCE_EXHAUSTED 8
#define HEARTH_P_FAILED_PRECONDITION 9
#define HEARTH_P_UNIMPLEMENTED 12
#define HEARTH_P_INTERNAL 13
#define HEARTH_P_UNAVAILABLE 14

/* ------------------------------------------------------------------------- */
/* Data types                                                                 */
/* ------------------------------------------------------------------------- */

/** Element types. Block-quantized layouts are byte-identical to GGUF's. @since 1.0 */
typedef enum hearth_dtype {
  HEARTH_DTYPE_F32 = 0,
  HEARTH_DTYPE_F16 = 1,
  HEARTH_DTYPE_BF16 = 2,
  HEARTH_DTYPE_I32 = 3,
  HEARTH_DTYPE_Q8_0 = 4, /* 32 elems: f16 d, int8 q[32]                        */
  HEARTH_DTYPE_Q4_0 = 5, /* 32 elems: f16 d, 16 bytes of nibbles (x = d*(q-8)) */
  HEARTH_DTYPE_Q5_0 = 6, /* 32 elems: f16 d, 4 bytes high bits, 16 bytes nibbles */
  HEARTH_DTYPE_Q4_K = 7, /* 256 elems: f16 d, f16 dmin, 12 bytes scales, 128 bytes */
  HEARTH_DTYPE_Q6_K = 8, /* 256 elems: 128 ql, 64 qh, int8 scales[16], f16 d   */
  HEARTH_DTYPE_Q4_1 = 9, /* 32 elems: f16 d, f16 m, 16 bytes of nibbles (x = d*q + m)   */
  HEARTH_DTYPE_COUNT_ = 10 /* not a type; grows as types are appended */
} hearth_dtype;

/** Elements per block (1 for plain types). 0 for an unknown dtype. @since 1.0 */
static inline int64_t hearth_dtype_block_elems(uint32_t dtype) {
  switch (dtype) {
    case HEARTH_DTYPE_F32: case HEARTH_DTYPE_F16: case HEARTH_DTYPE_BF16:
    case HEARTH_DTYPE_I32: return 1;
    case HEARTH_DTYPE_Q8_0: case HEARTH_DTYPE_Q4_0: case HEARTH_DTYPE_Q5_0:
    case HEARTH_DTYPE_Q4_1: return 32;
    case HEARTH_DTYPE_Q4_K: case HEARTH_DTYPE_Q6_K: return 256;
    default: return 0;
  }
}

/** Bytes per block. 0 for an unknown dtype. @since 1.0 */
static inline int64_t hearth_dtype_block_bytes(uint32_t dtype) {
  switch (dtype) {
    case HEARTH_DTYPE_F32: case HEARTH_DTYPE_I32: return 4;
    case HEARTH_DTYPE_F16: case HEARTH_DTYPE_BF16: return 2;
    case HEARTH_DTYPE_Q8_0: return 34;
    case HEARTH_DTYPE_Q4_0: return 18;
    case HEARTH_DTYPE_Q5_0: return 22;
    case HEARTH_DTYPE_Q4_K: return 144;
    case HEARTH_DTYPE_Q6_K: return 210;
    case HEARTH_DTYPE_Q4_1: return 20;
    default: return 0;
  }
}

/* ------------------------------------------------------------------------- */
/* Tensors and graphs                                                         */
/* ------------------------------------------------------------------------- */

/** A backend buffer, opaque to the host. @since 1.0 */
typedef struct hearth_pbuffer hearth_pbuffer;

/** A view of `buffer` starting at `offset`. @since 1.0 */
typedef struct hearth_tensor_desc {
  uint32_t dtype;   /* hearth_dtype */
  uint32_t n_dims;  /* 1..4; dims past n_dims have ne = 1 */
  int64_t ne[4];    /* elements per dimension, ne[0] innermost */
  int64_t nb[4];    /* byte strides per dimension */
  hearth_pbuffer* buffer;
  uint64_t offset;  /* bytes from the start of the buffer */
} hearth_tensor_desc;

/** Graph operations. Append-only. Shapes use ne[] order (innermost first).
 *  "rows" below means ne[1] (x ne[2] x ne[3] where stated). @since 1.0 */
typedef enum hearth_op {
  HEARTH_OP_NONE = 0,
  /* out[D, T] = table[D, ids[t]]. in: table (any dtype), ids (I32 [T]). */
  HEARTH_OP_GET_ROWS = 1,
  /* out[M, T] = x[K, T] . w[K, M]^T. in: w (any dtype), x (F32). */
  HEARTH_OP_MUL_MAT = 2,
  /* out = a + b, b broadcast over rows when b.ne[1..3] == 1. F32. */
  HEARTH_OP_ADD = 3,
  /* out = a * b, broadcast as ADD. F32. */
  HEARTH_OP_MUL = 4,
  /* out = a * fparams[0]. F32. */
  HEARTH_OP_SCALE = 5,
  /* out = x / rms(x) * w; in: x (F32), optional w (F32 [D]).
     fparams[0] = eps. Normalizes over ne[0]. */
  HEARTH_OP_RMS_NORM = 6,
  /* Rotary embedding. in: x (F32 [head_dim, n_head, T]), pos (I32 [T]),
     optional freq_factors (F32 [n_rot/2]).
     fparams[0] = theta base, fparams[1] = freq_scale;
     iparams[0] = n_rot (rotated dims, even, <= head_dim),
     iparams[1] = mode (HEARTH_ROPE_NORMAL or HEARTH_ROPE_NEOX). */
  HEARTH_OP_ROPE = 7,
  /* Causal attention over a KV cache, with the cache write fused in.
     in: q (F32 [head_dim, n_head, T]), k (F32 [head_dim, n_head_kv, T]),
         v (F32 [head_dim_v, n_head_kv, T]), k_cache ([head_dim, n_head_kv, n_ctx]),
         v_cache ([head_dim_v, n_head_kv, n_ctx]), pos (I32 [T]).
     First k, v are stored into the caches at rows pos[t]; then query t
     attends cache rows j with j <= pos[t] (and pos[t] - j < window when
     window > 0). Caches are F32 or F16.
     out: F32 [head_dim_v, n_head, T].
     fparams[0] = scale (applied to q.k), fparams[1] = softcap (0 = none);
     iparams[0] = sliding window (0 = none). */
  HEARTH_OP_ATTENTION = 8,
  /* out = silu(gate) * up. in: gate, up (F32, same shape). */
  HEARTH_OP_SILU_MUL = 9,
  /* out = gelu_tanh(gate) * up. in: gate, up (F32, same shape). */
  HEARTH_OP_GELU_MUL = 10,
  /* Softmax over ne[0]. F32. fparams[0] = scale applied before. */
  HEARTH_OP_SOFTMAX = 11,
  /* out = convert(x) into out's dtype (F32/F16/BF16), strides honoured. */
  HEARTH_OP_COPY = 12,
  /* A LoRA pair beside a MUL_MAT of the same activations:
     out[M, T] = y[M, T] + s_t * b . (a . x[:, t]),  s_t = fparams[0] * scales[t].
     in: y (F32 [M, T]: the base projection), a (F32/F16/BF16 [K, R]: R rows
         of K, PEFT's lora_A), b (F32/F16/BF16 [M, R]: R rows of M, i.e.
         lora_B transposed, so that each rank's M outputs are contiguous),
         x (F32 [K, T]), optional scales (F32 [T]; absent = 1 for every
         token, so one batch can carry tokens of several adapter sets).
     out may be the same view as y (in place). */
  HEARTH_OP_LORA_MUL_MAT = 13,
  HEARTH_OP_COUNT_ = 14 /* not an op; grows as ops are appended */
} hearth_op;

/** Rope modes. @since 1.0 */
#define HEARTH_ROPE_NORMAL 0 /* rotate pairs (2i, 2i+1) — Llama GGUF layout */
#define HEARTH_ROPE_NEOX 2   /* rotate pairs (i, i + n_rot/2) — Qwen2, Gemma */

/** Max inputs of one node. @since 1.0 */
#define HEARTH_MAX_NODE_INPUTS 6

/** One operation: reads `inputs` tensors, writes tensor `output`.
 *  Indices refer to hearth_graph.tensors; -1 marks an absent optional input.
 *  @since 1.0 */
typedef struct hearth_node {
  uint32_t op; /* hearth_op */
  int32_t output;
  int32_t inputs[HEARTH_MAX_NODE_INPUTS];
  float fparams[4];
  int32_t iparams[4];
} hearth_node;

/** A flat graph. Nodes run in order; each output tensor is preallocated by
 *  the host (a view into a backend buffer). Tensors with no producing node
 *  are inputs (weights, token ids, positions, caches). The same graph shape
 *  recurs every decode step; `shape_key` is equal for graphs that differ
 *  only in buffer contents, so a backend may key a compiled plan on it.
 *  @since 1.0 */
typedef struct hearth_graph {
  uint32_t struct_size;
  uint32_t n_tensors;
  const hearth_tensor_desc* tensors;
  uint32_t n_nodes;
  const hearth_node* nodes;
  uint64_t shape_key;
} hearth_graph;

/* ------------------------------------------------------------------------- */
/* Host services, devices, vtable                                             */
/* ------------------------------------------------------------------------- */

/** Log levels. @since 1.0 */
#define HEARTH_LOG_ERROR 0
#define HEARTH_LOG_WARN 1
#define HEARTH_LOG_INFO 2
#define HEARTH_LOG_DEBUG 3

/** Services the host lends a plugin for its whole life. @since 1.0 */
typedef struct hearth_host_services {
  uint32_t struct_size;
  void* ctx; /* pass back as first argument */
  /* Record the error of the call in progress on this thread. */
  void (*set_error)(void* ctx, hearth_pstatus code, const char* message);
  void (*log)(void* ctx, int level, const char* message);
  /* Aligned allocation (alignment a power of two); NULL on failure. */
  void* (*alloc)(void* ctx, size_t size, size_t alignment);
  void (*free)(void* ctx, void* ptr);
} hearth_host_services;

/** What a device is. Strings are static. @since 1.0 */
typedef struct hearth_pdevice_info {
  uint32_t struct_size;
  const char* name;     /* e.g. "cpu", "cuda:0" */
  const char* vendor;   /* e.g. "AMD", "NVIDIA" */
  const char* description; /* e.g. the CPU model and ISA in use */
  uint64_t memory_total;   /* bytes */
  uint64_t memory_free;    /* bytes; 0 if unknown */
  uint32_t host_visible;   /* 1 when buffers live in host memory */
} hearth_pdevice_info;

/** Options for a context. @since 1.0 */
typedef struct hearth_pcontext_options {
  uint32_t struct_size;
  uint32_t device;    /* index < device_count() */
  uint32_t n_threads; /* CPU worker threads; 0 = the plugin's choice */
} hearth_pcontext_options;

typedef struct hearth_pcontext hearth_pcontext;

/** The backend vtable. Slots past struct_size are absent. @since 1.0 */
typedef struct hearth_backend_vtable {
  uint32_t struct_size;
  /* 0 = cannot run here; higher is better (CPU answers 1). */
  int32_t (*probe)(void);
  uint32_t (*device_count)(void);
  hearth_pstatus (*device_info)(uint32_t device, hearth_pdevice_info* out);

  hearth_pstatus (*context_create)(const hearth_pcontext_options* options,
                                   hearth_pcontext** out);
  void (*context_free)(hearth_pcontext* ctx);

  /* Device memory. `size` bytes, aligned to at least 64. */
  hearth_pstatus (*buffer_alloc)(hearth_pcontext* ctx, uint64_t size, hearth_pbuffer** out);
  void (*buffer_free)(hearth_pcontext* ctx, hearth_pbuffer* buf);
  /* Wrap host memory the host keeps alive longer than the buffer (mmapped
     weights). Optional: NULL when the plugin must copy (upload). */
  hearth_pstatus (*buffer_wrap_host)(hearth_pcontext* ctx, void* ptr, uint64_t size,
                                     hearth_pbuffer** out);
  hearth_pstatus (*buffer_upload)(hearth_pcontext* ctx, hearth_pbuffer* buf, uint64_t offset,
                                  const void* data, uint64_t size);
  hearth_pstatus (*buffer_download)(hearth_pcontext* ctx, const hearth_pbuffer* buf,
                                    uint64_t offset, void* data, uint64_t size);
  /* Host pointer of a host-visible buffer, else NULL. */
  void* (*buffer_host_ptr)(hearth_pcontext* ctx, hearth_pbuffer* buf);

  /* 1 if node `index` of `graph` can run here, else 0. */
  int32_t (*supports)(hearth_pcontext* ctx, const hearth_graph* graph, uint32_t index);
  /* Run every node in order; returns when outputs are ready. */
  hearth_pstatus (*graph_compute)(hearth_pcontext* ctx, const hearth_graph* graph);
} hearth_backend_vtable;

/** Plugin kinds. @since 1.0 */
#define HEARTH_PLUGIN_KIND_BACKEND 1
#define HEARTH_PLUGIN_KIND_EXTENSION 2

/** Filled in by the host before init; the plugin writes the out fields.
 *  @since 1.0 */
typedef struct hearth_plugin_init_info {
  uint32_t struct_size;
  /* in */
  uint32_t host_abi_major;
  uint32_t host_abi_minor;
  const hearth_host_services* host;
  /* out */
  uint32_t plugin_abi_major;
  uint32_t plugin_abi_minor;
  uint32_t kind;           /* HEARTH_PLUGIN_KIND_* */
  const char* name;        /* static, e.g. "cpu" */
  const char* version;     /* static, the plugin's own version string */
  const void* vtable;      /* static; hearth_backend_vtable for backends */
} hearth_plugin_init_info;

/** The one exported entry point. Returns HEARTH_P_OK, or an error after
 *  host->set_error. A plugin must fill plugin_abi_major even when it fails
 *  the handshake, so the host can explain. @since 1.0 */
typedef hearth_pstatus (*hearth_plugin_init_fn)(hearth_plugin_init_info* info);
#define HEARTH_PLUGIN_INIT_SYMBOL "hearth_plugin_init"

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* HEARTH_PLUGIN_H_ */
