// ops_forward.cc — the cases of the forward ops (GET_ROWS … LORA_MUL_MAT)
// and their tolerances. Every tolerance here is also in
// docs/abi/conformance.md; change both together.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "backends/conformance/ops_common.h"

namespace hearth::conformance {

int WeightInput(Case& c, Rng& rng, uint32_t dtype, const Shape& ne, Case::Layout layout,
                Vec* vals) {
  int64_t rows = 1;
  for (size_t i = 1; i < ne.size(); ++i) rows *= ne[i];
  const int64_t k = ne[0];
  if (!IsBlockDtype(dtype)) return c.Input(dtype, ne, RandomVec(rng, k * rows), layout, vals);
  const std::vector<uint8_t> bytes = RandomBlocks(rng, dtype, rows, k);
  const int64_t rb = k / hearth_dtype_block_elems(dtype) * hearth_dtype_block_bytes(dtype);
  vals->assign(static_cast<size_t>(k * rows), 0);
  for (int64_t r = 0; r < rows; ++r) DequantizeRow(dtype, &bytes[r * rb], k, &(*vals)[r * k]);
  return c.InputBlocks(dtype, ne, bytes, layout);
}

ProductTol ProductTolFor(uint32_t w) {
  // 2e-5: float accumulation over K <= a few hundred, with slack.
  switch (w) {
    case HEARTH_DTYPE_F32:
      return {2e-5, 0};
    case HEARTH_DTYPE_F16:
      return {2e-5 + 0x1p-11, 0};  // x rounded to F16
    case HEARTH_DTYPE_BF16:
      return {2e-5 + 0x1p-8, 0};  // x rounded to BF16
    default:
      return {2e-5, 1.0 / 254};  // x rounded to Q8 blocks: |err| <= amax / 254
  }
}

namespace {

using L = Case::Layout;
constexpr L kC = Case::kContiguous, kS = Case::kStrided;

std::string Str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// ------------------------------------------------------------------ GET_ROWS
// Exact up to the float rounding of a dequantized value (d*q + m):
// atol 1e-6 + rtol 1e-6.
void GenGetRows(Suite& s) {
  Rng& rng = s.rng();
  for (uint32_t dt : WeightDtypes()) {
    s.Row("GET_ROWS", "table=" + DN(dt));
    const int64_t be = hearth_dtype_block_elems(dt);
    const std::vector<int64_t> ds =
        be > 1 ? Pick<int64_t>(s, {be}, {be, 3 * be}) : Pick<int64_t>(s, {37}, {1, 37, 64, 130});
    int n = 0;
    for (int64_t d : ds) {
      for (int64_t rows : Pick<int64_t>(s, {11}, {1, 11})) {
        for (int64_t T : Pick<int64_t>(s, {1, 7}, {1, 7, 33})) {
          const L tl = (n % 2) ? kS : kC, ol = (n / 2 % 2) ? kS : kC;
          ++n;
          Case c(&rng, "table " + Str({d, rows}) + (tl == kS ? " strided" : "") + ", " +
                           std::to_string(T) + " ids" + (ol == kS ? ", out strided" : ""));
          Vec table;
          const int tt = WeightInput(c, rng, dt, {d, rows}, tl, &table);
          std::vector<int32_t> ids(T);
          for (auto& id : ids) id = static_cast<int32_t>(UniformInt(rng, 0, rows - 1));
          ids[0] = static_cast<int32_t>(rows - 1);
          if (T > 1) ids[1] = 0;
          const int ti = c.InputI32({T}, ids);
          const int to = c.Output(HEARTH_DTYPE_F32, {d, T}, ol);
          c.Node(HEARTH_OP_GET_ROWS, {to}, {tt, ti});
          Vec want;
          for (int32_t id : ids) want.insert(want.end(), &table[id * d], &table[id * d] + d);
          c.Expect(to, want, TolAbsRel(want, 1e-6, 1e-6));
          s.Run(c);
        }
      }
    }
    // Ids outside [0, rows): an error, never a read out of bounds.
    for (int32_t bad : {-1, 11, 1 << 30}) {
      const int64_t d = be > 1 ? be : 16;
      Case c(&rng, "bad id " + std::to_string(bad) + " of 11 rows");
      Vec table;
      const int tt = WeightInput(c, rng, dt, {d, 11}, kC, &table);
      const int ti = c.InputI32({3}, {2, bad, 4});
      const int to = c.Output(HEARTH_DTYPE_F32, {d, 3}, kC);
      c.Node(HEARTH_OP_GET_ROWS, {to}, {tt, ti});
      c.ExpectError();
      s.Run(c);
    }
  }
}

}  // namespace

// ------------------------------------------------------------------ MUL_MAT
// |got - want| <= 1e-6 + rel_sum * sum|w x| + rel_amax * sum|w| amax(x)
// (ProductTolFor).
void AddProductCheck(Case& c, int out, const Vec& w, const Vec& x, int64_t K, int64_t M, int64_t T,
                     int64_t b2, int64_t b3, int64_t wb2, int64_t wb3, uint32_t wdt,
                     const ProductTol* tol_in) {
  const ProductTol pt = tol_in != nullptr ? *tol_in : ProductTolFor(wdt);
  Vec want, tol;
  for (int64_t i3 = 0; i3 < b3; ++i3) {
    for (int64_t i2 = 0; i2 < b2; ++i2) {
      const double* wm = &w[((wb3 == 1 ? 0 : i3) * wb2 + (wb2 == 1 ? 0 : i2)) * K * M];
      const double* xm = &x[(i3 * b2 + i2) * K * T];
      for (int64_t t = 0; t < T; ++t) {
        const double* xr = xm + t * K;
        std::vector<double> amax(static_cast<size_t>(K));
        for (int64_t k0 = 0; k0 < K; k0 += 256) {
          double a = 0;
          for (int64_t k = k0; k < std::min(K, k0 + 256); ++k) a = std::max(a, std::fabs(xr[k]));
          for (int64_t k = k0; k < std::min(K, k0 + 256); ++k) amax[k] = a;
        }
        for (int64_t m = 0; m < M; ++m) {
          double sum = 0, s1 = 0, s2 = 0;
          for (int64_t k = 0; k < K; ++k) {
            sum += wm[m * K + k] * xr[k];
            s1 += std::fabs(wm[m * K + k] * xr[k]);
            s2 += std::fabs(wm[m * K + k]) * amax[k];
          }
          want.push_back(sum);
          tol.push_back(1e-6 + pt.rel_sum * s1 + pt.rel_amax * s2);
        }
      }
    }
  }
  c.Expect(out, want, tol);
}

namespace {

void GenMulMat(Suite& s) {
  Rng& rng = s.rng();
  struct Batch {
    int64_t b2, b3, wb2, wb3;
  };
  for (uint32_t dt : WeightDtypes()) {
    s.Row("MUL_MAT", "w=" + DN(dt) + " x=F32");
    const int64_t be = hearth_dtype_block_elems(dt);
    const std::vector<int64_t> ks = be > 1 ? Pick<int64_t>(s, {2 * be}, {be, 3 * be})
                                           : Pick<int64_t>(s, {37}, {1, 37, 64, 300});
    int n = 0;
    for (int64_t K : ks) {
      for (int64_t M : Pick<int64_t>(s, {5, 33}, {1, 5, 33})) {
        for (int64_t T : Pick<int64_t>(s, {1, 7}, {1, 7, 40})) {
          std::vector<Batch> batches = {{1, 1, 1, 1}};
          if (!s.quick() || (M == 5 && T == 7)) {
            batches.push_back({2, 1, 2, 1});  // a batch of matrices
            batches.push_back({3, 2, 1, 1});  // one matrix broadcast over x's batch
          }
          for (const Batch& b : batches) {
            const L wl = (n % 3 == 2) ? kS : kC, xl = (n % 2) ? kS : kC,
                    ol = (n % 4 == 3) ? kS : kC;
            ++n;
            Case c(&rng, "w " + Str({K, M, b.wb2, b.wb3}) + (wl == kS ? " strided" : "") + ", x " +
                             Str({K, T, b.b2, b.b3}) + (xl == kS ? " strided" : "") +
                             (ol == kS ? ", out strided" : ""));
            Vec w, x;
            const int tw = WeightInput(c, rng, dt, {K, M, b.wb2, b.wb3}, wl, &w);
            const int tx = c.Input(HEARTH_DTYPE_F32, {K, T, b.b2, b.b3},
                                   RandomVec(rng, K * T * b.b2 * b.b3), xl, &x);
            const int to = c.Output(HEARTH_DTYPE_F32, {M, T, b.b2, b.b3}, ol);
            c.Node(HEARTH_OP_MUL_MAT, {to}, {tw, tx});
            AddProductCheck(c, to, w, x, K, M, T, b.b2, b.b3, b.wb2, b.wb3, dt);
            s.Run(c);
          }
        }
      }
    }
    // Products larger than one register or thread-block tile of a plugin
    // (64 x 64 outputs on the GPU) and rows longer than one pass of a
    // plugin's lanes (32 lanes x 32 weights on the GPU): several tiles each
    // way, partial last ones, the token count on both sides of a plugin's
    // few-token path.
    for (int64_t T : Pick<int64_t>(s, {3, 67}, {3, 8, 9, 67})) {
      const int64_t K = (1040 + be - 1) / be * be, M = 130;
      Case c(&rng, "tiles, w " + Str({K, M}) + ", x " + Str({K, T}));
      Vec w, x;
      const int tw = WeightInput(c, rng, dt, {K, M}, kC, &w);
      const int tx = c.Input(HEARTH_DTYPE_F32, {K, T}, RandomVec(rng, K * T), kC, &x);
      const int to = c.Output(HEARTH_DTYPE_F32, {M, T}, kC);
      c.Node(HEARTH_OP_MUL_MAT, {to}, {tw, tx});
      AddProductCheck(c, to, w, x, K, M, T, 1, 1, 1, 1, dt);
      s.Run(c);
    }
    // HEARTH_MUL_MAT_FLOAT_ACTIVATIONS: x is never rounded, so only float
    // accumulation is allowed (2e-5 of sum |w x|), whatever the weights.
    s.Row("MUL_MAT", "w=" + DN(dt) + " x=F32 float-x");
    const ProductTol exact{2e-5, 0};
    for (int64_t T : Pick<int64_t>(s, {1, 20}, {1, 7, 20, 40})) {
      const int64_t K = ks.back(), M = 7;
      Case c(&rng, "FLOAT_ACTIVATIONS, w " + Str({K, M}) + ", x " + Str({K, T}));
      Vec w, x;
      const int tw = WeightInput(c, rng, dt, {K, M}, kC, &w);
      const int tx = c.Input(HEARTH_DTYPE_F32, {K, T}, RandomVec(rng, K * T), kC, &x);
      const int to = c.Output(HEARTH_DTYPE_F32, {M, T}, kC);
      c.NodeP(HEARTH_OP_MUL_MAT, {to}, {tw, tx},
              hearth_mul_mat_params{HEARTH_MUL_MAT_FLOAT_ACTIVATIONS});
      AddProductCheck(c, to, w, x, K, M, T, 1, 1, 1, 1, dt, &exact);
      s.Run(c);
    }
  }
}

// ------------------------------------------------------------------ ADD, MUL, SCALE
// One float operation per element: rtol 1e-6.
void GenBinary(Suite& s, uint32_t op, const char* name) {
  Rng& rng = s.rng();
  s.Row(name, "F32");
  struct Sh {
    Shape a, b;
  };
  std::vector<Sh> shapes = {{{17, 3}, {17, 3}},       {{64, 5}, {64}},
                            {{33, 4, 3}, {33, 1, 3}}, {{8, 2, 3, 2}, {8, 2, 1, 2}},
                            {{1, 7}, {1, 1}},         {{100, 6, 2}, {100}}};
  if (s.quick()) shapes.resize(4);
  int n = 0;
  for (const Sh& sh : shapes) {
    for (int variant = 0; variant < (s.quick() ? 2 : 3); ++variant) {
      const bool in_place = variant == 1;
      const L al = (n % 2) ? kS : kC, bl = (n % 3 == 1) ? kS : kC, ol = variant == 2 ? kS : kC;
      ++n;
      Case c(&rng, "a " + Str(sh.a) + (al == kS ? " strided" : "") + ", b " + Str(sh.b) +
                       (bl == kS ? " strided" : "") + (in_place ? ", in place" : "") +
                       (ol == kS ? ", out strided" : ""));
      int64_t na = 1, nb = 1;
      for (int64_t v : sh.a) na *= v;
      for (int64_t v : sh.b) nb *= v;
      Vec a, b;
      const int ta = c.Input(HEARTH_DTYPE_F32, sh.a, RandomVec(rng, na, -2, 2), al, &a);
      const int tb = c.Input(HEARTH_DTYPE_F32, sh.b, RandomVec(rng, nb, -2, 2), bl, &b);
      int to = ta;
      if (in_place) {
        c.MarkWritable(ta);
      } else {
        to = c.Output(HEARTH_DTYPE_F32, sh.a, ol);
      }
      c.Node(op, {to}, {ta, tb});
      Shape ae = sh.a, be = sh.b;
      ae.resize(4, 1);
      be.resize(4, 1);
      Vec want(a.size());
      for (int64_t i = 0; i < na; ++i) {
        int64_t idx[4], r = i;
        for (int d = 0; d < 4; ++d) {
          idx[d] = r % ae[d];
          r /= ae[d];
        }
        int64_t j = 0;
        for (int d = 3; d >= 0; --d) j = j * be[d] + (be[d] == 1 ? 0 : idx[d]);
        want[i] = op == HEARTH_OP_ADD ? a[i] + b[j] : a[i] * b[j];
      }
      c.Expect(to, want, TolAbsRel(want, 1e-30, 1e-6));
      s.Run(c);
    }
  }
}

void GenAdd(Suite& s) { GenBinary(s, HEARTH_OP_ADD, "ADD"); }
void GenMul(Suite& s) { GenBinary(s, HEARTH_OP_MUL, "MUL"); }

void GenScale(Suite& s) {
  Rng& rng = s.rng();
  s.Row("SCALE", "F32");
  int n = 0;
  for (const Shape& sh :
       Pick<Shape>(s, {{37, 3}, {64, 2, 3}}, {{1}, {37, 3}, {64, 2, 3}, {1000, 2}})) {
    for (int variant = 0; variant < 3; ++variant) {
      const bool in_place = variant == 1;
      const L xl = (n % 2) ? kS : kC, ol = variant == 2 ? kS : kC;
      ++n;
      const float scale = static_cast<float>(Uniform(rng, -3, 3));
      Case c(&rng, "x " + Str(sh) + (xl == kS ? " strided" : "") + (in_place ? ", in place" : "") +
                       (ol == kS ? ", out strided" : "") + ", scale " + std::to_string(scale));
      int64_t ne = 1;
      for (int64_t v : sh) ne *= v;
      Vec x;
      const int tx = c.Input(HEARTH_DTYPE_F32, sh, RandomVec(rng, ne, -2, 2), xl, &x);
      int to = tx;
      if (in_place) {
        c.MarkWritable(tx);
      } else {
        to = c.Output(HEARTH_DTYPE_F32, sh, ol);
      }
      c.NodeP(HEARTH_OP_SCALE, {to}, {tx}, hearth_scale_params{scale});
      Vec want(x.size());
      for (size_t i = 0; i < x.size(); ++i) want[i] = x[i] * static_cast<double>(scale);
      c.Expect(to, want, TolAbsRel(want, 1e-30, 1e-6));
      s.Run(c);
    }
  }
}

// ------------------------------------------------------------------ RMS_NORM
// Float sum of squares over D: atol 1e-6 + rtol 1e-5.
void GenRmsNorm(Suite& s) {
  Rng& rng = s.rng();
  s.Row("RMS_NORM", "F32");
  int n = 0;
  for (int64_t D : Pick<int64_t>(s, {7, 333}, {1, 7, 64, 333, 2048})) {
    for (const Shape& rest : Pick<Shape>(s, {{1}, {3, 2}}, {{1}, {5}, {3, 2}})) {
      for (bool with_w : {true, false}) {
        const L xl = (n % 2) ? kS : kC, ol = (n % 3 == 2) ? kS : kC;
        ++n;
        const double eps = (n % 2) ? 1e-6 : 1e-5;
        Shape sh = {D};
        sh.insert(sh.end(), rest.begin(), rest.end());
        const int64_t rows = std::accumulate(rest.begin(), rest.end(), int64_t{1},
                                             [](int64_t a, int64_t b) { return a * b; });
        Case c(&rng, "x " + Str(sh) + (xl == kS ? " strided" : "") + (with_w ? ", w" : "") +
                         (ol == kS ? ", out strided" : ""));
        Vec x, w;
        const int tx = c.Input(HEARTH_DTYPE_F32, sh, RandomVec(rng, D * rows, -2, 2), xl, &x);
        std::vector<int> ins = {tx};
        if (with_w) ins.push_back(c.Input(HEARTH_DTYPE_F32, {D}, RandomVec(rng, D), kC, &w));
        const int to = c.Output(HEARTH_DTYPE_F32, sh, ol);
        c.NodeP(HEARTH_OP_RMS_NORM, {to}, ins, hearth_rms_norm_params{static_cast<float>(eps)});
        const Vec want = RmsNorm(x, w, D, rows, static_cast<float>(eps));
        c.Expect(to, want, TolAbsRel(want, 1e-6, 1e-5));
        s.Run(c);
      }
    }
  }
}

// ------------------------------------------------------------------ ROPE
// Angles in float lose about p * 2^-23 radians at position p:
// |err| <= 2e-5 + 1e-6 * p * freq_scale * |pair| per element.
Vec RopeTol(const Vec& x, const std::vector<int32_t>& pos, int64_t hd, int64_t nh, int64_t T,
            double freq_scale) {
  Vec tol(x.size());
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < nh; ++h) {
      double norm = 0;
      for (int64_t i = 0; i < hd; ++i) norm = std::max(norm, std::fabs(x[(t * nh + h) * hd + i]));
      for (int64_t i = 0; i < hd; ++i) {
        tol[(t * nh + h) * hd + i] = 2e-5 + 1e-6 * std::abs(pos[t]) * freq_scale * 1.5 * norm;
      }
    }
  }
  return tol;
}

