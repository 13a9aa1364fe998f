// gpu_ops_train.cu — LORA_MUL_MAT and the backward ops of LoRA training on
// the GPU plugin: each op's contract and its kernels.
//
// As the inference kernels (gpu_kernels.cu), these are written for exactness
// and for every stride the ABI allows, not yet for speed. Every output
// element is written by exactly one thread, and every sum across threads is
// a block reduction through shared memory, so results do not depend on the
// schedule (no float atomics):
//   - LORA_MUL_MAT: a block per (token, kBlock outputs); a . x is formed
//     kRankChunk ranks at a time by block reductions over K.
//   - MUL_MAT_T: a thread per (k, kTokens tokens), summing over m in order,
//     the weight dequantized element by element where it is read.
//   - OUTER: a thread per output element, summing over t in order.
//   - RMS_NORM_BACK, CROSS_ENTROPY(_BACK): a block per row (the row sums of
//     RMS_NORM_BACK in double, as the CPU plugin).
//   - ROPE_BACK: ROPE's kernel with the angles negated (the inverse
//     rotation: cos(-a) = cos(a), sin(-a) = -sin(a)).
//   - SILU/GELU_MUL_BACK, ADAMW_STEP, DROPOUT: a thread per element.
//   - SUM_SQ: one block, each thread summing a strided share in double.
//   - ATTENTION_BACK: a check kernel of pos and seq (raising the flag), then
//     dq with a block per (head, query) summing over the key rows it sees,
//     then dk and dv with a block per (kv head, key row) summing over the
//     heads of its group and the queries that see it; p and ds are computed
//     again from lse in each (O(T^2 head_dim) per head, no T x T scratch).
#include <cmath>
#include <cstring>
#include <string>

#include "backends/gpu/gpu_device.h"
#include "backends/gpu/gpu_ops.h"

