// ops_backward.cc — the cases of the training ops (MUL_MAT_T … SUM_SQ).
// Gradient ops are checked twice: against the analytic float64 reference
// and against float64 central finite differences of the forward reference
// (cases whose name ends in "+fd"), with the same tolerance.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "backends/conformance/ops_common.h"

namespace hearth::conformance {
namespace {

using L = Case::Layout;
constexpr L kC = Case::kContiguous, kS = Case::kStrided;

std::string N(int64_t v) { return std::to_string(v); }

// ------------------------------------------------------------------ MUL_MAT_T
// out[k, t] = sum_m w[k, m] dy[m, t]: tolerance as MUL_MAT's for w's dtype,
// over sum_m |w dy| (ProductTolFor).
void GenMulMatT(Suite& s) {
  Rng& rng = s.rng();
  for (uint32_t dt : WeightDtypes()) {
    s.Row("MUL_MAT_T", "w=" + DN(dt) + " dy=F32");
    const int64_t be = hearth_dtype_block_elems(dt);
    const std::vector<int64_t> ks =
        be > 1 ? Pick<int64_t>(s, {be}, {be, 2 * be}) : Pick<int64_t>(s, {37}, {1, 37, 64});
    int n = 0;
    for (int64_t K : ks) {
      for (int64_t M : Pick<int64_t>(s, {5}, {5, 33})) {
        for (int64_t T : {1, 6}) {
          const L dl = (n % 2) ? kS : kC;
          const bool fd = n == 0;
          ++n;
          Case c(&rng, "w [" + N(K) + ", " + N(M) + "], dy [" + N(M) + ", " + N(T) + "]" +
                           (dl == kS ? " strided" : "") + (fd ? " +fd" : ""));
          Vec w, dy;
          const int tw = WeightInput(c, rng, dt, {K, M}, kC, &w);
          const int td = c.Input(HEARTH_DTYPE_F32, {M, T}, RandomVec(rng, M * T), dl, &dy);
          const int to = c.Output(HEARTH_DTYPE_F32, {K, T}, kC);
          c.Node(HEARTH_OP_MUL_MAT_T, {to}, {tw, td});
          const ProductTol pt = ProductTolFor(dt);
          const double rel = pt.rel_sum + (pt.rel_amax > 0 ? 0x1p-11 : 0);
          Vec want(static_cast<size_t>(K * T)), tol(want.size());
          for (int64_t t = 0; t < T; ++t) {
            for (int64_t k = 0; k < K; ++k) {
              double acc = 0, mag = 0;
              for (int64_t m = 0; m < M; ++m) {
                acc += w[m * K + k] * dy[t * M + m];
                mag += std::fabs(w[m * K + k] * dy[t * M + m]);
              }
              want[t * K + k] = acc;
              tol[t * K + k] = 1e-6 + rel * mag;
            }
          }
          c.Expect(to, want, tol);
          if (fd) {
            const Vec g = FiniteDiffGrad(RandomVec(rng, K * T), dy,
                                         [&](const Vec& x) { return MatMul(w, x, K, M, T); });
            c.Expect(to, g, tol);
          }
          s.Run(c);
        }
      }
    }
  }
}

// ------------------------------------------------------------------ OUTER
// 1e-6 + 2e-5 * (sum_t |a b| + |acc|).
void GenOuter(Suite& s) {
  Rng& rng = s.rng();
  s.Row("OUTER", "F32");
  int n = 0;
  for (int64_t Nn : Pick<int64_t>(s, {17}, {1, 17, 64})) {
    for (int64_t P : Pick<int64_t>(s, {3, 16}, {3, 16})) {
      for (int64_t T : {1, 9}) {
        for (int acc_mode = 0; acc_mode < 3; ++acc_mode) {  // none, acc input, acc in place
          const bool fd = n < 2;
          const L al = (n % 2) ? kS : kC;
          ++n;
          Case c(&rng, "a [" + N(Nn) + ", " + N(T) + "]" + (al == kS ? " strided" : "") + ", b [" +
                           N(P) + ", " + N(T) + "]" +
                           (acc_mode == 1   ? ", acc"
                            : acc_mode == 2 ? ", acc in place"
                                            : "") +
                           (fd ? " +fd" : ""));
          Vec a, b, acc;
          const int ta = c.Input(HEARTH_DTYPE_F32, {Nn, T}, RandomVec(rng, Nn * T), al, &a);
          const int tb = c.Input(HEARTH_DTYPE_F32, {P, T}, RandomVec(rng, P * T), kC, &b);
          std::vector<int> ins = {ta, tb};
          int to;
          if (acc_mode > 0) {
            const int tacc = c.Input(HEARTH_DTYPE_F32, {Nn, P}, RandomVec(rng, Nn * P), kC, &acc);
            ins.push_back(tacc);
            if (acc_mode == 2) {
              c.MarkWritable(tacc);
              to = tacc;
            } else {
              to = c.Output(HEARTH_DTYPE_F32, {Nn, P}, kS);
            }
          } else {
            to = c.Output(HEARTH_DTYPE_F32, {Nn, P}, kC);
          }
          c.Node(HEARTH_OP_OUTER, {to}, ins);
          Vec want(static_cast<size_t>(Nn * P)), tol(want.size()), plain(want.size());
          for (int64_t p = 0; p < P; ++p) {
            for (int64_t i = 0; i < Nn; ++i) {
              double sum = 0, mag = 0;
              for (int64_t t = 0; t < T; ++t) {
                sum += a[t * Nn + i] * b[t * P + p];
                mag += std::fabs(a[t * Nn + i] * b[t * P + p]);
              }
              const double base = acc.empty() ? 0 : acc[p * Nn + i];
              plain[p * Nn + i] = sum;
              want[p * Nn + i] = sum + base;
              tol[p * Nn + i] = 1e-6 + 2e-5 * (mag + std::fabs(base));
            }
          }
          c.Expect(to, want, tol);
          if (fd) {
            // OUTER is d/dW of sum(a * (W b)) with W [N, P].
            Vec g = FiniteDiffGrad(RandomVec(rng, Nn * P), a, [&](const Vec& W) {
              Vec y(static_cast<size_t>(Nn * T));
              for (int64_t t = 0; t < T; ++t) {
                for (int64_t i = 0; i < Nn; ++i) {
                  for (int64_t p = 0; p < P; ++p) y[t * Nn + i] += W[p * Nn + i] * b[t * P + p];
                }
              }
              return y;
            });
            for (size_t i = 0; i < g.size(); ++i) g[i] += acc.empty() ? 0 : acc[i];
            c.Expect(to, g, tol);
          }
          s.Run(c);
        }
      }
    }
  }
}

// ------------------------------------------------------------------ RMS_NORM_BACK
// 1e-6 + 1e-5 * (r |w dy| + r^3 / D |x| |sum w dy x|) per element.
void GenRmsNormBack(Suite& s) {
  Rng& rng = s.rng();
  s.Row("RMS_NORM_BACK", "F32");
  int n = 0;
  for (int64_t D : Pick<int64_t>(s, {16, 100}, {1, 16, 100, 1024})) {
    for (int64_t rows : {1, 3}) {
      for (bool with_w : {true, false}) {
        const bool fd = D <= 100 && n % 2 == 0;
        const L xl = (n % 2) ? kS : kC;
        ++n;
        const float eps = 1e-5f;
        Case c(&rng, "x, dy [" + N(D) + ", " + N(rows) + "]" + (xl == kS ? " strided" : "") +
                         (with_w ? ", w" : "") + (fd ? " +fd" : ""));
        Vec x, dy, w;
        const int tx =
            c.Input(HEARTH_DTYPE_F32, {D, rows}, RandomVec(rng, D * rows, -2, 2), xl, &x);
        const int td = c.Input(HEARTH_DTYPE_F32, {D, rows}, RandomVec(rng, D * rows), kC, &dy);
        std::vector<int> ins = {tx, td};
        if (with_w) ins.push_back(c.Input(HEARTH_DTYPE_F32, {D}, RandomVec(rng, D), kC, &w));
        const int to = c.Output(HEARTH_DTYPE_F32, {D, rows}, kC);
        c.NodeP(HEARTH_OP_RMS_NORM_BACK, {to}, ins, hearth_rms_norm_params{eps});
        const Vec want = RmsNormBack(x, dy, w, D, rows, eps);
        Vec tol(want.size());
        for (int64_t r = 0; r < rows; ++r) {
          double ss = 0, dot = 0;
          for (int64_t i = 0; i < D; ++i) {
            ss += x[r * D + i] * x[r * D + i];
            dot += (w.empty() ? 1 : w[i]) * dy[r * D + i] * x[r * D + i];
          }
          const double inv = 1 / std::sqrt(ss / D + eps);
          for (int64_t i = 0; i < D; ++i) {
            tol[r * D + i] =
                1e-6 + 1e-5 * (inv * std::fabs((w.empty() ? 1 : w[i]) * dy[r * D + i]) +
                               inv * inv * inv / D * std::fabs(x[r * D + i] * dot));
          }
        }
        c.Expect(to, want, tol);
        if (fd) {
          c.Expect(
              to,
              FiniteDiffGrad(x, dy, [&](const Vec& xx) { return RmsNorm(xx, w, D, rows, eps); }),
              tol);
        }
        s.Run(c);
      }
    }
  }
}

// ------------------------------------------------------------------ ATTENTION_BACK
// atol 2e-5 + rtol 1e-4 on dq, dk, dv.
void GenAttentionBack(Suite& s) {
  Rng& rng = s.rng();
  s.Row("ATTENTION_BACK", "F32");
  struct Cfg {
    int64_t dk, dv, nh, nkv;
    std::vector<int32_t> seq;  // per token; positions count up per sequence
    int window;
    double softcap;
    const char* name;
  };
  std::vector<Cfg> cfgs = {
      {16, 16, 2, 2, {0, 0, 0, 0, 0}, 0, 0, "T=5, MHA"},
      {16, 16, 4, 1, {0, 0, 0, 0, 0, 0}, 0, 0, "T=6, GQA 4:1"},
      {8, 12, 2, 1, {0, 1, 0, 1, 1}, 0, 0, "2 sequences, dv 12"},
      {16, 16, 2, 2, {0, 0, 0, 0, 0, 0}, 3, 0, "window 3"},
      {16, 16, 2, 1, {0, 0, 0, 0, 0}, 0, 1.5, "softcap 1.5, GQA"},
      {32, 32, 2, 2, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0, 0, "T=12, hd 32"},
  };
  if (s.quick()) cfgs.resize(5);
  for (size_t ci = 0; ci < cfgs.size(); ++ci) {
    const Cfg& k = cfgs[ci];
    const int64_t T = static_cast<int64_t>(k.seq.size());
    const bool fd = ci < 5;
    std::vector<int32_t> pos(T);
    std::vector<int32_t> next = {2, 0};  // sequence 0 starts at position 2
    for (int64_t t = 0; t < T; ++t) pos[t] = next[k.seq[t]]++;
    const bool with_seq = *std::max_element(k.seq.begin(), k.seq.end()) > 0;
    Case c(&rng, std::string(k.name) + (fd ? " +fd" : ""));
    const double scale = 1 / std::sqrt(static_cast<double>(k.dk));
    const AttnArgs aa{static_cast<float>(scale), static_cast<float>(k.softcap), k.window};
    Vec q, kk, vv, dout, o, lse, o_st, lse_st;
    const int tq = c.Input(HEARTH_DTYPE_F32, {k.dk, k.nh, T},
                           RandomVec(rng, k.dk * k.nh * T, -2, 2), ci % 2 ? kS : kC, &q);
    const int tk = c.Input(HEARTH_DTYPE_F32, {k.dk, k.nkv, T},
                           RandomVec(rng, k.dk * k.nkv * T, -2, 2), kC, &kk);
    const int tv =
        c.Input(HEARTH_DTYPE_F32, {k.dv, k.nkv, T}, RandomVec(rng, k.dv * k.nkv * T), kC, &vv);
    SelfAttention(q, kk, vv, pos, k.seq, k.dk, k.dv, k.nh, k.nkv, T, aa, &o, &lse);
    const int to_in = c.Input(HEARTH_DTYPE_F32, {k.dv, k.nh, T}, o, kC, &o_st);
    const int tdo =
        c.Input(HEARTH_DTYPE_F32, {k.dv, k.nh, T}, RandomVec(rng, k.dv * k.nh * T), kC, &dout);
    const int tl = c.Input(HEARTH_DTYPE_F32, {k.nh, T}, lse, kC, &lse_st);
    const int tp = c.InputI32({T}, pos);
    std::vector<int> ins = {tq, tk, tv, to_in, tdo, tl, tp};
    if (with_seq) ins.push_back(c.InputI32({T}, k.seq));
    const int tdq = c.Output(HEARTH_DTYPE_F32, {k.dk, k.nh, T}, kC);
    const int tdk = c.Output(HEARTH_DTYPE_F32, {k.dk, k.nkv, T}, ci % 2 ? kC : kS);
    const int tdv = c.Output(HEARTH_DTYPE_F32, {k.dv, k.nkv, T}, kC);
    c.NodeP(HEARTH_OP_ATTENTION_BACK, {tdq, tdk, tdv}, ins,
            hearth_attention_params{static_cast<float>(scale), static_cast<float>(k.softcap),
                                    k.window});
    Vec dq, dk, dv;
    SelfAttentionBack(q, kk, vv, dout, pos, k.seq, k.dk, k.dv, k.nh, k.nkv, T, aa, &dq, &dk, &dv);
    c.Expect(tdq, dq, TolAbsRel(dq, 2e-5, 1e-4));
    c.Expect(tdk, dk, TolAbsRel(dk, 2e-5, 1e-4));
    c.Expect(tdv, dv, TolAbsRel(dv, 2e-5, 1e-4));
    if (fd) {
      auto out_of = [&](const Vec& qq, const Vec& k2, const Vec& v2) {
        Vec oo, ll;
        SelfAttention(qq, k2, v2, pos, k.seq, k.dk, k.dv, k.nh, k.nkv, T, aa, &oo, &ll);
        return oo;
      };
      c.Expect(tdq, FiniteDiffGrad(q, dout, [&](const Vec& x) { return out_of(x, kk, vv); }),
               TolAbsRel(dq, 2e-5, 1e-4));
      c.Expect(tdk, FiniteDiffGrad(kk, dout, [&](const Vec& x) { return out_of(q, x, vv); }),
               TolAbsRel(dk, 2e-5, 1e-4));
      c.Expect(tdv, FiniteDiffGrad(vv, dout, [&](const Vec& x) { return out_of(q, kk, x); }),
               TolAbsRel(dv, 2e-5, 1e-4));
    }
    s.Run(c);
  }
}

// ------------------------------------------------------------------ SILU_MUL_BACK, GELU_MUL_BACK
// atol 1e-6 + rtol 1e-5 on dgate and dup.
void GenGatedBack(Suite& s, bool gelu) {
  Rng& rng = s.rng();
  s.Row(gelu ? "GELU_MUL_BACK" : "SILU_MUL_BACK", "F32");
  int n = 0;
  for (int64_t D : Pick<int64_t>(s, {33, 256}, {1, 33, 256, 1000})) {
    for (int64_t rows : {1, 3}) {
      const bool fd = D <= 33;
      const L l = (n % 2) ? kS : kC;
      ++n;
      Case c(&rng, "gate, up, dy [" + N(D) + ", " + N(rows) + "]" + (l == kS ? " strided" : "") +
                       (fd ? " +fd" : ""));
      Vec g, u, dy;
      const int tg = c.Input(HEARTH_DTYPE_F32, {D, rows}, RandomVec(rng, D * rows, -6, 6), l, &g);
      const int tu = c.Input(HEARTH_DTYPE_F32, {D, rows}, RandomVec(rng, D * rows, -2, 2), kC, &u);
      const int td = c.Input(HEARTH_DTYPE_F32, {D, rows}, RandomVec(rng, D * rows), kC, &dy);
      const int tdg = c.Output(HEARTH_DTYPE_F32, {D, rows}, kC);
      const int tdu = c.Output(HEARTH_DTYPE_F32, {D, rows}, l);
      c.Node(gelu ? HEARTH_OP_GELU_MUL_BACK : HEARTH_OP_SILU_MUL_BACK, {tdg, tdu}, {tg, tu, td});
      Vec dg(g.size()), du(g.size());
      for (size_t i = 0; i < g.size(); ++i) {
        dg[i] = dy[i] * u[i] * (gelu ? GeluTanhGrad(g[i]) : SiluGrad(g[i]));
        du[i] = dy[i] * (gelu ? GeluTanh(g[i]) : Silu(g[i]));
      }
      c.Expect(tdg, dg, TolAbsRel(dg, 1e-6, 1e-5));
      c.Expect(tdu, du, TolAbsRel(du, 1e-6, 1e-5));
      if (fd) {
        auto f = [&](const Vec& gg, const Vec& uu) {
          Vec y(gg.size());
          for (size_t i = 0; i < gg.size(); ++i)
            y[i] = (gelu ? GeluTanh(gg[i]) : Silu(gg[i])) * uu[i];
          return y;
        };
        c.Expect(tdg, FiniteDiffGrad(g, dy, [&](const Vec& x) { return f(x, u); }),
                 TolAbsRel(dg, 1e-6, 1e-5));
        c.Expect(tdu, FiniteDiffGrad(u, dy, [&](const Vec& x) { return f(g, x); }),
                 TolAbsRel(du, 1e-6, 1e-5));
      }
      s.Run(c);
    }
  }
}
void GenSiluMulBack(Suite& s) { GenGatedBack(s, false); }
void GenGeluMulBack(Suite& s) { GenGatedBack(s, true); }

// ------------------------------------------------------------------ CROSS_ENTROPY (+ BACK)
// Loss: atol 1e-5 + rtol 1e-5. Gradient: |scale| * 1e-6 + rtol 1e-5.
std::vector<int32_t> Targets(Rng& rng, int64_t V, int64_t T, int32_t ignore) {
  std::vector<int32_t> t(T);
  for (auto& x : t) x = static_cast<int32_t>(UniformInt(rng, 0, V - 1));
  if (T > 1) t[1] = -1;      // masked by the sign rule
  if (T > 2) t[2] = ignore;  // masked by ignore_index (when it is a valid id)
  if (T > 3) t[3] = static_cast<int32_t>(V - 1);
  return t;
}

void GenCrossEntropyOp(Suite& s, bool back) {
  Rng& rng = s.rng();
  s.Row(back ? "CROSS_ENTROPY_BACK" : "CROSS_ENTROPY", "logits=F32");
  int n = 0;
  for (int64_t V : Pick<int64_t>(s, {7, 1000}, {1, 7, 1000, 5000})) {
    for (int64_t T : {1, 5}) {
      for (int32_t ignore : {-100, 3}) {
        if (ignore >= V) continue;
        const bool fd = back && V <= 7;
        const bool in_place = back && n % 2;
        const L l = (n % 3 == 1) ? kS : kC;
        ++n;
        const float scale = static_cast<float>(Uniform(rng, 0.1, 2));
        Case c(&rng, "logits [" + N(V) + ", " + N(T) + "]" + (l == kS ? " strided" : "") +
                         ", ignore_index " + N(ignore) + (in_place ? ", in place" : "") +
                         (fd ? " +fd" : ""));
        Vec logits;
        const int tl = c.Input(HEARTH_DTYPE_F32, {V, T}, RandomVec(rng, V * T, -8, 8), l, &logits);
        const std::vector<int32_t> tg = Targets(rng, V, T, ignore);
        const int tt = c.InputI32({T}, tg);
        if (!back) {
          const int to = c.Output(HEARTH_DTYPE_F32, {T}, kC);
          c.NodeP(HEARTH_OP_CROSS_ENTROPY, {to}, {tl, tt}, hearth_cross_entropy_params{ignore});
          const Vec want = CrossEntropy(logits, tg, V, T, ignore, true);
          c.Expect(to, want, TolAbsRel(want, 1e-5, 1e-5));
        } else {
          int to = tl;
          if (in_place) {
            c.MarkWritable(tl);
          } else {
            to = c.Output(HEARTH_DTYPE_F32, {V, T}, kC);
          }
          // hearth_scale_params followed by CROSS_ENTROPY's ignore_index.
          struct {
            float scale;
            int32_t ignore_index;
          } p = {scale, ignore};
          c.NodeP(HEARTH_OP_CROSS_ENTROPY_BACK, {to}, {tl, tt}, p);
          const Vec want = CrossEntropyBack(logits, tg, V, T, scale, ignore, true);
          const Vec tol = TolAbsRel(want, 1e-6 * scale, 1e-5);
          c.Expect(to, want, tol);
          if (fd) {
            Vec ones(static_cast<size_t>(T), scale);
            c.Expect(to,
                     FiniteDiffGrad(
                         logits, ones,
                         [&](const Vec& x) { return CrossEntropy(x, tg, V, T, ignore, true); }),
                     tol);
          }
        }
        s.Run(c);
      }
    }
  }
  // Targets >= V: an error.
  for (int64_t V : {7, 1000}) {
    Case c(&rng, "target " + N(V) + " of V " + N(V));
    Vec logits;
    const int tl = c.Input(HEARTH_DTYPE_F32, {V, 3}, RandomVec(rng, V * 3), kC, &logits);
    const int tt = c.InputI32({3}, {0, static_cast<int32_t>(V), 1});
    if (!back) {
      const int to = c.Output(HEARTH_DTYPE_F32, {3}, kC);
      c.NodeP(HEARTH_OP_CROSS_ENTROPY, {to}, {tl, tt}, hearth_cross_entropy_params{-100});
    } else {
      const int to = c.Output(HEARTH_DTYPE_F32, {V, 3}, kC);
      c.NodeP(HEARTH_OP_CROSS_ENTROPY_BACK, {to}, {tl, tt}, hearth_scale_params{1.0f});
    }
    c.ExpectError();
    s.Run(c);
  }
}
void GenCrossEntropy(Suite& s) { GenCrossEntropyOp(s, false); }
void GenCrossEntropyBack(Suite& s) { GenCrossEntropyOp(s, true); }

// ------------------------------------------------------------------ ADAMW_STEP
// p: 2e-7 |p| + 1e-4 lr; m: 1e-6 |m| + 1e-9; v: 1e-6 |v| + 1e-12.
void GenAdamW(Suite& s) {
  Rng& rng = s.rng();
  s.Row("ADAMW_STEP", "F32");
  int n = 0;
  for (const Shape& sh : Pick<Shape>(s, {{37, 3}, {1000}}, {{1}, {37, 3}, {1000}, {64, 4, 2}})) {
    for (int variant = 0; variant < 2; ++variant) {
      const L l = (n % 2) ? kS : kC;
      ++n;
      int64_t ne = 1;
      for (int64_t v : sh) ne *= v;
      const int t = static_cast<int>(UniformInt(rng, 1, 100));
      hearth_adamw_params p{};
      p.lr = 1e-3f;
      p.beta1 = 0.9f;
      p.beta2 = 0.999f;
      p.eps = 1e-8f;
      p.weight_decay = variant ? 0.01f : 0.0f;
      p.bias_correction1 = static_cast<float>(1 - std::pow(0.9, t));
      p.bias_correction2 = static_cast<float>(1 - std::pow(0.999, t));
      p.grad_scale = variant ? 0.5f : 1.0f;
      Case c(&rng, "[" + N(ne) + " elems]" + (l == kS ? " strided" : "") + ", step " + N(t) +
                       (variant ? ", weight decay, grad scale 0.5" : ""));
      Vec pv, g, m, v;
      const int tp = c.Input(HEARTH_DTYPE_F32, sh, RandomVec(rng, ne), l, &pv);
      const int tg = c.Input(HEARTH_DTYPE_F32, sh, RandomVec(rng, ne, -0.1, 0.1), kC, &g);
      const int tm = c.Input(HEARTH_DTYPE_F32, sh, RandomVec(rng, ne, -0.01, 0.01), l, &m);
      const int tv = c.Input(HEARTH_DTYPE_F32, sh, RandomVec(rng, ne, 0, 1e-4), kC, &v);
      c.MarkWritable(tp);
      c.MarkWritable(tm);
      c.MarkWritable(tv);
      c.NodeP(HEARTH_OP_ADAMW_STEP, {tp, tm, tv}, {tp, tg, tm, tv}, p);
      Vec wp(ne), wm(ne), wv(ne), tolp(ne), tolm(ne), tolv(ne);
      const double b1 = p.beta1, b2 = p.beta2, lr = p.lr, c1 = p.bias_correction1,
                   c2 = p.bias_correction2, eps = p.eps, wd = p.weight_decay;
      for (int64_t i = 0; i < ne; ++i) {
        const double gg = g[i] * static_cast<double>(p.grad_scale);
        wm[i] = b1 * m[i] + (1 - b1) * gg;
        wv[i] = b2 * v[i] + (1 - b2) * gg * gg;
        wp[i] = pv[i] - lr * (wm[i] / c1 / (std::sqrt(wv[i] / c2) + eps) + wd * pv[i]);
        tolp[i] = 2e-7 * std::fabs(wp[i]) + 1e-4 * lr;
        tolm[i] = 1e-6 * std::fabs(wm[i]) + 1e-9;
        tolv[i] = 1e-6 * std::fabs(wv[i]) + 1e-12;
      }
      c.Expect(tp, wp, tolp);
      c.Expect(tm, wm, tolm);
      c.Expect(tv, wv, tolv);
      s.Run(c);
    }
  }
}

// ------------------------------------------------------------------ SUM_SQ
// Accumulated in double: rtol 1e-6.
void GenSumSq(Suite& s) {
  Rng& rng = s.rng();
  s.Row("SUM_SQ", "F32");
  int n = 0;
  for (const Shape& sh :
       Pick<Shape>(s, {{37, 3}, {4096, 2}}, {{1}, {37, 3}, {4096, 2}, {100, 7, 3}})) {
    const L l = (n % 2) ? kS : kC;
    ++n;
    int64_t ne = 1;
    for (int64_t v : sh) ne *= v;
    Case c(&rng, "x [" + N(ne) + " elems]" + (l == kS ? " strided" : ""));
    Vec x;
    const int tx = c.Input(HEARTH_DTYPE_F32, sh, RandomVec(rng, ne, -3, 3), l, &x);
    const int to = c.Output(HEARTH_DTYPE_F32, {1}, kC);
    c.Node(HEARTH_OP_SUM_SQ, {to}, {tx});
    double sum = 0;
    for (double v : x) sum += v * v;
    c.Expect(to, {sum}, TolAbsRel({sum}, 1e-30, 1e-6));
    s.Run(c);
  }
}

// ----------------------------------------------------------------- DROPOUT
// The mask is defined bit for bit by hearth_plugin.h (splitmix64 of seed +
// offset + element index): outputs must be exact (the kept ones are x * s,
// one float multiply). p outside [0, 1) is an error.
uint64_t SplitMix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void GenDropout(Suite& s) {
  Rng& rng = s.rng();
  s.Row("DROPOUT", "F32");
  struct Setup {
    Shape sh;
    float p;
    bool offset;
  };
  int n = 0;
  for (const Setup& st : Pick<Setup>(s, {{{37, 3}, 0.1f, false}, {{4096, 2}, 0.5f, true}},
                                     {{{1}, 0.0f, false},
                                      {{37, 3}, 0.1f, false},
                                      {{4096, 2}, 0.5f, true},
                                      {{100, 7, 3}, 0.9f, true},
                                      {{33, 5}, 0.999f, false}})) {
    const L l = (n % 2) ? kS : kC;
    ++n;
    int64_t ne = 1;
    for (int64_t v : st.sh) ne *= v;
    const uint64_t seed = (static_cast<uint64_t>(rng()) << 32) ^ rng();
    const uint32_t off[2] = {static_cast<uint32_t>(rng()), static_cast<uint32_t>(rng())};
    Case c(&rng, "x [" + N(ne) + " elems] p " + std::to_string(st.p) +
                     (st.offset ? " offset" : "") + (l == kS ? " strided" : ""));
    Vec x;
    const int tx = c.Input(HEARTH_DTYPE_F32, st.sh, RandomVec(rng, ne, -3, 3), l, &x);
    const int to = c.Output(HEARTH_DTYPE_F32, st.sh, kC);
    std::vector<int> ins = {tx};
    uint64_t total = seed;
    if (st.offset) {
      ins.push_back(c.InputI32({2}, {static_cast<int32_t>(off[0]), static_cast<int32_t>(off[1])}));
      total += uint64_t{off[0]} | (uint64_t{off[1]} << 32);
    }
    c.NodeP(HEARTH_OP_DROPOUT, {to}, ins, hearth_dropout_params{st.p, 0, seed});
    const auto threshold = static_cast<uint32_t>(static_cast<double>(st.p) * 4294967296.0);
    const auto scale = static_cast<float>(1.0 / (1.0 - static_cast<double>(st.p)));
    Vec want(static_cast<size_t>(ne)), tol(static_cast<size_t>(ne), 0.0);
    for (int64_t e = 0; e < ne; ++e) {
      const bool keep =
          static_cast<uint32_t>(SplitMix64(total + static_cast<uint64_t>(e)) >> 32) >= threshold;
      want[e] = keep ? static_cast<double>(static_cast<float>(x[e]) * scale) : 0.0;
    }
    c.Expect(to, want, tol);
    s.Run(c);
  }
  for (float bad : {1.0f, -0.25f, std::nanf("")}) {
    Case c(&rng, "p " + std::to_string(bad));
    const int tx = c.Input(HEARTH_DTYPE_F32, {8, 2}, RandomVec(rng, 16), kC, nullptr);
    const int to = c.Output(HEARTH_DTYPE_F32, {8, 2}, kC);
    c.NodeP(HEARTH_OP_DROPOUT, {to}, {tx}, hearth_dropout_params{bad, 0, 1});
    c.ExpectError();
    s.Run(c);
  }
}

}  // namespace

void AddBackwardOps(std::vector<OpEntry>* ops) {
  ops->push_back({HEARTH_OP_MUL_MAT_T, "MUL_MAT_T", GenMulMatT});
  ops->push_back({HEARTH_OP_OUTER, "OUTER", GenOuter});
  ops->push_back({HEARTH_OP_RMS_NORM_BACK, "RMS_NORM_BACK", GenRmsNormBack});
  ops->push_back({HEARTH_OP_ROPE_BACK, "ROPE_BACK", GenRopeBack});
  ops->push_back({HEARTH_OP_ATTENTION_BACK, "ATTENTION_BACK", GenAttentionBack});
  ops->push_back({HEARTH_OP_SILU_MUL_BACK, "SILU_MUL_BACK", GenSiluMulBack});
  ops->push_back({HEARTH_OP_GELU_MUL_BACK, "GELU_MUL_BACK", GenGeluMulBack});
  ops->push_back({HEARTH_OP_CROSS_ENTROPY, "CROSS_ENTROPY", GenCrossEntropy});
  ops->push_back({HEARTH_OP_CROSS_ENTROPY_BACK, "CROSS_ENTROPY_BACK", GenCrossEntropyBack});
  ops->push_back({HEARTH_OP_ADAMW_STEP, "ADAMW_STEP", GenAdamW});
  ops->push_back({HEARTH_OP_SUM_SQ, "SUM_SQ", GenSumSq});
  ops->push_back({HEARTH_OP_DROPOUT, "DROPOUT", GenDropout});
}

const std::vector<OpEntry>& Ops() {
  static const std::vector<OpEntry> ops = [] {
    std::vector<OpEntry> v;
    AddForwardOps(&v);
    AddBackwardOps(&v);
    AddDeviceChecks(&v);
    return v;
  }();
  return ops;
}

}  // namespace hearth::conformance
