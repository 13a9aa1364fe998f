// ops_attention.cc — the ATTENTION graph op of the CPU backend: causal,
// grouped-query attention over an F32 or F16 KV cache with the cache write
// fused in, an optional sliding window and an optional logit softcap.
//
// Two phases, one pool dispatch each: (1) every kv head's new k/v rows go
// into the caches at rows pos[t], one thread per kv head so that duplicate
// positions resolve to the last token, deterministically; (2) every
// (token, head) pair scores its visible cache rows into a per-thread scratch
// of n_ctx floats, takes a float softmax (max subtracted) and accumulates V.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "backends/cpu/ops.h"
#include "backends/cpu/ops_vec.h"

namespace hearth::cpu {
namespace {

enum Slot { kQ = 0, kK = 1, kV = 2, kKCache = 3, kVCache = 4, kPos = 5 };

constexpr uint32_t kCacheDtypes = (1u << HEARTH_DTYPE_F32) | (1u << HEARTH_DTYPE_F16);

size_t PerThreadBytes(const Node& n) {
  size_t floats = static_cast<size_t>(n.in[kKCache].ne[2] + n.in[kV].ne[0]);
  return (floats * sizeof(float) + 63) & ~static_cast<size_t>(63);
}

bool AttentionDtypes(const Node& n, std::string* why) {
  return WantDtype(n, -1, HEARTH_DTYPE_F32, why) && WantDtype(n, kQ, HEARTH_DTYPE_F32, why) &&
         WantDtype(n, kK, HEARTH_DTYPE_F32, why) && WantDtype(n, kV, HEARTH_DTYPE_F32, why) &&
         WantDtypeIn(n, kKCache, kCacheDtypes, why) && WantDtypeIn(n, kVCache, kCacheDtypes, why) &&
         WantDtype(n, kPos, HEARTH_DTYPE_I32, why);
}

// ne[0..2] of slot must be (a, b, c).
bool WantShape3(const Node& n, int slot, int64_t a, int64_t b, int64_t c, const char* what,
                std::string* why) {
  const Tensor& t = SlotTensor(n, slot);
  if (t.ne[0] == a && t.ne[1] == b && t.ne[2] == c && t.ne[3] == 1) return true;
  *why = StrFormat("%s %s has shape %s; want [%lld, %lld, %lld, 1] (%s)", what,
                   SlotName(n, slot).c_str(), ShapeStr(t).c_str(), static_cast<long long>(a),
                   static_cast<long long>(b), static_cast<long long>(c),
                   slot == kQ || slot == -1             ? "head_dim, n_head, T"
                   : slot == kKCache || slot == kVCache ? "head_dim, n_head_kv, n_ctx"
                                                        : "head_dim, n_head_kv, T");
  return false;
}

bool Disjoint(const Node& n, int a, int b, std::string* why) {
  uintptr_t alo, ahi, blo, bhi;
  ByteSpan(SlotTensor(n, a), &alo, &ahi);
  ByteSpan(SlotTensor(n, b), &blo, &bhi);
  if (alo >= ahi || blo >= bhi || ahi <= blo || bhi <= alo) return true;
  *why = SlotName(n, a) + " overlaps " + SlotName(n, b) +
         "; the caches are written, so they must not share bytes with the other tensors";
  return false;
}

bool AttentionCheck(const Node& n, std::string* why) {
  for (int s = -1; s < 6; ++s) {
    if (!WantRowContiguous(n, s, why)) return false;
  }
  const Tensor& q = n.in[kQ];
  const Tensor& k = n.in[kK];
  const Tensor& v = n.in[kV];
  const int64_t dk = q.ne[0], n_head = q.ne[1], n_tok = q.ne[2];
  const int64_t dv = v.ne[0], n_head_kv = k.ne[1], n_ctx = n.in[kKCache].ne[2];
  if (!WantDims(n, kQ, 3, why) || !WantShape3(n, kK, dk, n_head_kv, n_tok, "k", why) ||
      !WantShape3(n, kV, dv, n_head_kv, n_tok, "v", why) ||
      !WantShape3(n, kKCache, dk, n_head_kv, n_ctx, "k_cache", why) ||
      !WantShape3(n, kVCache, dv, n_head_kv, n_ctx, "v_cache", why) ||
      !WantShape3(n, -1, dv, n_head, n_tok, "out", why) || !WantDims(n, kPos, 1, why)) {
    return false;
  }
  if (n_head_kv < 1 || n_head % n_head_kv != 0) {
    *why = StrFormat("n_head %lld (q ne[1]) is not a multiple of n_head_kv %lld (k ne[1])",
                     static_cast<long long>(n_head), static_cast<long long>(n_head_kv));
    return false;
  }
  if (n.in[kPos].ne[0] != n_tok) {
    *why = StrFormat("positions %s have %lld entries but q has %lld tokens (ne[2])",
                     SlotName(n, kPos).c_str(), static_cast<long long>(n.in[kPos].ne[0]),
                     static_cast<long long>(n_tok));
    return false;
  }
  const float scale = n.node->fparams[0], softcap = n.node->fparams[1];
  if (!std::isfinite(scale)) {
    *why = StrFormat("scale (fparams[0]) is %g; want a finite value", static_cast<double>(scale));
    return false;
  }
  if (!(softcap >= 0.0f) || !std::isfinite(softcap)) {
    *why = StrFormat("softcap (fparams[1]) is %g; want 0 (none) or a finite value > 0",
                     static_cast<double>(softcap));
    return false;
  }
  if (n.node->iparams[0] < 0) {
    *why = StrFormat("window (iparams[0]) is %d; want 0 (none) or > 0", n.node->iparams[0]);
    return false;
  }
  for (int cache : {kKCache, kVCache}) {
    for (int other : {kQ, kK, kV, kPos}) {
      if (!Disjoint(n, cache, other, why)) return false;
    }
  }
  if (!Disjoint(n, kKCache, kVCache, why)) return false;
  const int32_t* pos = reinterpret_cast<const int32_t*>(n.in[kPos].data);
  for (int64_t t = 0; t < n_tok; ++t) {
    if (pos[t] < 0 || pos[t] >= n_ctx) {
      *why = StrFormat("pos[%lld] = %d is outside the KV cache rows [0, %lld) (%s)",
                       static_cast<long long>(t), pos[t], static_cast<long long>(n_ctx),
                       SlotName(n, kPos).c_str());
      return false;
    }
  }
  return true;
}

size_t AttentionScratch(const Node& n, int nth) {
  return PerThreadBytes(n) * static_cast<size_t>(nth);
}

void StoreRow(const float* src, uint8_t* dst, uint32_t dtype, int64_t n, const VecOps& vec) {
  if (dtype == HEARTH_DTYPE_F16) {
    vec.f32_to_f16(reinterpret_cast<uint16_t*>(dst), src, n);
  } else {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  }
}

bool AttentionRun(const Node& n, ExecEnv& env, std::string* why) {
  const Tensor& q = n.in[kQ];
  const Tensor& k = n.in[kK];
  const Tensor& v = n.in[kV];
  const Tensor& kc = n.in[kKCache];
  const Tensor& vc = n.in[kVCache];
  const int32_t* pos = reinterpret_cast<const int32_t*>(n.in[kPos].data);
  const int64_t dk = q.ne[0], n_head = q.ne[1], n_tok = q.ne[2];
  const int64_t dv = v.ne[0], n_head_kv = k.ne[1], n_ctx = kc.ne[2];
  const int64_t group = n_head / n_head_kv;
  const float scale = n.node->fparams[0], softcap = n.node->fparams[1];
  const int64_t window = n.node->iparams[0];
  const VecOps& vec = Vec();

  // Positions were checked up front; this guard only keeps a racing host
  // from turning into an out-of-bounds write.
  for (int64_t t = 0; t < n_tok; ++t) {
    if (pos[t] < 0 || pos[t] >= n_ctx) {
      *why = StrFormat("pos[%lld] = %d is outside the KV cache rows [0, %lld)",
                       static_cast<long long>(t), pos[t], static_cast<long long>(n_ctx));
      return false;
    }
  }

  // The write is a copy of T * (dk + dv) floats per kv head: tiny in decode.
  const int64_t per_head = std::max<int64_t>(n_tok * (dk + dv), 1);
  ParallelFor(env, n_head_kv, per_head > 16384 ? 1 : 16384 / per_head,
              [&](int64_t g0, int64_t g1, int) {
                for (int64_t g = g0; g < g1; ++g) {
                  for (int64_t t = 0; t < n_tok; ++t) {
                    StoreRow(reinterpret_cast<const float*>(k.Row(g, t)), kc.Row(g, pos[t]),
                             kc.dtype, dk, vec);
                    StoreRow(reinterpret_cast<const float*>(v.Row(g, t)), vc.Row(g, pos[t]),
                             vc.dtype, dv, vec);
                  }
                }
              });

  const size_t per_thread = PerThreadBytes(n);
  const int64_t n_items = n_tok * n_head;
  if (n_items == 0) return true;
  // Hand out work round-robin (later tokens see more rows, so contiguous
  // chunks would load the last thread most); keep the q heads of one kv head
  // together when there are enough such groups to go round.
  const int64_t unit = n_tok * n_head_kv >= env.n_threads ? group : 1;
  const int64_t n_units = n_items / unit;
  const int nth = static_cast<int>(n_units < env.n_threads ? n_units : env.n_threads);
  env.pool->Run(nth, [&](int ith, int nt) {
    float* scores = reinterpret_cast<float*>(env.scratch + per_thread * ith);
    float* acc = scores + n_ctx;
    for (int64_t u = ith; u < n_units; u += nt) {
      for (int64_t item = u * unit; item < (u + 1) * unit; ++item) {
        const int64_t t = item / n_head, h = item % n_head, g = h / group;
        const int64_t p = pos[t];
        const int64_t lo = window > 0 && p - window + 1 > 0 ? p - window + 1 : 0;
        const int64_t len = p - lo + 1;
        const float* qrow = reinterpret_cast<const float*>(q.Row(h, t));
        if (kc.dtype == HEARTH_DTYPE_F16) {
          for (int64_t j = 0; j < len; ++j) {
            scores[j] = vec.dot_f16(qrow, reinterpret_cast<const uint16_t*>(kc.Row(g, lo + j)), dk);
          }
        } else {
          for (int64_t j = 0; j < len; ++j) {
            scores[j] = vec.dot_f32(qrow, reinterpret_cast<const float*>(kc.Row(g, lo + j)), dk);
          }
        }
        vec.scale_mul(scores, scores, scale, nullptr, len);
        if (softcap > 0.0f) vec.softcap(scores, softcap, len);
        const float m = vec.max(scores, len);
        const float sum = vec.exp_sum(scores, scores, 1.0f, m, len);
        std::memset(acc, 0, static_cast<size_t>(dv) * sizeof(float));
        if (vc.dtype == HEARTH_DTYPE_F16) {
          for (int64_t j = 0; j < len; ++j) {
            vec.axpy_f16(scores[j], reinterpret_cast<const uint16_t*>(vc.Row(g, lo + j)), acc, dv);
          }
        } else {
          for (int64_t j = 0; j < len; ++j) {
            vec.axpy_f32(scores[j], reinterpret_cast<const float*>(vc.Row(g, lo + j)), acc, dv);
          }
        }
        vec.scale_mul(reinterpret_cast<float*>(n.out.Row(h, t)), acc, 1.0f / sum, nullptr, dv);
      }
    }
  });
  return true;
}

}  // namespace

const OpInfo kOpAttention = {
    "ATTENTION", 6, 0, false, AttentionDtypes, AttentionCheck, AttentionScratch, AttentionRun};

}  // namespace hearth::cpu