void GenRopeOp(Suite& s, bool back) {
  Rng& rng = s.rng();
  const char* name = back ? "ROPE_BACK" : "ROPE";
  s.Row(name, "F32");
  struct Cfg {
    int64_t hd, nh, T;
    int n_rot, mode;
    double theta, fs;
    bool ff;
  };
  std::vector<Cfg> cfgs = {
      {64, 2, 1, 64, HEARTH_ROPE_NORMAL, 10000, 1, false},
      {64, 3, 5, 64, HEARTH_ROPE_NEOX, 1e6, 1, false},
      {128, 2, 4, 64, HEARTH_ROPE_NEOX, 10000, 0.5, false},  // partial rotation
      {40, 1, 3, 40, HEARTH_ROPE_NORMAL, 500000, 1, true},   // freq factors
      {6, 4, 7, 4, HEARTH_ROPE_NORMAL, 10000, 0.25, false},
      {96, 2, 2, 96, HEARTH_ROPE_NEOX, 10000, 1, true},
  };
  if (s.quick()) cfgs.resize(4);
  int n = 0;
  for (const Cfg& k : cfgs) {
    for (int variant = 0; variant < 2; ++variant) {
      const L xl = variant ? kS : kC, ol = (n % 3 == 1) ? kS : kC;
      ++n;
      const int maxpos = variant ? 5000 : 64;
      std::vector<int32_t> pos(k.T);
      for (auto& p : pos) p = static_cast<int32_t>(UniformInt(rng, 0, maxpos));
      Case c(&rng, std::string(k.mode == HEARTH_ROPE_NEOX ? "neox" : "normal") + " x " +
                       Str({k.hd, k.nh, k.T}) + (xl == kS ? " strided" : "") + " n_rot " +
                       std::to_string(k.n_rot) + " pos<=" + std::to_string(maxpos) +
                       (k.ff ? ", freq factors" : "") + (ol == kS ? ", out strided" : ""));
      Vec x;
      const int tx =
          c.Input(HEARTH_DTYPE_F32, {k.hd, k.nh, k.T}, RandomVec(rng, k.hd * k.nh * k.T), xl, &x);
      const int tp = c.InputI32({k.T}, pos);
      RopeArgs ra;
      ra.theta_base = static_cast<float>(k.theta);
      ra.freq_scale = static_cast<float>(k.fs);
      ra.n_rot = k.n_rot;
      ra.mode = k.mode;
      std::vector<int> ins = {tx, tp};
      if (k.ff) {
        ins.push_back(c.Input(HEARTH_DTYPE_F32, {k.n_rot / 2}, RandomVec(rng, k.n_rot / 2, 1, 8),
                              kC, &ra.freq_factors));
      }
      const int to = c.Output(HEARTH_DTYPE_F32, {k.hd, k.nh, k.T}, ol);
      c.NodeP(back ? HEARTH_OP_ROPE_BACK : HEARTH_OP_ROPE, {to}, ins,
              hearth_rope_params{static_cast<float>(k.theta), static_cast<float>(k.fs), k.n_rot,
                                 k.mode});
      const Vec want = Rope(x, pos, k.hd, k.nh, k.T, ra, back);
      c.Expect(to, want, RopeTol(x, pos, k.hd, k.nh, k.T, k.fs));
      if (back && k.hd * k.nh * k.T <= 400) {
        // ROPE_BACK is d/dx of ROPE: central differences of the forward.
        Case& cc = c;
        const Vec fd = FiniteDiffGrad(RandomVec(rng, x.size()), x, [&](const Vec& xx) {
          return Rope(xx, pos, k.hd, k.nh, k.T, ra, false);
        });
        cc.Expect(to, fd, RopeTol(x, pos, k.hd, k.nh, k.T, k.fs));
      }
      s.Run(c);
    }
  }
}

