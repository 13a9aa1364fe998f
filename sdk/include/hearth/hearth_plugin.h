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

/** Rope modes. @since 1.0 */
#define HEARTH_ROPE_NORMAL 0 /* rotate pairs (2i, 2i+1) — Llama GGUF layout */
#define HEARTH_ROPE_NEOX 2   /* rotate pairs (i, i + n_rot/2) — Qwen2, Gemma */

/* Params blocks. A node points at its op's params struct inside
 * hearth_graph.params with params_offset/params_size. Every struct here is
 * append-only: a reader takes min(params_size, sizeof) bytes and treats the
 * rest as zero, and every field appended later means "as before" at 0.
 * Ops without params have params_size 0. */

/** SCALE, SOFTMAX (scale applied before), LORA_MUL_MAT (base scale).
 *  @since 1.0 */
typedef struct hearth_scale_params {
  float scale;
} hearth_scale_params;

/** RMS_NORM, RMS_NORM_BACK. @since 1.0 */
typedef struct hearth_rms_norm_params {
  float eps;
} hearth_rms_norm_params;

/** ROPE, ROPE_BACK. @since 1.0 */
typedef struct hearth_rope_params {
  float theta_base;
  float freq_scale; /* positions are multiplied by it; 1 = none */
  int32_t n_rot;    /* rotated dims, even, <= head_dim */
  int32_t mode;     /* HEARTH_ROPE_NORMAL or HEARTH_ROPE_NEOX */
} hearth_rope_params;

/** MUL_MAT. @since 1.0 */
typedef struct hearth_mul_mat_params {
  uint32_t flags; /* HEARTH_MUL_MAT_* bits; 0 = the backend's fastest way */
} hearth_mul_mat_params;
/* The activations x must not be rounded (to F16/BF16, or to Q8 blocks as
   quantized dot products do): the product is computed with x in float and the
   weights dequantized, as a float reference would (LoRA training over a
   quantized base, parity with PEFT on the dequantized weights). @since 1.0 */
#define HEARTH_MUL_MAT_FLOAT_ACTIVATIONS 1u
/* The backend may round x and the weights (dequantized) to bfloat16 and
   accumulate the products in F32, as mixed-precision training does (torch's
   bf16); x is never rounded to anything coarser (no Q8 blocks). A backend
   without a fast BF16 product computes as with
   HEARTH_MUL_MAT_FLOAT_ACTIVATIONS. MUL_MAT_T reads the same flag (w and dy
   rounded). @since 1.0 */
#define HEARTH_MUL_MAT_BF16 2u

/** ATTENTION, ATTENTION_BACK. @since 1.0 */
typedef struct hearth_attention_params {
  float scale;    /* applied to q.k */
  float softcap;  /* 0 = none, else scores become softcap * tanh(s / softcap) */
  int32_t window; /* sliding window in positions; 0 = none */
} hearth_attention_params;

/** ADAMW_STEP. The host folds the step count into the two corrections.
 *  @since 1.0 */
typedef struct hearth_adamw_params {
  float lr;
  float beta1;
  float beta2;
  float eps;
  float weight_decay;     /* decoupled: p -= lr * weight_decay * p */
  float bias_correction1; /* 1 - beta1^t */
  float bias_correction2; /* 1 - beta2^t */
  float grad_scale;       /* gradients are multiplied by it first (clipping) */
} hearth_adamw_params;

/** CROSS_ENTROPY. Unlike other params, ignore_index applies only when the
 *  node's params_size covers it (a target of 0 is a real token); without it
 *  only targets < 0 are masked. @since 1.0 */
typedef struct hearth_cross_entropy_params {
  int32_t ignore_index; /* targets equal to it (and any target < 0) add nothing */
} hearth_cross_entropy_params;

/** CROSS_ENTROPY_BACK: the gradient scale and, as for CROSS_ENTROPY, an
 *  ignore_index that applies only when params_size covers it. @since 1.0 */
typedef struct hearth_cross_entropy_back_params {
  float scale;
  int32_t ignore_index;
} hearth_cross_entropy_back_params;

/** DROPOUT. @since 1.0 */
typedef struct hearth_dropout_params {
  float p;       /* drop probability, 0 <= p < 1 */
  uint32_t pad_; /* 0 */
  uint64_t seed; /* picks the mask; the same seed gives the same mask */
} hearth_dropout_params;

