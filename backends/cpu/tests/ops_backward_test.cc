// ops_backward_test.cc — the CPU backend's backward (training) ops against
// plain double references written here, on random data, odd shapes and
// NaN-poisoned outputs, with 1 and 2 threads; and every gradient op against
// central finite differences (in double) of its forward definition.
//
// Tolerances: float outputs vs double references get atol + rtol*|ref|
// stated at each check; finite differences use h = 1e-5 in double, whose
// own error (~1e-9) is far below the float outputs' rounding, so they are
// held to atol 1e-5 + rtol 1e-4 unless a comment says otherwise.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/ops_dnnl.h"
#include "backends/cpu/ops_vec.h"
#include "backends/cpu/tests/ops_test_util.h"

namespace hearth::cpu::testing {
namespace {

class BackwardTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { ASSERT_TRUE(b_.ok()); }
  Backend b_{static_cast<uint32_t>(GetParam())};
};

INSTANTIATE_TEST_SUITE_P(Threads, BackwardTest, ::testing::Values(1, 2),
                         [](const auto& info) { return "t" + std::to_string(info.param); });

uint32_t FloatBitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

double Dot(const Vec& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// ------------------------------------------------------------- MUL_MAT_T

// out[t, k] = sum_m w[m, k] dy[t, m] against the double dequantized
// weights. Float accumulation over M terms (oneDNN or axpy): atol 1e-6 +
// rtol 1e-5 of sum |w dy|.
void CheckMulMatT(Backend& b, uint32_t dtype, int64_t k, int64_t m, int64_t t, int64_t batch,
                  bool w_batched, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "dtype " << DtypeName(dtype) << " K " << k << " M " << m
                                    << " T " << t << " batch " << batch);
  const int64_t wb = w_batched ? batch : 1;
  std::vector<uint8_t> w = RandomWeights(dtype, m * wb, k, seed);
  std::vector<float> dy = RandomF32(static_cast<size_t>(m * t * batch), seed + 1);
  int wi = b.Add(dtype, {k, m, wb}, w.data());
  int di = b.Add(HEARTH_DTYPE_F32, {m, t, batch}, dy.data());
  int oi = b.Add(HEARTH_DTYPE_F32, {k, t, batch});
  b.Node(HEARTH_OP_MUL_MAT_T, oi, {wi, di});
  ASSERT_EQ(b.Supports(0), 1);
  ASSERT_EQ(b.Compute(), HEARTH_P_OK) << Recorder().last_error;
  std::vector<float> got = b.Read(oi);
  for (int64_t bi = 0; bi < batch; ++bi) {
    std::vector<Vec> rows;
    for (int64_t r = 0; r < m; ++r)
      rows.push_back(WeightRow(dtype, w, k, (w_batched ? bi * m : 0) + r));
    for (int64_t tt = 0; tt < t; ++tt) {
      for (int64_t kk = 0; kk < k; ++kk) {
        double ref = 0, mag = 0;
        for (int64_t r = 0; r < m; ++r) {
          const double term = rows[r][kk] * dy[(bi * t + tt) * m + r];
          ref += term;
          mag += std::fabs(term);
        }
        const float y = got[(bi * t + tt) * k + kk];
        ASSERT_TRUE(std::isfinite(y) && std::fabs(y - ref) <= 1e-6 + 1e-5 * mag)
            << "out[" << bi << ", " << tt << ", " << kk << "] = " << y << ", want " << ref;
      }
    }
  }
  b.ClearNodes();
}

TEST_P(BackwardTest, MulMatTEveryDtype) {
  uint32_t seed = 1000;
  for (uint32_t dtype : kAllWeightDtypes) {
    for (int64_t t : {1, 3, 17, 40})
      CheckMulMatT(b_, dtype, KFor(dtype, 45), 13, t, 1, false, seed++);
  }
}

TEST_P(BackwardTest, MulMatTBatchedAndLargerThanOneSlab) {
  CheckMulMatT(b_, HEARTH_DTYPE_Q4_0, 64, 9, 20, 3, true, 1100);
  CheckMulMatT(b_, HEARTH_DTYPE_F16, 33, 9, 5, 2, false, 1101);
  // 8 MiB slabs: K = 4096 gives 512 rows per slab, so M = 600 takes two.
  CheckMulMatT(b_, HEARTH_DTYPE_F16, 4096, 600, 17, 1, false, 1102);
  CheckMulMatT(b_, HEARTH_DTYPE_Q4_K, 4096, 530, 3, 1, false, 1103);
}

// MUL_MAT_T with HEARTH_MUL_MAT_BF16: on a CPU with native BF16 the
// product of dy and the dequantized weights each rounded to BF16, in float
// (atol 1e-6 + rtol 1e-5 of sum |w dy|); elsewhere the float product.
void CheckMulMatTBf16(Backend& b, bool bf16, uint32_t dtype, int64_t k, int64_t m, int64_t t,
                      uint32_t seed) {
  SCOPED_TRACE(::testing::Message()
               << "dtype " << DtypeName(dtype) << " K " << k << " M " << m << " T " << t);
  std::vector<uint8_t> w = RandomWeights(dtype, m, k, seed);
  std::vector<float> dy = RandomF32(static_cast<size_t>(m * t), seed + 1);
  int wi = b.Add(dtype, {k, m}, w.data());
  int di = b.Add(HEARTH_DTYPE_F32, {m, t}, dy.data());
  int oi = b.Add(HEARTH_DTYPE_F32, {k, t});
  b.NodeP(HEARTH_OP_MUL_MAT_T, {oi}, {wi, di}, hearth_mul_mat_params{HEARTH_MUL_MAT_BF16});
  ASSERT_EQ(b.Compute(), HEARTH_P_OK) << Recorder().last_error;
  std::vector<float> got = b.Read(oi);
  b.ClearNodes();
  auto round = [&](double v) {
    return bf16 ? Bf16BitsToFloat(FloatToBf16Bits(static_cast<float>(v))) : v;
  };
  std::vector<Vec> rows;
  for (int64_t r = 0; r < m; ++r) rows.push_back(WeightRow(dtype, w, k, r));
  for (int64_t tt = 0; tt < t; ++tt) {
    for (int64_t kk = 0; kk < k; ++kk) {
      double ref = 0, mag = 0;
      for (int64_t r = 0; r < m; ++r) {
        ref += round(rows[r][kk]) * round(dy[tt * m + r]);
        mag += std::fabs(rows[r][kk] * dy[tt * m + r]);
      }
      const float y = got[tt * k + kk];
      ASSERT_TRUE(std::isfinite(y) && std::fabs(y - ref) <= 1e-6 + 1e-5 * mag)
          << "out[" << tt << ", " << kk << "] = " << y << ", want " << ref;
    }
  }
}

TEST_P(BackwardTest, MulMatTBf16IsTheProductOfRoundedOperands) {
  std::string error;
  std::unique_ptr<DnnlMatMul> dnnl = DnnlMatMul::Create(&error);
  const bool bf16 = dnnl != nullptr && dnnl->bf16_fast();
  uint32_t seed = 1200;
  for (uint32_t dtype : kAllWeightDtypes) {
    for (int64_t t : {3, 17, 40}) CheckMulMatTBf16(b_, bf16, dtype, KFor(dtype, 45), 13, t, seed++);
  }
  // 8 MiB BF16 slabs: K = 4096 gives 1024 rows per slab, so M = 1100 takes two.
  CheckMulMatTBf16(b_, bf16, HEARTH_DTYPE_F16, 4096, 1100, 17, seed++);
  CheckMulMatTBf16(b_, bf16, HEARTH_DTYPE_Q4_K, 4096, 1030, 16, seed++);
}

TEST_P(BackwardTest, MulMatTIsTheGradientOfMulMat) {
  // loss = sum dy * MUL_MAT(w, x); d loss / dx = MUL_MAT_T(w, dy).
  const int64_t k = 7, m = 5, t = 3;
  std::vector<uint8_t> w = RandomWeights(HEARTH_DTYPE_F32, m, k, 1200);
  std::vector<float> dy = RandomF32(m * t, 1201), x = RandomF32(k * t, 1202);
  int wi = b_.Add(HEARTH_DTYPE_F32, {k, m}, w.data());
  int di = b_.Add(HEARTH_DTYPE_F32, {m, t}, dy.data());
  int oi = b_.Add(HEARTH_DTYPE_F32, {k, t});
  b_.Node(HEARTH_OP_MUL_MAT_T, oi, {wi, di});
  ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
  Vec fd = FiniteDiff(ToDouble(x), [&](const Vec& xv) {
    double l = 0;
    for (int64_t tt = 0; tt < t; ++tt)
      for (int64_t r = 0; r < m; ++r) {
        Vec wr = WeightRow(HEARTH_DTYPE_F32, w, k, r);
        double y = 0;
        for (int64_t kk = 0; kk < k; ++kk) y += wr[kk] * xv[tt * k + kk];
        l += dy[tt * m + r] * y;
      }
    return l;
  });
  EXPECT_TRUE(Near(b_.Read(oi), fd, 1e-5, 1e-4));
}

TEST_P(BackwardTest, MulMatTRejectsMismatchedShapes) {
  std::vector<uint8_t> w = RandomWeights(HEARTH_DTYPE_F32, 5, 8, 1);
  int wi = b_.Add(HEARTH_DTYPE_F32, {8, 5}, w.data());
  int di = b_.Add(HEARTH_DTYPE_F32, {6, 2}, RandomF32(12, 2).data());
  int oi = b_.Add(HEARTH_DTYPE_F32, {8, 2});
  b_.Node(HEARTH_OP_MUL_MAT_T, oi, {wi, di});
  EXPECT_EQ(b_.Compute(), HEARTH_P_INVALID_ARGUMENT);
  EXPECT_NE(Recorder().last_error.find("input 1"), std::string::npos) << Recorder().last_error;
  EXPECT_TRUE(std::isnan(b_.Read(oi)[0]));  // nothing ran
}

// ------------------------------------------------------------------ OUTER

// out[p, n] = acc[p, n] + sum_t a[t, n] b[t, p]; float accumulation over T:
// atol 1e-6 + rtol 1e-5 of sum |terms|.
void CheckOuter(Backend& b, int64_t n, int64_t p, int64_t t, int acc_mode, uint32_t seed) {
  SCOPED_TRACE(::testing::Message()
               << "N " << n << " P " << p << " T " << t << " acc " << acc_mode);
  std::vector<float> a = RandomF32(n * t, seed), bv = RandomF32(p * t, seed + 1);
  std::vector<float> acc = RandomF32(n * p, seed + 2);
  int ai = b.Add(HEARTH_DTYPE_F32, {n, t}, a.data());
  int bi = b.Add(HEARTH_DTYPE_F32, {p, t}, bv.data());
  int ci = acc_mode ? b.Add(HEARTH_DTYPE_F32, {n, p}, acc.data()) : -1;
  int oi = acc_mode == 2 ? ci : b.Add(HEARTH_DTYPE_F32, {n, p});
  b.Node(HEARTH_OP_OUTER, oi, {ai, bi, ci});
  ASSERT_EQ(b.Compute(), HEARTH_P_OK) << Recorder().last_error;
  std::vector<float> got = b.Read(oi);
  for (int64_t pp = 0; pp < p; ++pp) {
    for (int64_t nn = 0; nn < n; ++nn) {
      double ref = acc_mode ? acc[pp * n + nn] : 0.0, mag = std::fabs(ref);
      for (int64_t tt = 0; tt < t; ++tt) {
        ref += double{a[tt * n + nn]} * bv[tt * p + pp];
        mag += std::fabs(double{a[tt * n + nn]} * bv[tt * p + pp]);
      }
      const float y = got[pp * n + nn];
      ASSERT_TRUE(std::isfinite(y) && std::fabs(y - ref) <= 1e-6 + 1e-5 * mag)
          << "out[" << pp << ", " << nn << "] = " << y << ", want " << ref;
    }
  }
  b.ClearNodes();
}

TEST_P(BackwardTest, OuterWithAndWithoutAccumulate) {
  uint32_t seed = 2000;
  // Small shapes take the axpy path, the last ones oneDNN.
  for (auto s : std::vector<std::array<int64_t, 3>>{
           {1, 1, 1}, {5, 3, 7}, {37, 16, 20}, {64, 130, 33}, {4096 / 16, 16, 40}, {3, 2, 0}}) {
    for (int acc_mode : {0, 1, 2}) CheckOuter(b_, s[0], s[1], s[2], acc_mode, seed++);
  }
}

TEST_P(BackwardTest, OuterIsTheGradientOfAProjection) {
  // y[t, n] = sum_p W[p, n] b[t, p]; loss = sum a * y; d loss / dW = OUTER(a, b).
  const int64_t n = 6, p = 4, t = 5;
  std::vector<float> a = RandomF32(n * t, 2100), bv = RandomF32(p * t, 2101);
  std::vector<float> w = RandomF32(n * p, 2102);
  int ai = b_.Add(HEARTH_DTYPE_F32, {n, t}, a.data());
  int bi = b_.Add(HEARTH_DTYPE_F32, {p, t}, bv.data());
  int oi = b_.Add(HEARTH_DTYPE_F32, {n, p});
  b_.Node(HEARTH_OP_OUTER, oi, {ai, bi});
  ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
  Vec fd = FiniteDiff(ToDouble(w), [&](const Vec& wv) {
    double l = 0;
    for (int64_t tt = 0; tt < t; ++tt)
      for (int64_t nn = 0; nn < n; ++nn) {
        double y = 0;
        for (int64_t pp = 0; pp < p; ++pp) y += wv[pp * n + nn] * bv[tt * p + pp];
        l += a[tt * n + nn] * y;
      }
    return l;
  });
  EXPECT_TRUE(Near(b_.Read(oi), fd, 1e-5, 1e-4));
}

// ---------------------------------------------------- SILU/GELU_MUL_BACK

double SiluRef(double x) { return x / (1 + std::exp(-x)); }
double GeluRef(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

TEST_P(BackwardTest, GatedBackMatchReferenceAndFiniteDifferences) {
  uint32_t seed = 3000;
  for (uint32_t op : {HEARTH_OP_SILU_MUL_BACK, HEARTH_OP_GELU_MUL_BACK}) {
    auto act = op == HEARTH_OP_SILU_MUL_BACK ? SiluRef : GeluRef;
    for (auto shape : std::vector<std::vector<int64_t>>{{1}, {37, 3}, {64, 5, 2}, {300, 40}}) {
      SCOPED_TRACE(::testing::Message() << "op " << op << " ne0 " << shape[0]);
      int64_t count = 1;
      for (int64_t d : shape) count *= d;
      std::vector<float> g = RandomF32(count, seed++, -6, 6), u = RandomF32(count, seed++);
      std::vector<float> dy = RandomF32(count, seed++);
      int gi = b_.Add(HEARTH_DTYPE_F32, shape, g.data());
      int ui = b_.Add(HEARTH_DTYPE_F32, shape, u.data());
      int di = b_.Add(HEARTH_DTYPE_F32, shape, dy.data());
      int dg = b_.Add(HEARTH_DTYPE_F32, shape), du = b_.Add(HEARTH_DTYPE_F32, shape);
      b_.NodeRaw(op, {dg, du}, {gi, ui, di}, nullptr, 0);
      ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
      b_.ClearNodes();
      // Each element is its own small function: finite differences per
      // element of loss = dy * act(g) * u.
      Vec dg_fd(count), du_ref(count);
      for (int64_t i = 0; i < count; ++i) {
        auto loss = [&](const Vec& x) { return double{dy[i]} * act(x[0]) * x[1]; };
        Vec fd = FiniteDiff({g[i], u[i]}, loss);
        dg_fd[i] = fd[0];
        du_ref[i] = double{dy[i]} * act(g[i]);
      }
      EXPECT_TRUE(Near(b_.Read(dg), dg_fd, 1e-5, 1e-4));
      EXPECT_TRUE(Near(b_.Read(du), du_ref, 1e-6, 1e-5));
    }
  }
}

// --------------------------------------------------------- RMS_NORM_BACK

Vec RmsNormRef(const Vec& x, const std::vector<float>* w, int64_t d, int64_t rows, double eps) {
  Vec y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < d; ++i) ss += x[r * d + i] * x[r * d + i];
    const double inv = 1 / std::sqrt(ss / d + eps);
    for (int64_t i = 0; i < d; ++i) y[r * d + i] = x[r * d + i] * inv * (w ? (*w)[i] : 1.0);
  }
  return y;
}

