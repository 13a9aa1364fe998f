// ops_test.cc — every CPU graph op except ATTENTION (ops_attention_test.cc)
// against a plain double-precision reference written here, on random data,
// odd shapes, strided views, NaN-poisoned outputs and 1, 2 and 3 threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/kernels.h"
#include "backends/cpu/ops_dnnl.h"
#include "backends/cpu/ops_vec.h"
#include "backends/cpu/tests/ops_test_util.h"

namespace hearth::cpu::testing {
namespace {

class OpsTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { ASSERT_TRUE(b_.ok()); }
  Backend b_{static_cast<uint32_t>(GetParam())};
};

INSTANTIATE_TEST_SUITE_P(Threads, OpsTest, ::testing::Values(1, 2, 3),
                         [](const auto& info) { return "t" + std::to_string(info.param); });

TEST_P(OpsTest, GetRowsEveryDtype) {
  for (uint32_t dtype : kAllWeightDtypes) {
    SCOPED_TRACE(dtype);
    const int64_t d = KFor(dtype, 37), rows = 11;
    std::vector<uint8_t> table = RandomWeights(dtype, rows, d, 7 + dtype);
    std::vector<int32_t> ids = {3, 0, 10, 3, 7, 1, 10};
    const int64_t n = static_cast<int64_t>(ids.size());
    int t = b_.Add(dtype, {d, rows}, table.data());
    int i = b_.Add(HEARTH_DTYPE_I32, {n}, ids.data());
    int out = b_.Add(HEARTH_DTYPE_F32, {d, n});
    b_.Node(HEARTH_OP_GET_ROWS, out, {t, i});
    ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
    std::vector<double> ref;
    for (int32_t id : ids) {
      std::vector<double> row = WeightRow(dtype, table, d, id);
      ref.insert(ref.end(), row.begin(), row.end());
    }
    EXPECT_TRUE(Near(b_.Read(out), ref, 0, 0));  // a gather is exact
    EXPECT_EQ(b_.Supports(0), 1);
    b_.ClearNodes();
  }
}

// y = x . w^T checked against double sums, with a tolerance from the
// weight format: float weights keep ~1e-6 relative, block formats quantize
// x to 8 bits per block first.
void CheckMulMat(Backend& b, uint32_t dtype, int64_t k, int64_t m, int64_t n, int64_t batch,
                 bool w_batched, bool strided, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "dtype " << dtype << " K " << k << " M " << m << " N " << n
                                    << " batch " << batch << " strided " << strided);
  const int64_t wb = w_batched ? batch : 1;
  std::vector<uint8_t> w = RandomWeights(dtype, m * wb, k, seed);
  const int64_t ldx = strided ? k + 3 : k, ldy = strided ? m + 5 : m;
  std::vector<float> x = RandomF32(static_cast<size_t>(ldx * n * batch), seed + 1);
  int wi = b.Add(dtype, {k, m, wb}, w.data());
  int xi = b.Add(HEARTH_DTYPE_F32, {k, n, batch}, x.data(), {4, 4 * ldx, 4 * ldx * n});
  int yi = b.Add(HEARTH_DTYPE_F32, {m, n, batch}, nullptr, {4, 4 * ldy, 4 * ldy * n});
  b.Node(HEARTH_OP_MUL_MAT, yi, {wi, xi});
  ASSERT_EQ(b.Compute(), HEARTH_P_OK) << Recorder().last_error;
  std::vector<float> got = b.Read(yi);
  const bool block = hearth_dtype_block_elems(dtype) > 1;
  for (int64_t bi = 0; bi < batch; ++bi) {
    for (int64_t r = 0; r < n; ++r) {
      const float* xr = &x[(bi * n + r) * ldx];
      double amax = 0;
      for (int64_t i = 0; i < k; ++i) amax = std::max(amax, std::fabs(double{xr[i]}));
      for (int64_t c = 0; c < m; ++c) {
        std::vector<double> wr = WeightRow(dtype, w, k, (w_batched ? bi * m : 0) + c);
        double ref = 0, mag = 0, wabs = 0;
        for (int64_t i = 0; i < k; ++i) {
          ref += wr[i] * xr[i];
          mag += std::fabs(wr[i] * xr[i]);
          wabs += std::fabs(wr[i]);
        }
        double tol = block ? 1e-4 + 1.5 * wabs * amax / 254 : 1e-6 + 2e-6 * mag;
        float y = got[(bi * n + r) * m + c];
        ASSERT_TRUE(std::isfinite(y) && std::fabs(y - ref) <= tol)
            << "y[" << bi << ", " << r << ", " << c << "] = " << y << ", want " << ref;
      }
    }
  }
  b.ClearNodes();
}