namespace hearth::gpu {
namespace {

using namespace dev;  // NOLINT: the kernels' vocabulary

constexpr int kRankChunk = 16;  // ranks of a . x per LORA_MUL_MAT reduction
constexpr int kTokens = 4;      // tokens per MUL_MAT_T thread

// Element e of t in ne order (e = i0 + ne0 * (i1 + ne1 * (i2 + ne2 * i3))).
GPU_FN uint8_t* AtFlat(const TRef& t, int64_t e) {
  const int64_t i0 = e % t.ne[0], r = e / t.ne[0];
  return At(t, i0, r % t.ne[1], r / t.ne[1] % t.ne[2], r / t.ne[1] / t.ne[2]);
}

GPU_FN float LoadFlat(const TRef& t, int64_t e) { return LoadPlain(AtFlat(t, e), t.dtype); }

GPU_FN void StoreFlat(const TRef& t, int64_t e, float v) { StorePlain(AtFlat(t, e), t.dtype, v); }

// Elems() for device code.
GPU_FN int64_t Count(const TRef& t) { return t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3]; }

GPU_FN int64_t FirstItem() { return static_cast<int64_t>(BlockX()) * BlockDimX() + ThreadX(); }

GPU_FN int64_t ItemStride() { return static_cast<int64_t>(GridDimX()) * BlockDimX(); }

// ------------------------------------------------------------ LORA_MUL_MAT

// out[m, t] = y[m, t] + s_t * sum_r b[m, r] * (sum_k a[k, r] x[k, t]).
// Items: (token, chunk of kBlock outputs); a thread per output m. out may be
// y (each element is read and written by its own thread).
GPU_KERNEL void KLora(TRef out, TRef y, TRef a, TRef b, TRef x, TRef scales, int has_scales,
                      float scale, int64_t m_chunks) {
  GPU_SHARED float red[kRankChunk][kBlock];
  const int64_t K = a.ne[0], R = a.ne[1], M = y.ne[0], T = y.ne[1];
  const unsigned tid = ThreadX();
  for (int64_t item = BlockX(); item < T * m_chunks; item += GridDimX()) {
    const int64_t t = item / m_chunks, m = item % m_chunks * kBlock + tid;
    const bool active = m < M;
    const float s = has_scales ? scale * LoadF(scales, t, 0, 0, 0) : scale;
    float acc = 0;
    // s is the same for the whole block: a row without this adapter skips
    // the product (and its barriers) as one.
    for (int64_t r0 = 0; s != 0.0f && r0 < R; r0 += kRankChunk) {
      const int nr = static_cast<int>(R - r0 < kRankChunk ? R - r0 : kRankChunk);
      float part[kRankChunk];
      for (int j = 0; j < kRankChunk; ++j) part[j] = 0;
      for (int64_t k = tid; k < K; k += kBlock) {
        const float xv = LoadF(x, k, t, 0, 0);
        for (int j = 0; j < kRankChunk; ++j) {
          if (j < nr) part[j] += LoadF(a, k, r0 + j, 0, 0) * xv;
        }
      }
      for (int j = 0; j < kRankChunk; ++j) red[j][tid] = part[j];
      SyncThreads();
      for (unsigned h = kBlock / 2; h > 0; h >>= 1) {
        if (tid < h) {
          for (int j = 0; j < kRankChunk; ++j) red[j][tid] += red[j][tid + h];
        }
        SyncThreads();
      }
      if (active) {
        for (int j = 0; j < nr; ++j) acc += LoadF(b, m, r0 + j, 0, 0) * red[j][0];
      }
      SyncThreads();  // red is reused by the next chunk
    }
    if (active) StorePlain(At(out, m, t, 0, 0), out.dtype, LoadF(y, m, t, 0, 0) + s * acc);
  }
}

// --------------------------------------------------------------- MUL_MAT_T

// out[k, t] = sum_m w[k, m] dy[m, t] per (i2, i3), w broadcast over the
// batch dims where its ne is 1. A thread per (k, kTokens tokens, batch).
GPU_KERNEL void KMulMatT(TRef out, TRef w, TRef dy, int64_t t_chunks) {
  const int64_t K = out.ne[0], T = out.ne[1], M = dy.ne[0];
  const int64_t total = K * t_chunks * out.ne[2] * out.ne[3];
  for (int64_t item = FirstItem(); item < total; item += ItemStride()) {
    const int64_t k = item % K, r = item / K;
    const int64_t chunk = r % t_chunks, i2 = r / t_chunks % out.ne[2],
                  i3 = r / t_chunks / out.ne[2];
    const uint8_t* wm = WeightRow(w, 0, i2, i3);
    const int64_t t0 = chunk * kTokens;
    const int nt = static_cast<int>(T - t0 < kTokens ? T - t0 : kTokens);
    float acc[kTokens];
    for (int j = 0; j < kTokens; ++j) acc[j] = 0;
    for (int64_t m = 0; m < M; ++m) {
      const float wv = WeightElem(wm + m * w.nb[1], w.dtype, w.nb[0], k);
      for (int j = 0; j < kTokens; ++j) {
        if (j < nt) acc[j] += wv * LoadF(dy, m, t0 + j, i2, i3);
      }
    }
    for (int j = 0; j < nt; ++j) StorePlain(At(out, k, t0 + j, i2, i3), out.dtype, acc[j]);
  }
}

// ------------------------------------------------------------------- OUTER

// out[n, p] = acc[n, p] + sum_t a[n, t] b[p, t]; out may be acc.
GPU_KERNEL void KOuter(TRef out, TRef a, TRef b, TRef acc, int has_acc) {
  const int64_t N = out.ne[0], P = out.ne[1], T = a.ne[1];
  for (int64_t item = FirstItem(); item < N * P; item += ItemStride()) {
    const int64_t n = item % N, p = item / N;
    float sum = 0;
    for (int64_t t = 0; t < T; ++t) sum += LoadF(a, n, t, 0, 0) * LoadF(b, p, t, 0, 0);
    if (has_acc) sum += LoadF(acc, n, p, 0, 0);
    StorePlain(At(out, n, p, 0, 0), out.dtype, sum);
  }
}

// ----------------------------------------------------------- RMS_NORM_BACK

// dx = r g - (r^3 / D) x sum_j(g_j x_j), g = dy * w, r = 1 / sqrt(mean(x^2)
// + eps); the two row sums in double. A block per row.
GPU_KERNEL void KRmsNormBack(TRef out, TRef x, TRef dy, TRef w, int has_w, float eps) {
  GPU_SHARED double buf[kBlock];
  const int64_t D = x.ne[0], rows = x.ne[1] * x.ne[2] * x.ne[3];
  for (int64_t r = BlockX(); r < rows; r += GridDimX()) {
    const int64_t i1 = r % x.ne[1], i2 = r / x.ne[1] % x.ne[2], i3 = r / x.ne[1] / x.ne[2];
    double ss = 0, gx = 0;
    for (int64_t i = ThreadX(); i < D; i += kBlock) {
      const double xv = LoadF(x, i, i1, i2, i3);
      double g = LoadF(dy, i, i1, i2, i3);
      if (has_w) g *= LoadF(w, i, 0, 0, 0);
      ss += xv * xv;
      gx += g * xv;
    }
    ss = BlockSumD(ss, buf);
    gx = BlockSumD(gx, buf);
    const double rr = 1.0 / sqrt(ss / static_cast<double>(D) + static_cast<double>(eps));
    const float ca = static_cast<float>(rr);
    const float cb = static_cast<float>(rr * rr * rr * gx / static_cast<double>(D));
    for (int64_t i = ThreadX(); i < D; i += kBlock) {
      float g = LoadF(dy, i, i1, i2, i3);
      if (has_w) g *= LoadF(w, i, 0, 0, 0);
      StorePlain(At(out, i, i1, i2, i3), out.dtype, ca * g - cb * LoadF(x, i, i1, i2, i3));
    }
  }
}

// ------------------------------------------------- SILU_MUL_BACK, GELU_MUL_BACK

// dgate = dy * up * act'(gate), dup = dy * act(gate), as the CPU plugin.
GPU_KERNEL void KGatedBack(TRef dgate, TRef dup, TRef gate, TRef up, TRef dy, int gelu) {
  const int64_t n = Count(gate);
  for (int64_t e = FirstItem(); e < n; e += ItemStride()) {
    const float g = LoadFlat(gate, e), u = LoadFlat(up, e), d = LoadFlat(dy, e);
    float f, df;
    if (gelu) {
      const float kc = 0.7978845608028654f, ka = 0.044715f;
      const float th = tanhf(kc * (g + ka * g * g * g));
      f = 0.5f * g * (1.0f + th);
      df = 0.5f * (1.0f + th) + 0.5f * g * (1.0f - th * th) * kc * (1.0f + 3.0f * ka * g * g);
    } else {
      const float sg = 1.0f / (1.0f + expf(-g));
      f = g * sg;
      df = sg * (1.0f + g * (1.0f - sg));
    }
    StoreFlat(dgate, e, d * u * df);
    StoreFlat(dup, e, d * f);
  }
}

// ------------------------------------------------- CROSS_ENTROPY (+ BACK)

GPU_FN bool Masked(int32_t target, int has_ignore, int32_t ignore) {
  return target < 0 || (has_ignore && target == ignore);
}

// out[t] = logsumexp(logits[:, t]) - logits[target, t], 0 where masked. A
// block per token; a target >= V raises the flag.
GPU_KERNEL void KCrossEntropy(TRef out, TRef logits, TRef targets, int has_ignore, int32_t ignore,
                              int* flag, int flag_value) {
  GPU_SHARED float buf[kBlock];
  const int64_t V = logits.ne[0], T = logits.ne[1];
  for (int64_t t = BlockX(); t < T; t += GridDimX()) {
    const int32_t tg = LoadI32(targets, t);
    if (Masked(tg, has_ignore, ignore) || V == 0) {
      if (ThreadX() == 0) StorePlain(At(out, t, 0, 0, 0), out.dtype, 0.0f);
      continue;
    }
    if (tg >= V) {
      if (ThreadX() == 0) RaiseFlag(flag, flag_value);
      continue;
    }
    float mx, sum;
    RowMaxExpSum(logits, t, 0, 0, 1.0f, buf, &mx, &sum);
    if (ThreadX() == 0) {
      const double loss = static_cast<double>(mx) + log(static_cast<double>(sum)) -
                          static_cast<double>(LoadF(logits, tg, t, 0, 0));
      StorePlain(At(out, t, 0, 0, 0), out.dtype, static_cast<float>(loss));
    }
  }
}

// out[:, t] = scale * (softmax(logits[:, t]) - onehot(target)), 0 where
// masked. A block per token; out may be logits (every read of the row is
// done before the first write: the reductions end in barriers, and each
// element is then read and written by its own thread).
GPU_KERNEL void KCrossEntropyBack(TRef out, TRef logits, TRef targets, int has_ignore,
                                  int32_t ignore, float scale, int* flag, int flag_value) {
  GPU_SHARED float buf[kBlock];
  const int64_t V = logits.ne[0], T = logits.ne[1];
  for (int64_t t = BlockX(); t < T; t += GridDimX()) {
    const int32_t tg = LoadI32(targets, t);
    if (Masked(tg, has_ignore, ignore) || V == 0) {
      for (int64_t i = ThreadX(); i < V; i += kBlock)
        StorePlain(At(out, i, t, 0, 0), out.dtype, 0.0f);
      continue;
    }
    if (tg >= V) {
      if (ThreadX() == 0) RaiseFlag(flag, flag_value);
      continue;
    }
    float mx, sum;
    RowMaxExpSum(logits, t, 0, 0, 1.0f, buf, &mx, &sum);
    const float k = scale / sum;
    for (int64_t i = ThreadX(); i < V; i += kBlock) {
      float g = expf(LoadF(logits, i, t, 0, 0) - mx) * k;
      if (i == tg) g -= scale;
      StorePlain(At(out, i, t, 0, 0), out.dtype, g);
    }
  }
}

// -------------------------------------------------------------- ADAMW_STEP

struct AdamW {
  float lr, b1, b2, eps, wd, inv_c1, inv_c2, gs;
};

// Each element's inputs are all read before its outputs are written, so
// any output may be the same view as an input.
GPU_KERNEL void KAdamW(TRef p_out, TRef m_out, TRef v_out, TRef p_in, TRef grad, TRef m_in,
                       TRef v_in, AdamW h) {
  const int64_t n = Count(p_in);
  for (int64_t e = FirstItem(); e < n; e += ItemStride()) {
    const float g = LoadFlat(grad, e) * h.gs;
    const float m = h.b1 * LoadFlat(m_in, e) + (1.0f - h.b1) * g;
    const float v = h.b2 * LoadFlat(v_in, e) + (1.0f - h.b2) * g * g;
    const float pi = LoadFlat(p_in, e);
    StoreFlat(m_out, e, m);
    StoreFlat(v_out, e, v);
    StoreFlat(p_out, e, pi - h.lr * (m * h.inv_c1 / (sqrtf(v * h.inv_c2) + h.eps) + h.wd * pi));
  }
}

// ------------------------------------------------------------------ SUM_SQ

// One block: each thread sums elements tid, tid + kBlock, ... in double, in
// order; then one block reduction in double.
GPU_KERNEL void KSumSq(TRef out, TRef x) {
  GPU_SHARED double buf[kBlock];
  const int64_t n = Count(x);
  double acc = 0;
  for (int64_t e = ThreadX(); e < n; e += kBlock) {
    const double v = LoadFlat(x, e);
    acc += v * v;
  }
  acc = BlockSumD(acc, buf);
  if (ThreadX() == 0) StorePlain(out.data, out.dtype, static_cast<float>(acc));
}

// ----------------------------------------------------------------- DROPOUT

GPU_FN uint64_t SplitMix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Element e (ne order) is kept iff (splitmix64(seed + offset + e) >> 32) >=
// threshold; kept elements are x * s.
GPU_KERNEL void KDropout(TRef out, TRef x, TRef offset, int has_offset, uint64_t seed,
                         uint32_t threshold, float s) {
  const int64_t n = Count(x);
  uint64_t base = seed;
  if (has_offset) {
    const uint32_t lo = static_cast<uint32_t>(*reinterpret_cast<const int32_t*>(AtFlat(offset, 0)));
    const uint32_t hi = static_cast<uint32_t>(*reinterpret_cast<const int32_t*>(AtFlat(offset, 1)));
    base += static_cast<uint64_t>(lo) | (static_cast<uint64_t>(hi) << 32);
  }
  for (int64_t e = FirstItem(); e < n; e += ItemStride()) {
    const bool keep =
        static_cast<uint32_t>(SplitMix64(base + static_cast<uint64_t>(e)) >> 32) >= threshold;
    const float v = LoadFlat(x, e);
    StoreFlat(out, e, keep ? v * s : 0.0f);
  }
}

// ---------------------------------------------------------- ATTENTION_BACK

// Inputs of ATTENTION_BACK as its kernels read them.
struct AttnBack {
  TRef q, k, v, o, dout, lse, pos, seq;
  int has_seq;
  float scale, softcap;
  int window;
};

constexpr int kAttnPerThread = static_cast<int>(kMaxAttentionDv / kBlock);

GPU_FN int64_t BackSeq(const AttnBack& a, int64_t t) { return a.has_seq ? LoadI32(a.seq, t) : 0; }

// Key row j is visible to query t: same sequence, not later, inside the window.
GPU_FN bool BackVisible(const AttnBack& a, int64_t t, int64_t j) {
  const int64_t pt = LoadI32(a.pos, t), pj = LoadI32(a.pos, j);
  if (BackSeq(a, j) != BackSeq(a, t) || pj > pt) return false;
  return a.window <= 0 || pt - pj < a.window;
}

// p and ds (without the scale) of head h, query t, key row j of kv head g;
// D = do_t . o_t. Both 0 where j is not visible to t.
GPU_FN void BackGrad(const AttnBack& a, int64_t h, int64_t g, int64_t t, int64_t j, float D,
                     float* p, float* ds) {
  *p = 0;
  *ds = 0;
  if (!BackVisible(a, t, j)) return;
  const int64_t dk = a.q.ne[0], dv = a.v.ne[0];
  float dot = 0;
  for (int64_t d = 0; d < dk; ++d) dot += LoadF(a.q, d, h, t, 0) * LoadF(a.k, d, g, j, 0);
  float s = dot * a.scale, dc = 1.0f;
  if (a.softcap > 0) {
    const float th = tanhf(s / a.softcap);
    s = a.softcap * th;
    dc = 1.0f - th * th;
  }
  const float pv = expf(s - LoadF(a.lse, h, t, 0, 0));
  float dp = 0;
  for (int64_t d = 0; d < dv; ++d) dp += LoadF(a.dout, d, h, t, 0) * LoadF(a.v, d, g, j, 0);
  *p = pv;
  *ds = pv * (dp - D) * dc;
}

// A thread per token: pos and seq >= 0, and no (seq, pos) pair twice.
GPU_KERNEL void KAttnBackCheck(AttnBack a, int* flag, int flag_value) {
  const int64_t T = a.q.ne[2];
  for (int64_t t = FirstItem(); t < T; t += ItemStride()) {
    const int64_t s = BackSeq(a, t), ps = LoadI32(a.pos, t);
    if (s < 0 || ps < 0) {
      RaiseFlag(flag, flag_value);
      continue;
    }
    for (int64_t j = 0; j < t; ++j) {
      if (BackSeq(a, j) == s && LoadI32(a.pos, j) == ps) {
        RaiseFlag(flag, flag_value);
        break;
      }
    }
  }
}

// dq: a block per (head, query); D by a block reduction, then chunks of
// kBlock key rows (a thread per row computes its ds into shared memory), and
// a thread per dim of dq summing the chunk's ds_j k_j in row order.
GPU_KERNEL void KAttnBackDq(TRef dq, AttnBack a, const int* flag) {
  GPU_SHARED float red[kBlock];
  GPU_SHARED float dsb[kBlock];
  if (*flag != 0) return;
  const int64_t dk = a.q.ne[0], nh = a.q.ne[1], T = a.q.ne[2], dv = a.v.ne[0];
  const int64_t group = nh / a.k.ne[1];
  const unsigned tid = ThreadX();
  for (int64_t item = BlockX(); item < nh * T; item += GridDimX()) {
    const int64_t h = item % nh, t = item / nh, g = h / group;
    float part = 0;
    for (int64_t d = tid; d < dv; d += kBlock)
      part += LoadF(a.dout, d, h, t, 0) * LoadF(a.o, d, h, t, 0);
    const float D = BlockSum(part, red);
    float acc[kAttnPerThread];
    for (int r = 0; r < kAttnPerThread; ++r) acc[r] = 0;
    for (int64_t c0 = 0; c0 < T; c0 += kBlock) {
      float p = 0, ds = 0;
      if (c0 + tid < T) BackGrad(a, h, g, t, c0 + tid, D, &p, &ds);
      dsb[tid] = ds;
      SyncThreads();
      const int64_t nj = T - c0 < kBlock ? T - c0 : kBlock;
      for (int r = 0; r < kAttnPerThread; ++r) {
        const int64_t d = tid + static_cast<int64_t>(r) * kBlock;
        if (d >= dk) break;
        float v = acc[r];
        for (int64_t jj = 0; jj < nj; ++jj) {
          if (dsb[jj] != 0.0f) v += dsb[jj] * LoadF(a.k, d, g, c0 + jj, 0);
        }
        acc[r] = v;
      }
      SyncThreads();  // dsb is refilled by the next chunk
    }
    for (int r = 0; r < kAttnPerThread; ++r) {
      const int64_t d = tid + static_cast<int64_t>(r) * kBlock;
      if (d >= dk) break;
      StorePlain(At(dq, d, h, t, 0), dq.dtype, a.scale * acc[r]);
    }
  }
}

// dk, dv: a block per (kv head, key row j), over the heads of the group and
// chunks of kBlock queries (a thread per query computes its D, p and ds
// into shared memory), then a thread per dim summing ds_t q_t and p_t do_t
// in (head, query) order.
GPU_KERNEL void KAttnBackDkv(TRef dkr, TRef dvr, AttnBack a, const int* flag) {
  GPU_SHARED float pb[kBlock];
  GPU_SHARED float dsb[kBlock];
  if (*flag != 0) return;
  const int64_t dk = a.q.ne[0], nh = a.q.ne[1], T = a.q.ne[2], dv = a.v.ne[0];
  const int64_t nkv = a.k.ne[1], group = nh / nkv;
  const unsigned tid = ThreadX();
  for (int64_t item = BlockX(); item < nkv * T; item += GridDimX()) {
    const int64_t g = item % nkv, j = item / nkv;
    float acc_k[kAttnPerThread], acc_v[kAttnPerThread];
    for (int r = 0; r < kAttnPerThread; ++r) acc_k[r] = acc_v[r] = 0;
    for (int64_t h = g * group; h < (g + 1) * group; ++h) {
      for (int64_t c0 = 0; c0 < T; c0 += kBlock) {
        const int64_t t = c0 + tid;
        float p = 0, ds = 0;
        if (t < T && BackVisible(a, t, j)) {
          float D = 0;
          for (int64_t d = 0; d < dv; ++d) D += LoadF(a.dout, d, h, t, 0) * LoadF(a.o, d, h, t, 0);
          BackGrad(a, h, g, t, j, D, &p, &ds);
        }
        pb[tid] = p;
        dsb[tid] = ds;
        SyncThreads();
        const int64_t nt = T - c0 < kBlock ? T - c0 : kBlock;
        for (int r = 0; r < kAttnPerThread; ++r) {
          const int64_t d = tid + static_cast<int64_t>(r) * kBlock;
          if (d < dk) {
            float v = acc_k[r];
            for (int64_t tt = 0; tt < nt; ++tt) {
              if (dsb[tt] != 0.0f) v += dsb[tt] * LoadF(a.q, d, h, c0 + tt, 0);
            }
            acc_k[r] = v;
          }
          if (d < dv) {
            float v = acc_v[r];
            for (int64_t tt = 0; tt < nt; ++tt) {
              if (pb[tt] != 0.0f) v += pb[tt] * LoadF(a.dout, d, h, c0 + tt, 0);
            }
            acc_v[r] = v;
          }
        }
        SyncThreads();  // pb, dsb are refilled by the next chunk
      }
    }
    for (int r = 0; r < kAttnPerThread; ++r) {
      const int64_t d = tid + static_cast<int64_t>(r) * kBlock;
      if (d < dk) StorePlain(At(dkr, d, g, j, 0), dkr.dtype, a.scale * acc_k[r]);
      if (d < dv) StorePlain(At(dvr, d, g, j, 0), dvr.dtype, acc_v[r]);
    }
  }
}

}  // namespace