TEST_P(BackwardTest, RmsNormBackMatchesFiniteDifferences) {
  uint32_t seed = 4000;
  for (int64_t d : {1, 37, 256}) {
    for (int64_t rows : {1, 5}) {
      for (bool weighted : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "D " << d << " rows " << rows << " w " << weighted);
        const float eps = 1e-5f;
        std::vector<float> x = RandomF32(d * rows, seed++), dy = RandomF32(d * rows, seed++);
        std::vector<float> w = RandomF32(d, seed++, 0.5f, 1.5f);
        int xi = b_.Add(HEARTH_DTYPE_F32, {d, rows}, x.data());
        int di = b_.Add(HEARTH_DTYPE_F32, {d, rows}, dy.data());
        int wi = weighted ? b_.Add(HEARTH_DTYPE_F32, {d}, w.data()) : -1;
        int oi = b_.Add(HEARTH_DTYPE_F32, {d, rows});
        b_.NodeP(HEARTH_OP_RMS_NORM_BACK, {oi}, {xi, di, wi}, hearth_rms_norm_params{eps});
        ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
        b_.ClearNodes();
        Vec fd = FiniteDiff(ToDouble(x), [&](const Vec& xv) {
          return Dot(RmsNormRef(xv, weighted ? &w : nullptr, d, rows, eps), dy);
        });
        // The gradient of a normalization is a difference of two terms of
        // size |dy| / rms: atol 1e-5, rtol 1e-4.
        EXPECT_TRUE(Near(b_.Read(oi), fd, 1e-5, 1e-4));
      }
    }
  }
}

