// ops_lora_test.cc — LORA_MUL_MAT against a double-precision reference
// written here: every pair dtype, decode and prompt sizes, per-token scales,
// in place over y, 1..3 threads, and the contract checks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backends/cpu/tests/ops_test_util.h"

namespace hearth::cpu::testing {
namespace {

class LoraOpTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { ASSERT_TRUE(b_.ok()); }
  Backend b_{static_cast<uint32_t>(GetParam())};
};

INSTANTIATE_TEST_SUITE_P(Threads, LoraOpTest, ::testing::Values(1, 2, 3),
                         [](const auto& info) { return "t" + std::to_string(info.param); });

// n values in dtype (F32/F16/BF16) as bytes, and the same values as doubles.
struct Values {
  std::vector<uint8_t> bytes;
  std::vector<double> exact;
};

Values RandomValues(uint32_t dtype, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Values v;
  v.exact.resize(n);
  v.bytes.resize(n * (dtype == HEARTH_DTYPE_F32 ? 4 : 2));
  for (size_t i = 0; i < n; ++i) {
    const float f = dist(rng);
    if (dtype == HEARTH_DTYPE_F32) {
      std::memcpy(&v.bytes[i * 4], &f, 4);
      v.exact[i] = f;
    } else {
      const uint16_t h = dtype == HEARTH_DTYPE_F16 ? DoubleToHalf(f) : FloatToBf16Ref(f);
      std::memcpy(&v.bytes[i * 2], &h, 2);
      v.exact[i] = dtype == HEARTH_DTYPE_F16 ? HalfToDouble(h) : Bf16ToDouble(h);
    }
  }
  return v;
}

struct Case {
  uint32_t a_dtype, b_dtype;
  int64_t K, R, M, T;
  bool per_token_scales, in_place;
  bool zero_rows = false;  // every third token's scale is 0 (a batch row without the adapter)
};

void CheckLora(Backend& b, const Case& c, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "a " << c.a_dtype << " b " << c.b_dtype << " K " << c.K
                                    << " R " << c.R << " M " << c.M << " T " << c.T
                                    << " scales " << c.per_token_scales << " in_place "
                                    << c.in_place);
  Values a = RandomValues(c.a_dtype, c.K * c.R, seed);
  Values bv = RandomValues(c.b_dtype, c.R * c.M, seed + 1);
  std::vector<float> x = RandomF32(c.K * c.T, seed + 2);
  std::vector<float> y = RandomF32(c.M * c.T, seed + 3, -4.0f, 4.0f);
  std::vector<float> scales = RandomF32(c.T, seed + 4, 0.0f, 2.0f);
  if (c.zero_rows) {
    for (int64_t t = 0; t < c.T; t += 3) scales[static_cast<size_t>(t)] = 0.0f;
  }
  const float base = 0.75f;

  const int yi = b.Add(HEARTH_DTYPE_F32, {c.M, c.T}, y.data());
  const int ai = b.Add(c.a_dtype, {c.K, c.R}, a.bytes.data());
  const int bi = b.Add(c.b_dtype, {c.M, c.R}, bv.bytes.data());  // B^T: R rows of M
  const int xi = b.Add(HEARTH_DTYPE_F32, {c.K, c.T}, x.data());
  const int si = c.per_token_scales ? b.Add(HEARTH_DTYPE_F32, {c.T}, scales.data()) : -1;
  const int oi = c.in_place ? yi : b.Add(HEARTH_DTYPE_F32, {c.M, c.T});
  b.ClearNodes();
  b.Node(HEARTH_OP_LORA_MUL_MAT, oi, {yi, ai, bi, xi, si}, {base});
  ASSERT_EQ(b.Compute(), HEARTH_P_OK) << Recorder().last_error;

  std::vector<double> want(static_cast<size_t>(c.M * c.T));
  for (int64_t t = 0; t < c.T; ++t) {
    std::vector<double> ax(static_cast<size_t>(c.R));
    for (int64_t r = 0; r < c.R; ++r) {
      double s = 0;
      for (int64_t k = 0; k < c.K; ++k) s += a.exact[r * c.K + k] * x[t * c.K + k];
      ax[r] = s;
    }
    const double st = base * (c.per_token_scales ? scales[t] : 1.0);
    for (int64_t m = 0; m < c.M; ++m) {
      double s = 0;
      for (int64_t r = 0; r < c.R; ++r) s += bv.exact[r * c.M + m] * ax[r];
      want[t * c.M + m] = y[t * c.M + m] + st * s;
    }
  }
  // float32 accumulation over K then R terms of magnitude ~1.
  EXPECT_TRUE(Near(b.Read(oi), want, 2e-5 * std::sqrt(static_cast<double>(c.K * c.R)), 1e-5));
}

