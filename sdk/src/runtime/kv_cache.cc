// kv_cache.cc — sizing, allocating and describing a KV cache.
#include "sdk/src/runtime/kv_cache.h"

#include <algorithm>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "hearth/hearth.h"
#include "sdk/src/common/status.h"

namespace hearth {
namespace {

constexpr int64_t kMaxCtx = int64_t{1} << 22;

}  // namespace

absl::StatusOr<int64_t> ContextLength(const ModelConfig& c, int64_t n_ctx) {
  if (n_ctx == 0) n_ctx = std::min<int64_t>(c.n_ctx_train, 4096);
  if (n_ctx < 1 || n_ctx > kMaxCtx) {
    return absl::InvalidArgumentError(
        absl::StrCat("n_ctx ", n_ctx, " is outside [1, ", kMaxCtx, "]"));
  }
  if (n_ctx > c.n_ctx_train) {
    return absl::InvalidArgumentError(
        absl::StrCat("n_ctx ", n_ctx, " exceeds the model's training context of ", c.n_ctx_train,
                     " tokens (", c.arch, " positions past it are not meaningful)"));
  }
  return n_ctx;
}

absl::StatusOr<uint32_t> KvDtype(uint32_t kv_type) {
  switch (kv_type) {
    case HEARTH_KV_F32:
      return HEARTH_DTYPE_F32;
    case HEARTH_KV_F16:
      return HEARTH_DTYPE_F16;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("kv_type ", kv_type, " is not a hearth_kv_type (0: F32, 1: F16)"));
  }
}

namespace {

// A contiguous [dim, n_head_kv, rows, groups] description restrided so that
// each head's rows follow one another (rows, then heads, then groups, in
// memory): attention reads one kv head's rows in a row, and a stream of
// whole rows is what the CPU's prefetchers and a GPU's coalesced loads want.
// Same bytes, same span; the ops take any row strides.
hearth_tensor_desc HeadMajor(hearth_tensor_desc d) {
  const int64_t row = d.nb[1];
  d.nb[2] = row;
  d.nb[1] = row * d.ne[2];
  d.nb[3] = row * d.ne[2] * d.ne[1];
  return d;
}

// k [head_dim, n_head_kv, rows, groups] and v likewise per layer (3-D when
// `four_d` is false), one buffer for all layers.
absl::StatusOr<KvCacheRefs> Allocate(Backend& backend, const ModelConfig& c, int64_t rows,
                                     int64_t groups, bool four_d, uint32_t dtype,
                                     const std::string& what, hearth_pbuffer** buffer) {
  auto shape = [&](int64_t dim) {
    return four_d ? Shape::Of({dim, c.n_head_kv, rows, groups})
                  : Shape::Of({dim, c.n_head_kv, rows});
  };
  const Shape ks = shape(c.head_dim), vs = shape(c.head_dim_v);
  // ContiguousBytes multiplies in 64 bits: check the product of the dims
  // the same way before trusting it.
  const uint64_t per_pos = static_cast<uint64_t>((c.head_dim + c.head_dim_v) * c.n_head_kv) *
                           (dtype == HEARTH_DTYPE_F16 ? 2 : 4);
  if (per_pos == 0 || static_cast<uint64_t>(rows) * static_cast<uint64_t>(groups) >
                          std::numeric_limits<uint64_t>::max() / per_pos) {
    return absl::InvalidArgumentError("KV cache size overflows");
  }
  const uint64_t k_bytes = ContiguousBytes(dtype, ks);
  const uint64_t v_bytes = ContiguousBytes(dtype, vs);
  const uint64_t per_layer = k_bytes + v_bytes;
  if (per_layer == 0 ||
      static_cast<uint64_t>(c.n_layer) > std::numeric_limits<uint64_t>::max() / per_layer) {
    return absl::InvalidArgumentError("KV cache size overflows");
  }
  auto kv = backend.Alloc(per_layer * static_cast<uint64_t>(c.n_layer));
  if (!kv.ok()) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot allocate the KV cache (",
                                                     per_layer * c.n_layer, " bytes for ", what,
                                                     "): ", kv.status().message()));
  }
  *buffer = *kv;
  KvCacheRefs refs;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    hearth_tensor_desc k = HeadMajor(ContiguousDesc(dtype, ks));
    hearth_tensor_desc v = HeadMajor(ContiguousDesc(dtype, vs));
    k.buffer = v.buffer = *buffer;
    k.offset = per_layer * static_cast<uint64_t>(l);
    v.offset = k.offset + k_bytes;
    refs.k.push_back(k);
    refs.v.push_back(v);
  }
  return refs;
}

}  // namespace

absl::StatusOr<KvCacheRefs> AllocateKvCache(Backend& backend, const ModelConfig& c, int64_t n_ctx,
                                            int64_t n_seq, uint32_t dtype,
                                            hearth_pbuffer** buffer) {
  if (n_seq < 1) return absl::InvalidArgumentError(absl::StrCat("n_seq ", n_seq, " is below 1"));
  HEARTH_ASSIGN_OR_RETURN(
      KvCacheRefs refs,
      Allocate(
          backend, c, n_ctx, n_seq, n_seq > 1, dtype,
          absl::StrCat("n_ctx ", n_ctx, n_seq > 1 ? absl::StrCat(" x ", n_seq, " sequences") : ""),
          buffer));
  refs.n_ctx = n_ctx;
  refs.n_seq = n_seq;
  return refs;
}

absl::StatusOr<KvCacheRefs> AllocatePagedKvCache(Backend& backend, const ModelConfig& c,
                                                 int64_t n_ctx, int64_t n_seq, int64_t block_size,
                                                 int64_t n_pages, uint32_t dtype,
                                                 hearth_pbuffer** buffer) {
  if (n_seq < 1) return absl::InvalidArgumentError(absl::StrCat("n_seq ", n_seq, " is below 1"));
  if (block_size < 1 || n_pages < 1 || n_ctx % block_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat("a paged KV cache of ", n_pages, " pages of ",
                                                   block_size, " positions for n_ctx ", n_ctx,
                                                   " (a multiple of the page size)"));
  }
  HEARTH_ASSIGN_OR_RETURN(
      KvCacheRefs refs,
      Allocate(backend, c, block_size, n_pages, true, dtype,
               absl::StrCat(n_pages, " pages of ", block_size, " positions"), buffer));
  refs.n_ctx = n_ctx;
  refs.n_seq = n_seq;
  refs.block_size = block_size;
  refs.max_blocks = n_ctx / block_size;
  return refs;
}

}  // namespace hearth