// -------------------------------------------------------------- ROPE_BACK

Vec RopeRef(const Vec& x, const std::vector<int32_t>& pos, const std::vector<float>* ff, int64_t hd,
            int64_t nh, int n_rot, bool neox, double base, double fs, double sign) {
  Vec y = x;
  const int64_t half = n_rot / 2;
  for (size_t t = 0; t < pos.size(); ++t)
    for (int64_t h = 0; h < nh; ++h)
      for (int64_t i = 0; i < half; ++i) {
        double th = pos[t] * fs * std::pow(base, -2.0 * i / n_rot);
        if (ff) th /= (*ff)[i];
        const double c = std::cos(th), s = sign * std::sin(th);
        const int64_t o = (t * nh + h) * hd;
        const int64_t i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
        y[o + i0] = x[o + i0] * c - x[o + i1] * s;
        y[o + i1] = x[o + i0] * s + x[o + i1] * c;
      }
  return y;
}

TEST_P(BackwardTest, RopeBackIsTheInverseRotation) {
  uint32_t seed = 5000;
  const std::vector<int32_t> pos = {0, 7, 3, 70000, 12};
  const int64_t T = static_cast<int64_t>(pos.size());
  for (int mode : {HEARTH_ROPE_NORMAL, HEARTH_ROPE_NEOX}) {
    for (auto [hd, n_rot] : std::vector<std::pair<int64_t, int>>{{8, 8}, {10, 6}}) {
      for (bool factors : {false, true}) {
        for (bool in_place : {false, true}) {
          SCOPED_TRACE(::testing::Message() << "mode " << mode << " hd " << hd << " n_rot " << n_rot
                                            << " ff " << factors << " ip " << in_place);
          const int64_t nh = 3;
          std::vector<float> dy = RandomF32(hd * nh * T, seed++);
          std::vector<float> ff = RandomF32(n_rot / 2, seed++, 1.0f, 8.0f);
          int di = b_.Add(HEARTH_DTYPE_F32, {hd, nh, T}, dy.data());
          int pi = b_.Add(HEARTH_DTYPE_I32, {T}, pos.data());
          int fi = factors ? b_.Add(HEARTH_DTYPE_F32, {n_rot / 2}, ff.data()) : -1;
          int oi = in_place ? di : b_.Add(HEARTH_DTYPE_F32, {hd, nh, T});
          b_.NodeP(HEARTH_OP_ROPE_BACK, {oi}, {di, pi, fi},
                   hearth_rope_params{10000.0f, 0.5f, n_rot, mode});
          ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
          b_.ClearNodes();
          const std::vector<float>* ffp = factors ? &ff : nullptr;
          const bool neox = mode == HEARTH_ROPE_NEOX;
          // Reference: rotation by -theta (angles in double; the op rounds
          // cos/sin to float): atol 1e-6, rtol 1e-5.
          Vec ref = RopeRef(ToDouble(dy), pos, ffp, hd, nh, n_rot, neox, 10000, 0.5, -1);
          std::vector<float> got = b_.Read(oi);
          EXPECT_TRUE(Near(got, ref, 1e-6, 1e-5));
          // Gradient of loss = dy . ROPE(x) with respect to x. The loss is
          // linear, so the differences are exact up to rounding.
          std::vector<float> x = RandomF32(hd * nh * T, seed++);
          Vec fd = FiniteDiff(ToDouble(x), [&](const Vec& xv) {
            return Dot(RopeRef(xv, pos, ffp, hd, nh, n_rot, neox, 10000, 0.5, 1), dy);
          });
          EXPECT_TRUE(Near(got, fd, 1e-5, 1e-4));
        }
      }
    }
  }
}