/** Graph operations. Append-only. Shapes use ne[] order (innermost first).
 *  "rows" below means ne[1] (x ne[2] x ne[3] where stated). Inputs are listed
 *  in order; an input past a node's n_inputs, or given as -1, is absent,
 *  which only optional inputs may be. Unless stated, every input and output
 *  is F32 with contiguous rows (nb[0] = 4), and an output never overlaps an
 *  input except where "in place" is allowed (then only as the identical
 *  view). @since 1.0 */
typedef enum hearth_op {
  HEARTH_OP_NONE = 0,
  /* out[D, T] = table[D, ids[t]]. in: table (any dtype), ids (I32 [T]).
     Ids outside [0, rows) are an error, never a read out of bounds. */
  HEARTH_OP_GET_ROWS = 1,
  /* out[M, T] = x[K, T] . w[K, M]^T. in: w (any dtype), x (F32).
     w may carry ne[2]/ne[3] > 1 (a batch of matrices) broadcast over x's.
     Optional hearth_mul_mat_params (HEARTH_MUL_MAT_FLOAT_ACTIVATIONS). */
  HEARTH_OP_MUL_MAT = 2,
  /* out = a + b, b broadcast over rows when b.ne[1..3] == 1. In place. */
  HEARTH_OP_ADD = 3,
  /* out = a * b, broadcast as ADD. In place. */
  HEARTH_OP_MUL = 4,
  /* out = a * scale (hearth_scale_params). In place. */
  HEARTH_OP_SCALE = 5,
  /* out = x / rms(x) * w over ne[0]; rms = sqrt(mean(x^2) + eps).
     in: x, optional w ([D]). hearth_rms_norm_params. */
  HEARTH_OP_RMS_NORM = 6,
  /* Rotary embedding. in: x ([head_dim, n_head, T]), pos (I32 [T]),
     optional freq_factors ([n_rot/2]: angle i is divided by factor i).
     Angle of pair i at position p: p * freq_scale * theta_base^(-2i/n_rot).
     In place. hearth_rope_params. */
  HEARTH_OP_ROPE = 7,
  /* Causal attention over a KV cache, with the cache write fused in.
     in: q ([head_dim, n_head, T]), k ([head_dim, n_head_kv, T]),
         v ([head_dim_v, n_head_kv, T]), k_cache,
         v_cache (F32 or F16), pos (I32 [T]: each token's position in its sequence),
         optional seq (I32 [T]: each token's sequence, 0..n_seq-1; absent = 0),
         optional blocks (I32 [max_blocks, n_seq]: the cache pages of each
         sequence).
     Cache layout without blocks: [head_dim, n_head_kv, n_ctx, n_seq];
     row j of sequence s is cache row j of slot s (ne[3]).
     With blocks (paged): [head_dim, n_head_kv, block_size, n_pages]; row j of
     sequence s is row j % block_size of page blocks[j / block_size, s].
     Caches come with any strides whose rows are contiguous (nb[0] = element
     size): hearth's runtime passes them head-major (nb[2] = one row's bytes,
     nb[1] = ne[2] rows), so a kv head's rows follow one another.
     First every token's k, v row is stored at (seq[t], pos[t]); then query t
     attends rows j <= pos[t] of its own sequence (and pos[t] - j < window when
     window > 0). Rows a token may read must have been written by this
     or an earlier graph; reading outside the cache, or a page id outside
     [0, n_pages), is an error. Two tokens writing the same row: the later
     one wins.
     out: [head_dim_v, n_head, T]. hearth_attention_params.
     Optional extra output lse (F32 [n_head, T]): log of the softmax
     denominator of each (head, token), max included, for ATTENTION_BACK. */
  HEARTH_OP_ATTENTION = 8,
  /* out = silu(gate) * up. in: gate, up (same shape). */
  HEARTH_OP_SILU_MUL = 9,
  /* out = gelu_tanh(gate) * up. in: gate, up (same shape). */
  HEARTH_OP_GELU_MUL = 10,
  /* Softmax over ne[0] of (x * scale). hearth_scale_params. */
  HEARTH_OP_SOFTMAX = 11,
  /* out = convert(x) into out's dtype (F32/F16/BF16), strides honoured. */
  HEARTH_OP_COPY = 12,
  /* A LoRA pair beside a MUL_MAT of the same activations:
     out[M, T] = y[M, T] + s_t * b . (a . x[:, t]),  s_t = scale * scales[t].
     in: y ([M, T]: the base projection), a (F32/F16/BF16 [K, R]: R rows
         of K, PEFT's lora_A), b (F32/F16/BF16 [M, R]: R rows of M, i.e.
         lora_B transposed, so that each rank's M outputs are contiguous),
         x ([K, T]), optional scales ([T]; absent = 1 for every
         token).
     A batch whose rows use different adapter sets carries one node per
     adapter, each with scales 0 on the rows that do not use it.
     In place (out = y). hearth_scale_params. */
  HEARTH_OP_LORA_MUL_MAT = 13,

  /* ---- backward ops (training). "dy" is the gradient of the loss with
     respect to the forward op's output. -------------------------------- */

  /* The transposed product: out[K, T] = w[K, M] . dy[M, T], i.e.
     out[k, t] = sum_m w[k, m] dy[m, t] with w indexed as MUL_MAT reads it
     (so out is d(loss)/dx of MUL_MAT). in: w (any dtype, dequantized on the
     fly, never copied whole), dy ([M, T]). w may carry ne[2]/ne[3] > 1,
     broadcast as in MUL_MAT. Optional hearth_mul_mat_params
     (HEARTH_MUL_MAT_BF16). */
  HEARTH_OP_MUL_MAT_T = 14,
  /* Sum of outer products: out[N, P] = sum_t a[N, t] * b[P, t] (+ out when
     an accumulate input is given). in: a ([N, T]), b ([P, T]), optional acc
     ([N, P]; out may be the same view: accumulate in place).
     With a = dy, b = (A x): d(loss)/d(lora_B^T); with a = x, b = (B^T dy):
     d(loss)/d(lora_A). */
  HEARTH_OP_OUTER = 15,
  /* d/dx of RMS_NORM. in: x ([D, rows]: the forward input), dy ([D, rows]),
     optional w ([D]). hearth_rms_norm_params (same eps). */
  HEARTH_OP_RMS_NORM_BACK = 16,
  /* d/dx of ROPE: the inverse rotation of dy. in: dy, pos, optional
     freq_factors, as ROPE's x, pos, freq_factors. In place.
     hearth_rope_params. */
  HEARTH_OP_ROPE_BACK = 17,
  /* d/dq, d/dk, d/dv of ATTENTION run on an empty cache: the keys of query
     t are the batch's own k, v rows j with seq[j] == seq[t] and
     pos[j] <= pos[t] (and the window). in: q, k, v (as ATTENTION), o (the
     forward output), do ([head_dim_v, n_head, T]), lse (the forward's extra
     output), pos, optional seq. out: dq ([head_dim, n_head, T]); extra
     outputs dk ([head_dim, n_head_kv, T]), dv ([head_dim_v, n_head_kv, T]).
     pos and seq must be >= 0 and each (seq, pos) pair may appear once (the
     forward would have kept only the later token's k, v); else an error.
     hearth_attention_params (same as the forward). */
  HEARTH_OP_ATTENTION_BACK = 18,
  /* d/dgate, d/dup of SILU_MUL. in: gate, up, dy. out: dgate; extra output:
     dup. */
  HEARTH_OP_SILU_MUL_BACK = 19,
  /* As SILU_MUL_BACK, for GELU_MUL. */
  HEARTH_OP_GELU_MUL_BACK = 20,
  /* Masked cross-entropy per token: out[t] = logsumexp(logits[:, t]) -
     logits[target[t], t], or 0 where the target is masked. in: logits
     ([V, T]), targets (I32 [T]). out: [T]. hearth_cross_entropy_params.
     Targets >= V are an error. The host chunks T so logits of a large
     vocabulary fit. */
  HEARTH_OP_CROSS_ENTROPY = 21,
  /* d/dlogits of scale * sum_t CROSS_ENTROPY: out[:, t] = scale *
     (softmax(logits[:, t]) - onehot(target[t])), 0 where masked.
     in: logits, targets. In place (out = logits).
     hearth_cross_entropy_back_params. */
  HEARTH_OP_CROSS_ENTROPY_BACK = 22,
  /* One AdamW step, in place: g = grad * grad_scale; m = b1 m + (1-b1) g;
     v = b2 v + (1-b2) g^2; p -= lr * (m / c1 / (sqrt(v / c2) + eps) +
     weight_decay * p). in: p, grad, m, v (same shape). out: p'; extra
     outputs: m', v'. Each may be the same view as its input (in place, as
     training does) or a separate tensor (the inputs then stay unchanged).
     beta1 and beta2 in [0, 1), both corrections > 0, the rest finite; else
     an error. hearth_adamw_params. */
  HEARTH_OP_ADAMW_STEP = 23,
  /* out[0] = sum of x^2 over every element (accumulated in double or
     better than float). in: x. out: [1]. For gradient clipping. */
  HEARTH_OP_SUM_SQ = 24,
  /* Inverted dropout with a mask every backend computes alike: element e
     (its index in ne order, e = i0 + ne0 * (i1 + ne1 * (i2 + ne2 * i3))) is
     kept iff (splitmix64(seed + e) >> 32) >= (uint32_t)(p * 2^32), where
     splitmix64(z): z += 0x9E3779B97F4A7C15; z = (z ^ (z >> 30)) *
     0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB; return
     z ^ (z >> 31) (64-bit wrap-around). out[e] = kept ? x[e] * s : 0 with
     s = (float)(1 / (1 - p)) (1/(1-p) in double, rounded to float once).
     Its own backward: the same node over dy. in: x, optional offset (I32
     [2]: the low and high 32 bits of a number added to seed, so one graph
     can draw a new mask per run; absent = 0). In place.
     hearth_dropout_params (p outside [0, 1) is an error). */
  HEARTH_OP_DROPOUT = 25,
  HEARTH_OP_COUNT_ = 26 /* not an op; grows as ops are appended */
} hearth_op;