void GenRope(Suite& s) { GenRopeOp(s, false); }

// ------------------------------------------------------------------ ATTENTION
// F32 caches: atol 1e-5 + rtol 1e-4 (float dot products and softmax);
// F16 caches: atol 2e-3 + rtol 2e-3 (a backend may round q and the
// softmax weights to F16 as flash attention does). The caches themselves
// must hold k, v rounded to the cache dtype (F16: within 1 ulp).
struct AttnCfg {
  int64_t dk, dv, nh, nkv;
  std::vector<int64_t> hist;  // rows each sequence held before this graph
  std::vector<int64_t> toks;  // tokens each sequence adds
  bool paged, with_seq, with_lse;
  int64_t block_size;
  int window;
  double softcap;
  std::string name;
};

void RunAttention(Suite& s, const AttnCfg& k, uint32_t cdt, int bad) {
  Rng& rng = s.rng();
  const int64_t n_seq = static_cast<int64_t>(k.hist.size());
  int64_t T = 0, need = 0;
  for (int64_t si = 0; si < n_seq; ++si) {
    T += k.toks[si];
    need = std::max(need, k.hist[si] + k.toks[si]);
  }
  // Unpaged: n_ctx rows per sequence, a few spare. Paged: per sequence the
  // pages its rows need, random distinct pages of a pool with spares.
  const int64_t n_ctx = need + 3;
  const int64_t bs = k.paged ? k.block_size : 1;
  const int64_t max_blocks = (need + bs - 1) / bs + 1;
  const int64_t n_pages = k.paged ? n_seq * max_blocks + 2 : 0;
  std::vector<int32_t> blocks;
  if (k.paged) {
    std::vector<int32_t> perm(n_pages);
    std::iota(perm.begin(), perm.end(), 0);
    std::shuffle(perm.begin(), perm.end(), rng);
    for (int64_t i = 0; i < n_seq * max_blocks; ++i) blocks.push_back(perm[i]);
  }
  // Where row j of sequence sq lives: cache row index (ne order, [rows, 1..]).
  auto cache_row = [&](int64_t sq, int64_t j) -> int64_t {
    if (!k.paged) return sq * n_ctx + j;
    return blocks[sq * max_blocks + j / bs] * bs + j % bs;
  };
  const int64_t cache_rows = k.paged ? n_pages * bs : n_seq * n_ctx;
  // The tokens: each sequence's positions hist..hist+toks-1, interleaved.
  std::vector<int32_t> seq, pos;
  std::vector<int64_t> next(k.hist);
  for (int64_t si = 0; si < n_seq; ++si) {
    for (int64_t i = 0; i < k.toks[si]; ++i) seq.push_back(static_cast<int32_t>(si));
  }
  std::shuffle(seq.begin(), seq.end(), rng);
  for (int32_t sq : seq) pos.push_back(static_cast<int32_t>(next[sq]++));
  std::string what = k.name + (cdt == HEARTH_DTYPE_F16 ? ", F16 cache" : "");
  if (bad == 1) pos[T - 1] = static_cast<int32_t>(k.paged ? max_blocks * bs : n_ctx);
  if (bad == 2) pos[0] = -1;
  if (bad == 3) seq[T - 1] = static_cast<int32_t>(n_seq);
  if (bad == 4) blocks[static_cast<size_t>(seq[0]) * max_blocks] = static_cast<int32_t>(n_pages);
  if (bad == 5) blocks[static_cast<size_t>(seq[0]) * max_blocks] = -1;
  static const char* const kBad[] = {
      "", "pos past the cache", "pos -1", "seq out of range", "page id n_pages", "page id -1"};
  if (bad) what += std::string(", bad: ") + kBad[bad];
  Case c(&rng, what);

  const double scale = 1 / std::sqrt(static_cast<double>(k.dk));
  Vec q, kk, vv, kc, vc;
  const L ql = (k.nh % 2) ? kS : kC;
  const int tq =
      c.Input(HEARTH_DTYPE_F32, {k.dk, k.nh, T}, RandomVec(rng, k.dk * k.nh * T, -2, 2), ql, &q);
  const int tk = c.Input(HEARTH_DTYPE_F32, {k.dk, k.nkv, T},
                         RandomVec(rng, k.dk * k.nkv * T, -2, 2), k.with_seq ? kS : kC, &kk);
  const int tv =
      c.Input(HEARTH_DTYPE_F32, {k.dv, k.nkv, T}, RandomVec(rng, k.dv * k.nkv * T), kC, &vv);
  const Shape kcs = {k.dk, k.nkv, k.paged ? bs : n_ctx, k.paged ? n_pages : n_seq};
  const Shape vcs = {k.dv, k.nkv, k.paged ? bs : n_ctx, k.paged ? n_pages : n_seq};
  // Old rows and unwritten rows alike hold random finite values: reading a
  // row a query may not see changes the result.
  const int tkc = c.Input(cdt, kcs, RandomVec(rng, k.dk * k.nkv * cache_rows, -2, 2), kC, &kc);
  const int tvc = c.Input(cdt, vcs, RandomVec(rng, k.dv * k.nkv * cache_rows), kC, &vc);
  c.MarkWritable(tkc);
  c.MarkWritable(tvc);
  const int tp = c.InputI32({T}, pos);
  std::vector<int> ins = {tq, tk, tv, tkc, tvc, tp};
  if (k.with_seq || k.paged) ins.push_back(c.InputI32({T}, seq));
  if (k.paged) ins.push_back(c.InputI32({max_blocks, n_seq}, blocks));
  const int to = c.Output(HEARTH_DTYPE_F32, {k.dv, k.nh, T}, (k.nkv % 2) ? kS : kC);
  std::vector<int> outs = {to};
  int tl = -1;
  if (k.with_lse) outs.push_back(tl = c.Output(HEARTH_DTYPE_F32, {k.nh, T}, kC));
  const AttnArgs aa{static_cast<float>(scale), static_cast<float>(k.softcap), k.window};
  c.NodeP(
      HEARTH_OP_ATTENTION, outs, ins,
      hearth_attention_params{static_cast<float>(scale), static_cast<float>(k.softcap), k.window});
  if (bad) {
    c.ExpectError();
    s.Run(c);
    return;
  }
  // The cache write (the later token wins), rounded to the cache dtype.
  for (int64_t t = 0; t < T; ++t) {
    const int64_t r = cache_row(seq[t], pos[t]);
    for (int64_t h = 0; h < k.nkv; ++h) {
      for (int64_t i = 0; i < k.dk; ++i) {
        kc[(r * k.nkv + h) * k.dk + i] = RoundTo(cdt, kk[(t * k.nkv + h) * k.dk + i]);
      }
      for (int64_t i = 0; i < k.dv; ++i) {
        vc[(r * k.nkv + h) * k.dv + i] = RoundTo(cdt, vv[(t * k.nkv + h) * k.dv + i]);
      }
    }
  }
  Vec out(static_cast<size_t>(k.dv * k.nh * T)), lse(static_cast<size_t>(k.nh * T));
  const int64_t group = k.nh / k.nkv;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < k.nh; ++h) {
      std::vector<const double*> ks, vs;
      for (int64_t j = 0; j <= pos[t]; ++j) {
        if (k.window > 0 && pos[t] - j >= k.window) continue;
        const int64_t r = cache_row(seq[t], j);
        ks.push_back(&kc[(r * k.nkv + h / group) * k.dk]);
        vs.push_back(&vc[(r * k.nkv + h / group) * k.dv]);
      }
      lse[t * k.nh + h] =
          AttendOne(&q[(t * k.nh + h) * k.dk], ks, vs, k.dk, k.dv, aa, &out[(t * k.nh + h) * k.dv]);
    }
  }
  const bool f16 = cdt == HEARTH_DTYPE_F16;
  c.Expect(to, out, TolAbsRel(out, f16 ? 2e-3 : 1e-5, f16 ? 2e-3 : 1e-4));
  if (tl >= 0) c.Expect(tl, lse, TolAbsRel(lse, f16 ? 2e-3 : 1e-5, f16 ? 2e-3 : 1e-5));
  c.Expect(tkc, kc, TolAbsRel(kc, 0, f16 ? 0x1p-10 : 0));
  c.Expect(tvc, vc, TolAbsRel(vc, 0, f16 ? 0x1p-10 : 0));
  s.Run(c);
}