// --------------------------------------------------------- CROSS_ENTROPY

struct CeCase {
  int64_t V, T;
  int32_t ignore_index;
};

TEST_P(BackwardTest, CrossEntropyAndBackMatchReferenceAndFiniteDifferences) {
  uint32_t seed = 6000;
  for (CeCase c : {CeCase{7, 6, -100}, CeCase{300, 5, 3}, CeCase{1000, 9, -100}}) {
    SCOPED_TRACE(::testing::Message() << "V " << c.V << " T " << c.T);
    std::vector<float> logits = RandomF32(c.V * c.T, seed++, -8, 8);
    std::vector<int32_t> tg(c.T);
    std::mt19937 rng(seed++);
    for (int64_t t = 0; t < c.T; ++t) tg[t] = static_cast<int32_t>(rng() % c.V);
    tg[1] = -1;              // masked: negative
    tg[2] = c.ignore_index;  // masked: ignore_index (or negative)
    const float scale = 0.37f;
    int li = b_.Add(HEARTH_DTYPE_F32, {c.V, c.T}, logits.data());
    int ti = b_.Add(HEARTH_DTYPE_I32, {c.T}, tg.data());
    int loss = b_.Add(HEARTH_DTYPE_F32, {c.T});
    int grad = b_.Add(HEARTH_DTYPE_F32, {c.V, c.T});
    int lcopy = b_.Add(HEARTH_DTYPE_F32, {c.V, c.T}, logits.data());
    b_.NodeP(HEARTH_OP_CROSS_ENTROPY, {loss}, {li, ti},
             hearth_cross_entropy_params{c.ignore_index});
    const hearth_cross_entropy_back_params back{scale, c.ignore_index};
    b_.NodeP(HEARTH_OP_CROSS_ENTROPY_BACK, {grad}, {li, ti}, back);
    b_.NodeP(HEARTH_OP_CROSS_ENTROPY_BACK, {lcopy}, {lcopy, ti}, back);  // in place
    ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
    b_.ClearNodes();
    auto ce = [&](const Vec& l, int64_t t) {
      if (tg[t] < 0 || tg[t] == c.ignore_index) return 0.0;
      double m = -INFINITY, s = 0;
      for (int64_t v = 0; v < c.V; ++v) m = std::max(m, l[t * c.V + v]);
      for (int64_t v = 0; v < c.V; ++v) s += std::exp(l[t * c.V + v] - m);
      return m + std::log(s) - l[t * c.V + tg[t]];
    };
    Vec ref_loss(c.T);
    for (int64_t t = 0; t < c.T; ++t) ref_loss[t] = ce(ToDouble(logits), t);
    // lse of logits up to 8 in float: atol 1e-5, rtol 1e-5.
    EXPECT_TRUE(Near(b_.Read(loss), ref_loss, 1e-5, 1e-5));
    Vec fd = FiniteDiff(ToDouble(logits), [&](const Vec& l) {
      double s = 0;
      for (int64_t t = 0; t < c.T; ++t) s += ce(l, t);
      return scale * s;
    });
    EXPECT_TRUE(Near(b_.Read(grad), fd, 1e-6, 1e-4));
    EXPECT_EQ(b_.Read(grad), b_.Read(lcopy));  // in place gives the same bits
  }
}

