// ops_attention_back.cc — ATTENTION_BACK on the CPU: the gradients of
// causal grouped-query attention run on an empty cache, where the keys of
// query t are the batch's own rows j with seq[j] == seq[t], pos[j] <= pos[t]
// (and pos[t] - pos[j] < window when window > 0).
//
// With s = scale q.k, c = softcap tanh(s / softcap) (or s), the forward's
// lse gives p = exp(c - lse) without a second softmax pass, and
//   D = do . o,  dp_j = do . v_j,  ds_j = p_j (dp_j - D) dc/ds,
//   dq = scale sum_j ds_j k_j,  dk_j = scale sum ds_j q,  dv_j = sum p_j do.
// Flash-attention style, in tiles of kTile queries x kTile keys (batch rows
// in index order) as small matrix products: S = Q K^T, dP = dO V^T, then
// dQ += dS K for one (head, query tile), or dK += dS^T Q, dV += P^T dO for
// one (kv head, key tile). A tile whose rows cannot see each other (by the
// range of seq and pos it holds, and the window) is skipped whole. Two pool
// dispatches, none writing what another thread writes: dq over (head, query
// tile), dk and dv over (kv head, key tile); the second computes S and dP
// again rather than keeping T x T per head. Inputs are first copied into
// contiguous per-head panels (K and V also transposed), so the products read
// unit strides whatever the views' strides.
//
// Within a visible tile, masked pairs get p = ds = 0 after the products, so a
// non-finite q or k row reaches the other rows of its tile through 0 * inf;
// the forward of such a batch is already non-finite.
#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "backends/cpu/ops.h"
#include "backends/cpu/ops_vec.h"

namespace hearth::cpu {
namespace {

enum Slot { kQ = 0, kK = 1, kV = 2, kO = 3, kDo = 4, kLse = 5, kPos = 6, kSeq = 7 };

bool AttentionBackDtypes(const Node& n, std::string* why) {
  for (int s : {-1, -2, -3, static_cast<int>(kQ), static_cast<int>(kK), static_cast<int>(kV),
                static_cast<int>(kO), static_cast<int>(kDo), static_cast<int>(kLse)}) {
    if (!WantDtype(n, s, HEARTH_DTYPE_F32, why)) return false;
  }
  return WantDtype(n, kPos, HEARTH_DTYPE_I32, why) &&
         (!n.has[kSeq] || WantDtype(n, kSeq, HEARTH_DTYPE_I32, why));
}

bool WantShape(const Node& n, int slot, int64_t a, int64_t b, int64_t c, const char* names,
               std::string* why) {
  const Tensor& t = SlotTensor(n, slot);
  if (t.ne[0] == a && t.ne[1] == b && t.ne[2] == c && t.ne[3] == 1) return true;
  *why = StrFormat("%s has shape %s; want [%lld, %lld, %lld, 1] (%s)", SlotName(n, slot).c_str(),
                   ShapeStr(t).c_str(), static_cast<long long>(a), static_cast<long long>(b),
                   static_cast<long long>(c), names);
  return false;
}

const int32_t* SeqOf(const Node& n) {
  return n.has[kSeq] ? reinterpret_cast<const int32_t*>(n.in[kSeq].data) : nullptr;
}

// Positions and sequence ids are >= 0 and no two tokens share a (seq, pos)
// row: the forward would have kept only the later one's k, v.
bool CheckRows(const Node& n, std::string* why) {
  const int32_t* pos = reinterpret_cast<const int32_t*>(n.in[kPos].data);
  const int32_t* seq = SeqOf(n);
  const int64_t T = n.in[kPos].ne[0];
  for (int64_t t = 0; t < T; ++t) {
    if (pos[t] < 0) {
      *why = StrFormat("pos[%lld] = %d is negative (%s)", static_cast<long long>(t), pos[t],
                       SlotName(n, kPos).c_str());
      return false;
    }
    if (seq && seq[t] < 0) {
      *why = StrFormat("seq[%lld] = %d is negative (%s)", static_cast<long long>(t), seq[t],
                       SlotName(n, kSeq).c_str());
      return false;
    }
  }
  std::vector<int64_t> order(static_cast<size_t>(T));
  std::iota(order.begin(), order.end(), 0);
  auto key = [&](int64_t t) { return std::make_pair(seq ? seq[t] : 0, pos[t]); };
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return key(a) < key(b); });
  for (size_t i = 1; i < order.size(); ++i) {
    if (key(order[i]) == key(order[i - 1])) {
      const int64_t a = std::min(order[i], order[i - 1]), b = std::max(order[i], order[i - 1]);
      *why = StrFormat(
          "tokens %lld and %lld both sit at position %d of sequence %d; each (seq, pos) row "
          "may appear once in a backward batch",
          static_cast<long long>(a), static_cast<long long>(b), pos[a], seq ? seq[a] : 0);
      return false;
    }
  }
  return true;
}