using plugin::StrFormat;
using namespace ops;  // NOLINT: the checks' vocabulary

namespace {

// A LoRA factor: F32, F16 or BF16.
bool WantFloatPair(const Prepared& p, const TRef& t, const char* what, std::string* why) {
  if (IsFloat(t.dtype)) return true;
  *why = StrFormat("%s: %s has dtype %s, want F32, F16 or BF16", Name(p), what,
                   plugin::DtypeName(t.dtype));
  return false;
}

// t has at most `dims` dimensions (ne[d] == 1 for d >= dims).
bool WantDims(const Prepared& p, const TRef& t, int dims, const char* what, std::string* why) {
  for (int d = dims; d < 4; ++d) {
    if (t.ne[d] != 1) {
      *why = StrFormat("%s: %s is %s, want at most %d dims", Name(p), what, Shape(t).c_str(), dims);
      return false;
    }
  }
  return true;
}

bool WantParam(const Prepared& p, bool ok, const char* name, float value, const char* want,
               std::string* why) {
  if (ok) return true;
  *why = StrFormat("%s: %s is %g; want %s", Name(p), name, static_cast<double>(value), want);
  return false;
}

// The output is not the same view as input i (the kernel reads input i after
// writing elements of the output). gpu_backend.cu has already refused any
// other overlap; supports() (shapes_only) knows no addresses.
bool NotAliased(const Prepared& p, int i, const char* what, std::string* why) {
  if (p.shapes_only || !p.has[i] || p.in[i].data != p.out.data) return true;
  *why = StrFormat("%s: the output may not be %s (in place only where the contract allows it)",
                   Name(p), what);
  return false;
}

bool WantExtra(const Prepared& p, int i, const char* what, std::string* why) {
  if (p.has_extra[i]) return true;
  *why = StrFormat("%s: extra output %s is required", Name(p), what);
  return false;
}

// The ignore_index of CROSS_ENTROPY(_BACK), when its params carry one.
bool IgnoreIndex(const Prepared& p, int32_t* ignore) {
  const size_t need = p.op == HEARTH_OP_CROSS_ENTROPY ? sizeof(hearth_cross_entropy_params)
                                                      : sizeof(hearth_cross_entropy_back_params);
  *ignore = 0;
  if (p.params_size < need) return false;
  if (p.op == HEARTH_OP_CROSS_ENTROPY) {
    *ignore = p.Params<hearth_cross_entropy_params>().ignore_index;
  } else {
    *ignore = p.Params<hearth_cross_entropy_back_params>().ignore_index;
  }
  return true;
}

bool CheckLora(const Prepared& p, std::string* why) {
  const TRef &y = p.in[0], &a = p.in[1], &b = p.in[2], &x = p.in[3];
  if (!WantF32(p, p.out, "the output", why) || !WantF32(p, y, "y", why) ||
      !WantFloatPair(p, a, "a", why) || !WantFloatPair(p, b, "b", why) ||
      !WantF32(p, x, "x", why) || (p.has[4] && !WantF32(p, p.in[4], "scales", why))) {
    return false;
  }
  if (!WantDims(p, p.out, 2, "the output", why) || !WantDims(p, y, 2, "y", why) ||
      !WantDims(p, a, 2, "a", why) || !WantDims(p, b, 2, "b", why) ||
      !WantDims(p, x, 2, "x", why) || (p.has[4] && !WantDims(p, p.in[4], 1, "scales", why)) ||
      !WantSame(p, y, p.out, "the output", why)) {
    return false;
  }
  if (a.ne[0] != x.ne[0] || b.ne[1] != a.ne[1] || b.ne[0] != y.ne[0] || x.ne[1] != y.ne[1]) {
    *why = StrFormat(
        "%s: shapes do not chain: a %s, b %s, x %s, y %s; want a [K, R], b [M, R], x [K, T], "
        "y [M, T]",
        Name(p), Shape(a).c_str(), Shape(b).c_str(), Shape(x).c_str(), Shape(y).c_str());
    return false;
  }
  if (p.has[4] && p.in[4].ne[0] != x.ne[1]) {
    *why = StrFormat("%s: scales is %s; want one per token (%lld)", Name(p), Shape(p.in[4]).c_str(),
                     static_cast<long long>(x.ne[1]));
    return false;
  }
  const float scale = p.Params<hearth_scale_params>().scale;
  return WantParam(p, std::isfinite(scale), "scale", scale, "a finite value", why) &&
         NotAliased(p, 1, "a", why) && NotAliased(p, 2, "b", why) && NotAliased(p, 3, "x", why) &&
         NotAliased(p, 4, "scales", why);
}

bool CheckMulMatT(const Prepared& p, std::string* why) {
  const TRef &w = p.in[0], &dy = p.in[1], &o = p.out;
  if (!IsWeight(w.dtype)) {
    *why = StrFormat("%s: w has dtype %s", Name(p), plugin::DtypeName(w.dtype));
    return false;
  }
  if (!WantF32(p, dy, "dy", why) || !WantF32(p, o, "the output", why)) return false;
  if (dy.ne[0] != w.ne[1] || o.ne[0] != w.ne[0] || o.ne[1] != dy.ne[1] || o.ne[2] != dy.ne[2] ||
      o.ne[3] != dy.ne[3] || (w.ne[2] != 1 && w.ne[2] != dy.ne[2]) ||
      (w.ne[3] != 1 && w.ne[3] != dy.ne[3])) {
    *why = StrFormat("%s: w %s, dy %s, out %s do not form a product", Name(p), Shape(w).c_str(),
                     Shape(dy).c_str(), Shape(o).c_str());
    return false;
  }
  const int64_t be = hearth_dtype_block_elems(w.dtype);
  if (be > 1 && w.ne[0] % be != 0) {
    *why = StrFormat("%s: w %s has K not a multiple of the %s block (%lld)", Name(p),
                     Shape(w).c_str(), plugin::DtypeName(w.dtype), static_cast<long long>(be));
    return false;
  }
  return true;
}

bool CheckOuter(const Prepared& p, std::string* why) {
  const TRef &a = p.in[0], &b = p.in[1], &o = p.out;
  if (!WantF32(p, o, "the output", why) || !WantF32(p, a, "a", why) || !WantF32(p, b, "b", why) ||
      (p.has[2] && !WantF32(p, p.in[2], "acc", why))) {
    return false;
  }
  if (!WantDims(p, o, 2, "the output", why) || !WantDims(p, a, 2, "a", why) ||
      !WantDims(p, b, 2, "b", why) || (p.has[2] && !WantDims(p, p.in[2], 2, "acc", why))) {
    return false;
  }
  if (a.ne[1] != b.ne[1] || o.ne[0] != a.ne[0] || o.ne[1] != b.ne[0]) {
    *why = StrFormat("%s: a %s, b %s, out %s; want a [N, T], b [P, T], out [N, P]", Name(p),
                     Shape(a).c_str(), Shape(b).c_str(), Shape(o).c_str());
    return false;
  }
  return (!p.has[2] || WantSame(p, o, p.in[2], "acc", why)) && NotAliased(p, 0, "a", why) &&
         NotAliased(p, 1, "b", why);
}

bool CheckRmsNormBack(const Prepared& p, std::string* why) {
  const TRef &x = p.in[0], &dy = p.in[1];
  if (!WantF32(p, p.out, "the output", why) || !WantF32(p, x, "x", why) ||
      !WantF32(p, dy, "dy", why) || !WantSame(p, x, dy, "dy", why) ||
      !WantSame(p, x, p.out, "the output", why)) {
    return false;
  }
  if (p.has[2] && (!WantF32(p, p.in[2], "w", why) || !WantVector(p, p.in[2], x.ne[0], "w", why))) {
    return false;
  }
  const float eps = p.Params<hearth_rms_norm_params>().eps;
  return WantParam(p, std::isfinite(eps) && eps >= 0.0f, "eps", eps, "a finite value >= 0", why);
}

bool CheckRopeBack(const Prepared& p, std::string* why) {
  const TRef &dy = p.in[0], &pos = p.in[1];
  if (!WantF32(p, p.out, "the output", why) || !WantF32(p, dy, "dy", why) ||
      !WantI32(p, pos, "pos", why) || !WantSame(p, dy, p.out, "the output", why) ||
      !WantDims(p, dy, 3, "dy", why) || !WantVector(p, pos, dy.ne[2], "pos", why)) {
    return false;
  }
  const hearth_rope_params rp = p.Params<hearth_rope_params>();
  if (rp.n_rot < 2 || rp.n_rot % 2 != 0 || rp.n_rot > dy.ne[0]) {
    *why = StrFormat("%s: n_rot is %d; want an even number in [2, head_dim = %lld]", Name(p),
                     rp.n_rot, static_cast<long long>(dy.ne[0]));
    return false;
  }
  if (rp.mode != HEARTH_ROPE_NORMAL && rp.mode != HEARTH_ROPE_NEOX) {
    *why = StrFormat("%s: mode is %d; want %d (normal) or %d (neox)", Name(p), rp.mode,
                     HEARTH_ROPE_NORMAL, HEARTH_ROPE_NEOX);
    return false;
  }
  if (!WantParam(p, std::isfinite(rp.theta_base) && rp.theta_base > 0.0f, "theta_base",
                 rp.theta_base, "a finite value > 0", why) ||
      !WantParam(p, std::isfinite(rp.freq_scale) && rp.freq_scale > 0.0f, "freq_scale",
                 rp.freq_scale, "a finite value > 0", why)) {
    return false;
  }
  return !p.has[2] || (WantF32(p, p.in[2], "freq_factors", why) &&
                       WantVector(p, p.in[2], rp.n_rot / 2, "freq_factors", why) &&
                       NotAliased(p, 2, "freq_factors", why));
}

bool CheckGatedBack(const Prepared& p, std::string* why) {
  const TRef &g = p.in[0], &u = p.in[1], &dy = p.in[2];
  return WantExtra(p, 0, "dup", why) && WantF32(p, p.out, "dgate", why) &&
         WantF32(p, p.extra[0], "dup", why) && WantF32(p, g, "gate", why) &&
         WantF32(p, u, "up", why) && WantF32(p, dy, "dy", why) && WantSame(p, g, u, "up", why) &&
         WantSame(p, g, dy, "dy", why) && WantSame(p, g, p.out, "dgate", why) &&
         WantSame(p, g, p.extra[0], "dup", why);
}

bool CheckCrossEntropy(const Prepared& p, std::string* why) {
  const TRef &logits = p.in[0], &targets = p.in[1];
  if (!WantF32(p, p.out, "the output", why) || !WantF32(p, logits, "logits", why) ||
      !WantI32(p, targets, "targets", why) || !WantDims(p, logits, 2, "logits", why) ||
      !WantVector(p, targets, logits.ne[1], "targets", why)) {
    return false;
  }
  if (p.op == HEARTH_OP_CROSS_ENTROPY) return WantVector(p, p.out, logits.ne[1], "the output", why);
  const float scale = p.Params<hearth_cross_entropy_back_params>().scale;
  return WantSame(p, logits, p.out, "the output", why) &&
         WantParam(p, std::isfinite(scale), "scale", scale, "a finite value", why);
}

bool CheckAdamW(const Prepared& p, std::string* why) {
  const char* names[4] = {"p", "grad", "m", "v"};
  if (!WantExtra(p, 0, "m'", why) || !WantExtra(p, 1, "v'", why) || !WantF32(p, p.out, "p'", why) ||
      !WantF32(p, p.extra[0], "m'", why) || !WantF32(p, p.extra[1], "v'", why) ||
      !WantSame(p, p.in[0], p.out, "p'", why) || !WantSame(p, p.in[0], p.extra[0], "m'", why) ||
      !WantSame(p, p.in[0], p.extra[1], "v'", why)) {
    return false;
  }
  for (int i = 0; i < 4; ++i) {
    if (!WantF32(p, p.in[i], names[i], why) || !WantSame(p, p.in[0], p.in[i], names[i], why)) {
      return false;
    }
  }
  const hearth_adamw_params h = p.Params<hearth_adamw_params>();
  auto finite = [](float v) { return std::isfinite(v); };
  return WantParam(p, finite(h.lr), "lr", h.lr, "a finite value", why) &&
         WantParam(p, h.beta1 >= 0.0f && h.beta1 < 1.0f, "beta1", h.beta1, "a value in [0, 1)",
                   why) &&
         WantParam(p, h.beta2 >= 0.0f && h.beta2 < 1.0f, "beta2", h.beta2, "a value in [0, 1)",
                   why) &&
         WantParam(p, finite(h.eps) && h.eps >= 0.0f, "eps", h.eps, "a finite value >= 0", why) &&
         WantParam(p, finite(h.weight_decay), "weight_decay", h.weight_decay, "a finite value",
                   why) &&
         WantParam(p, finite(h.bias_correction1) && h.bias_correction1 > 0.0f, "bias_correction1",
                   h.bias_correction1, "a finite value > 0 (1 - beta1^t)", why) &&
         WantParam(p, finite(h.bias_correction2) && h.bias_correction2 > 0.0f, "bias_correction2",
                   h.bias_correction2, "a finite value > 0 (1 - beta2^t)", why) &&
         WantParam(p, finite(h.grad_scale), "grad_scale", h.grad_scale,
                   "a finite value (0 reads as 1)", why);
}

bool CheckSumSq(const Prepared& p, std::string* why) {
  if (!WantF32(p, p.out, "the output", why) || !WantF32(p, p.in[0], "x", why)) return false;
  if (dev::Elems(p.out) != 1) {
    *why = StrFormat("%s: the output is %s; want one element", Name(p), Shape(p.out).c_str());
    return false;
  }
  return true;
}

bool CheckDropout(const Prepared& p, std::string* why) {
  if (!WantF32(p, p.out, "the output", why) || !WantF32(p, p.in[0], "x", why) ||
      !WantSame(p, p.in[0], p.out, "the output", why)) {
    return false;
  }
  if (p.has[1]) {
    if (!WantI32(p, p.in[1], "offset", why)) return false;
    if (dev::Elems(p.in[1]) != 2) {
      *why = StrFormat("%s: offset is %s; want 2 elements", Name(p), Shape(p.in[1]).c_str());
      return false;
    }
  }
  const float prob = p.Params<hearth_dropout_params>().p;
  return WantParam(p, prob >= 0.0f && prob < 1.0f, "p", prob, "a probability in [0, 1)", why);
}

bool CheckAttentionBack(const Prepared& p, std::string* why) {
  const char* names[6] = {"q", "k", "v", "o", "do", "lse"};
  if (!WantExtra(p, 0, "dk", why) || !WantExtra(p, 1, "dv", why) || !WantF32(p, p.out, "dq", why) ||
      !WantF32(p, p.extra[0], "dk", why) || !WantF32(p, p.extra[1], "dv", why) ||
      !WantI32(p, p.in[6], "pos", why) || (p.has[7] && !WantI32(p, p.in[7], "seq", why))) {
    return false;
  }
  for (int i = 0; i < 6; ++i) {
    if (!WantF32(p, p.in[i], names[i], why)) return false;
  }
  const TRef &q = p.in[0], &k = p.in[1], &v = p.in[2];
  const int64_t dk = q.ne[0], H = q.ne[1], T = q.ne[2], dv = v.ne[0], Hkv = k.ne[1];
  auto shape = [&](const TRef& t, int64_t a0, int64_t a1, int64_t a2, const char* what) {
    if (t.ne[0] == a0 && t.ne[1] == a1 && t.ne[2] == a2 && t.ne[3] == 1) return true;
    *why = StrFormat("%s: %s is %s, want [%lld, %lld, %lld, 1]", Name(p), what, Shape(t).c_str(),
                     static_cast<long long>(a0), static_cast<long long>(a1),
                     static_cast<long long>(a2));
    return false;
  };
  if (!WantDims(p, q, 3, "q", why) || !shape(k, dk, Hkv, T, "k") || !shape(v, dv, Hkv, T, "v") ||
      !shape(p.in[3], dv, H, T, "o") || !shape(p.in[4], dv, H, T, "do") ||
      !shape(p.in[5], H, T, 1, "lse") || !WantVector(p, p.in[6], T, "pos", why) ||
      (p.has[7] && !WantVector(p, p.in[7], T, "seq", why)) || !shape(p.out, dk, H, T, "dq") ||
      !shape(p.extra[0], dk, Hkv, T, "dk") || !shape(p.extra[1], dv, Hkv, T, "dv")) {
    return false;
  }
  if (Hkv < 1 || H % Hkv != 0) {
    *why = StrFormat("%s: n_head %lld (q ne[1]) is not a multiple of n_head_kv %lld (k ne[1])",
                     Name(p), static_cast<long long>(H), static_cast<long long>(Hkv));
    return false;
  }
  if (dk > kMaxAttentionDv || dv > kMaxAttentionDv) {
    *why = StrFormat("%s: head_dim %lld, head_dim_v %lld: this plugin implements up to %lld",
                     Name(p), static_cast<long long>(dk), static_cast<long long>(dv),
                     static_cast<long long>(kMaxAttentionDv));
    return false;
  }
  const hearth_attention_params ap = p.Params<hearth_attention_params>();
  return WantParam(p, std::isfinite(ap.scale), "scale", ap.scale, "a finite value", why) &&
         WantParam(p, ap.softcap >= 0.0f && std::isfinite(ap.softcap), "softcap", ap.softcap,
                   "0 (none) or a finite value > 0", why) &&
         WantParam(p, ap.window >= 0, "window", static_cast<float>(ap.window), "0 (none) or > 0",
                   why);
}

}  // namespace