TEST_P(BackwardTest, CrossEntropyBackWithScaleOnlyMasksNegativeTargetsOnly) {
  // params_size 4: no ignore_index; target 0 is a class like any other.
  const int64_t V = 5, T = 2;
  std::vector<float> logits = RandomF32(V * T, 6100);
  std::vector<int32_t> tg = {0, -7};
  int li = b_.Add(HEARTH_DTYPE_F32, {V, T}, logits.data());
  int ti = b_.Add(HEARTH_DTYPE_I32, {T}, tg.data());
  int gi = b_.Add(HEARTH_DTYPE_F32, {V, T});
  b_.NodeP(HEARTH_OP_CROSS_ENTROPY_BACK, {gi}, {li, ti}, hearth_scale_params{1.0f});
  ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
  std::vector<float> g = b_.Read(gi);
  double m = *std::max_element(logits.begin(), logits.begin() + V), s = 0;
  for (int64_t v = 0; v < V; ++v) s += std::exp(logits[v] - m);
  Vec ref(V * T, 0.0);
  for (int64_t v = 0; v < V; ++v) ref[v] = std::exp(logits[v] - m) / s - (v == 0);
  EXPECT_TRUE(Near(g, ref, 1e-6, 1e-5));
}

TEST_P(BackwardTest, CrossEntropyWithoutParamsCountsTargetZero) {
  // No params: no ignore_index, so target 0 is a class (not "ignore 0").
  const int64_t V = 6, T = 2;
  std::vector<float> logits = RandomF32(V * T, 6200);
  std::vector<int32_t> tg = {0, -1};
  int li = b_.Add(HEARTH_DTYPE_F32, {V, T}, logits.data());
  int ti = b_.Add(HEARTH_DTYPE_I32, {T}, tg.data());
  int oi = b_.Add(HEARTH_DTYPE_F32, {T});
  b_.NodeRaw(HEARTH_OP_CROSS_ENTROPY, {oi}, {li, ti}, nullptr, 0);
  ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
  double m = *std::max_element(logits.begin(), logits.begin() + V), s = 0;
  for (int64_t v = 0; v < V; ++v) s += std::exp(logits[v] - m);
  EXPECT_TRUE(Near(b_.Read(oi), Vec{m + std::log(s) - logits[0], 0.0}, 1e-5, 1e-5));
}

