// ops_attention.cc — the ATTENTION graph op of the CPU backend: causal,
// grouped-query attention over an F32 or F16 KV cache with the cache write
// fused in, an optional sliding window and an optional logit softcap, for a
// batch of tokens from one or several sequences (a cache slot per sequence,
// or pages of a shared cache through a block table).
//
// Two phases, one pool dispatch each: (1) every kv head's new k/v rows go
// into the caches at (seq[t], pos[t]), one thread per kv head so that duplicate rows resolve to the
// last token, deterministically; (2) the queries. Inference goes a (token, head) pair at a time:
// scores of its visible cache rows into a per-thread scratch of one sequence's capacity, a float
// softmax (max subtracted), V accumulated; a prompt then gives the same bits as decoding its
// tokens one by one, and a batch the same bits as its sequences run apart. The training forward
// (lse requested) runs in tiles of kTile batch rows per kv head: a tile of two or more tokens of
// one sequence goes flash style (the q heads of the group against kTile cache rows at a time,
// packed to F32 once for all of them: S = Q K^T and O += P V as small matrix products, an online
// softmax between, key tiles no query of the tile sees skipped), any other tile pair by pair.
#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstring>

#include "backends/cpu/ops.h"
#include "backends/cpu/ops_vec.h"

namespace hearth::cpu {
namespace {

enum Slot { kQ = 0, kK = 1, kV = 2, kKCache = 3, kVCache = 4, kPos = 5, kSeq = 6, kBlocks = 7 };

constexpr uint32_t kCacheDtypes = (1u << HEARTH_DTYPE_F32) | (1u << HEARTH_DTYPE_F16);

// Where sequence s keeps cache row j.
struct CacheMap {
  const int32_t* seq = nullptr;     // [T] or null (every token in sequence 0)
  const int32_t* blocks = nullptr;  // [max_blocks] per sequence, row stride blocks_stride
  int64_t blocks_stride = 0;        // in int32s
  int64_t max_blocks = 0;
  int64_t block_size = 0;  // rows per page (paged) or per slot
  int64_t n_seq = 1;
  int64_t n_pages = 0;   // paged only
  int64_t capacity = 0;  // rows one sequence can hold