TEST_P(OpsTest, MulMatEveryDtypeDecodeAndPrompt) {
  uint32_t seed = 100;
  for (uint32_t dtype : kAllWeightDtypes) {
    for (int64_t n : {1, 3, 17}) {
      CheckMulMat(b_, dtype, KFor(dtype, 45), 13, n, 1, false, false, seed++);
    }
  }
}

// HEARTH_MUL_MAT_FLOAT_ACTIVATIONS: every weight format, decode and prompt
// sizes, equals the double product of the dequantized weights with the
// float activations to float accumulation (2e-6 of sum |w x|) — far inside
// what Q8-rounded activations cost (amax / 254 per term), which the same
// check without the flag is also shown to exceed for block formats.
TEST_P(OpsTest, MulMatWithFloatActivationsIsTheFloatProduct) {
  uint32_t seed = 900;
  for (uint32_t dtype : kAllWeightDtypes) {
    const bool block = hearth_dtype_block_elems(dtype) > 1;
    for (int64_t n : {1, 5, 20}) {
      SCOPED_TRACE(::testing::Message() << "dtype " << dtype << " N " << n);
      const int64_t k = KFor(dtype, 45), m = 11;
      std::vector<uint8_t> w = RandomWeights(dtype, m, k, seed);
      std::vector<float> x = RandomF32(static_cast<size_t>(k * n), seed + 1);
      ++seed;
      double worst_plain = 0;
      for (bool flag : {true, false}) {
        int wi = b_.Add(dtype, {k, m}, w.data());
        int xi = b_.Add(HEARTH_DTYPE_F32, {k, n}, x.data());
        int yi = b_.Add(HEARTH_DTYPE_F32, {m, n});
        if (flag) {
          b_.NodeP(HEARTH_OP_MUL_MAT, {yi}, {wi, xi},
                   hearth_mul_mat_params{HEARTH_MUL_MAT_FLOAT_ACTIVATIONS});
        } else {
          b_.Node(HEARTH_OP_MUL_MAT, yi, {wi, xi});
        }
        ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
        const std::vector<float> got = b_.Read(yi);
        b_.ClearNodes();
        for (int64_t r = 0; r < n; ++r) {
          for (int64_t c = 0; c < m; ++c) {
            const std::vector<double> wr = WeightRow(dtype, w, k, c);
            double ref = 0, mag = 0;
            for (int64_t i = 0; i < k; ++i) {
              ref += wr[i] * x[r * k + i];
              mag += std::fabs(wr[i] * x[r * k + i]);
            }
            const double err = std::fabs(got[r * m + c] - ref) / (mag + 1e-30);
            if (flag) {
              EXPECT_LE(err, 2e-6)
                  << "y[" << r << ", " << c << "] = " << got[r * m + c] << ", want " << ref;
            } else {
              worst_plain = std::max(worst_plain, err);
            }
          }
        }
      }
      // Without the flag the kernels quantize x for block formats (decode
      // and prompt alike): measurably further from the float product.
      if (block) {
        EXPECT_GT(worst_plain, 1e-4);
      }
    }
  }
}

// Whether this CPU takes the BF16 product path (oneDNN with native BF16).
bool CpuRunsBf16Products() {
  std::string error;
  std::unique_ptr<DnnlMatMul> dnnl = DnnlMatMul::Create(&error);
  return dnnl != nullptr && dnnl->bf16_fast();
}

double RoundBf16(double v) { return Bf16BitsToFloat(FloatToBf16Bits(static_cast<float>(v))); }