bool AttentionBackCheck(const Node& n, std::string* why) {
  for (int s = -3; s < 8; ++s) {
    if ((s < 0 || n.has[s]) && !WantRowContiguous(n, s, why)) return false;
  }
  const Tensor& q = n.in[kQ];
  const int64_t dk = q.ne[0], H = q.ne[1], T = q.ne[2];
  const int64_t dv = n.in[kV].ne[0], Hkv = n.in[kK].ne[1];
  if (!WantDims(n, kQ, 3, why) || !WantShape(n, kK, dk, Hkv, T, "head_dim, n_head_kv, T", why) ||
      !WantShape(n, kV, dv, Hkv, T, "head_dim_v, n_head_kv, T", why) ||
      !WantShape(n, kO, dv, H, T, "head_dim_v, n_head, T", why) ||
      !WantShape(n, kDo, dv, H, T, "head_dim_v, n_head, T", why) ||
      !WantShape(n, kLse, H, T, 1, "n_head, T", why) || !WantShape(n, kPos, T, 1, 1, "T", why) ||
      (n.has[kSeq] && !WantShape(n, kSeq, T, 1, 1, "T", why)) ||
      !WantShape(n, -1, dk, H, T, "dq: head_dim, n_head, T", why) ||
      !WantShape(n, -2, dk, Hkv, T, "dk: head_dim, n_head_kv, T", why) ||
      !WantShape(n, -3, dv, Hkv, T, "dv: head_dim_v, n_head_kv, T", why)) {
    return false;
  }
  if (Hkv < 1 || H % Hkv != 0) {
    *why = StrFormat("n_head %lld (q ne[1]) is not a multiple of n_head_kv %lld (k ne[1])",
                     static_cast<long long>(H), static_cast<long long>(Hkv));
    return false;
  }
  if (!CheckAttentionParams(n, why)) return false;
  return CheckRows(n, why);
}

constexpr int64_t kTile = 64;

int64_t Tiles(int64_t T) { return (T + kTile - 1) / kTile; }

// Scratch: per-head panels, then per-thread tiles. Every slice is whole cache
// lines.
struct Layout {
  size_t q, o, k, kt, vt, d, lse, range, thread, thread_bytes, bytes;
  Layout(const Node& n, int nth) {
    const size_t dk = n.in[kQ].ne[0], H = n.in[kQ].ne[1], T = n.in[kQ].ne[2];
    const size_t dv = n.in[kV].ne[0], Hkv = n.in[kK].ne[1], f = sizeof(float);
    size_t at = 0;
    auto take = [&](size_t bytes) {
      const size_t here = at;
      at += Align64(bytes);
      return here;
    };
    q = take(H * T * dk * f);     // [H][T][dk]
    o = take(H * T * dv * f);     // dO, [H][T][dv]
    k = take(Hkv * T * dk * f);   // [Hkv][T][dk]
    kt = take(Hkv * dk * T * f);  // [Hkv][dk][T]
    vt = take(Hkv * dv * T * f);  // [Hkv][dv][T]
    d = take(H * T * f);          // do . o, [H][T]
    lse = take(H * T * f);        // [H][T]
    range = take(static_cast<size_t>(Tiles(T)) * 4 * sizeof(int32_t));
    thread = at;
    const size_t tile = kTile * kTile * f;
    thread_bytes =
        2 * Align64(tile) + Align64(kTile * f) + Align64(kTile * dk * f) + Align64(kTile * dv * f);
    bytes = at + static_cast<size_t>(std::max(nth, 1)) * thread_bytes;
  }
};

