// ops_attention_back.cc — ATTENTION_BACK on the CPU: the gradients of
// causal grouped-query attention run on an empty cache, where the keys of
// query t are the batch's own rows j with seq[j] == seq[t], pos[j] <= pos[t]
// (and pos[t] - pos[j] < window when window > 0).
//
// With s = scale q.k, c = softcap tanh(s / softcap) (or s), the forward's
// lse gives p = exp(c - lse) without a second softmax pass, and
//   D = do . o,  dp_j = do . v_j,  ds_j = p_j (dp_j - D) dc/ds,
//   dq = scale sum_j ds_j k_j,  dk_j = scale sum ds_j q,  dv_j = sum p_j do.
// Three pool dispatches, none writing what another thread writes: D for
// every (token, head); dq for every (token, head); dk, dv for every
// (kv head, key row), summing over the queries that see the row and the q
// heads of its group. Scores are computed twice (for dq and for dk/dv)
// rather than stored: T x T per head would not fit a long batch.
#include <algorithm>
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

size_t AttentionBackScratch(const Node& n, int) {
  return Align64(static_cast<size_t>(n.in[kQ].ne[1] * n.in[kQ].ne[2]) * sizeof(float));
}

struct Ctx {
  const Node* n;
  const int32_t* pos;
  const int32_t* seq;
  int64_t dk, dv, H, Hkv, T, group;
  float scale, softcap;
  int64_t window;
  const float* D;  // [T][H]

  const float* Row(int slot, int64_t h, int64_t t) const {
    return reinterpret_cast<const float*>(n->in[slot].Row(h, t));
  }
  // Key row j is visible to query t.
  bool Visible(int64_t t, int64_t j) const {
    if ((seq ? seq[j] : 0) != (seq ? seq[t] : 0) || pos[j] > pos[t]) return false;
    return window <= 0 || int64_t{pos[t]} - pos[j] < window;
  }
  // p and ds for query (t, h) and key row (j, kv head h / group).
  void Grad(int64_t t, int64_t h, int64_t j, const VecOps& vec, float* p, float* ds) const {
    const int64_t g = h / group;
    const float s = scale * vec.dot_f32(Row(kQ, h, t), Row(kK, g, j), dk);
    float c = s, dcds = 1.0f;
    if (softcap > 0.0f) {
      const float th = std::tanh(s / softcap);
      c = softcap * th;
      dcds = 1.0f - th * th;
    }
    const float lse = reinterpret_cast<const float*>(n->in[kLse].Row(t))[h];
    *p = std::exp(c - lse);
    const float dp = vec.dot_f32(Row(kDo, h, t), Row(kV, g, j), dv);
    *ds = *p * (dp - D[t * H + h]) * dcds;
  }
};

bool AttentionBackRun(const Node& n, ExecEnv& env, std::string* why) {
  if (!CheckRows(n, why)) return false;
  const hearth_attention_params p = n.params<hearth_attention_params>();
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
  c.scale = p.scale;
  c.softcap = p.softcap;
  c.window = p.window;
  float* D = reinterpret_cast<float*>(env.scratch);
  c.D = D;
  const VecOps& vec = Vec();
  const int64_t n_q = c.T * c.H;
  if (n_q == 0) return true;

  // D = do . o for every (token, head).
  ParallelFor(env, n_q, std::max<int64_t>(1, 16384 / std::max<int64_t>(c.dv, 1)),
              [&](int64_t i0, int64_t i1, int) {
                for (int64_t i = i0; i < i1; ++i) {
                  const int64_t t = i / c.H, h = i % c.H;
                  D[i] = vec.dot_f32(c.Row(kDo, h, t), c.Row(kO, h, t), c.dv);
                }
              });

  // dq, one (token, head) per item; later tokens see more rows, so items
  // go round-robin rather than in contiguous chunks.
  const int nth_q = static_cast<int>(std::min<int64_t>(n_q, env.n_threads));
  env.pool->Run(nth_q, [&](int ith, int nt) {
    for (int64_t i = ith; i < n_q; i += nt) {
      const int64_t t = i / c.H, h = i % c.H, g = h / c.group;
      float* dq = reinterpret_cast<float*>(n.out.Row(h, t));
      std::memset(dq, 0, static_cast<size_t>(c.dk) * sizeof(float));
      for (int64_t j = 0; j < c.T; ++j) {
        if (!c.Visible(t, j)) continue;
        float pj, ds;
        c.Grad(t, h, j, vec, &pj, &ds);
        vec.axpy_f32(ds, c.Row(kK, g, j), dq, c.dk);
      }
      vec.scale_mul(dq, dq, c.scale, nullptr, c.dk);
    }
  });

  // dk, dv, one (kv head, key row) per item.
  const int64_t n_kv = c.T * c.Hkv;
  const int nth_kv = static_cast<int>(std::min<int64_t>(n_kv, env.n_threads));
  env.pool->Run(nth_kv, [&](int ith, int nt) {
    for (int64_t i = ith; i < n_kv; i += nt) {
      const int64_t j = i / c.Hkv, g = i % c.Hkv;
      float* dkr = reinterpret_cast<float*>(n.extra[0].Row(g, j));
      float* dvr = reinterpret_cast<float*>(n.extra[1].Row(g, j));
      std::memset(dkr, 0, static_cast<size_t>(c.dk) * sizeof(float));
      std::memset(dvr, 0, static_cast<size_t>(c.dv) * sizeof(float));
      for (int64_t t = 0; t < c.T; ++t) {
        if (!c.Visible(t, j)) continue;
        for (int64_t h = g * c.group; h < (g + 1) * c.group; ++h) {
          float pj, ds;
          c.Grad(t, h, j, vec, &pj, &ds);
          vec.axpy_f32(ds, c.Row(kQ, h, t), dkr, c.dk);
          vec.axpy_f32(pj, c.Row(kDo, h, t), dvr, c.dv);
        }
      }
      vec.scale_mul(dkr, dkr, c.scale, nullptr, c.dk);
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