void GenAttention(Suite& s) {
  // dk, dv, nh, nkv, hist, toks, paged, with_seq, with_lse, block, window, softcap
  std::vector<AttnCfg> cfgs = {
      {64, 64, 2, 2, {9}, {1}, false, false, true, 0, 0, 0, "decode T=1, hist 9, MHA"},
      {32, 32, 8, 2, {3}, {6}, false, false, false, 0, 0, 0, "prompt T=6, GQA 8:2"},
      {32,
       32,
       4,
       1,
       {0, 5, 2},
       {3, 1, 3},
       false,
       true,
       true,
       0,
       0,
       0,
       "3 sequences, seq ids, GQA 4:1"},
      {16, 16, 2, 1, {6, 3}, {3, 2}, true, true, true, 4, 0, 0, "paged bs 4, 2 sequences"},
      {32, 32, 2, 2, {6}, {5}, false, false, false, 0, 4, 0, "window 4"},
      {64, 64, 4, 2, {4}, {3}, false, false, true, 0, 0, 1.5, "softcap 1.5"},
      {40, 24, 3, 3, {2, 4}, {2, 3}, false, true, false, 0, 0, 0, "dk 40, dv 24, 2 sequences"},
      {16,
       16,
       4,
       2,
       {0, 17, 5},
       {1, 1, 1},
       true,
       true,
       false,
       16,
       0,
       0,
       "paged bs 16, decode of 3 sequences"},
      {32,
       32,
       4,
       1,
       {7, 2},
       {4, 4},
       true,
       true,
       true,
       4,
       3,
       2.0,
       "paged, window 3, softcap 2, GQA 4:1"},
      {128, 128, 2, 1, {30}, {1}, false, false, false, 0, 0, 0, "decode hd 128, hist 30"},
      // Long histories, few (token, head) items: a GPU plugin splits the
      // rows of each item between blocks here (split-K decode).
      {64, 64, 8, 2, {900}, {1}, false, false, true, 0, 0, 0, "decode GQA 4:1, hist 900, lse"},
      {32,
       48,
       4,
       2,
       {700, 1100},
       {1, 2},
       true,
       true,
       false,
       16,
       300,
       5.0,
       "paged bs 16, 2 sequences, hist 700/1100, window 300, softcap 5"},
  };
  Rng& rng = s.rng();
  for (uint32_t cdt : {HEARTH_DTYPE_F32, HEARTH_DTYPE_F16}) {
    s.Row("ATTENTION", "cache=" + DN(cdt));
    for (size_t i = 0; i < cfgs.size(); ++i) {
      if (s.quick() && (i == 1 || i == 6 || i == 9)) continue;
      RunAttention(s, cfgs[i], cdt, 0);
    }
    // Bad positions, sequences and pages: errors, nothing written astray.
    for (int bad = 1; bad <= 5; ++bad) {
      const AttnCfg& k = bad >= 4 ? cfgs[3] : (bad == 3 ? cfgs[2] : cfgs[1]);
      RunAttention(s, k, cdt, bad);
    }
    (void)rng;
  }
}

