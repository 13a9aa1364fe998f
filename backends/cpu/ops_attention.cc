// ops_attention.cc — the ATTENTION graph op of the CPU backend: causal,
// grouped-query attention over an F32 or F16 KV cache with the cache write
// fused in, an optional sliding window and an optional logit softcap, for a
// batch of tokens from one or several sequences (a cache slot per sequence,
// or pages of a shared cache through a block table).
//
// Two phases, one pool dispatch each: (1) every kv head's new k/v rows go
// into the caches at (seq[t], pos[t]), one thread per kv head so that
// duplicate rows resolve to the last token, deterministically; (2) the
// queries, flash style, for inference, decode and the training forward alike.
// A work item is a tile of up to kQTile consecutive tokens of one sequence
// and (some of) the q heads of one kv head; it walks the cache in blocks of
// kKBlock rows aligned to multiples of kKBlock, converts each block's K and V
// to F32 once for all its queries, forms the scores with VecOps::qk_tile,
// keeps an online softmax per query (running max and sum) and accumulates
// P V with VecOps::pv_acc. Every step a query takes depends only on the query
// (its row, position and window), never on the tile around it: a prompt gives
// the same bits as decoding its tokens one by one, a batch the same bits as
// its sequences run apart, and any thread count the same bits.
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

constexpr int64_t kQTile = 32;   // query tokens per work item
constexpr int64_t kKBlock = 64;  // cache rows per key block

int64_t RoundUp(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

// Per thread, in floats: K [kKBlock][dk8] and V [kKBlock][dv] of one cache
// block, and for up to group * kQTile query rows Q [rows][dk8], S
// [rows][kKBlock], O [rows][dv], running max and sum [rows] (dk8: dk rounded
// up to 8, the tail zero).
struct ThreadLayout {
  size_t k, v, q, s, o, m, l, bytes;
  explicit ThreadLayout(const Node& n) {
    const size_t dk8 = RoundUp(n.in[kQ].ne[0], 8), dv = n.in[kV].ne[0], f = sizeof(float);
    const size_t rows = n.in[kQ].ne[1] / std::max<int64_t>(n.in[kK].ne[1], 1) * kQTile;
    size_t at = 0;
    auto take = [&](size_t count) {
      const size_t here = at;
      at += Align64(count * f);
      return here;
    };
    k = take(kKBlock * dk8);
    v = take(kKBlock * dv);
    q = take(rows * dk8);
    s = take(rows * kKBlock);
    o = take(rows * dv);
    m = take(rows);
    l = take(rows);
    bytes = at;
  }
};

// Asks for the cache lines of [p, p + bytes) ahead of their use.
void Prefetch(const uint8_t* p, int64_t bytes) {
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off);
}

// Rows [j0, j0 + count) of kv head g of sequence s in cache c, when they
// lie one after the other in memory (rows a row's bytes apart, all in one
// slot or page): the first row's address, else null.
const uint8_t* RunOf(const Tensor& c, const CacheMap& map, int64_t s, int64_t g, int64_t j0,
                     int64_t count) {
  const int64_t row_bytes = c.ne[0] * PlainElemBytes(c.dtype);
  if (count <= 0 || c.nb[2] != row_bytes) return nullptr;
  if (map.blocks != nullptr && j0 / map.block_size != (j0 + count - 1) / map.block_size) {
    return nullptr;
  }
  int64_t i2, i3;
  map.Locate(s, j0, &i2, &i3);
  return c.Row(g, i2, i3);
}

// n elements of an F32 or F16 cache run as F32.
void ToF32(const uint8_t* src, uint32_t dtype, float* dst, int64_t n, const VecOps& vec) {
  if (dtype == HEARTH_DTYPE_F16) {
    vec.f16_to_f32(dst, reinterpret_cast<const uint16_t*>(src), n);
  } else {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  }
}

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

// The tile list (a start per tile and n_tok: at most n_tok + 1 entries),
// then each thread's area.
size_t TileListBytes(const Node& n) {
  return Align64((static_cast<size_t>(n.in[kQ].ne[2]) + 1) * sizeof(int64_t));
}