  int64_t Seq(int64_t t) const { return seq ? seq[t] : 0; }
  // The (i2, i3) coordinates of row j of sequence s in a cache tensor.
  void Locate(int64_t s, int64_t j, int64_t* i2, int64_t* i3) const {
    if (blocks) {
      *i2 = j % block_size;
      *i3 = blocks[s * blocks_stride + j / block_size];
    } else {
      *i2 = j;
      *i3 = s;
    }
  }
};

CacheMap MapOf(const Node& n) {
  CacheMap m;
  const Tensor& kc = n.in[kKCache];
  m.seq = n.has[kSeq] ? reinterpret_cast<const int32_t*>(n.in[kSeq].data) : nullptr;
  m.block_size = kc.ne[2];
  if (n.has[kBlocks]) {
    const Tensor& b = n.in[kBlocks];
    m.blocks = reinterpret_cast<const int32_t*>(b.data);
    m.blocks_stride = b.nb[1] / static_cast<int64_t>(sizeof(int32_t));
    m.max_blocks = b.ne[0];
    m.n_seq = b.ne[1];
    m.n_pages = kc.ne[3];
    m.capacity = m.max_blocks * m.block_size;
  } else {
    m.n_seq = kc.ne[3];
    m.capacity = kc.ne[2];
  }
  return m;
}

constexpr int64_t kTile = 64;

// Per thread: scores and acc of the pair-at-a-time path, then (only for a
// node with the lse output) the tiles of the flash path: K^T [dk][kTile],
// V [kTile][dv], S [kTile][kTile], and for the group's q heads
// Q [group][kTile][dk], O [group][kTile][dv], running max and sum
// [group][kTile] each.
struct ThreadLayout {
  size_t kt, v, s, q, o, m, l, bytes;
  explicit ThreadLayout(const Node& n) {
    const size_t dk = n.in[kQ].ne[0], dv = n.in[kV].ne[0], f = sizeof(float);
    const size_t group = n.in[kQ].ne[1] / std::max<int64_t>(n.in[kK].ne[1], 1);
    size_t at = Align64((MapOf(n).capacity + dv) * f);
    const bool tiles = n.has_extra[0];
    auto take = [&](size_t bytes) {
      const size_t here = at;
      if (tiles) at += Align64(bytes);
      return here;
    };
    kt = take(dk * kTile * f);
    v = take(kTile * dv * f);
    s = take(kTile * kTile * f);
    q = take(group * kTile * dk * f);
    o = take(group * kTile * dv * f);
    m = take(group * kTile * f);
    l = take(group * kTile * f);
    bytes = at;
  }
};

size_t PerThreadBytes(const Node& n) { return ThreadLayout(n).bytes; }

bool AttentionDtypes(const Node& n, std::string* why) {
  return WantDtype(n, -1, HEARTH_DTYPE_F32, why) && WantDtype(n, kQ, HEARTH_DTYPE_F32, why) &&
         WantDtype(n, kK, HEARTH_DTYPE_F32, why) && WantDtype(n, kV, HEARTH_DTYPE_F32, why) &&
         WantDtypeIn(n, kKCache, kCacheDtypes, why) && WantDtypeIn(n, kVCache, kCacheDtypes, why) &&
         WantDtype(n, kPos, HEARTH_DTYPE_I32, why) &&
         (!n.has[kSeq] || WantDtype(n, kSeq, HEARTH_DTYPE_I32, why)) &&
         (!n.has[kBlocks] || WantDtype(n, kBlocks, HEARTH_DTYPE_I32, why)) &&
         (!n.has_extra[0] || WantDtype(n, -2, HEARTH_DTYPE_F32, why));
}

// ne[0..3] of slot must be (a, b, c, d).
bool WantShape4(const Node& n, int slot, int64_t a, int64_t b, int64_t c, int64_t d,
                const char* what, const char* names, std::string* why) {
  const Tensor& t = SlotTensor(n, slot);
  if (t.ne[0] == a && t.ne[1] == b && t.ne[2] == c && t.ne[3] == d) return true;
  *why = StrFormat("%s %s has shape %s; want [%lld, %lld, %lld, %lld] (%s)", what,
                   SlotName(n, slot).c_str(), ShapeStr(t).c_str(), static_cast<long long>(a),
                   static_cast<long long>(b), static_cast<long long>(c), static_cast<long long>(d),
                   names);
  return false;
}

bool Disjoint(const Node& n, int a, int b, std::string* why) {
  uintptr_t alo, ahi, blo, bhi;
  ByteSpan(SlotTensor(n, a), &alo, &ahi);
  ByteSpan(SlotTensor(n, b), &blo, &bhi);
  if (alo >= ahi || blo >= bhi || ahi <= blo || bhi <= alo) return true;
  *why = SlotName(n, a) + " overlaps " + SlotName(n, b) +
         "; the caches are written, so they must not share bytes with the "
         "other tensors";
  return false;
}

// Every token's sequence, position and (paged) the pages its rows 0..pos
// live in are inside the cache; names the first one that is not.
bool CheckRows(const Node& n, const CacheMap& m, int64_t n_tok, std::string* why) {
  const int32_t* pos = reinterpret_cast<const int32_t*>(n.in[kPos].data);
  for (int64_t t = 0; t < n_tok; ++t) {
    const int64_t s = m.Seq(t);
    if (s < 0 || s >= m.n_seq) {
      *why = StrFormat("seq[%lld] = %lld is outside the %lld sequences (%s)",
                       static_cast<long long>(t), static_cast<long long>(s),
                       static_cast<long long>(m.n_seq), SlotName(n, kSeq).c_str());
      return false;
    }
    if (pos[t] < 0 || pos[t] >= m.capacity) {
      *why = StrFormat("pos[%lld] = %d is outside the KV cache rows [0, %lld) (%s)",
                       static_cast<long long>(t), pos[t], static_cast<long long>(m.capacity),
                       SlotName(n, kPos).c_str());
      return false;
    }
    if (m.blocks) {
      for (int64_t b = 0; b <= pos[t] / m.block_size; ++b) {
        const int32_t page = m.blocks[s * m.blocks_stride + b];
        if (page < 0 || page >= m.n_pages) {
          *why = StrFormat(
              "blocks[%lld, %lld] = %d is not a page of the cache "
              "[0, %lld) (%s)",
              static_cast<long long>(b), static_cast<long long>(s), page,
              static_cast<long long>(m.n_pages), SlotName(n, kBlocks).c_str());
          return false;
        }
      }
    }
  }
  return true;
}

bool AttentionCheck(const Node& n, std::string* why) {
  for (int s = -1; s < 8; ++s) {
    if ((s < 0 || n.has[s]) && !WantRowContiguous(n, s, why)) return false;
  }
  const Tensor& q = n.in[kQ];
  const Tensor& k = n.in[kK];
  const Tensor& v = n.in[kV];
  const Tensor& kc = n.in[kKCache];
  const int64_t dk = q.ne[0], n_head = q.ne[1], n_tok = q.ne[2];
  const int64_t dv = v.ne[0], n_head_kv = k.ne[1];
  const char* kTok = "head_dim, n_head_kv, T";
  const char* kCache = n.has[kBlocks] ? "head_dim, n_head_kv, block_size, n_pages"
                                      : "head_dim, n_head_kv, n_ctx, n_seq";
  if (!WantDims(n, kQ, 3, why) || !WantShape4(n, kK, dk, n_head_kv, n_tok, 1, "k", kTok, why) ||
      !WantShape4(n, kV, dv, n_head_kv, n_tok, 1, "v", kTok, why) ||
      !WantShape4(n, kKCache, dk, n_head_kv, kc.ne[2], kc.ne[3], "k_cache", kCache, why) ||
      !WantShape4(n, kVCache, dv, n_head_kv, kc.ne[2], kc.ne[3], "v_cache", kCache, why) ||
      !WantShape4(n, -1, dv, n_head, n_tok, 1, "out", "head_dim_v, n_head, T", why) ||
      !WantDims(n, kPos, 1, why)) {
    return false;
  }
  if (n.has_extra[0] && !WantShape4(n, -2, n_head, n_tok, 1, 1, "lse", "n_head, T", why)) {
    return false;
  }
  if (n_head_kv < 1 || n_head % n_head_kv != 0) {
    *why = StrFormat("n_head %lld (q ne[1]) is not a multiple of n_head_kv %lld (k ne[1])",
                     static_cast<long long>(n_head), static_cast<long long>(n_head_kv));
    return false;
  }
  for (int slot : {kPos, kSeq}) {
    if (slot == kSeq && !n.has[kSeq]) continue;
    if (!WantDims(n, slot, 1, why)) return false;
    if (n.in[slot].ne[0] != n_tok) {
      *why = StrFormat("%s %s has %lld entries but q has %lld tokens (ne[2])",
                       slot == kPos ? "positions" : "sequence ids", SlotName(n, slot).c_str(),
                       static_cast<long long>(n.in[slot].ne[0]), static_cast<long long>(n_tok));
      return false;
    }
  }
  if (n.has[kBlocks]) {
    if (!WantDims(n, kBlocks, 2, why)) return false;
    if (n.in[kBlocks].ne[0] < 1 || kc.ne[2] < 1) {
      *why = StrFormat("the block table %s has %lld columns and pages %lld rows; want >= 1",
                       SlotName(n, kBlocks).c_str(), static_cast<long long>(n.in[kBlocks].ne[0]),
                       static_cast<long long>(kc.ne[2]));
      return false;
    }
  }
  if (!CheckAttentionParams(n, why)) return false;
  for (int cache : {kKCache, kVCache}) {
    for (int other : {kQ, kK, kV, kPos, kSeq, kBlocks}) {
      if (n.has[other] && !Disjoint(n, cache, other, why)) return false;
    }
    if (n.has_extra[0] && !Disjoint(n, cache, -2, why)) return false;
  }
  if (!Disjoint(n, kKCache, kVCache, why)) return false;
  return CheckRows(n, MapOf(n), n_tok, why);
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
  const int64_t dv = v.ne[0], n_head_kv = k.ne[1];
  const int64_t group = n_head / n_head_kv;
  const hearth_attention_params p = n.params<hearth_attention_params>();
  const float scale = p.scale, softcap = p.softcap;
  const int64_t window = p.window;
  const CacheMap map = MapOf(n);
  const VecOps& vec = Vec();

  // Rows were checked up front; this guard only keeps a racing host
  // from turning into an out-of-bounds access.
  if (!CheckRows(n, map, n_tok, why)) return false;

  // The write is a copy of T * (dk + dv) floats per kv head: tiny in decode.
  const int64_t per_head = std::max<int64_t>(n_tok * (dk + dv), 1);
  ParallelFor(env, n_head_kv, per_head > 16384 ? 1 : 16384 / per_head,
              [&](int64_t g0, int64_t g1, int) {
                for (int64_t g = g0; g < g1; ++g) {
                  for (int64_t t = 0; t < n_tok; ++t) {
                    int64_t i2, i3;
                    map.Locate(map.Seq(t), pos[t], &i2, &i3);
                    StoreRow(reinterpret_cast<const float*>(k.Row(g, t)), kc.Row(g, i2, i3),
                             kc.dtype, dk, vec);
                    StoreRow(reinterpret_cast<const float*>(v.Row(g, t)), vc.Row(g, i2, i3),
                             vc.dtype, dv, vec);
                  }
                }
              });

  const size_t per_thread = PerThreadBytes(n);
  if (n_tok * n_head == 0) return true;
  const bool want_lse = n.has_extra[0];
  const ThreadLayout tl(n);
  const int64_t n_tiles = (n_tok + kTile - 1) / kTile;

  // One (token, head) pair against its visible cache rows.
  auto pair = [&](int64_t t, int64_t h, float* scores, float* acc) {
    const int64_t g = h / group, s = map.Seq(t), ps = pos[t];
    const int64_t lo = window > 0 && ps - window + 1 > 0 ? ps - window + 1 : 0;
    const int64_t len = ps - lo + 1;
    const float* qrow = reinterpret_cast<const float*>(q.Row(h, t));
    for (int64_t j = 0; j < len; ++j) {
      int64_t i2, i3;
      map.Locate(s, lo + j, &i2, &i3);
      scores[j] = kc.dtype == HEARTH_DTYPE_F16
                      ? vec.dot_f16(qrow, reinterpret_cast<const uint16_t*>(kc.Row(g, i2, i3)), dk)
                      : vec.dot_f32(qrow, reinterpret_cast<const float*>(kc.Row(g, i2, i3)), dk);
    }
    vec.scale_mul(scores, scores, scale, nullptr, len);
    if (softcap > 0.0f) vec.softcap(scores, softcap, len);
    const float m = vec.max(scores, len);
    const float sum = vec.exp_sum(scores, scores, 1.0f, m, len);
    std::memset(acc, 0, static_cast<size_t>(dv) * sizeof(float));
    for (int64_t j = 0; j < len; ++j) {
      int64_t i2, i3;
      map.Locate(s, lo + j, &i2, &i3);
      if (vc.dtype == HEARTH_DTYPE_F16) {
        vec.axpy_f16(scores[j], reinterpret_cast<const uint16_t*>(vc.Row(g, i2, i3)), acc, dv);
      } else {
        vec.axpy_f32(scores[j], reinterpret_cast<const float*>(vc.Row(g, i2, i3)), acc, dv);
      }
    }
    vec.scale_mul(reinterpret_cast<float*>(n.out.Row(h, t)), acc, 1.0f / sum, nullptr, dv);
    if (want_lse) reinterpret_cast<float*>(n.extra[0].Row(t))[h] = m + std::log(sum);
  };

  // Query tile qb of kv head g, flash style (tile_flash(qb) holds).
  auto flash = [&](int64_t g, int64_t qb, uint8_t* base) {
    const int64_t t0 = qb * kTile, nq = std::min(kTile, n_tok - t0);
    const int64_t s = map.Seq(t0);
    int64_t r_lo = INT64_MAX, r_hi = -1;  // the cache rows some query sees
    for (int64_t i = 0; i < nq; ++i) {
      const int64_t ps = pos[t0 + i];
      r_lo = std::min(r_lo, window > 0 && ps - window + 1 > 0 ? ps - window + 1 : 0);
      r_hi = std::max(r_hi, ps);
    }
    auto at = [&](size_t off) { return reinterpret_cast<float*>(base + off); };
    float *kt = at(tl.kt), *vt = at(tl.v), *sc = at(tl.s);
    float *qp = at(tl.q), *o = at(tl.o), *mx = at(tl.m), *l = at(tl.l);
    for (int64_t hh = 0; hh < group; ++hh) {
      for (int64_t i = 0; i < nq; ++i) {
        std::memcpy(qp + (hh * kTile + i) * dk, q.Row(g * group + hh, t0 + i),
                    static_cast<size_t>(dk) * sizeof(float));
      }
    }
    std::fill(o, o + group * kTile * dv, 0.0f);
    std::fill(mx, mx + group * kTile, -INFINITY);
    std::fill(l, l + group * kTile, 0.0f);
    for (int64_t r0 = r_lo; r0 <= r_hi; r0 += kTile) {
      const int64_t nk = std::min(kTile, r_hi + 1 - r0);
      bool any = false, all = true;
      for (int64_t i = 0; i < nq; ++i) {
        const int64_t ps = pos[t0 + i];
        const int64_t lo = window > 0 && ps - window + 1 > 0 ? ps - window + 1 : 0;
        any = any || (lo < r0 + nk && r0 <= ps);
        all = all && (lo <= r0 && r0 + nk - 1 <= ps);
      }
      if (!any) continue;
      // K^T and V of cache rows r0 .. r0 + nk, in F32; rows no query of the
      // tile sees (between windows) as zeros, since p = 0 times a NaN left in
      // such a row would still be NaN.
      for (int64_t j = 0; j < nk; ++j) {
        int64_t i2, i3;
        map.Locate(s, r0 + j, &i2, &i3);
        float* vr = vt + j * dv;
        float* kr = sc;  // S is free until the products below
        bool seen = all;
        for (int64_t i = 0; i < nq && !seen; ++i) {
          const int64_t ps = pos[t0 + i];
          seen = r0 + j <= ps && (window <= 0 || ps - (r0 + j) < window);
        }
        if (!seen) {
          for (int64_t d = 0; d < dk; ++d) kt[d * kTile + j] = 0.0f;
          std::fill(vr, vr + dv, 0.0f);
          continue;
        }
        if (kc.dtype == HEARTH_DTYPE_F16) {
          vec.f16_to_f32(kr, reinterpret_cast<const uint16_t*>(kc.Row(g, i2, i3)), dk);
        } else {
          std::memcpy(kr, kc.Row(g, i2, i3), static_cast<size_t>(dk) * sizeof(float));
        }
        for (int64_t d = 0; d < dk; ++d) kt[d * kTile + j] = kr[d];
        if (vc.dtype == HEARTH_DTYPE_F16) {
          vec.f16_to_f32(vr, reinterpret_cast<const uint16_t*>(vc.Row(g, i2, i3)), dv);
        } else {
          std::memcpy(vr, vc.Row(g, i2, i3), static_cast<size_t>(dv) * sizeof(float));
        }
      }
      for (int64_t hh = 0; hh < group; ++hh) {
        std::memset(sc, 0, sizeof(float) * kTile * nq);
        vec.gemm_acc(nq, nk, dk, qp + hh * kTile * dk, dk, 1, kt, kTile, sc, kTile);
        for (int64_t i = 0; i < nq; ++i) {
          float* row = sc + i * kTile;
          const int64_t ps = pos[t0 + i];
          const int64_t lo = window > 0 && ps - window + 1 > 0 ? ps - window + 1 : 0;
          // The visible keys of this row are r0 + [j_lo, j_hi).
          const int64_t j_lo = all ? 0 : std::clamp<int64_t>(lo - r0, 0, nk);
          const int64_t j_hi = all ? nk : std::clamp<int64_t>(ps + 1 - r0, 0, nk);
          if (j_lo >= j_hi) {
            std::fill(row, row + nk, 0.0f);
            continue;
          }
          vec.scale_mul(row + j_lo, row + j_lo, scale, nullptr, j_hi - j_lo);
          if (softcap > 0.0f) vec.softcap(row + j_lo, softcap, j_hi - j_lo);
          float& m = mx[hh * kTile + i];
          const float m_new = std::max(m, vec.max(row + j_lo, j_hi - j_lo));
          const float alpha = std::exp(m - m_new);  // 0 for the first keys
          const float sum = vec.exp_sum(row + j_lo, row + j_lo, 1.0f, m_new, j_hi - j_lo);
          std::fill(row, row + j_lo, 0.0f);
          std::fill(row + j_hi, row + nk, 0.0f);
          l[hh * kTile + i] = l[hh * kTile + i] * alpha + sum;
          m = m_new;
          if (alpha != 1.0f) {
            float* orow = o + (hh * kTile + i) * dv;
            vec.scale_mul(orow, orow, alpha, nullptr, dv);
          }
        }
        vec.gemm_acc(nq, dv, nk, sc, kTile, 1, vt, dv, o + hh * kTile * dv, dv);
      }
    }
    for (int64_t hh = 0; hh < group; ++hh) {
      const int64_t h = g * group + hh;
      for (int64_t i = 0; i < nq; ++i) {
        const float sum = l[hh * kTile + i];
        vec.scale_mul(reinterpret_cast<float*>(n.out.Row(h, t0 + i)), o + (hh * kTile + i) * dv,
                      1.0f / sum, nullptr, dv);
        if (want_lse) {
          reinterpret_cast<float*>(n.extra[0].Row(t0 + i))[h] = mx[hh * kTile + i] + std::log(sum);
        }
      }
    }
  };

  // A tile of two or more tokens of one sequence runs flash style, in the
  // training forward only (see the top of the file).
  auto tile_flash = [&](int64_t qb) {
    const int64_t t0 = qb * kTile, nq = std::min(kTile, n_tok - t0);
    if (!want_lse || nq < 2) return false;
    for (int64_t t = t0 + 1; t < t0 + nq; ++t) {
      if (map.Seq(t) != map.Seq(t0)) return false;
    }
    return true;
  };
  bool any_flash = false;
  for (int64_t qb = 0; qb < n_tiles && !any_flash; ++qb) any_flash = tile_flash(qb);
  if (!any_flash) {
    // Inference, decode, or one token per sequence: (token, head) pairs round-robin
    // (later tokens see more rows, so contiguous chunks would load the last
    // thread most), the q heads of one kv head together when there are
    // enough such groups to go round.
    const int64_t n_pairs = n_tok * n_head;
    const int64_t unit = n_tok * n_head_kv >= env.n_threads ? group : 1;
    const int64_t n_units = n_pairs / unit;
    const int nth = static_cast<int>(std::min<int64_t>(n_units, env.n_threads));
    env.pool->Run(nth, [&](int ith, int nt) {
      float* scores = reinterpret_cast<float*>(env.scratch + per_thread * ith);
      for (int64_t u = ith; u < n_units; u += nt) {
        for (int64_t i = u * unit; i < (u + 1) * unit; ++i) {
          pair(i / n_head, i % n_head, scores, scores + map.capacity);
        }
      }
    });
    return true;
  }

  // Items are (kv head, query tile), the last tiles (most keys) first,
  // pulled one at a time since their costs differ.
  const int64_t n_items = n_head_kv * n_tiles;
  std::atomic<int64_t> next{0};
  const int nth = static_cast<int>(std::min<int64_t>(n_items, env.n_threads));
  env.pool->Run(nth, [&](int ith, int) {
    uint8_t* base = env.scratch + per_thread * ith;
    float* scores = reinterpret_cast<float*>(base);
    for (int64_t i = next.fetch_add(1); i < n_items; i = next.fetch_add(1)) {
      const int64_t qb = n_tiles - 1 - i / n_head_kv, g = i % n_head_kv;
      if (tile_flash(qb)) {
        flash(g, qb, base);
        continue;
      }
      const int64_t t0 = qb * kTile, nq = std::min(kTile, n_tok - t0);
      for (int64_t t = t0; t < t0 + nq; ++t) {
        for (int64_t h = g * group; h < (g + 1) * group; ++h) {
          pair(t, h, scores, scores + map.capacity);
        }
      }
    }
  });
  return true;
}

}  // namespace

bool CheckAttentionParams(const Node& n, std::string* why) {
  const hearth_attention_params p = n.params<hearth_attention_params>();
  if (!std::isfinite(p.scale)) {
    *why = StrFormat("scale is %g; want a finite value", static_cast<double>(p.scale));
    return false;
  }
  if (!(p.softcap >= 0.0f) || !std::isfinite(p.softcap)) {
    *why = StrFormat("softcap is %g; want 0 (none) or a finite value > 0",
                     static_cast<double>(p.softcap));
    return false;
  }
  if (p.window < 0) {
    *why = StrFormat("window is %d; want 0 (none) or > 0", p.window);
    return false;
  }
  return true;
}

const OpInfo kOpAttention = {"ATTENTION",
                             6,
                             2,
                             false,
                             AttentionDtypes,
                             AttentionCheck,
                             AttentionScratch,
                             AttentionRun,
                             /*n_extra_required=*/0,
                             /*n_extra_optional=*/1};

}  // namespace hearth::cpu