size_t AttentionBackScratch(const Node& n, int nth) { return Layout(n, nth).bytes; }

struct Ctx {
  const Node* n;
  const int32_t* pos;
  const int32_t* seq;
  int64_t dk, dv, H, Hkv, T, group;
  float scale, softcap;
  int64_t window;
  // Panels in scratch (see Layout).
  float *q, *o, *k, *kt, *vt, *D, *lse;
  // Per tile: min seq, max seq, min pos, max pos.
  int32_t* range;

  // Key row j is visible to query t.
  bool Visible(int64_t t, int64_t j) const {
    if ((seq ? seq[j] : 0) != (seq ? seq[t] : 0) || pos[j] > pos[t]) return false;
    return window <= 0 || int64_t{pos[t]} - pos[j] < window;
  }
  // Some key of tile kb is visible to some query of tile qb.
  bool TilesMeet(int64_t qb, int64_t kb) const {
    const int32_t* a = range + 4 * qb;
    const int32_t* b = range + 4 * kb;
    if (b[0] > a[1] || b[1] < a[0] || b[2] > a[3]) return false;
    return window <= 0 || int64_t{a[2]} - b[3] < window;
  }
  // Every key of tile kb is visible to every query of tile qb.
  bool TilesFullyMeet(int64_t qb, int64_t kb) const {
    const int32_t* a = range + 4 * qb;
    const int32_t* b = range + 4 * kb;
    if (a[0] != a[1] || b[0] != b[1] || a[0] != b[0] || b[3] > a[2]) return false;
    return window <= 0 || int64_t{a[3]} - b[2] < window;
  }
};

// Per-thread tiles.
struct Tile {
  float* p;     // [kTile][kTile]: p, queries x keys
  float* ds;    // [kTile][kTile]: ds (without the scale)
  float* dc;    // [kTile]: dc/ds of one row
  float* acc;   // [kTile][dk]: dq or dk of the tile
  float* acc2;  // [kTile][dv]: dv of the tile
};

Tile ThreadTile(const Layout& l, uint8_t* scratch, int ith, int64_t dk) {
  uint8_t* base = scratch + l.thread + static_cast<size_t>(ith) * l.thread_bytes;
  Tile t;
  const size_t tile = Align64(kTile * kTile * sizeof(float));
  t.p = reinterpret_cast<float*>(base);
  t.ds = reinterpret_cast<float*>(base + tile);
  t.dc = reinterpret_cast<float*>(base + 2 * tile);
  t.acc = reinterpret_cast<float*>(base + 2 * tile + Align64(kTile * sizeof(float)));
  t.acc2 = t.acc + Align64(kTile * dk * sizeof(float)) / sizeof(float);
  return t;
}

// p and ds of query tile qb of head h against key tile kb.
void TileGrad(const Ctx& c, const VecOps& vec, int64_t h, int64_t qb, int64_t kb, Tile& w) {
  const int64_t g = h / c.group, t0 = qb * kTile, j0 = kb * kTile;
  const int64_t nq = std::min(kTile, c.T - t0), nk = std::min(kTile, c.T - j0);
  std::memset(w.p, 0, sizeof(float) * kTile * nq);
  std::memset(w.ds, 0, sizeof(float) * kTile * nq);
  // S = Q K^T into p, dP = dO V^T into ds.
  vec.gemm_acc(nq, nk, c.dk, c.q + (h * c.T + t0) * c.dk, c.dk, 1, c.kt + g * c.dk * c.T + j0, c.T,
               w.p, kTile);
  vec.gemm_acc(nq, nk, c.dv, c.o + (h * c.T + t0) * c.dv, c.dv, 1, c.vt + g * c.dv * c.T + j0, c.T,
               w.ds, kTile);
  const bool all = c.TilesFullyMeet(qb, kb);
  for (int64_t i = 0; i < nq; ++i) {
    const int64_t t = t0 + i;
    float* p = w.p + i * kTile;
    float* ds = w.ds + i * kTile;
    const float lse = c.lse[h * c.T + t], D = c.D[h * c.T + t];
    if (c.softcap > 0.0f) {
      for (int64_t j = 0; j < nk; ++j) {
        const float th = std::tanh(c.scale * p[j] / c.softcap);
        p[j] = c.softcap * th;
        w.dc[j] = 1.0f - th * th;
      }
      vec.exp_sum(p, p, 1.0f, lse, nk);
      for (int64_t j = 0; j < nk; ++j) ds[j] = p[j] * (ds[j] - D) * w.dc[j];
    } else {
      vec.exp_sum(p, p, c.scale, lse, nk);
      for (int64_t j = 0; j < nk; ++j) ds[j] = p[j] * (ds[j] - D);
    }
    if (all) continue;
    for (int64_t j = 0; j < nk; ++j) {
      if (!c.Visible(t, j0 + j)) p[j] = ds[j] = 0.0f;
    }
  }
}