/** One operation. Its inputs are graph->node_inputs[first_input ..
 *  first_input + n_inputs); the indices there refer to hearth_graph.tensors,
 *  -1 marking an absent optional input. An op with several outputs writes
 *  `output` and then the n_extra_outputs tensors listed right after its
 *  inputs in node_inputs. Its params are params_size bytes at
 *  graph->params + params_offset (8-byte aligned). Nothing in a node limits
 *  how many inputs, outputs or params bytes an op appended later may have.
 *  @since 1.0 */
typedef struct hearth_node {
  uint32_t op; /* hearth_op */
  int32_t output;
  uint32_t first_input;
  uint16_t n_inputs;
  uint16_t n_extra_outputs;
  uint32_t params_offset;
  uint32_t params_size;
} hearth_node;

/** A flat graph. Nodes run in order; each output tensor is preallocated by
 *  the host (a view into a backend buffer). Tensors with no producing node
 *  are inputs (weights, token ids, positions, caches).
 *
 *  Two keys, computed by the host, let a backend reuse work:
 *  - plan_key is equal for graphs with the same nodes (ops, input/output
 *    tensor indices, n_inputs, n_extra_outputs, params_size) and the same
 *    tensor descriptors apart from buffer and offset (dtype, n_dims, ne, nb).
 *    Params values, buffers and offsets may differ. A backend may cache
 *    kernel choices, launch shapes and scratch sizes on it.
 *  - binding_key is equal for graphs with the same plan_key AND the same
 *    params bytes AND the same buffers (by identity: a freed buffer's
 *    successor at the same address is another buffer) at the same offsets.
 *    Only buffer CONTENTS may differ (token ids, positions, weights). A
 *    backend may replay a captured command stream (CUDA graph) on it.
 *  Keys are 64-bit hashes of those fields, computed by the host with a
 *  per-process seed; 0 means "not computed: cache nothing".
 *  @since 1.0 */