// HEARTH_MUL_MAT_BF16: on a CPU with native BF16 the product of x and the
// dequantized weights, each rounded to BF16, accumulated in float (atol
// 1e-6 + rtol 1e-5 of sum |w x|); elsewhere the float product.
TEST_P(OpsTest, MulMatBf16IsTheProductOfRoundedOperands) {
  const bool bf16 = CpuRunsBf16Products();
  std::printf("BF16 products on this CPU: %s\n", bf16 ? "yes" : "no (float path checked)");
  uint32_t seed = 950;
  struct Case {
    uint32_t dtype;
    int64_t k, m, n;
  };
  std::vector<Case> cases;
  for (uint32_t dtype : kAllWeightDtypes) {
    for (int64_t n : {1, 5, 20}) cases.push_back({dtype, KFor(dtype, 45), 11, n});
  }
  // 4 MiB BF16 slabs: K = 1024 gives 2048 rows per slab, so M = 2100 takes two.
  cases.push_back({HEARTH_DTYPE_F16, 1024, 2100, 17});
  cases.push_back({HEARTH_DTYPE_Q4_K, 1024, 2100, 3});
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message()
                 << "dtype " << DtypeName(c.dtype) << " K " << c.k << " M " << c.m << " N " << c.n);
    std::vector<uint8_t> w = RandomWeights(c.dtype, c.m, c.k, seed);
    std::vector<float> x = RandomF32(static_cast<size_t>(c.k * c.n), seed + 1);
    ++seed;
    int wi = b_.Add(c.dtype, {c.k, c.m}, w.data());
    int xi = b_.Add(HEARTH_DTYPE_F32, {c.k, c.n}, x.data());
    int yi = b_.Add(HEARTH_DTYPE_F32, {c.m, c.n});
    b_.NodeP(HEARTH_OP_MUL_MAT, {yi}, {wi, xi}, hearth_mul_mat_params{HEARTH_MUL_MAT_BF16});
    ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
    const std::vector<float> got = b_.Read(yi);
    b_.ClearNodes();
    double worst_vs_float = 0;
    for (int64_t c_out = 0; c_out < c.m; ++c_out) {
      std::vector<double> wr = WeightRow(c.dtype, w, c.k, c_out);
      for (int64_t r = 0; r < c.n; ++r) {
        double ref = 0, ref_float = 0, mag = 0;
        for (int64_t i = 0; i < c.k; ++i) {
          const double xv = x[r * c.k + i];
          ref_float += wr[i] * xv;
          ref += bf16 ? RoundBf16(wr[i]) * RoundBf16(xv) : wr[i] * xv;
          mag += std::fabs(wr[i] * xv);
        }
        const float y = got[r * c.m + c_out];
        ASSERT_TRUE(std::isfinite(y) && std::fabs(y - ref) <= 1e-6 + 1e-5 * mag)
            << "y[" << r << ", " << c_out << "] = " << y << ", want " << ref;
        worst_vs_float = std::max(worst_vs_float, std::fabs(y - ref_float) / (mag + 1e-30));
      }
    }
    // The rounding is visible, so the BF16 path did run.
    if (bf16) {
      EXPECT_GT(worst_vs_float, 1e-4);
    }
  }
}

TEST_P(OpsTest, MulMatStridedAndBatched) {
  uint32_t seed = 200;
  for (uint32_t dtype : {HEARTH_DTYPE_F32, HEARTH_DTYPE_F16, HEARTH_DTYPE_BF16, HEARTH_DTYPE_Q4_0,
                         HEARTH_DTYPE_Q4_1}) {
    for (int64_t n : {2, 20}) {
      CheckMulMat(b_, dtype, KFor(dtype, 33), 9, n, 2, false, true, seed++);
      CheckMulMat(b_, dtype, KFor(dtype, 33), 9, n, 3, true, false, seed++);
    }
  }
}

TEST_P(OpsTest, MulMatLargerThanOneSlab) {
  // F16 weights with a prompt go through dequantized slabs; M past one slab.
  CheckMulMat(b_, HEARTH_DTYPE_F16, 1024, 530, 16, 1, false, false, 300);
  CheckMulMat(b_, HEARTH_DTYPE_F32, 256, 70, 40, 1, false, true, 301);
}

