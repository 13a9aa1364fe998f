// ops_vec_test.cc — the CPU backend's vector primitives: half conversion
// exact against the compiler's _Float16 (every half, a sweep of floats), exp
// accurate to 3e-7 relative, and the AVX2 table agreeing with the scalar one.
#include "backends/cpu/ops_vec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <utility>
#include <vector>

namespace hearth::cpu {
namespace {

TEST(VecTest, HalfConversionsAreExact) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = HalfBitsToFloat(static_cast<uint16_t>(h));
    _Float16 ref;
    uint16_t hb = static_cast<uint16_t>(h);
    std::memcpy(&ref, &hb, 2);
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(static_cast<float>(ref)));
      continue;
    }
    ASSERT_EQ(FloatBits(f), FloatBits(static_cast<float>(ref))) << std::hex << h;
    ASSERT_EQ(FloatToHalfBits(f), h) << std::hex << h;
  }
  // Rounding of floats between halves, ties included, over a sweep of bits.
  for (uint64_t u = 0; u < (uint64_t{1} << 32); u += 4099) {
    float f = BitsFloat(static_cast<uint32_t>(u));
    if (std::isnan(f)) continue;
    _Float16 ref = static_cast<_Float16>(f);
    uint16_t rb;
    std::memcpy(&rb, &ref, 2);
    ASSERT_EQ(FloatToHalfBits(f), rb) << std::hex << u;
  }
}

TEST(VecTest, ScalarAndAvx2Agree) {
  const VecOps* avx2 = VecAvx2();
  if (avx2 == nullptr) GTEST_SKIP() << "CPU without AVX2/FMA/F16C: only the scalar table runs";
  const VecOps& ref = VecScalar();
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-12.0f, 12.0f);
  for (int64_t n : {1, 7, 8, 9, 31, 33, 100}) {
    std::vector<float> a(n), b(n), y1(n), y2(n);
    std::vector<uint16_t> h(n), h1(n), h2(n);
    for (int64_t i = 0; i < n; ++i) {
      a[i] = dist(rng);
      b[i] = dist(rng);
      h[i] = FloatToHalfBits(b[i]);
    }
    auto near = [](double x, double y, double tol) { return std::fabs(x - y) <= tol; };
    EXPECT_TRUE(
        near(avx2->dot_f32(a.data(), b.data(), n), ref.dot_f32(a.data(), b.data(), n), 1e-3));
    EXPECT_TRUE(
        near(avx2->dot_f16(a.data(), h.data(), n), ref.dot_f16(a.data(), h.data(), n), 1e-3));
    EXPECT_TRUE(near(avx2->sum_sq(a.data(), n), ref.sum_sq(a.data(), n), 1e-2));
    EXPECT_EQ(avx2->max(a.data(), n), ref.max(a.data(), n));
    float s1 = avx2->exp_sum(y1.data(), a.data(), 0.7f, 3.0f, n);
    float s2 = ref.exp_sum(y2.data(), a.data(), 0.7f, 3.0f, n);
    // The AVX2 path forms x*scale - sub with one rounding (FMA), the scalar
    // one with two: their exps differ by up to ~|x*scale| * 2^-24 relative.
    EXPECT_NEAR(s1, s2, 2e-6 * std::fabs(s2));
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y1[i], y2[i], 2e-6 * y2[i]);
    avx2->silu_mul(y1.data(), a.data(), b.data(), n);
    ref.silu_mul(y2.data(), a.data(), b.data(), n);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y1[i], y2[i], 1e-6 + 1e-6 * std::fabs(y2[i]));
    avx2->gelu_mul(y1.data(), a.data(), b.data(), n);
    ref.gelu_mul(y2.data(), a.data(), b.data(), n);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y1[i], y2[i], 2e-6 + 1e-6 * std::fabs(y2[i]));
    y1 = a;
    y2 = a;
    avx2->softcap(y1.data(), 5.0f, n);
    ref.softcap(y2.data(), 5.0f, n);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y1[i], y2[i], 2e-6);
    avx2->f32_to_f16(h1.data(), a.data(), n);
    ref.f32_to_f16(h2.data(), a.data(), n);
    EXPECT_EQ(h1, h2);
    avx2->f32_to_bf16(h1.data(), a.data(), n);
    ref.f32_to_bf16(h2.data(), a.data(), n);
    EXPECT_EQ(h1, h2);
  }
}

// The tile product, both layouts of a, against a double loop: every row and
// column remainder of the 6 x 16 register blocks, c accumulated into.
TEST(VecTest, GemmAccMatchesDouble) {
  std::vector<const VecOps*> tables = {&VecScalar()};
  if (VecAvx2() != nullptr) tables.push_back(VecAvx2());
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (const VecOps* ops : tables) {
    for (int64_t m : {1, 5, 6, 7, 13, 64}) {
      for (int64_t n : {1, 7, 8, 15, 16, 17, 40, 64}) {
        for (int64_t k : {1, 3, 64}) {
          for (bool transposed : {false, true}) {
            SCOPED_TRACE(::testing::Message() << ops->isa << " m " << m << " n " << n << " k " << k
                                              << " transposed " << transposed);
            const int64_t lda = transposed ? m + 3 : k + 2, ldb = n + 5, ldc = n + 1;
            const int64_t a_si = transposed ? 1 : lda, a_sp = transposed ? lda : 1;
            std::vector<float> a((transposed ? k : m) * lda), b(k * ldb), c(m * ldc);
            for (float& x : a) x = dist(rng);
            for (float& x : b) x = dist(rng);
            for (float& x : c) x = dist(rng);
            std::vector<float> want = c;
            for (int64_t i = 0; i < m; ++i) {
              for (int64_t j = 0; j < n; ++j) {
                double s = want[i * ldc + j];
                for (int64_t p = 0; p < k; ++p)
                  s += double{a[i * a_si + p * a_sp]} * b[p * ldb + j];
                want[i * ldc + j] = static_cast<float>(s);
              }
            }
            ops->gemm_acc(m, n, k, a.data(), a_si, a_sp, b.data(), ldb, c.data(), ldc);
            for (int64_t i = 0; i < m * ldc; ++i) ASSERT_NEAR(c[i], want[i], 1e-5 * (k + 1)) << i;
          }
        }
      }
    }
  }
}