typedef struct hearth_graph {
  uint32_t struct_size;
  uint32_t n_tensors;
  const hearth_tensor_desc* tensors;
  uint32_t n_nodes;
  const hearth_node* nodes;
  uint32_t n_node_inputs;
  const int32_t* node_inputs;
  uint32_t params_bytes;
  const void* params; /* 8-byte aligned */
  uint64_t plan_key;
  uint64_t binding_key;
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
  uint32_t simd_width;     /* lanes that run in lockstep: the warp (32) or
                              wavefront (64 on gfx90a, 32 on gfx1030) width;
                              on a CPU the F32 lanes of its widest vectors */
  const char* arch;        /* e.g. "sm_90", "gfx90a", "x86-64-v4+amx" */
  uint32_t compute_units;  /* SMs, CUs or cores; 0 if unknown */
} hearth_pdevice_info;

/** What graphs do with a placed weight (hearth_pweight.usage bits).
 *  @since 1.0 */
#define HEARTH_WEIGHT_USE_MATMUL 1u /* w of MUL_MAT / MUL_MAT_T */
#define HEARTH_WEIGHT_USE_ROWS 2u   /* table of GET_ROWS */
#define HEARTH_WEIGHT_USE_OTHER                \
  4u /* any other input (norm weights, biases) \
      */