TEST_P(OpsTest, AddAndMulBroadcast) {
  const int64_t ne0 = 37, ne1 = 5, ne2 = 3;
  std::vector<float> a = RandomF32(ne0 * ne1 * ne2, 1);
  for (uint32_t op : {HEARTH_OP_ADD, HEARTH_OP_MUL}) {
    for (std::vector<int64_t> bs :
         std::vector<std::vector<int64_t>>{{ne0, ne1, ne2}, {ne0}, {ne0, 1, ne2}, {ne0, ne1, 1}}) {
      int64_t nb_elems = bs[0] * (bs.size() > 1 ? bs[1] : 1) * (bs.size() > 2 ? bs[2] : 1);
      std::vector<float> bv = RandomF32(nb_elems, 2);
      int ai = b_.Add(HEARTH_DTYPE_F32, {ne0, ne1, ne2}, a.data());
      int bi = b_.Add(HEARTH_DTYPE_F32, bs, bv.data());
      int oi = b_.Add(HEARTH_DTYPE_F32, {ne0, ne1, ne2});
      b_.Node(op, oi, {ai, bi});
      ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
      std::vector<double> ref;
      for (int64_t i2 = 0; i2 < ne2; ++i2)
        for (int64_t i1 = 0; i1 < ne1; ++i1)
          for (int64_t i0 = 0; i0 < ne0; ++i0) {
            int64_t j1 = bs.size() > 1 && bs[1] > 1 ? i1 : 0;
            int64_t j2 = bs.size() > 2 && bs[2] > 1 ? i2 : 0;
            double x = a[(i2 * ne1 + i1) * ne0 + i0];
            double y = bv[(j2 * (bs.size() > 1 ? bs[1] : 1) + j1) * ne0 + i0];
            ref.push_back(op == HEARTH_OP_ADD ? x + y : x * y);
          }
      EXPECT_TRUE(Near(b_.Read(oi), ref, 0, 1e-7));
      b_.ClearNodes();
    }
  }
}

TEST_P(OpsTest, AddInPlaceWithStridedRows) {
  const int64_t ne0 = 19, ne1 = 6, ld = 24;
  std::vector<float> a = RandomF32(ld * ne1, 3), c = RandomF32(ne0 * ne1, 4);
  int ai = b_.Add(HEARTH_DTYPE_F32, {ne0, ne1}, a.data(), {4, 4 * ld});
  int ci = b_.Add(HEARTH_DTYPE_F32, {ne0, ne1}, c.data());
  b_.Node(HEARTH_OP_ADD, ai, {ai, ci});
  ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
  std::vector<double> ref;
  for (int64_t r = 0; r < ne1; ++r)
    for (int64_t i = 0; i < ne0; ++i) ref.push_back(double{a[r * ld + i]} + c[r * ne0 + i]);
  EXPECT_TRUE(Near(b_.Read(ai), ref, 0, 1e-7));
  // The padding between rows is untouched.
  const float* p = static_cast<const float*>(b_.ptr(ai));
  EXPECT_EQ(std::memcmp(p + ne0, &a[ne0], 4 * (ld - ne0)), 0);
}

TEST_P(OpsTest, Scale) {
  std::vector<float> a = RandomF32(33 * 7, 5);
  int ai = b_.Add(HEARTH_DTYPE_F32, {33, 7}, a.data());
  int oi = b_.Add(HEARTH_DTYPE_F32, {33, 7});
  b_.Node(HEARTH_OP_SCALE, oi, {ai}, {-0.37f});
  ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
  std::vector<double> ref;
  for (float v : a) ref.push_back(double{v} * -0.37f);
  EXPECT_TRUE(Near(b_.Read(oi), ref, 0, 1e-7));
}

TEST_P(OpsTest, RmsNormWithAndWithoutWeight) {
  for (int64_t d : {1, 7, 129, 1000}) {
    for (bool weighted : {false, true}) {
      const int64_t rows = 6;
      std::vector<float> x = RandomF32(d * rows, 6, -3, 3), w = RandomF32(d, 7);
      int xi = b_.Add(HEARTH_DTYPE_F32, {d, 2, 3}, x.data());
      int wi = b_.Add(HEARTH_DTYPE_F32, {d}, w.data());
      int oi = b_.Add(HEARTH_DTYPE_F32, {d, 2, 3});
      b_.Node(HEARTH_OP_RMS_NORM, oi, {xi, weighted ? wi : -1}, {1e-5f});
      ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
      std::vector<double> ref;
      for (int64_t r = 0; r < rows; ++r) {
        double ss = 0;
        for (int64_t i = 0; i < d; ++i) ss += double{x[r * d + i]} * x[r * d + i];
        double inv = 1.0 / std::sqrt(ss / d + 1e-5f);
        for (int64_t i = 0; i < d; ++i) ref.push_back(x[r * d + i] * inv * (weighted ? w[i] : 1.0));
      }
      EXPECT_TRUE(Near(b_.Read(oi), ref, 1e-6, 1e-5)) << "d " << d << " weighted " << weighted;
      b_.ClearNodes();
    }
  }
}