// The attention tile products against double loops, and each score the
// same bits whether its row and key are computed alone or inside a tile.
TEST(VecTest, QkTileAndPvAccMatchDoubleAndDoNotDependOnTheTile) {
  std::vector<const VecOps*> tables = {&VecScalar()};
  if (VecAvx2() != nullptr) tables.push_back(VecAvx2());
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (const VecOps* ops : tables) {
    for (int64_t m : {1, 2, 3, 8, 33}) {
      for (int64_t n : {4, 8, 64}) {
        for (int64_t d : {8, 64, 256}) {
          SCOPED_TRACE(::testing::Message() << ops->isa << " m " << m << " n " << n << " d " << d);
          std::vector<float> q(m * d), k(n * d), s(m * (n + 3));
          for (float& x : q) x = dist(rng);
          for (float& x : k) x = dist(rng);
          ops->qk_tile(q.data(), m, k.data(), n, d, s.data(), n + 3);
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n; ++j) {
              double want = 0;
              for (int64_t p = 0; p < d; ++p) want += double{q[i * d + p]} * k[j * d + p];
              ASSERT_NEAR(s[i * (n + 3) + j], want, 1e-5 * d) << i << " " << j;
              // Row i alone against the four keys of j's block.
              float alone[4];
              ops->qk_tile(&q[i * d], 1, &k[j / 4 * 4 * d], 4, d, alone, 4);
              ASSERT_EQ(alone[j % 4], s[i * (n + 3) + j]) << i << " " << j;
            }
          }
        }
      }
    }
    for (int64_t n : {1, 5, 64}) {
      for (int64_t dv : {1, 7, 8, 12, 64, 72, 256}) {
        SCOPED_TRACE(::testing::Message() << ops->isa << " n " << n << " dv " << dv);
        const int64_t ldv = dv + 5;
        std::vector<float> p(n), v(n * ldv), o(dv);
        for (float& x : p) x = dist(rng);
        for (float& x : v) x = dist(rng);
        for (float& x : o) x = dist(rng);
        std::vector<double> want(o.begin(), o.end());
        for (int64_t j = 0; j < n; ++j) {
          for (int64_t c = 0; c < dv; ++c) want[c] += double{p[j]} * v[j * ldv + c];
        }
        ops->pv_acc(p.data(), n, v.data(), ldv, dv, o.data());
        for (int64_t c = 0; c < dv; ++c) ASSERT_NEAR(o[c], want[c], 1e-5 * (n + 1)) << c;
      }
    }
  }
}

// Round to nearest even at bit 16, ties included, and the special values.
TEST(VecTest, Bf16RoundsToNearestEven) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<std::pair<uint32_t, uint16_t>> cases = {
      {0x3f800000u, 0x3f80u},  // 1
      {0x3f808000u, 0x3f80u},  // tie, even stays
      {0x3f818000u, 0x3f82u},  // tie, odd rounds up
      {0x3f808001u, 0x3f81u},  // just above the tie
      {0x3f807fffu, 0x3f80u},  // just below
      {0x7f7fffffu, 0x7f80u},  // max float rounds to inf
      {0x80000000u, 0x8000u},  // -0
      {0x00000001u, 0x0000u},  // smallest subnormal rounds to 0
  };
  for (const VecOps* vec : {&VecScalar(), VecAvx2()}) {
    if (vec == nullptr) continue;
    std::vector<float> x;
    for (const auto& c : cases) x.push_back(BitsFloat(c.first));
    x.push_back(inf);
    x.push_back(std::numeric_limits<float>::quiet_NaN());
    x.push_back(BitsFloat(0x7f800001u));       // signalling NaN: must stay NaN
    while (x.size() < 19) x.push_back(-2.5f);  // a full AVX2 block and a tail
    std::vector<uint16_t> y(x.size());
    vec->f32_to_bf16(y.data(), x.data(), static_cast<int64_t>(x.size()));
    for (size_t i = 0; i < cases.size(); ++i) {
      EXPECT_EQ(y[i], cases[i].second) << vec->isa << " case " << i;
    }
    EXPECT_EQ(y[cases.size()], 0x7f80u) << vec->isa;
    EXPECT_TRUE(std::isnan(Bf16BitsToFloat(y[cases.size() + 1]))) << vec->isa;
    EXPECT_TRUE(std::isnan(Bf16BitsToFloat(y[cases.size() + 2]))) << vec->isa;
    EXPECT_EQ(y.back(), 0xc020u) << vec->isa;
  }
}

TEST(VecTest, ExpIsAccurate) {
  for (const VecOps* vec : {&VecScalar(), VecAvx2()}) {
    if (vec == nullptr) continue;
    std::vector<float> x, y(20001);
    for (int i = -10000; i <= 10000; ++i) x.push_back(i * 0.0087f);
    vec->exp_sum(y.data(), x.data(), 1.0f, 0.0f, static_cast<int64_t>(x.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      double want = std::exp(static_cast<double>(x[i]));
      ASSERT_NEAR(y[i], want, 3e-7 * want) << vec->isa << " exp(" << x[i] << ")";
    }
  }
}

}  // namespace
}  // namespace hearth::cpu
