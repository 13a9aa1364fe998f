// gpu_kernels.cu — hearth's GPU kernels, one source for CUDA, HIP and the
// emulator (gpu_port.h). Every kernel takes every stride the ABI allows.
// The products read weights a 32-weight unit at a time (one dequantization
// serves all tokens of a launch, or of a 64-token tile for prompts); the
// other ops are written for exactness first: a block of kBlock threads per
// row, reductions through shared memory.
#include <cmath>

#include "backends/gpu/gpu_device.h"
#include "backends/gpu/gpu_kernels.h"

namespace hearth::gpu {
namespace {

using namespace dev;  // NOLINT: the kernels' vocabulary

// ----------------------------------------------------------------- kernels

GPU_KERNEL void KElementwise(int op, TRef out, TRef a, TRef b, float scale) {
  const int64_t n = out.ne[0] * out.ne[1] * out.ne[2] * out.ne[3];
  const int64_t stride = static_cast<int64_t>(GridDimX()) * BlockDimX();
  for (int64_t e = static_cast<int64_t>(BlockX()) * BlockDimX() + ThreadX(); e < n; e += stride) {
    const int64_t i0 = e % out.ne[0], r = e / out.ne[0];
    const int64_t i1 = r % out.ne[1], i2 = r / out.ne[1] % out.ne[2],
                  i3 = r / out.ne[1] / out.ne[2];
    const float x = LoadF(a, i0, i1, i2, i3);
    float y;
    switch (static_cast<ElemOp>(op)) {
      case ElemOp::kScale:
        y = x * scale;
        break;
      case ElemOp::kCopy:
        y = x;
        break;
      default: {
        const float v = LoadF(b, b.ne[0] == 1 ? 0 : i0, b.ne[1] == 1 ? 0 : i1,
                              b.ne[2] == 1 ? 0 : i2, b.ne[3] == 1 ? 0 : i3);
        const ElemOp o = static_cast<ElemOp>(op);
        y = o == ElemOp::kAdd       ? x + v
            : o == ElemOp::kMul     ? x * v
            : o == ElemOp::kSiluMul ? Silu(x) * v
                                    : GeluTanh(x) * v;
      }
    }
    StorePlain(At(out, i0, i1, i2, i3), out.dtype, y);
  }
}

GPU_KERNEL void KRmsNorm(TRef out, TRef x, TRef w, int has_w, float eps) {
  GPU_SHARED float buf[kBlock];
  const int64_t D = x.ne[0], rows = x.ne[1] * x.ne[2] * x.ne[3];
  for (int64_t r = BlockX(); r < rows; r += GridDimX()) {
    const int64_t i1 = r % x.ne[1], i2 = r / x.ne[1] % x.ne[2], i3 = r / x.ne[1] / x.ne[2];
    float ss = 0;
    for (int64_t i = ThreadX(); i < D; i += kBlock) {
      const float v = LoadF(x, i, i1, i2, i3);
      ss += v * v;
    }
    ss = BlockSum(ss, buf);
    const float inv = 1.0f / sqrtf(ss / static_cast<float>(D) + eps);
    for (int64_t i = ThreadX(); i < D; i += kBlock) {
      float v = LoadF(x, i, i1, i2, i3) * inv;
      if (has_w) v *= LoadF(w, i, 0, 0, 0);
      StorePlain(At(out, i, i1, i2, i3), out.dtype, v);
    }
  }
}

GPU_KERNEL void KSoftmax(TRef out, TRef x, float scale) {
  GPU_SHARED float buf[kBlock];
  const int64_t D = x.ne[0], rows = x.ne[1] * x.ne[2] * x.ne[3];
  for (int64_t r = BlockX(); r < rows; r += GridDimX()) {
    const int64_t i1 = r % x.ne[1], i2 = r / x.ne[1] % x.ne[2], i3 = r / x.ne[1] / x.ne[2];
    float mx, sum;
    RowMaxExpSum(x, i1, i2, i3, scale, buf, &mx, &sum);
    const float inv = 1.0f / sum;
    for (int64_t i = ThreadX(); i < D; i += kBlock) {
      StorePlain(At(out, i, i1, i2, i3), out.dtype,
                 expf(LoadF(x, i, i1, i2, i3) * scale - mx) * inv);
    }
  }
}

GPU_KERNEL void KGetRows(TRef out, TRef table, TRef ids, int* flag, int flag_value) {
  const int64_t D = out.ne[0], T = out.ne[1];
  for (int64_t t = BlockX(); t < T; t += GridDimX()) {
    const int32_t id = LoadI32(ids, t);
    if (id < 0 || id >= table.ne[1]) {
      if (ThreadX() == 0) RaiseFlag(flag, flag_value);
      continue;
    }
    const uint8_t* row = table.data + id * table.nb[1];
    for (int64_t i = ThreadX(); i < D; i += kBlock) {
      StorePlain(At(out, i, t, 0, 0), out.dtype, WeightElem(row, table.dtype, table.nb[0], i));
    }
  }
}

// MUL_MAT, few tokens (decode, small batches): kVecLanes threads per weight
// row, kVecRows rows per block. Lane l reads units l, l + kVecLanes, … of its
// row, so the lanes of a row read adjacent blocks (one stretch of memory per
// step), dequantizes each unit once and applies it to every token; the
// lanes' sums are added through shared memory. The lane group is this
// kernel's choice, not the warp: nothing here depends on the warp width.
constexpr int kVecT = 8;
constexpr unsigned kVecLanes = 32;
constexpr unsigned kVecRows = kBlock / kVecLanes;

GPU_KERNEL void KMulMatVec(TRef out, TRef w, TRef x, int64_t n_groups) {
  GPU_SHARED float red[kVecT][kBlock];
  const int64_t K = x.ne[0], T = x.ne[1], M = out.ne[0];
  const int64_t units = (K + kUnit - 1) / kUnit;
  const int64_t total = n_groups * x.ne[2] * x.ne[3];
  const unsigned tid = ThreadX(), lane = tid % kVecLanes;
  for (int64_t item = BlockX(); item < total; item += GridDimX()) {
    const int64_t b = item / n_groups, i2 = b % x.ne[2], i3 = b / x.ne[2];
    const int64_t m = item % n_groups * kVecRows + tid / kVecLanes;
    float acc[kVecT];
    for (int j = 0; j < kVecT; ++j) acc[j] = 0;
    if (m < M) {
      const uint8_t* wrow = WeightRow(w, m, i2, i3);
      for (int64_t u = lane; u < units; u += kVecLanes) {
        float wv[kUnit];
        DequantUnit(wrow, w.dtype, w.nb[0], u, K, wv);
        const int64_t k0 = u * kUnit;
        const int n = static_cast<int>(K - k0 < kUnit ? K - k0 : kUnit);
        for (int j = 0; j < kVecT; ++j) {
          if (j >= T) break;
          float s = 0;
          for (int i = 0; i < n; ++i) s += wv[i] * LoadF(x, k0 + i, j, i2, i3);
          acc[j] += s;
        }
      }
    }
    for (int j = 0; j < kVecT; ++j) red[j][tid] = acc[j];
    SyncThreads();
    for (unsigned s = kVecLanes / 2; s > 0; s >>= 1) {
      if (lane < s) {
        for (int j = 0; j < kVecT; ++j) red[j][tid] += red[j][tid + s];
      }
      SyncThreads();
    }
    if (m < M && lane < T) StorePlain(At(out, m, lane, i2, i3), out.dtype, red[lane][tid - lane]);
    SyncThreads();  // red is reused by the next item
  }
}

// MUL_MAT, many tokens (prompts, training): a block computes a kTileM x
// kTileN tile of out (rows of w x tokens), each thread a 4 x 4 part of it.
// Per unit of K, the first kTileM threads dequantize one weight row's unit
// each into ws and the others load the tokens' 32 values into xs; then every
// thread adds its 4 x 4 outer products from shared memory. Each weight is
// dequantized once per tile of tokens instead of once per token.
constexpr int kTileM = 64, kTileN = 64, kSub = 4;
constexpr int kTilePad = 4;  // columns past the tile: spreads ws/xs writes over banks
static_assert(kTileM / kSub * (kTileN / kSub) == static_cast<int>(kBlock), "a 4x4 part per thread");
static_assert(kTileM < static_cast<int>(kBlock), "some threads load x");

GPU_KERNEL void KMulMatTiled(TRef out, TRef w, TRef x, int64_t m_tiles, int64_t n_tiles) {
  GPU_SHARED float ws[kUnit][kTileM + kTilePad];
  GPU_SHARED float xs[kUnit][kTileN + kTilePad];
  const int64_t K = x.ne[0], T = x.ne[1], M = out.ne[0];
  const int64_t units = (K + kUnit - 1) / kUnit;
  const int64_t total = m_tiles * n_tiles * x.ne[2] * x.ne[3];
  const unsigned tid = ThreadX();
  const int tm = static_cast<int>(tid % (kTileM / kSub)) * kSub;
  const int tn = static_cast<int>(tid / (kTileM / kSub)) * kSub;
  for (int64_t item = BlockX(); item < total; item += GridDimX()) {
    const int64_t m0 = item % m_tiles * kTileM, r = item / m_tiles;
    const int64_t n0 = r % n_tiles * kTileN, b = r / n_tiles;
    const int64_t i2 = b % x.ne[2], i3 = b / x.ne[2];
    float acc[kSub][kSub];
    for (int i = 0; i < kSub; ++i) {
      for (int j = 0; j < kSub; ++j) acc[i][j] = 0;
    }
    for (int64_t u = 0; u < units; ++u) {
      const int64_t k0 = u * kUnit;
      if (tid < static_cast<unsigned>(kTileM)) {
        float wv[kUnit];
        const int64_t m = m0 + tid;
        if (m < M) {
          DequantUnit(WeightRow(w, m, i2, i3), w.dtype, w.nb[0], u, K, wv);
        } else {
          for (int i = 0; i < kUnit; ++i) wv[i] = 0;
        }
        for (int i = 0; i < kUnit; ++i) ws[i][tid] = wv[i];
      } else {
        const int64_t n = K - k0 < kUnit ? K - k0 : kUnit;
        for (unsigned e = tid - kTileM; e < static_cast<unsigned>(kUnit * kTileN);
             e += kBlock - kTileM) {
          const int kk = static_cast<int>(e % kUnit), j = static_cast<int>(e / kUnit);
          const int64_t t = n0 + j;
          xs[kk][j] = kk < n && t < T ? LoadF(x, k0 + kk, t, i2, i3) : 0.0f;
        }
      }
      SyncThreads();
      for (int kk = 0; kk < kUnit; ++kk) {
        float a[kSub], c[kSub];
        for (int i = 0; i < kSub; ++i) a[i] = ws[kk][tm + i];
        for (int j = 0; j < kSub; ++j) c[j] = xs[kk][tn + j];
        for (int i = 0; i < kSub; ++i) {
          for (int j = 0; j < kSub; ++j) acc[i][j] += a[i] * c[j];
        }
      }
      SyncThreads();  // ws and xs are refilled by the next unit
    }
    for (int i = 0; i < kSub; ++i) {
      for (int j = 0; j < kSub; ++j) {
        const int64_t m = m0 + tm + i, t = n0 + tn + j;
        if (m < M && t < T) StorePlain(At(out, m, t, i2, i3), out.dtype, acc[i][j]);
      }
    }
  }
}

// Pairs first (each thread rotates both elements of its pair, so in place is
// safe), then the dimensions past n_rot, copied.
GPU_KERNEL void KRope(TRef out, TRef x, TRef pos, TRef ff, int has_ff, float theta_base,
                      float freq_scale, int n_rot, int neox) {
  const int64_t hd = x.ne[0], nh = x.ne[1], T = x.ne[2];
  const int64_t half = n_rot / 2;
  const int64_t n_pairs = half * nh * T, n_rest = (hd - n_rot) * nh * T;
  const int64_t stride = static_cast<int64_t>(GridDimX()) * BlockDimX();
  for (int64_t e = static_cast<int64_t>(BlockX()) * BlockDimX() + ThreadX(); e < n_pairs + n_rest;
       e += stride) {
    if (e < n_pairs) {
      const int64_t p = e % half, h = e / half % nh, t = e / half / nh;
      const int64_t ia = neox ? p : 2 * p, ib = neox ? p + half : 2 * p + 1;
      float theta = static_cast<float>(LoadI32(pos, t)) * freq_scale *
                    powf(theta_base, -2.0f * static_cast<float>(p) / static_cast<float>(n_rot));
      if (has_ff) theta /= LoadF(ff, p, 0, 0, 0);
      const float c = cosf(theta), s = sinf(theta);
      const float xa = LoadF(x, ia, h, t, 0), xb = LoadF(x, ib, h, t, 0);
      StorePlain(At(out, ia, h, t, 0), out.dtype, xa * c - xb * s);
      StorePlain(At(out, ib, h, t, 0), out.dtype, xa * s + xb * c);
    } else {
      const int64_t q = e - n_pairs, rest = hd - n_rot;
      const int64_t i = n_rot + q % rest, h = q / rest % nh, t = q / rest / nh;
      StorePlain(At(out, i, h, t, 0), out.dtype, LoadF(x, i, h, t, 0));
    }
  }
}

// ---------------------------------------------------------------- attention

// The (i2, i3)-addressed row of cache row j of sequence s, kv head g.
GPU_FN uint8_t* CacheRow(const AttentionArgs& a, const TRef& cache, int64_t s, int64_t j,
                         int64_t g) {
  if (a.has_blocks) {
    const int64_t bs = cache.ne[2];
    const int32_t page = *reinterpret_cast<const int32_t*>(
        a.blocks.data + (j / bs) * a.blocks.nb[0] + s * a.blocks.nb[1]);
    return cache.data + g * cache.nb[1] + (j % bs) * cache.nb[2] + page * cache.nb[3];
  }
  return cache.data + g * cache.nb[1] + j * cache.nb[2] + s * cache.nb[3];
}

GPU_FN int64_t TokenSeq(const AttentionArgs& a, int64_t t) {
  return a.has_seq ? LoadI32(a.seq, t) : 0;
}

GPU_KERNEL void KAttnCheck(AttentionArgs a, int* flag, int flag_value) {
  const int64_t T = a.q.ne[2];
  const int64_t n_seq = a.has_blocks ? a.blocks.ne[1] : a.k_cache.ne[3];
  const int64_t bs = a.k_cache.ne[2];
  const int64_t capacity = a.has_blocks ? a.blocks.ne[0] * bs : bs;
  const int64_t stride = static_cast<int64_t>(GridDimX()) * BlockDimX();
  for (int64_t t = static_cast<int64_t>(BlockX()) * BlockDimX() + ThreadX(); t < T; t += stride) {
    const int64_t s = TokenSeq(a, t), p = LoadI32(a.pos, t);
    if (s < 0 || s >= n_seq || p < 0 || p >= capacity) {
      RaiseFlag(flag, flag_value);
      continue;
    }
    if (a.has_blocks) {
      for (int64_t b = 0; b <= p / bs; ++b) {
        const int32_t page = *reinterpret_cast<const int32_t*>(a.blocks.data + b * a.blocks.nb[0] +
                                                               s * a.blocks.nb[1]);
        if (page < 0 || page >= a.k_cache.ne[3]) {
          RaiseFlag(flag, flag_value);
          break;
        }
      }
    }
  }
}

// One thread per (dim, kv head) of k, then of v, each walking the tokens in
// order so a row two tokens share ends with the later one.
GPU_KERNEL void KAttnStore(AttentionArgs a, const int* flag) {
  if (*flag != 0) return;
  const int64_t dk = a.k.ne[0], dv = a.v.ne[0], nkv = a.k.ne[1], T = a.k.ne[2];
  const int64_t n_items = (dk + dv) * nkv;
  const int64_t stride = static_cast<int64_t>(GridDimX()) * BlockDimX();
  for (int64_t e = static_cast<int64_t>(BlockX()) * BlockDimX() + ThreadX(); e < n_items;
       e += stride) {
    const bool is_k = e < dk * nkv;
    const int64_t r = is_k ? e : e - dk * nkv, width = is_k ? dk : dv;
    const int64_t d = r % width, g = r / width;
    const TRef& src = is_k ? a.k : a.v;
    const TRef& cache = is_k ? a.k_cache : a.v_cache;
    for (int64_t t = 0; t < T; ++t) {
      uint8_t* row = CacheRow(a, cache, TokenSeq(a, t), LoadI32(a.pos, t), g);
      StorePlain(row + d * cache.nb[0], cache.dtype, LoadF(src, d, g, t, 0));
    }
  }
}

constexpr int kDvPerThread = static_cast<int>(kMaxAttentionDv / kBlock);

// kBlock-row chunks covering the rows one sequence can hold.
GPU_HOST_FN int64_t CacheChunks(const AttentionArgs& a) {
  const int64_t rows = a.has_blocks ? a.blocks.ne[0] * a.k_cache.ne[2] : a.k_cache.ne[2];
  return (rows + kBlock - 1) / kBlock;
}

// Cache rows per split: whole chunks, n_split ranges covering the capacity
// (with n_split == 1 one range past every position).
GPU_FN int64_t SplitRows(const AttentionArgs& a, int64_t n_split) {
  return (CacheChunks(a) + n_split - 1) / n_split * kBlock;
}

// Block w is (token, head) item w / n_split, split w % n_split: the visible
// rows of that split. With n_split == 1 it writes the output (and lse);
// otherwise its partial result, [m, l, acc[dv]] per (item, split), to work.
GPU_KERNEL void KAttnAttend(AttentionArgs a, int64_t n_split, float* work, const int* flag) {
  GPU_SHARED float sc[kBlock];
  GPU_SHARED float red[kBlock];
  if (*flag != 0) return;
  const int64_t dk = a.q.ne[0], nh = a.q.ne[1], T = a.q.ne[2], dv = a.out.ne[0];
  const int64_t group = nh / a.k_cache.ne[1];
  const int64_t split_rows = SplitRows(a, n_split);
  const unsigned tid = ThreadX();
  for (int64_t w = BlockX(); w < nh * T * n_split; w += GridDimX()) {
    const int64_t item = w / n_split, sp = w % n_split;
    const int64_t h = item % nh, t = item / nh, g = h / group;
    const int64_t s = TokenSeq(a, t), ps = LoadI32(a.pos, t);
    const int64_t first = a.window > 0 && ps - a.window + 1 > 0 ? ps - a.window + 1 : 0;
    const int64_t lo = first > sp * split_rows ? first : sp * split_rows;
    const int64_t hi = ps + 1 < (sp + 1) * split_rows ? ps + 1 : (sp + 1) * split_rows;
    const int64_t len = hi - lo;  // may be <= 0 for a split: m = -inf, l = 0
    float m = -INFINITY, l = 0;
    float acc[kDvPerThread];
    for (int r = 0; r < kDvPerThread; ++r) acc[r] = 0;
    for (int64_t c0 = 0; c0 < len; c0 += kBlock) {
      float sj = -INFINITY;
      if (c0 + tid < len) {
        const uint8_t* krow = CacheRow(a, a.k_cache, s, lo + c0 + tid, g);
        float dot = 0;
        for (int64_t d = 0; d < dk; ++d) {
          dot += LoadF(a.q, d, h, t, 0) * LoadPlain(krow + d * a.k_cache.nb[0], a.k_cache.dtype);
        }
        sj = dot * a.scale;
        if (a.softcap > 0) sj = a.softcap * tanhf(sj / a.softcap);
      }
      sc[tid] = sj;
      const float cmax = BlockMax(sj, red);  // its barriers also publish sc
      const float m_new = cmax > m ? cmax : m;
      const float corr = expf(m - m_new);
      const int64_t nj = len - c0 < kBlock ? len - c0 : kBlock;
      float lsum = 0;
      for (int64_t jj = 0; jj < nj; ++jj) lsum += expf(sc[jj] - m_new);
      for (int r = 0; r < kDvPerThread; ++r) {
        const int64_t d = tid + static_cast<int64_t>(r) * kBlock;
        if (d >= dv) break;
        float v = acc[r] * corr;
        for (int64_t jj = 0; jj < nj; ++jj) {
          const uint8_t* vrow = CacheRow(a, a.v_cache, s, lo + c0 + jj, g);
          v += expf(sc[jj] - m_new) * LoadPlain(vrow + d * a.v_cache.nb[0], a.v_cache.dtype);
        }
        acc[r] = v;
      }
      l = l * corr + lsum;
      m = m_new;
      SyncThreads();  // sc is refilled by the next chunk
    }
    if (n_split > 1) {
      float* part = work + (item * n_split + sp) * (dv + 2);
      for (int r = 0; r < kDvPerThread; ++r) {
        const int64_t d = tid + static_cast<int64_t>(r) * kBlock;
        if (d >= dv) break;
        part[2 + d] = acc[r];
      }
      if (tid == 0) {
        part[0] = m;
        part[1] = l;
      }
      continue;
    }
    for (int r = 0; r < kDvPerThread; ++r) {
      const int64_t d = tid + static_cast<int64_t>(r) * kBlock;
      if (d >= dv) break;
      StorePlain(At(a.out, d, h, t, 0), a.out.dtype, acc[r] / l);
    }
    if (a.has_lse && tid == 0) StorePlain(At(a.lse, h, t, 0, 0), a.lse.dtype, m + logf(l));
  }
}

// One block per (token, head) item: the splits' partial results rescaled to
// their common max and summed. Every item sees at least its own row, so
// some split has a finite max; empty splits (m = -inf) add nothing.
GPU_KERNEL void KAttnCombine(AttentionArgs a, int64_t n_split, const float* work,
                             const int* flag) {
  if (*flag != 0) return;
  const int64_t nh = a.q.ne[1], T = a.q.ne[2], dv = a.out.ne[0];
  for (int64_t item = BlockX(); item < nh * T; item += GridDimX()) {
    const int64_t h = item % nh, t = item / nh;
    const float* parts = work + item * n_split * (dv + 2);
    float m = -INFINITY;
    for (int64_t sp = 0; sp < n_split; ++sp) {
      const float ms = parts[sp * (dv + 2)];
      m = ms > m ? ms : m;
    }
    float l = 0;
    for (int64_t sp = 0; sp < n_split; ++sp) {
      const float ms = parts[sp * (dv + 2)];
      if (ms != -INFINITY) l += parts[sp * (dv + 2) + 1] * expf(ms - m);
    }
    for (int64_t d = ThreadX(); d < dv; d += kBlock) {
      float v = 0;
      for (int64_t sp = 0; sp < n_split; ++sp) {
        const float ms = parts[sp * (dv + 2)];
        if (ms != -INFINITY) v += parts[sp * (dv + 2) + 2 + d] * expf(ms - m);
      }
      StorePlain(At(a.out, d, h, t, 0), a.out.dtype, v / l);
    }
    if (a.has_lse && ThreadX() == 0) StorePlain(At(a.lse, h, t, 0, 0), a.lse.dtype, m + logf(l));
  }
}

}  // namespace

Error LaunchElementwise(Stream s, ElemOp op, const TRef& out, const TRef& a, const TRef& b,
                        float scale) {
  GPU_LAUNCH(KElementwise, Dim3(GridFor(Elems(out), kBlock)), Dim3(kBlock), s, static_cast<int>(op),
             out, a, b, scale);
  return LastError();
}

Error LaunchRmsNorm(Stream s, const TRef& out, const TRef& x, const TRef* w, float eps) {
  const TRef none;
  GPU_LAUNCH(KRmsNorm, Dim3(GridFor(x.ne[1] * x.ne[2] * x.ne[3], 1)), Dim3(kBlock), s, out, x,
             w ? *w : none, w ? 1 : 0, eps);
  return LastError();
}

Error LaunchSoftmax(Stream s, const TRef& out, const TRef& x, float scale) {
  GPU_LAUNCH(KSoftmax, Dim3(GridFor(x.ne[1] * x.ne[2] * x.ne[3], 1)), Dim3(kBlock), s, out, x,
             scale);
  return LastError();
}

Error LaunchGetRows(Stream s, const TRef& out, const TRef& table, const TRef& ids, int* flag,
                    int flag_value) {
  GPU_LAUNCH(KGetRows, Dim3(GridFor(out.ne[1], 1)), Dim3(kBlock), s, out, table, ids, flag,
             flag_value);
  return LastError();
}

Error LaunchMulMat(Stream s, const TRef& out, const TRef& w, const TRef& x) {
  const int64_t batch = x.ne[2] * x.ne[3];
  if (x.ne[1] <= kVecT) {
    const int64_t n_groups = (out.ne[0] + kVecRows - 1) / kVecRows;
    GPU_LAUNCH(KMulMatVec, Dim3(GridFor(n_groups * batch, 1)), Dim3(kBlock), s, out, w, x,
               n_groups);
  } else {
    const int64_t m_tiles = (out.ne[0] + kTileM - 1) / kTileM;
    const int64_t n_tiles = (x.ne[1] + kTileN - 1) / kTileN;
    GPU_LAUNCH(KMulMatTiled, Dim3(GridFor(m_tiles * n_tiles * batch, 1)), Dim3(kBlock), s, out, w,
               x, m_tiles, n_tiles);
  }
  return LastError();
}

Error LaunchRope(Stream s, const TRef& out, const TRef& x, const TRef& pos, const TRef* ff,
                 float theta_base, float freq_scale, int n_rot, int mode) {
  const TRef none;
  const int64_t items = (n_rot / 2 + (x.ne[0] - n_rot)) * x.ne[1] * x.ne[2];
  GPU_LAUNCH(KRope, Dim3(GridFor(items, kBlock)), Dim3(kBlock), s, out, x, pos, ff ? *ff : none,
             ff ? 1 : 0, theta_base, freq_scale, n_rot, mode == 2 ? 1 : 0);
  return LastError();
}

// Items below this many go split: a device has a few hundred blocks' worth
// of multiprocessors, decode of one sequence brings n_head items.
constexpr int64_t kSplitBelowItems = 256;
// At most this many splits, each at least one chunk.
constexpr int64_t kMaxSplits = 32;

int64_t AttentionSplits(const AttentionArgs& a) {
  const int64_t items = a.q.ne[1] * a.q.ne[2], chunks = CacheChunks(a);
  if (items < 1 || items >= kSplitBelowItems || chunks < 2) return 1;
  int64_t n = 2 * kSplitBelowItems / items;
  if (n > chunks) n = chunks;
  if (n > kMaxSplits) n = kMaxSplits;
  return n < 2 ? 1 : n;
}

int64_t AttentionWorkBytes(const AttentionArgs& a) {
  const int64_t n = AttentionSplits(a);
  if (n == 1) return 0;
  return a.q.ne[1] * a.q.ne[2] * n * (a.out.ne[0] + 2) * static_cast<int64_t>(sizeof(float));
}

Error LaunchAttention(Stream s, const AttentionArgs& a, float* work, int* flag, int flag_value) {
  GPU_LAUNCH(KAttnCheck, Dim3(GridFor(a.q.ne[2], kBlock)), Dim3(kBlock), s, a, flag, flag_value);
  Error e = LastError();
  if (e != kSuccess) return e;
  GPU_LAUNCH(KAttnStore, Dim3(GridFor((a.k.ne[0] + a.v.ne[0]) * a.k.ne[1], kBlock)), Dim3(kBlock),
             s, a, flag);
  e = LastError();
  if (e != kSuccess) return e;
  const int64_t items = a.q.ne[1] * a.q.ne[2], n_split = AttentionSplits(a);
  GPU_LAUNCH(KAttnAttend, Dim3(GridFor(items * n_split, 1)), Dim3(kBlock), s, a, n_split, work,
             flag);
  e = LastError();
  if (e != kSuccess || n_split == 1) return e;
  GPU_LAUNCH(KAttnCombine, Dim3(GridFor(items, 1)), Dim3(kBlock), s, a, n_split,
             static_cast<const float*>(work), flag);
  return LastError();
}

}  // namespace hearth::gpu