bool IsTrainOp(uint32_t op) { return op >= HEARTH_OP_LORA_MUL_MAT && op < HEARTH_OP_COUNT_; }

bool CheckTrainOp(const Prepared& p, std::string* why) {
  switch (p.op) {
    case HEARTH_OP_LORA_MUL_MAT:
      return CheckLora(p, why);
    case HEARTH_OP_MUL_MAT_T:
      return CheckMulMatT(p, why);
    case HEARTH_OP_OUTER:
      return CheckOuter(p, why);
    case HEARTH_OP_RMS_NORM_BACK:
      return CheckRmsNormBack(p, why);
    case HEARTH_OP_ROPE_BACK:
      return CheckRopeBack(p, why);
    case HEARTH_OP_SILU_MUL_BACK:
    case HEARTH_OP_GELU_MUL_BACK:
      return CheckGatedBack(p, why);
    case HEARTH_OP_CROSS_ENTROPY:
    case HEARTH_OP_CROSS_ENTROPY_BACK:
      return CheckCrossEntropy(p, why);
    case HEARTH_OP_ADAMW_STEP:
      return CheckAdamW(p, why);
    case HEARTH_OP_SUM_SQ:
      return CheckSumSq(p, why);
    case HEARTH_OP_DROPOUT:
      return CheckDropout(p, why);
    case HEARTH_OP_ATTENTION_BACK:
      return CheckAttentionBack(p, why);
    default:
      *why = StrFormat("%s is not implemented by this plugin yet", Name(p));
      return false;
  }
}