TEST_P(BackwardTest, CrossEntropyRejectsTargetsPastTheVocabulary) {
  for (uint32_t op : {HEARTH_OP_CROSS_ENTROPY, HEARTH_OP_CROSS_ENTROPY_BACK}) {
    const int64_t V = 4, T = 3;
    std::vector<int32_t> tg = {1, 4, 0};
    int li = b_.Add(HEARTH_DTYPE_F32, {V, T}, RandomF32(V * T, 1).data());
    int ti = b_.Add(HEARTH_DTYPE_I32, {T}, tg.data());
    int oi = b_.Add(HEARTH_DTYPE_F32, op == HEARTH_OP_CROSS_ENTROPY ? std::vector<int64_t>{T}
                                                                    : std::vector<int64_t>{V, T});
    b_.NodeP(op, {oi}, {li, ti}, hearth_cross_entropy_params{-100});
    EXPECT_EQ(b_.Compute(), HEARTH_P_INVALID_ARGUMENT);
    EXPECT_NE(Recorder().last_error.find("targets[1] = 4"), std::string::npos)
        << Recorder().last_error;
    EXPECT_TRUE(std::isnan(b_.Read(oi)[0]));
    b_.ClearNodes();
  }
}

// ------------------------------------------------------------- ADAMW_STEP