TEST_P(OpsTest, RopeNormalAndNeox) {
  const int64_t head_dim = 20, n_head = 3;
  const std::vector<int32_t> pos = {0, 5, 1000, 77777};
  const int64_t n_tok = static_cast<int64_t>(pos.size());
  std::vector<float> x = RandomF32(head_dim * n_head * n_tok, 8);
  for (int32_t mode : {HEARTH_ROPE_NORMAL, HEARTH_ROPE_NEOX}) {
    for (int32_t n_rot : {20, 12}) {
      for (bool factors : {false, true}) {
        for (float freq_scale : {1.0f, 0.25f}) {
          std::vector<float> ff = RandomF32(n_rot / 2, 9, 1.0f, 8.0f);
          int xi = b_.Add(HEARTH_DTYPE_F32, {head_dim, n_head, n_tok}, x.data());
          int pi = b_.Add(HEARTH_DTYPE_I32, {n_tok}, pos.data());
          int fi = b_.Add(HEARTH_DTYPE_F32, {n_rot / 2}, ff.data());
          int oi = b_.Add(HEARTH_DTYPE_F32, {head_dim, n_head, n_tok});
          b_.Node(HEARTH_OP_ROPE, oi, {xi, pi, factors ? fi : -1}, {10000.0f, freq_scale},
                  {n_rot, mode});
          ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
          std::vector<double> ref(x.begin(), x.end());
          for (int64_t t = 0; t < n_tok; ++t) {
            for (int64_t h = 0; h < n_head; ++h) {
              const int64_t base = (t * n_head + h) * head_dim;
              for (int64_t i = 0; i < n_rot / 2; ++i) {
                double theta = pos[t] * double{freq_scale} * std::pow(10000.0, -2.0 * i / n_rot);
                if (factors) theta /= ff[i];
                int64_t i0 = mode == HEARTH_ROPE_NEOX ? i : 2 * i;
                int64_t i1 = mode == HEARTH_ROPE_NEOX ? i + n_rot / 2 : 2 * i + 1;
                double a = x[base + i0], c = x[base + i1];
                ref[base + i0] = a * std::cos(theta) - c * std::sin(theta);
                ref[base + i1] = a * std::sin(theta) + c * std::cos(theta);
              }
            }
          }
          EXPECT_TRUE(Near(b_.Read(oi), ref, 2e-6, 1e-5))
              << "mode " << mode << " n_rot " << n_rot << " factors " << factors;
          b_.ClearNodes();
        }
      }
    }
  }
}

TEST_P(OpsTest, RopeInPlace) {
  const std::vector<int32_t> pos = {3, 4};
  std::vector<float> x = RandomF32(8 * 2 * 2, 10);
  int xi = b_.Add(HEARTH_DTYPE_F32, {8, 2, 2}, x.data());
  int pi = b_.Add(HEARTH_DTYPE_I32, {2}, pos.data());
  b_.Node(HEARTH_OP_ROPE, xi, {xi, pi}, {500.0f, 1.0f}, {8, HEARTH_ROPE_NEOX});
  ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
  std::vector<float> got = b_.Read(xi);
  // Rotation keeps each pair's norm.
  for (int r = 0; r < 4; ++r) {
    for (int i = 0; i < 4; ++i) {
      double before = std::hypot(x[r * 8 + i], x[r * 8 + i + 4]);
      double after = std::hypot(got[r * 8 + i], got[r * 8 + i + 4]);
      EXPECT_NEAR(before, after, 1e-6);
    }
  }
}