// Pulls a dynamic share of n items: later items finish sooner under the
// causal mask, so fixed chunks would leave threads idle.
template <typename F>
void ForEachItem(ExecEnv& env, int64_t n, F&& f) {
  std::atomic<int64_t> next{0};
  const int nth = static_cast<int>(std::min<int64_t>(n, env.n_threads));
  env.pool->Run(nth, [&](int ith, int) {
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) f(i, ith);
  });
}

bool AttentionBackRun(const Node& n, ExecEnv& env, std::string* why) {
  if (!CheckRows(n, why)) return false;
  const hearth_attention_params prm = n.params<hearth_attention_params>();
  Ctx c;
  c.n = &n;
  c.pos = reinterpret_cast<const int32_t*>(n.in[kPos].data);
  c.seq = SeqOf(n);
  c.dk = n.in[kQ].ne[0];
  c.H = n.in[kQ].ne[1];
  c.T = n.in[kQ].ne[2];
  c.dv = n.in[kV].ne[0];
  c.Hkv = n.in[kK].ne[1];
  c.group = c.H / c.Hkv;
  c.scale = prm.scale;
  c.softcap = prm.softcap;
  c.window = prm.window;
  if (c.T * c.H == 0) return true;
  const Layout l(n, env.n_threads);
  auto at = [&](size_t off) { return reinterpret_cast<float*>(env.scratch + off); };
  c.q = at(l.q);
  c.o = at(l.o);
  c.k = at(l.k);
  c.kt = at(l.kt);
  c.vt = at(l.vt);
  c.D = at(l.d);
  c.lse = at(l.lse);
  c.range = reinterpret_cast<int32_t*>(env.scratch + l.range);
  const VecOps& vec = Vec();
  const int64_t T = c.T, n_tiles = Tiles(T);
  auto row = [&](int slot, int64_t h, int64_t t) {
    return reinterpret_cast<const float*>(n.in[slot].Row(h, t));
  };

  for (int64_t b = 0; b < n_tiles; ++b) {
    int32_t* r = c.range + 4 * b;
    r[0] = r[2] = INT32_MAX;
    r[1] = r[3] = INT32_MIN;
    for (int64_t t = b * kTile; t < std::min(T, (b + 1) * kTile); ++t) {
      const int32_t s = c.seq ? c.seq[t] : 0;
      r[0] = std::min(r[0], s);
      r[1] = std::max(r[1], s);
      r[2] = std::min(r[2], c.pos[t]);
      r[3] = std::max(r[3], c.pos[t]);
    }
  }

  // Panels: q, do, D and lse per (head, token); k, k^T, v^T per (kv head,
  // token).
  ParallelFor(env, T * c.H, std::max<int64_t>(1, 8192 / (c.dk + c.dv)),
              [&](int64_t i0, int64_t i1, int) {
                for (int64_t i = i0; i < i1; ++i) {
                  const int64_t h = i / T, t = i % T;
                  std::memcpy(c.q + i * c.dk, row(kQ, h, t), sizeof(float) * c.dk);
                  std::memcpy(c.o + i * c.dv, row(kDo, h, t), sizeof(float) * c.dv);
                  c.D[i] = vec.dot_f32(row(kDo, h, t), row(kO, h, t), c.dv);
                  c.lse[i] = reinterpret_cast<const float*>(n.in[kLse].Row(t))[h];
                }
              });
  ParallelFor(env, T * c.Hkv, std::max<int64_t>(1, 4096 / (c.dk + c.dv)),
              [&](int64_t i0, int64_t i1, int) {
                for (int64_t i = i0; i < i1; ++i) {
                  const int64_t g = i / T, t = i % T;
                  const float* kr = row(kK, g, t);
                  const float* vr = row(kV, g, t);
                  std::memcpy(c.k + i * c.dk, kr, sizeof(float) * c.dk);
                  float* kt = c.kt + g * c.dk * T + t;
                  for (int64_t d = 0; d < c.dk; ++d) kt[d * T] = kr[d];
                  float* vt = c.vt + g * c.dv * T + t;
                  for (int64_t d = 0; d < c.dv; ++d) vt[d * T] = vr[d];
                }
              });

  // dq per (head, query tile), the last query tiles (most keys) first.
  ForEachItem(env, c.H * n_tiles, [&](int64_t i, int ith) {
    Tile w = ThreadTile(l, env.scratch, ith, c.dk);
    const int64_t qb = n_tiles - 1 - i / c.H, h = i % c.H, g = h / c.group;
    const int64_t t0 = qb * kTile, nq = std::min(kTile, T - t0);
    std::memset(w.acc, 0, sizeof(float) * nq * c.dk);
    for (int64_t kb = 0; kb < n_tiles; ++kb) {
      if (!c.TilesMeet(qb, kb)) continue;
      TileGrad(c, vec, h, qb, kb, w);
      const int64_t j0 = kb * kTile, nk = std::min(kTile, T - j0);
      vec.gemm_acc(nq, c.dk, nk, w.ds, kTile, 1, c.k + (g * T + j0) * c.dk, c.dk, w.acc, c.dk);
    }
    for (int64_t q = 0; q < nq; ++q) {
      float* dq = reinterpret_cast<float*>(n.out.Row(h, t0 + q));
      vec.scale_mul(dq, w.acc + q * c.dk, c.scale, nullptr, c.dk);
    }
  });

  // dk, dv per (kv head, key tile), summing over the q heads of the group and
  // the query tiles that see it; the first key tiles (most queries) first.
  ForEachItem(env, c.Hkv * n_tiles, [&](int64_t i, int ith) {
    Tile w = ThreadTile(l, env.scratch, ith, c.dk);
    const int64_t kb = i / c.Hkv, g = i % c.Hkv;
    const int64_t j0 = kb * kTile, nk = std::min(kTile, T - j0);
    std::memset(w.acc, 0, sizeof(float) * nk * c.dk);
    std::memset(w.acc2, 0, sizeof(float) * nk * c.dv);
    for (int64_t h = g * c.group; h < (g + 1) * c.group; ++h) {
      for (int64_t qb = 0; qb < n_tiles; ++qb) {
        if (!c.TilesMeet(qb, kb)) continue;
        TileGrad(c, vec, h, qb, kb, w);
        const int64_t t0 = qb * kTile, nq = std::min(kTile, T - t0);
        vec.gemm_acc(nk, c.dk, nq, w.ds, 1, kTile, c.q + (h * T + t0) * c.dk, c.dk, w.acc, c.dk);
        vec.gemm_acc(nk, c.dv, nq, w.p, 1, kTile, c.o + (h * T + t0) * c.dv, c.dv, w.acc2, c.dv);
      }
    }
    for (int64_t j = 0; j < nk; ++j) {
      float* dkr = reinterpret_cast<float*>(n.extra[0].Row(g, j0 + j));
      float* dvr = reinterpret_cast<float*>(n.extra[1].Row(g, j0 + j));
      vec.scale_mul(dkr, w.acc + j * c.dk, c.scale, nullptr, c.dk);
      std::memcpy(dvr, w.acc2 + j * c.dv, sizeof(float) * c.dv);
    }
  });
  return true;
}

}  // namespace

const OpInfo kOpAttentionBack = {"ATTENTION_BACK",
                                 7,
                                 1,
                                 false,
                                 AttentionBackDtypes,
                                 AttentionBackCheck,
                                 AttentionBackScratch,
                                 AttentionBackRun,
                                 /*n_extra_required=*/2};

}  // namespace hearth::cpu