TEST_P(LoraOpTest, EveryPairDtypeDecodeAndPrompt) {
  const uint32_t floats[] = {HEARTH_DTYPE_F32, HEARTH_DTYPE_F16, HEARTH_DTYPE_BF16};
  uint32_t seed = 10;
  for (uint32_t ad : floats) {
    for (uint32_t bd : floats) {
      for (int64_t t : {1, 5, 33}) {
        CheckLora(b_, {ad, bd, 70, 4, 45, t, false, false}, seed);
        seed += 10;
      }
    }
  }
}

TEST_P(LoraOpTest, PerTokenScalesAndInPlace) {
  CheckLora(b_, {HEARTH_DTYPE_F32, HEARTH_DTYPE_F32, 64, 16, 96, 7, true, false}, 500);
  CheckLora(b_, {HEARTH_DTYPE_F16, HEARTH_DTYPE_F16, 64, 16, 96, 7, false, true}, 510);
  CheckLora(b_, {HEARTH_DTYPE_BF16, HEARTH_DTYPE_F32, 33, 3, 200, 20, true, true}, 520);
}

// Rows with scale 0 keep y exactly (their A x and B t are skipped), in
// place or not, on the few-rows path (A x per active row) and on the
// shared two-phase one.
TEST_P(LoraOpTest, ZeroScaleRowsKeepY) {
  for (bool in_place : {false, true}) {
    CheckLora(b_, {HEARTH_DTYPE_F16, HEARTH_DTYPE_F16, 64, 16, 96, 8, true, in_place, true}, 530);
    CheckLora(b_, {HEARTH_DTYPE_F32, HEARTH_DTYPE_BF16, 70, 4, 45, 1, true, in_place, true}, 540);
    CheckLora(b_, {HEARTH_DTYPE_F16, HEARTH_DTYPE_F32, 512, 16, 100, 40, true, in_place, true},
              550);
  }
}

TEST_P(LoraOpTest, RankOneAndLargeRank) {
  CheckLora(b_, {HEARTH_DTYPE_F32, HEARTH_DTYPE_F32, 40, 1, 30, 3, false, false}, 600);
  CheckLora(b_, {HEARTH_DTYPE_F16, HEARTH_DTYPE_BF16, 128, 64, 130, 17, false, false}, 610);
}

TEST_P(LoraOpTest, PromptSizedAxTakesTheSharedTwoPhasePath) {
  // K * R * T above the op's threshold for computing A x once per thread.
  CheckLora(b_, {HEARTH_DTYPE_F16, HEARTH_DTYPE_BF16, 512, 16, 100, 40, true, false}, 700);
  CheckLora(b_, {HEARTH_DTYPE_F32, HEARTH_DTYPE_F32, 1024, 32, 64, 9, false, true}, 710);
}

TEST_P(LoraOpTest, RefusesShapesThatDoNotChain) {
  std::vector<float> zeros(64 * 64, 0.0f);
  const int yi = b_.Add(HEARTH_DTYPE_F32, {8, 2}, zeros.data());
  const int ai = b_.Add(HEARTH_DTYPE_F32, {16, 4}, zeros.data());
  const int b_bad = b_.Add(HEARTH_DTYPE_F32, {9, 4}, zeros.data());  // M 9 != y's 8
  const int xi = b_.Add(HEARTH_DTYPE_F32, {16, 2}, zeros.data());
  const int oi = b_.Add(HEARTH_DTYPE_F32, {8, 2});
  b_.Node(HEARTH_OP_LORA_MUL_MAT, oi, {yi, ai, b_bad, xi}, {1.0f});
  EXPECT_NE(b_.Compute(), HEARTH_P_OK);
  EXPECT_NE(Recorder().last_error.find("do not chain"), std::string::npos)
      << Recorder().last_error;

  const int bi = b_.Add(HEARTH_DTYPE_F32, {8, 4}, zeros.data());
  const int s_bad = b_.Add(HEARTH_DTYPE_F32, {3}, zeros.data());  // 3 scales for 2 tokens
  b_.ClearNodes();
  b_.Node(HEARTH_OP_LORA_MUL_MAT, oi, {yi, ai, bi, xi, s_bad}, {1.0f});
  EXPECT_NE(b_.Compute(), HEARTH_P_OK);
  EXPECT_NE(Recorder().last_error.find("one per token"), std::string::npos)
      << Recorder().last_error;

  b_.ClearNodes();
  b_.Node(HEARTH_OP_LORA_MUL_MAT, oi, {yi, ai, bi, xi}, {NAN});
  EXPECT_NE(b_.Compute(), HEARTH_P_OK);
  EXPECT_NE(Recorder().last_error.find("not finite"), std::string::npos)
      << Recorder().last_error;

  const int a_q = b_.Add(HEARTH_DTYPE_Q8_0, {32, 4});
  b_.ClearNodes();
  b_.Node(HEARTH_OP_LORA_MUL_MAT, oi, {yi, a_q, bi, xi}, {1.0f});
  EXPECT_EQ(b_.Supports(0), 0);
}

}  // namespace
}  // namespace hearth::cpu::testing