TEST_P(BackwardTest, AdamwStepInPlaceMatchesReference) {
  uint32_t seed = 7000;
  for (auto shape : std::vector<std::vector<int64_t>>{{1}, {37, 3}, {4096, 5}}) {
    for (float grad_scale : {0.0f, 0.25f}) {
      int64_t count = 1;
      for (int64_t d : shape) count *= d;
      std::vector<float> p = RandomF32(count, seed++), g = RandomF32(count, seed++);
      std::vector<float> m = RandomF32(count, seed++, -0.1f, 0.1f);
      std::vector<float> v = RandomF32(count, seed++, 0.0f, 0.01f);
      hearth_adamw_params prm{1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.271f, 0.00599f, grad_scale};
      int pi = b_.Add(HEARTH_DTYPE_F32, shape, p.data());
      int gi = b_.Add(HEARTH_DTYPE_F32, shape, g.data());
      int mi = b_.Add(HEARTH_DTYPE_F32, shape, m.data());
      int vi = b_.Add(HEARTH_DTYPE_F32, shape, v.data());
      b_.NodeP(HEARTH_OP_ADAMW_STEP, {pi, mi, vi}, {pi, gi, mi, vi}, prm);
      ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
      b_.ClearNodes();
      const double gs = grad_scale == 0 ? 1 : grad_scale;
      Vec rp(count), rm(count), rv(count);
      for (int64_t i = 0; i < count; ++i) {
        const double gi2 = g[i] * gs;
        rm[i] = prm.beta1 * double{m[i]} + (1 - double{prm.beta1}) * gi2;
        rv[i] = prm.beta2 * double{v[i]} + (1 - double{prm.beta2}) * gi2 * gi2;
        rp[i] = p[i] - prm.lr * (rm[i] / prm.bias_correction1 /
                                     (std::sqrt(rv[i] / prm.bias_correction2) + prm.eps) +
                                 prm.weight_decay * double{p[i]});
      }
      // Float arithmetic on O(1) values: p and m to 1e-6, v to 1e-8 + 1e-5.
      EXPECT_TRUE(Near(b_.Read(pi), rp, 1e-6, 1e-6));
      EXPECT_TRUE(Near(b_.Read(mi), rm, 1e-7, 1e-5));
      EXPECT_TRUE(Near(b_.Read(vi), rv, 1e-9, 1e-5));
    }
  }
}

TEST_P(BackwardTest, AdamwStepRejectsBadParams) {
  int pi = b_.Add(HEARTH_DTYPE_F32, {4}, RandomF32(4, 1).data());
  int gi = b_.Add(HEARTH_DTYPE_F32, {4}, RandomF32(4, 2).data());
  int mi = b_.Add(HEARTH_DTYPE_F32, {4}, RandomF32(4, 3).data());
  int vi = b_.Add(HEARTH_DTYPE_F32, {4}, RandomF32(4, 4, 0, 1).data());
  b_.NodeP(HEARTH_OP_ADAMW_STEP, {pi, mi, vi}, {pi, gi, mi, vi},
           hearth_adamw_params{1e-3f, 1.5f, 0.999f, 1e-8f, 0, 1, 1, 1});
  EXPECT_EQ(b_.Compute(), HEARTH_P_INVALID_ARGUMENT);
  EXPECT_NE(Recorder().last_error.find("beta1"), std::string::npos) << Recorder().last_error;
  b_.ClearNodes();
  // m as an output that is not the view of input m: refused as an overlap.
  b_.NodeP(HEARTH_OP_ADAMW_STEP, {pi, vi, mi}, {pi, gi, mi, vi},
           hearth_adamw_params{1e-3f, 0.9f, 0.999f, 1e-8f, 0, 1, 1, 1});
  EXPECT_EQ(b_.Compute(), HEARTH_P_INVALID_ARGUMENT);
  EXPECT_NE(Recorder().last_error.find("output 1"), std::string::npos) << Recorder().last_error;
}

// ----------------------------------------------------------------- SUM_SQ

TEST_P(BackwardTest, SumSqIsDeterministicAcrossThreadCounts) {
  Backend other(3);
  ASSERT_TRUE(other.ok());
  uint32_t seed = 8000;
  for (auto shape : std::vector<std::vector<int64_t>>{{1}, {37, 5}, {1000, 101, 3}, {0, 4}}) {
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    std::vector<float> x = RandomF32(count, seed++, -3, 3);
    double ref = 0;
    for (float f : x) ref += double{f} * f;
    float got[2];
    Backend* bs[2] = {&b_, &other};
    for (int k = 0; k < 2; ++k) {
      int xi = bs[k]->Add(HEARTH_DTYPE_F32, shape, x.data());
      int oi = bs[k]->Add(HEARTH_DTYPE_F32, {1});
      bs[k]->Node(HEARTH_OP_SUM_SQ, oi, {xi});
      ASSERT_EQ(bs[k]->Compute(), HEARTH_P_OK) << Recorder().last_error;
      got[k] = bs[k]->Read(oi)[0];
      bs[k]->ClearNodes();
    }
    // Double accumulation: only the final rounding to float remains.
    EXPECT_TRUE(Near({got[0]}, {ref}, 0, 1e-7));
    EXPECT_EQ(FloatBitsOf(got[0]), FloatBitsOf(got[1]));
  }
}

// ----------------------------------------------------------------- DROPOUT
// The exact mask is checked by hearth-conformance against hearth_plugin.h's
// formula; here: its statistics, determinism, in place, the offset input,
// and that the same node over dy drops the same elements (its backward).