/** One weight tensor the host places on a device. @since 1.0 */
typedef struct hearth_pweight {
  uint32_t struct_size;
  uint32_t usage;          /* HEARTH_WEIGHT_USE_* bits */
  const char* name;        /* e.g. "blk.3.attn_q.weight"; for messages */
  hearth_tensor_desc desc; /* dtype, n_dims, ne and contiguous nb; buffer
                              NULL, offset 0 */
  const void* data;        /* the tensor's bytes, laid out as desc */
  uint64_t size;           /* bytes at data */
  uint32_t data_outlives;  /* 1: data stays valid and unchanged until the
                              buffer is freed (a mapped file), so the plugin
                              may keep pointing at it instead of copying */
} hearth_pweight;

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
  /* 0 = cannot run here; higher is better (CPU answers 1). When it answers
     0 it sets *reason (never NULL) to a static sentence saying why, e.g.
     "no CUDA driver (libcuda.so.1 not found)" or "driver found, 0 devices". */
  int32_t (*probe)(const char** reason);
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

  /* Device-to-device copy of `size` bytes between two buffers of this
     device (session fork, prefix sharing). Ranges must lie inside both
     buffers; overlapping ranges of one buffer copy as memmove does. Never
     called on a placed weight (weight_place) that reported repacked. */
  hearth_pstatus (*buffer_copy)(hearth_pcontext* ctx, const hearth_pbuffer* src,
                                uint64_t src_offset, hearth_pbuffer* dst, uint64_t dst_offset,
                                uint64_t size);
  /* Optional (NULL: the host wraps or uploads the whole weight file). Places
     one weight and returns a buffer holding it; the plugin may store it in a
     layout of its own (*repacked = 1), e.g. interleaved blocks or int8 tiles.
     Graphs then refer to the weight only through descriptors with this
     buffer, offset 0 or a whole number of rows (offset = i * nb[1]), and the
     logical dtype, ne and nb of `w->desc`; the plugin translates. A repacked
     buffer is never downloaded, copied or written by the host. */
  hearth_pstatus (*weight_place)(hearth_pcontext* ctx, const hearth_pweight* w,
                                 hearth_pbuffer** out, uint32_t* repacked);
} hearth_backend_vtable;

/** Per-request state of a logits mask. @since 1.0 */
typedef struct hearth_pmask hearth_pmask;

/** The vocabulary as an extension sees it. Valid for the mask's life.
 *  @since 1.0 */
typedef struct hearth_pvocab {
  uint32_t struct_size;
  uint32_t n_vocab;
  /* Bytes token i adds to the text when it follows other text:
     text + offsets[i] .. text + offsets[i + 1] (UTF-8, possibly a partial
     code point; empty for control tokens). */
  const char* text;
  const uint64_t* offsets;   /* n_vocab + 1 entries */
  const uint8_t* is_control; /* 1 for control tokens (end of turn, BOS …) */
} hearth_pvocab;

/** The vtable of an extension plugin. Slots past struct_size are absent;
 *  a NULL slot means the plugin does not offer that capability. @since 1.0 */
typedef struct hearth_extension_vtable {
  uint32_t struct_size;
  /* Constrained decoding: a logits mask applied before sampling.
     mask_create: one state per request, from the app's config string
     (UTF-8; its meaning is the plugin's, e.g. a list of banned strings).
     mask_apply: called before every sampled token with the tokens sampled
     so far in this request (not the prompt); allowed[n_vocab] arrives all 1
     and the plugin sets 0 for tokens that must not come next. If it leaves
     no token allowed, generation ends (stop reason: constraint). An error
     ends generation with that error. */
  hearth_pstatus (*mask_create)(const char* config, const hearth_pvocab* vocab, hearth_pmask** out);
  void (*mask_free)(hearth_pmask* mask);
  hearth_pstatus (*mask_apply)(hearth_pmask* mask, const int32_t* generated, uint32_t n_generated,
                               uint8_t* allowed, uint32_t n_vocab);
} hearth_extension_vtable;

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
  const void* vtable;      /* static; hearth_backend_vtable for backends,
                          hearth_extension_vtable for extensions */
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