// ------------------------------------------------------------------ SILU_MUL, GELU_MUL
// atol 1e-6 + rtol 1e-5.
void GenGated(Suite& s, bool gelu) {
  Rng& rng = s.rng();
  const char* name = gelu ? "GELU_MUL" : "SILU_MUL";
  s.Row(name, "F32");
  int n = 0;
  for (const Shape& sh :
       Pick<Shape>(s, {{33, 3}, {256, 1}}, {{1}, {33, 3}, {256, 1}, {1000, 4}, {7, 2, 3}})) {
    for (int variant = 0; variant < 2; ++variant) {
      const L l = variant ? kS : kC;
      ++n;
      int64_t ne = 1;
      for (int64_t v : sh) ne *= v;
      Case c(&rng, "gate, up " + Str(sh) + (l == kS ? " strided" : ""));
      Vec g, u;
      const int tg = c.Input(HEARTH_DTYPE_F32, sh, RandomVec(rng, ne, -6, 6), l, &g);
      const int tu = c.Input(HEARTH_DTYPE_F32, sh, RandomVec(rng, ne, -2, 2), kC, &u);
      const int to = c.Output(HEARTH_DTYPE_F32, sh, (n % 3 == 0) ? kS : kC);
      c.Node(gelu ? HEARTH_OP_GELU_MUL : HEARTH_OP_SILU_MUL, {to}, {tg, tu});
      Vec want(g.size());
      for (size_t i = 0; i < g.size(); ++i) want[i] = (gelu ? GeluTanh(g[i]) : Silu(g[i])) * u[i];
      c.Expect(to, want, TolAbsRel(want, 1e-6, 1e-5));
      s.Run(c);
    }
  }
}
void GenSiluMul(Suite& s) { GenGated(s, false); }
void GenGeluMul(Suite& s) { GenGated(s, true); }