Error LaunchTrainOp(Stream s, const Prepared& p, int* flag, int flag_value) {
  const TRef none;
  const TRef& o = p.out;
  switch (p.op) {
    case HEARTH_OP_LORA_MUL_MAT: {
      const int64_t m_chunks = (o.ne[0] + kBlock - 1) / kBlock;
      GPU_LAUNCH(KLora, Dim3(GridFor(m_chunks * o.ne[1], 1)), Dim3(kBlock), s, o, p.in[0], p.in[1],
                 p.in[2], p.in[3], p.has[4] ? p.in[4] : none, p.has[4] ? 1 : 0,
                 p.Params<hearth_scale_params>().scale, m_chunks);
      return LastError();
    }
    case HEARTH_OP_MUL_MAT_T: {
      const int64_t t_chunks = (o.ne[1] + kTokens - 1) / kTokens;
      GPU_LAUNCH(KMulMatT, Dim3(GridFor(o.ne[0] * t_chunks * o.ne[2] * o.ne[3], kBlock)),
                 Dim3(kBlock), s, o, p.in[0], p.in[1], t_chunks);
      return LastError();
    }
    case HEARTH_OP_OUTER:
      GPU_LAUNCH(KOuter, Dim3(GridFor(o.ne[0] * o.ne[1], kBlock)), Dim3(kBlock), s, o, p.in[0],
                 p.in[1], p.has[2] ? p.in[2] : none, p.has[2] ? 1 : 0);
      return LastError();
    case HEARTH_OP_RMS_NORM_BACK:
      GPU_LAUNCH(KRmsNormBack, Dim3(GridFor(Rows(p.in[0]), 1)), Dim3(kBlock), s, o, p.in[0],
                 p.in[1], p.has[2] ? p.in[2] : none, p.has[2] ? 1 : 0,
                 p.Params<hearth_rms_norm_params>().eps);
      return LastError();
    case HEARTH_OP_ROPE_BACK: {
      // The inverse rotation: ROPE's kernel with every angle negated.
      const hearth_rope_params rp = p.Params<hearth_rope_params>();
      return LaunchRope(s, o, p.in[0], p.in[1], p.has[2] ? &p.in[2] : nullptr, rp.theta_base,
                        -rp.freq_scale, rp.n_rot, rp.mode);
    }
    case HEARTH_OP_SILU_MUL_BACK:
    case HEARTH_OP_GELU_MUL_BACK:
      GPU_LAUNCH(KGatedBack, Dim3(GridFor(Elems(p.in[0]), kBlock)), Dim3(kBlock), s, o, p.extra[0],
                 p.in[0], p.in[1], p.in[2], p.op == HEARTH_OP_GELU_MUL_BACK ? 1 : 0);
      return LastError();
    case HEARTH_OP_CROSS_ENTROPY:
    case HEARTH_OP_CROSS_ENTROPY_BACK: {
      int32_t ignore = 0;
      const int has_ignore = IgnoreIndex(p, &ignore) ? 1 : 0;
      if (p.op == HEARTH_OP_CROSS_ENTROPY) {
        GPU_LAUNCH(KCrossEntropy, Dim3(GridFor(p.in[0].ne[1], 1)), Dim3(kBlock), s, o, p.in[0],
                   p.in[1], has_ignore, ignore, flag, flag_value);
      } else {
        GPU_LAUNCH(KCrossEntropyBack, Dim3(GridFor(p.in[0].ne[1], 1)), Dim3(kBlock), s, o, p.in[0],
                   p.in[1], has_ignore, ignore, p.Params<hearth_cross_entropy_back_params>().scale,
                   flag, flag_value);
      }
      return LastError();
    }
    case HEARTH_OP_ADAMW_STEP: {
      const hearth_adamw_params h = p.Params<hearth_adamw_params>();
      AdamW a;
      a.lr = h.lr;
      a.b1 = h.beta1;
      a.b2 = h.beta2;
      a.eps = h.eps;
      a.wd = h.weight_decay;
      a.inv_c1 = 1.0f / h.bias_correction1;
      a.inv_c2 = 1.0f / h.bias_correction2;
      a.gs = h.grad_scale == 0.0f ? 1.0f : h.grad_scale;
      GPU_LAUNCH(KAdamW, Dim3(GridFor(Elems(p.in[0]), kBlock)), Dim3(kBlock), s, o, p.extra[0],
                 p.extra[1], p.in[0], p.in[1], p.in[2], p.in[3], a);
      return LastError();
    }
    case HEARTH_OP_SUM_SQ:
      GPU_LAUNCH(KSumSq, Dim3(1), Dim3(kBlock), s, o, p.in[0]);
      return LastError();
    case HEARTH_OP_DROPOUT: {
      const hearth_dropout_params dp = p.Params<hearth_dropout_params>();
      const auto threshold = static_cast<uint32_t>(static_cast<double>(dp.p) * 4294967296.0);
      const auto scale = static_cast<float>(1.0 / (1.0 - static_cast<double>(dp.p)));
      GPU_LAUNCH(KDropout, Dim3(GridFor(Elems(p.in[0]), kBlock)), Dim3(kBlock), s, o, p.in[0],
                 p.has[1] ? p.in[1] : none, p.has[1] ? 1 : 0, dp.seed, threshold, scale);
      return LastError();
    }
    case HEARTH_OP_ATTENTION_BACK: {
      // The check of pos and seq, then dq, then dk and dv; the last two do
      // nothing after a raised flag.
      const hearth_attention_params ap = p.Params<hearth_attention_params>();
      AttnBack a;
      a.q = p.in[0], a.k = p.in[1], a.v = p.in[2], a.o = p.in[3], a.dout = p.in[4];
      a.lse = p.in[5], a.pos = p.in[6], a.seq = p.has[7] ? p.in[7] : none;
      a.has_seq = p.has[7] ? 1 : 0;
      a.scale = ap.scale, a.softcap = ap.softcap, a.window = ap.window;
      const int64_t T = a.q.ne[2];
      GPU_LAUNCH(KAttnBackCheck, Dim3(GridFor(T, kBlock)), Dim3(kBlock), s, a, flag, flag_value);
      Error e = LastError();
      if (e != kSuccess) return e;
      GPU_LAUNCH(KAttnBackDq, Dim3(GridFor(a.q.ne[1] * T, 1)), Dim3(kBlock), s, o, a, flag);
      e = LastError();
      if (e != kSuccess) return e;
      GPU_LAUNCH(KAttnBackDkv, Dim3(GridFor(a.k.ne[1] * T, 1)), Dim3(kBlock), s, p.extra[0],
                 p.extra[1], a, flag);
      return LastError();
    }
    default:
      return kSuccess;
  }
}

}  // namespace hearth::gpu