TEST_P(OpsTest, GatedActivations) {
  const int64_t d = 61, rows = 5;
  std::vector<float> g = RandomF32(d * rows, 11, -10, 10), u = RandomF32(d * rows, 12);
  g[0] = -100.0f;
  g[1] = 100.0f;
  g[2] = 0.0f;
  for (uint32_t op : {HEARTH_OP_SILU_MUL, HEARTH_OP_GELU_MUL}) {
    int gi = b_.Add(HEARTH_DTYPE_F32, {d, rows}, g.data());
    int ui = b_.Add(HEARTH_DTYPE_F32, {d, rows}, u.data());
    int oi = b_.Add(HEARTH_DTYPE_F32, {d, rows});
    b_.Node(op, oi, {gi, ui});
    ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
    std::vector<double> ref;
    for (size_t i = 0; i < g.size(); ++i) {
      double x = g[i];
      double act =
          op == HEARTH_OP_SILU_MUL
              ? x / (1.0 + std::exp(-x))
              : 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
      ref.push_back(act * u[i]);
    }
    EXPECT_TRUE(Near(b_.Read(oi), ref, 2e-6, 1e-5)) << "op " << op;
    b_.ClearNodes();
  }
}

TEST_P(OpsTest, Softmax) {
  const int64_t d = 50, rows = 4;
  std::vector<float> x = RandomF32(d * rows, 13, -5, 5);
  for (float scale : {1.0f, 0.125f, -0.5f}) {
    int xi = b_.Add(HEARTH_DTYPE_F32, {d, rows}, x.data());
    int oi = b_.Add(HEARTH_DTYPE_F32, {d, rows});
    b_.Node(HEARTH_OP_SOFTMAX, oi, {xi}, {scale});
    ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
    std::vector<double> ref;
    for (int64_t r = 0; r < rows; ++r) {
      double m = -INFINITY, sum = 0;
      for (int64_t i = 0; i < d; ++i) m = std::max(m, double{x[r * d + i]} * scale);
      for (int64_t i = 0; i < d; ++i) sum += std::exp(double{x[r * d + i]} * scale - m);
      for (int64_t i = 0; i < d; ++i)
        ref.push_back(std::exp(double{x[r * d + i]} * scale - m) / sum);
    }
    EXPECT_TRUE(Near(b_.Read(oi), ref, 1e-7, 1e-5)) << "scale " << scale;
    b_.ClearNodes();
  }
}

double RoundTo(uint32_t dtype, float v) {
  if (dtype == HEARTH_DTYPE_F16) return HalfToDouble(DoubleToHalf(v));
  if (dtype == HEARTH_DTYPE_BF16) return Bf16ToDouble(FloatToBf16Ref(v));
  return v;
}

TEST_P(OpsTest, CopyConvertsAndHonoursStrides) {
  const int64_t ne0 = 13, ne1 = 7;
  std::vector<float> src = RandomF32(ne0 * ne1, 14, -60000, 60000);
  for (size_t i = 0; i < src.size(); i += 3) src[i] *= 1e-4f;  // small magnitudes too
  src[1] = 1e-6f;                                              // F16 subnormal
  src[2] = 65519.0f;                                           // rounds down to 65504 in F16
  src[3] = -0.0f;
  const uint32_t dtypes[] = {HEARTH_DTYPE_F32, HEARTH_DTYPE_F16, HEARTH_DTYPE_BF16};
  for (uint32_t from : dtypes) {
    std::vector<uint8_t> bytes(src.size() * 4);
    for (size_t i = 0; i < src.size(); ++i) {
      if (from == HEARTH_DTYPE_F32) {
        std::memcpy(&bytes[4 * i], &src[i], 4);
      } else {
        uint16_t h = from == HEARTH_DTYPE_F16 ? DoubleToHalf(src[i]) : FloatToBf16Ref(src[i]);
        std::memcpy(&bytes[2 * i], &h, 2);
      }
    }
    for (uint32_t to : dtypes) {
      for (bool transposed : {false, true}) {
        const int64_t eb = to == HEARTH_DTYPE_F32 ? 4 : 2;
        int xi = b_.Add(from, {ne0, ne1}, bytes.data());
        int oi =
            transposed ? b_.Add(to, {ne0, ne1}, nullptr, {eb * ne1, eb}) : b_.Add(to, {ne0, ne1});
        b_.Node(HEARTH_OP_COPY, oi, {xi});
        ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
        std::vector<float> in = b_.Read(xi);
        std::vector<double> ref;
        for (float v : in) ref.push_back(RoundTo(to, v));
        std::vector<float> got = b_.Read(oi);
        EXPECT_TRUE(Near(got, ref, 0, 0)) << from << " -> " << to << " transposed " << transposed;
        EXPECT_TRUE(std::signbit(got[3])) << "-0 keeps its sign";
        b_.ClearNodes();
      }
    }
  }
}

}  // namespace
}  // namespace hearth::cpu::testing