// ------------------------------------------------------------------ SOFTMAX
// atol 1e-6 + rtol 1e-5.
void GenSoftmax(Suite& s) {
  Rng& rng = s.rng();
  s.Row("SOFTMAX", "F32");
  int n = 0;
  for (const Shape& sh :
       Pick<Shape>(s, {{17, 3}, {300, 2}}, {{1, 2}, {17, 3}, {300, 2}, {4097, 1}, {5, 2, 3}})) {
    for (double scale : {1.0, 0.3}) {
      const L l = (n % 2) ? kS : kC;
      ++n;
      const int64_t D = sh[0];
      int64_t ne = 1;
      for (int64_t v : sh) ne *= v;
      Case c(&rng,
             "x " + Str(sh) + (l == kS ? " strided" : "") + ", scale " + std::to_string(scale));
      Vec x;
      const int tx = c.Input(HEARTH_DTYPE_F32, sh, RandomVec(rng, ne, -15, 15), l, &x);
      const int to = c.Output(HEARTH_DTYPE_F32, sh, (n % 3 == 0) ? kS : kC);
      c.NodeP(HEARTH_OP_SOFTMAX, {to}, {tx}, hearth_scale_params{static_cast<float>(scale)});
      Vec want(x.size());
      const double sc = static_cast<float>(scale);
      for (int64_t r = 0; r < ne / D; ++r) {
        double mx = -HUGE_VAL, sum = 0;
        for (int64_t i = 0; i < D; ++i) mx = std::max(mx, x[r * D + i] * sc);
        for (int64_t i = 0; i < D; ++i) sum += std::exp(x[r * D + i] * sc - mx);
        for (int64_t i = 0; i < D; ++i) want[r * D + i] = std::exp(x[r * D + i] * sc - mx) / sum;
      }
      c.Expect(to, want, TolAbsRel(want, 1e-6, 1e-5));
      s.Run(c);
    }
  }
}