TEST_P(BackwardTest, DropoutKeepsAboutOneMinusPAndScales) {
  Backend other(3);
  ASSERT_TRUE(other.ok());
  const int64_t n = 1 << 16;
  std::vector<float> x = RandomF32(n, 9000, 0.5f, 2.0f);  // never 0
  for (float p : {0.0f, 0.1f, 0.5f, 0.9f}) {
    SCOPED_TRACE(::testing::Message() << "p " << p);
    const hearth_dropout_params prm{p, 0, 0x1234567890ABCDEFull};
    std::vector<float> got[2];
    Backend* bs[2] = {&b_, &other};
    for (int k = 0; k < 2; ++k) {
      int xi = bs[k]->Add(HEARTH_DTYPE_F32, {n / 64, 64}, x.data());
      int oi = bs[k]->Add(HEARTH_DTYPE_F32, {n / 64, 64});
      bs[k]->NodeP(HEARTH_OP_DROPOUT, {oi}, {xi}, prm);
      ASSERT_EQ(bs[k]->Compute(), HEARTH_P_OK) << Recorder().last_error;
      got[k] = bs[k]->Read(oi);
      bs[k]->ClearNodes();
    }
    EXPECT_EQ(got[0], got[1]);  // thread count does not change the mask
    const float scale = static_cast<float>(1.0 / (1.0 - p));
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
      if (got[0][i] != 0.0f) {
        ++kept;
        ASSERT_EQ(got[0][i], x[i] * scale) << i;
      }
    }
    // Binomial(n, 1 - p): within 5 standard deviations.
    const double mean = n * (1.0 - p), sd = std::sqrt(n * p * (1.0 - p));
    EXPECT_LE(std::fabs(kept - mean), 5 * sd + 0.5) << kept << " kept";
  }
}

TEST_P(BackwardTest, DropoutOffsetInPlaceAndItsBackward) {
  const int64_t n = 4096;
  std::vector<float> x = RandomF32(n, 9100, 0.5f, 2.0f), dy = RandomF32(n, 9101, 0.5f, 2.0f);
  const hearth_dropout_params prm{0.5f, 0, 77};
  auto run = [&](const std::vector<float>& in, const std::vector<int32_t>* offset, bool in_place) {
    int xi = b_.Add(HEARTH_DTYPE_F32, {64, 64}, in.data());
    int oi = in_place ? xi : b_.Add(HEARTH_DTYPE_F32, {64, 64});
    std::vector<int> ins = {xi};
    if (offset) ins.push_back(b_.Add(HEARTH_DTYPE_I32, {2}, offset->data()));
    b_.NodeRaw(HEARTH_OP_DROPOUT, {oi}, ins, &prm, sizeof(prm));
    EXPECT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
    std::vector<float> out = b_.Read(oi);
    b_.ClearNodes();
    return out;
  };
  const std::vector<int32_t> zero = {0, 0}, other = {5, -3};
  const std::vector<float> plain = run(x, nullptr, false);
  EXPECT_EQ(run(x, nullptr, true), plain);
  EXPECT_EQ(run(x, &zero, false), plain);  // offset 0 = absent
  const std::vector<float> moved = run(x, &other, false);
  int64_t differ = 0;
  for (int64_t i = 0; i < n; ++i) differ += (moved[i] == 0) != (plain[i] == 0);
  EXPECT_GT(differ, n / 4);  // a new offset draws a new mask (about half differ)
  // The backward: the same node over dy zeroes exactly the same elements.
  const std::vector<float> back = run(dy, nullptr, false);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(back[i] == 0, plain[i] == 0) << i;
}

TEST_P(BackwardTest, DropoutRejectsBadPAndOffset) {
  std::vector<float> x = RandomF32(16, 9200);
  for (float p : {1.0f, -0.5f, std::nanf("")}) {
    int xi = b_.Add(HEARTH_DTYPE_F32, {16}, x.data());
    int oi = b_.Add(HEARTH_DTYPE_F32, {16});
    b_.NodeP(HEARTH_OP_DROPOUT, {oi}, {xi}, hearth_dropout_params{p, 0, 1});
    EXPECT_EQ(b_.Compute(), HEARTH_P_INVALID_ARGUMENT) << p;
    EXPECT_NE(Recorder().last_error.find("p is"), std::string::npos) << Recorder().last_error;
    b_.ClearNodes();
  }
  const std::vector<int32_t> three = {1, 2, 3};
  int xi = b_.Add(HEARTH_DTYPE_F32, {16}, x.data());
  int oi = b_.Add(HEARTH_DTYPE_F32, {16});
  int fi = b_.Add(HEARTH_DTYPE_I32, {3}, three.data());
  b_.NodeP(HEARTH_OP_DROPOUT, {oi}, {xi, fi}, hearth_dropout_params{0.5f, 0, 1});
  EXPECT_EQ(b_.Compute(), HEARTH_P_INVALID_ARGUMENT);
  EXPECT_NE(Recorder().last_error.find("2 elements"), std::string::npos) << Recorder().last_error;
}

}  // namespace
}  // namespace hearth::cpu::testing