size_t AttentionScratch(const Node& n, int nth) {
  return TileListBytes(n) + PerThreadBytes(n) * static_cast<size_t>(nth);
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

  if (n_tok * n_head == 0) return true;
  const bool want_lse = n.has_extra[0];
  const ThreadLayout tl(n);
  const int64_t dk8 = RoundUp(dk, 8);
  const int64_t k_row_bytes = dk * PlainElemBytes(kc.dtype);
  const int64_t v_row_bytes = dv * PlainElemBytes(vc.dtype);
  auto first_row = [&](int64_t t) {  // the first cache row token t sees
    const int64_t ps = pos[t];
    return window > 0 && ps - window + 1 > 0 ? ps - window + 1 : int64_t{0};
  };

  // Query tiles: runs of up to kQTile consecutive tokens of one sequence.
  int64_t* tiles = reinterpret_cast<int64_t*>(env.scratch);  // starts, then n_tok
  int64_t n_tiles = 0;
  for (int64_t t = 0; t < n_tok; ++t) {
    if (n_tiles == 0 || t - tiles[n_tiles - 1] == kQTile || map.Seq(t) != map.Seq(t - 1)) {
      tiles[n_tiles++] = t;
    }
  }
  tiles[n_tiles] = n_tok;
  // Too few (tile, kv head) units for the threads: split the q heads of a
  // group between items too.
  const int64_t n_units = n_tiles * n_head_kv;
  const int64_t parts = n_units >= env.n_threads
                            ? 1
                            : std::min<int64_t>(group, (env.n_threads + n_units - 1) / n_units);

  // Tile qt, kv head g, q heads [g * group + h0, g * group + h1).
  auto run_item = [&](int64_t qt, int64_t g, int64_t h0, int64_t h1, uint8_t* base) {
    const int64_t t0 = tiles[qt], nq = tiles[qt + 1] - t0, nh = h1 - h0, rows = nq * nh;
    const int64_t s = map.Seq(t0);
    auto at = [&](size_t off) { return reinterpret_cast<float*>(base + off); };
    float *kb = at(tl.k), *vb = at(tl.v), *qb = at(tl.q), *sb = at(tl.s);
    float *ob = at(tl.o), *mx = at(tl.m), *sum = at(tl.l);
    int64_t r_lo = INT64_MAX, r_hi = -1;  // the cache rows some query sees
    for (int64_t i = 0; i < nq; ++i) {
      r_lo = std::min(r_lo, first_row(t0 + i));
      r_hi = std::max<int64_t>(r_hi, pos[t0 + i]);
    }
    // Row r = hh * nq + i is q head h0 + hh of token t0 + i.
    for (int64_t hh = 0; hh < nh; ++hh) {
      for (int64_t i = 0; i < nq; ++i) {
        float* qr = qb + (hh * nq + i) * dk8;
        std::memcpy(qr, q.Row(g * group + h0 + hh, t0 + i),
                    static_cast<size_t>(dk) * sizeof(float));
        std::fill(qr + dk, qr + dk8, 0.0f);
      }
    }
    std::fill(ob, ob + rows * dv, 0.0f);
    std::fill(mx, mx + rows, -INFINITY);
    std::fill(sum, sum + rows, 0.0f);
    for (int64_t b0 = r_lo / kKBlock * kKBlock; b0 <= r_hi; b0 += kKBlock) {
      const int64_t nk = std::min(kKBlock, r_hi + 1 - b0), nk4 = RoundUp(nk, 4);
      bool any = false;
      for (int64_t i = 0; i < nq && !any; ++i) {
        any = first_row(t0 + i) < b0 + nk && b0 <= pos[t0 + i];
      }
      if (!any) continue;
      // K and V of the block in F32; rows no query of the tile sees (between
      // windows) and the padding as zeros. Without a window every row is
      // seen, and where the block's rows lie one after the other in the
      // caches (the runtime's head-major caches; a block inside one page)
      // each converts with one call.
      const uint8_t* k_run = window <= 0 && dk == dk8 ? RunOf(kc, map, s, g, b0, nk) : nullptr;
      const uint8_t* v_run = k_run != nullptr ? RunOf(vc, map, s, g, b0, nk) : nullptr;
      if (v_run != nullptr) {
        ToF32(k_run, kc.dtype, kb, nk * dk, vec);
        ToF32(v_run, vc.dtype, vb, nk * dv, vec);
        std::fill(kb + nk * dk8, kb + nk4 * dk8, 0.0f);
        std::fill(vb + nk * dv, vb + nk4 * dv, 0.0f);
      }
      for (int64_t j = v_run != nullptr ? nk4 : 0; j < nk4; ++j) {
        float* kr = kb + j * dk8;
        float* vr = vb + j * dv;
        bool seen = j < nk && window <= 0;
        for (int64_t i = 0; i < nq && !seen && j < nk; ++i) {
          seen = first_row(t0 + i) <= b0 + j && b0 + j <= pos[t0 + i];
        }
        if (!seen) {
          std::fill(kr, kr + dk8, 0.0f);
          std::fill(vr, vr + dv, 0.0f);
          continue;
        }
        int64_t i2, i3;
        map.Locate(s, b0 + j, &i2, &i3);
        if (kc.dtype == HEARTH_DTYPE_F16) {
          vec.f16_to_f32(kr, reinterpret_cast<const uint16_t*>(kc.Row(g, i2, i3)), dk);
        } else {
          std::memcpy(kr, kc.Row(g, i2, i3), static_cast<size_t>(dk) * sizeof(float));
        }
        std::fill(kr + dk, kr + dk8, 0.0f);
        if (vc.dtype == HEARTH_DTYPE_F16) {
          vec.f16_to_f32(vr, reinterpret_cast<const uint16_t*>(vc.Row(g, i2, i3)), dv);
        } else {
          std::memcpy(vr, vc.Row(g, i2, i3), static_cast<size_t>(dv) * sizeof(float));
        }
      }
      // The next block's rows are on their way while this one is computed.
      // The runtime's caches are head-major (a kv head's rows adjacent) and
      // stream well anyway; with heads interleaved (any strides are valid)
      // a head's rows are 1/n_head_kv of each stride, which the hardware
      // prefetcher follows late.
      const int64_t next_nk = std::min(kKBlock, r_hi + 1 - (b0 + kKBlock));
      const uint8_t* k_next = next_nk > 0 ? RunOf(kc, map, s, g, b0 + kKBlock, next_nk) : nullptr;
      const uint8_t* v_next =
          k_next != nullptr ? RunOf(vc, map, s, g, b0 + kKBlock, next_nk) : nullptr;
      if (v_next != nullptr) {
        Prefetch(k_next, next_nk * k_row_bytes);
        Prefetch(v_next, next_nk * v_row_bytes);
      }
      for (int64_t j = b0 + kKBlock; v_next == nullptr && j < b0 + kKBlock + next_nk; ++j) {
        int64_t i2, i3;
        map.Locate(s, j, &i2, &i3);
        Prefetch(kc.Row(g, i2, i3), k_row_bytes);
        Prefetch(vc.Row(g, i2, i3), v_row_bytes);
      }
      vec.qk_tile(qb, rows, kb, nk4, dk8, sb, kKBlock);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t t = t0 + r % nq;
        // The keys this query sees in the block: b0 + [j_lo, j_hi).
        const int64_t j_lo = std::clamp<int64_t>(first_row(t) - b0, 0, nk);
        const int64_t j_hi = std::clamp<int64_t>(pos[t] + 1 - b0, 0, nk);
        if (j_lo >= j_hi) continue;
        float* seg = sb + r * kKBlock + j_lo;
        const int64_t len = j_hi - j_lo;
        vec.scale_mul(seg, seg, scale, nullptr, len);
        if (softcap > 0.0f) vec.softcap(seg, softcap, len);
        const float m_new = std::max(mx[r], vec.max(seg, len));
        const float alpha = mx[r] == -INFINITY ? 0.0f : std::exp(mx[r] - m_new);
        const float part = vec.exp_sum(seg, seg, 1.0f, m_new, len);
        sum[r] = sum[r] * alpha + part;
        mx[r] = m_new;
        float* orow = ob + r * dv;
        if (alpha != 1.0f) vec.scale_mul(orow, orow, alpha, nullptr, dv);
        vec.pv_acc(seg, len, vb + j_lo * dv, dv, dv, orow);
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t t = t0 + r % nq, h = g * group + h0 + r / nq;
      vec.scale_mul(reinterpret_cast<float*>(n.out.Row(h, t)), ob + r * dv, 1.0f / sum[r], nullptr,
                    dv);
      if (want_lse) reinterpret_cast<float*>(n.extra[0].Row(t))[h] = mx[r] + std::log(sum[r]);
    }
  };

  // Items are (tile, kv head, part of the group), the last tiles (most keys)
  // first, pulled one at a time since their costs differ.
  const int64_t n_items = n_units * parts;
  std::atomic<int64_t> next{0};
  const int nth = static_cast<int>(std::min<int64_t>(n_items, env.n_threads));
  uint8_t* const threads_base = env.scratch + TileListBytes(n);
  env.pool->Run(nth, [&](int ith, int) {
    uint8_t* base = threads_base + tl.bytes * ith;
    for (int64_t i = next.fetch_add(1); i < n_items; i = next.fetch_add(1)) {
      const int64_t part = i % parts, g = i / parts % n_head_kv;
      const int64_t qt = n_tiles - 1 - i / (parts * n_head_kv);
      run_item(qt, g, part * group / parts, (part + 1) * group / parts, base);
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