// ------------------------------------------------------------------ COPY
// Into F32: exact. Into F16 / BF16: the nearest value, within 1 ulp
// (|want| * 2^-10 + 2^-24 for F16, |want| * 2^-7 for BF16).
void GenCopy(Suite& s) {
  Rng& rng = s.rng();
  for (uint32_t src : FloatDtypes()) {
    for (uint32_t dst : FloatDtypes()) {
      s.Row("COPY", DN(src) + "->" + DN(dst));
      int n = 0;
      for (const Shape& sh :
           Pick<Shape>(s, {{37, 3}, {8, 5}}, {{1}, {37, 3}, {8, 5}, {64, 3, 2}})) {
        for (int variant = 0; variant < 3; ++variant) {
          ++n;
          int64_t ne = 1;
          for (int64_t v : sh) ne *= v;
          Case c(&rng, "x " + Str(sh) +
                           (variant == 1   ? " transposed view"
                            : variant == 2 ? " strided"
                                           : "") +
                           (n % 2 ? ", out strided" : ""));
          Vec x;
          int tx;
          const Vec vals = RandomVec(rng, ne, -100, 100);
          if (variant == 1 && sh.size() == 2) {
            // A transposed view: element (i, j) at i * ne1 + j of a dense
            // [ne1, ne0] tensor.
            const int64_t es = hearth_dtype_block_bytes(src);
            const int64_t nb[4] = {sh[1] * es, es, sh[0] * sh[1] * es, sh[0] * sh[1] * es};
            tx = c.InputStrided(src, sh, nb, vals, &x);
          } else {
            tx = c.Input(src, sh, vals, variant == 2 ? kS : kC, &x);
          }
          const int to = c.Output(dst, sh, n % 2 ? kS : kC);
          c.Node(HEARTH_OP_COPY, {to}, {tx});
          Vec want(x.size()), tol(x.size());
          for (size_t i = 0; i < x.size(); ++i) {
            want[i] = RoundTo(dst, x[i]);
            tol[i] = dst == HEARTH_DTYPE_F16    ? std::fabs(want[i]) * 0x1p-10 + 0x1p-24
                     : dst == HEARTH_DTYPE_BF16 ? std::fabs(want[i]) * 0x1p-7
                                                : 0;
          }
          c.Expect(to, want, tol);
          s.Run(c);
        }
      }
    }
  }
}

