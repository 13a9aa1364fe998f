// kv_cache.h — the KV cache a session or a batch runner owns: one device
// buffer holding, per layer, k then v in F32 or F16 (hearth_kv_type), for
// n_seq sequences of up to n_ctx positions each.
#ifndef HEARTH_SDK_SRC_RUNTIME_KV_CACHE_H_
#define HEARTH_SDK_SRC_RUNTIME_KV_CACHE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "sdk/src/model/architecture.h"
#include "sdk/src/plugin_host/plugin_host.h"

namespace hearth {

// The context length (positions per sequence) for a requested `n_ctx`:
// 0 = min(the model's training context, 4096); outside [1, 2^22] or past
// the training context is an error.
absl::StatusOr<int64_t> ContextLength(const ModelConfig& c, int64_t n_ctx);

// The element dtype of a hearth_kv_type value (HEARTH_KV_F32 -> F32,
// HEARTH_KV_F16 -> F16); INVALID_ARGUMENT naming the value otherwise.
absl::StatusOr<uint32_t> KvDtype(uint32_t kv_type);

// Allocates the cache on `backend` and describes it: per layer k
// [head_dim, n_head_kv, n_ctx] and v [head_dim_v, n_head_kv, n_ctx] for one
// sequence, with a fourth dimension n_seq when n_seq > 1 (slot s = ne[3]),
// stored head-major (a head's rows adjacent; see HeadMajor in kv_cache.cc).
// The caller frees *buffer.
// `dtype` is F32 or F16 (KvDtype).
absl::StatusOr<KvCacheRefs> AllocateKvCache(Backend& backend, const ModelConfig& c, int64_t n_ctx,
                                            int64_t n_seq, uint32_t dtype, hearth_pbuffer** buffer);

// A paged cache: per layer k [head_dim, n_head_kv, block_size, n_pages] and
// v likewise, for n_seq sequences of up to n_ctx positions (a multiple of
// block_size) that take pages from one pool (KvCacheRefs::block_size).
absl::StatusOr<KvCacheRefs> AllocatePagedKvCache(Backend& backend, const ModelConfig& c,
                                                 int64_t n_ctx, int64_t n_seq, int64_t block_size,
                                                 int64_t n_pages, uint32_t dtype,
                                                 hearth_pbuffer** buffer);

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_RUNTIME_KV_CACHE_H_