// ------------------------------------------------------------------ LORA_MUL_MAT
// |err| <= 1e-6 + rel * (|y| + |s| sum_r |b| sum_k |a x|), rel 2e-5 for F32
// adapters, 2^-10 for F16 and 2^-7 for BF16 (x and a.x may be rounded).
void GenLora(Suite& s) {
  Rng& rng = s.rng();
  const std::vector<std::pair<uint32_t, uint32_t>> pairs = {{HEARTH_DTYPE_F32, HEARTH_DTYPE_F32},
                                                            {HEARTH_DTYPE_F16, HEARTH_DTYPE_F16},
                                                            {HEARTH_DTYPE_BF16, HEARTH_DTYPE_BF16},
                                                            {HEARTH_DTYPE_F16, HEARTH_DTYPE_F32}};
  for (const auto& [adt, bdt] : pairs) {
    s.Row("LORA_MUL_MAT", "a=" + DN(adt) + " b=" + DN(bdt));
    const double rel = std::max(adt, bdt) == HEARTH_DTYPE_F32                   ? 2e-5
                       : (adt == HEARTH_DTYPE_BF16 || bdt == HEARTH_DTYPE_BF16) ? 0x1p-7
                                                                                : 0x1p-10;
    int n = 0;
    for (int64_t K : Pick<int64_t>(s, {37}, {37, 64})) {
      for (int64_t M : Pick<int64_t>(s, {48}, {5, 48})) {
        for (int64_t R : Pick<int64_t>(s, {8}, {1, 8})) {
          for (int64_t T : {1, 6}) {
            const bool in_place = n % 2, with_scales = n % 3 != 0;
            const L xl = (n % 4 == 1) ? kS : kC;
            ++n;
            const float scale = static_cast<float>(Uniform(rng, 0.5, 2));
            Case c(&rng, "K " + std::to_string(K) + " M " + std::to_string(M) + " R " +
                             std::to_string(R) + " T " + std::to_string(T) +
                             (in_place ? ", in place" : "") + (with_scales ? ", scales" : "") +
                             (xl == kS ? ", x strided" : ""));
            Vec y, a, b, x, sc;
            const int ty = c.Input(HEARTH_DTYPE_F32, {M, T}, RandomVec(rng, M * T), kC, &y);
            const int ta = c.Input(adt, {K, R}, RandomVec(rng, K * R), kC, &a);
            const int tb = c.Input(bdt, {M, R}, RandomVec(rng, M * R), kC, &b);
            const int tx = c.Input(HEARTH_DTYPE_F32, {K, T}, RandomVec(rng, K * T), xl, &x);
            std::vector<int> ins = {ty, ta, tb, tx};
            if (with_scales) {
              Vec v = RandomVec(rng, T, -1, 1);
              v[0] = 0;  // a row that does not use this adapter
              ins.push_back(c.Input(HEARTH_DTYPE_F32, {T}, v, kC, &sc));
            }
            int to = ty;
            if (in_place) {
              c.MarkWritable(ty);
            } else {
              to = c.Output(HEARTH_DTYPE_F32, {M, T}, kC);
            }
            c.NodeP(HEARTH_OP_LORA_MUL_MAT, {to}, ins, hearth_scale_params{scale});
            Vec want(y.size()), tol(y.size());
            for (int64_t t = 0; t < T; ++t) {
              const double st = static_cast<double>(scale) * (with_scales ? sc[t] : 1.0);
              std::vector<double> ax(R), axm(R);
              for (int64_t r = 0; r < R; ++r) {
                for (int64_t kk = 0; kk < K; ++kk) {
                  ax[r] += a[r * K + kk] * x[t * K + kk];
                  axm[r] += std::fabs(a[r * K + kk] * x[t * K + kk]);
                }
              }
              for (int64_t m = 0; m < M; ++m) {
                double acc = 0, mag = 0;
                for (int64_t r = 0; r < R; ++r) {
                  acc += b[r * M + m] * ax[r];
                  mag += std::fabs(b[r * M + m]) * axm[r];
                }
                want[t * M + m] = y[t * M + m] + st * acc;
                tol[t * M + m] = 1e-6 + rel * (std::fabs(y[t * M + m]) + std::fabs(st) * mag);
              }
            }
            c.Expect(to, want, tol);
            s.Run(c);
          }
        }
      }
    }
  }
}

}  // namespace

void GenRopeBack(Suite& s) { GenRopeOp(s, true); }

void AddForwardOps(std::vector<OpEntry>* ops) {
  ops->push_back({HEARTH_OP_GET_ROWS, "GET_ROWS", GenGetRows});
  ops->push_back({HEARTH_OP_MUL_MAT, "MUL_MAT", GenMulMat});
  ops->push_back({HEARTH_OP_ADD, "ADD", GenAdd});
  ops->push_back({HEARTH_OP_MUL, "MUL", GenMul});
  ops->push_back({HEARTH_OP_SCALE, "SCALE", GenScale});
  ops->push_back({HEARTH_OP_RMS_NORM, "RMS_NORM", GenRmsNorm});
  ops->push_back({HEARTH_OP_ROPE, "ROPE", GenRope});
  ops->push_back({HEARTH_OP_ATTENTION, "ATTENTION", GenAttention});
  ops->push_back({HEARTH_OP_SILU_MUL, "SILU_MUL", GenSiluMul});
  ops->push_back({HEARTH_OP_GELU_MUL, "GELU_MUL", GenGeluMul});
  ops->push_back({HEARTH_OP_SOFTMAX, "SOFTMAX", GenSoftmax});
  ops->push_back({HEARTH_OP_COPY, "COPY", GenCopy});
  ops->push_back({HEARTH_OP_LORA_MUL_MAT, "LORA_MUL_MAT", GenLora});
}

}  // namespace hearth::conformance
