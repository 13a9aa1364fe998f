// ops_attention_test.cc — the CPU ATTENTION op against a double-precision
// reference kept here: GQA/MQA, sliding window, softcap, F16 and mixed
// caches, a cache holding earlier history, and a prompt followed by single
// decode steps giving exactly what one whole-sequence call gives.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "backends/cpu/tests/ops_test_util.h"

namespace hearth::cpu::testing {
namespace {

struct Shape {
  int64_t dk, dv, n_head, n_head_kv, n_ctx;
  uint32_t k_dtype, v_dtype;
  float scale, softcap;
  int32_t window;
};

// Double reference with its own copy of the caches.
class Reference {
 public:
  Reference(const Shape& s, const std::vector<float>& k_init, const std::vector<float>& v_init)
      : s_(s), kc_(k_init.size()), vc_(v_init.size()) {
    for (size_t i = 0; i < kc_.size(); ++i) kc_[i] = Round(s.k_dtype, k_init[i]);
    for (size_t i = 0; i < vc_.size(); ++i) vc_[i] = Round(s.v_dtype, v_init[i]);
  }
  static double Round(uint32_t dtype, float v) {
    return dtype == HEARTH_DTYPE_F16 ? HalfToDouble(DoubleToHalf(v)) : v;
  }
  std::vector<double> Step(const std::vector<float>& q, const std::vector<float>& k,
                           const std::vector<float>& v, const std::vector<int32_t>& pos) {
    const int64_t n_tok = static_cast<int64_t>(pos.size()), hk = s_.n_head_kv;
    for (int64_t t = 0; t < n_tok; ++t) {
      for (int64_t i = 0; i < hk * s_.dk; ++i) {
        kc_[pos[t] * hk * s_.dk + i] = Round(s_.k_dtype, k[t * hk * s_.dk + i]);
      }
      for (int64_t i = 0; i < hk * s_.dv; ++i) {
        vc_[pos[t] * hk * s_.dv + i] = Round(s_.v_dtype, v[t * hk * s_.dv + i]);
      }
    }
    std::vector<double> out;
    const int64_t group = s_.n_head / hk;
    for (int64_t t = 0; t < n_tok; ++t) {
      for (int64_t h = 0; h < s_.n_head; ++h) {
        const int64_t g = h / group;
        std::vector<double> sc;
        std::vector<int64_t> rows;
        for (int64_t j = 0; j <= pos[t]; ++j) {
          if (s_.window > 0 && pos[t] - j >= s_.window) continue;
          double d = 0;
          for (int64_t i = 0; i < s_.dk; ++i) {
            d += double{q[(t * s_.n_head + h) * s_.dk + i]} * kc_[(j * hk + g) * s_.dk + i];
          }
          d *= s_.scale;
          if (s_.softcap > 0) d = s_.softcap * std::tanh(d / s_.softcap);
          sc.push_back(d);
          rows.push_back(j);
        }
        double m = -INFINITY, sum = 0;
        for (double d : sc) m = std::max(m, d);
        for (double& d : sc) sum += (d = std::exp(d - m));
        for (int64_t i = 0; i < s_.dv; ++i) {
          double acc = 0;
          for (size_t r = 0; r < rows.size(); ++r)
            acc += sc[r] * vc_[(rows[r] * hk + g) * s_.dv + i];
          out.push_back(acc / sum);
        }
      }
    }
    return out;
  }
  const std::vector<double>& k_cache() const { return kc_; }

 private:
  Shape s_;
  std::vector<double> kc_, vc_;
};

std::vector<uint8_t> ToDtype(uint32_t dtype, const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * (dtype == HEARTH_DTYPE_F16 ? 2 : 4));
  for (size_t i = 0; i < v.size(); ++i) {
    if (dtype == HEARTH_DTYPE_F16) {
      uint16_t h = DoubleToHalf(v[i]);
      std::memcpy(&out[2 * i], &h, 2);
    } else {
      std::memcpy(&out[4 * i], &v[i], 4);
    }
  }
  return out;
}

// Backend caches plus the matching reference; Step() runs one graph.
class Harness {
 public:
  Harness(Backend& b, const Shape& s, uint32_t seed) : b_(b), s_(s) {
    std::vector<float> k0 = RandomF32(s.n_ctx * s.n_head_kv * s.dk, seed);
    std::vector<float> v0 = RandomF32(s.n_ctx * s.n_head_kv * s.dv, seed + 1);
    kc_ = b.Add(s.k_dtype, {s.dk, s.n_head_kv, s.n_ctx}, ToDtype(s.k_dtype, k0).data());
    vc_ = b.Add(s.v_dtype, {s.dv, s.n_head_kv, s.n_ctx}, ToDtype(s.v_dtype, v0).data());
    ref_ = std::make_unique<Reference>(s, k0, v0);
    seed_ = seed + 2;
  }
  // Runs tokens at `pos`; returns the backend output, checks it against the
  // reference and the cache rows written.
  std::vector<float> Step(const std::vector<int32_t>& pos) {
    const int64_t n = static_cast<int64_t>(pos.size());
    std::vector<float> q = RandomF32(s_.dk * s_.n_head * n, seed_++, -2, 2);
    std::vector<float> k = RandomF32(s_.dk * s_.n_head_kv * n, seed_++, -2, 2);
    std::vector<float> v = RandomF32(s_.dv * s_.n_head_kv * n, seed_++);
    return Run(q, k, v, pos);
  }
  std::vector<float> Run(const std::vector<float>& q, const std::vector<float>& k,
                         const std::vector<float>& v, const std::vector<int32_t>& pos) {
    const int64_t n = static_cast<int64_t>(pos.size());
    int qi = b_.Add(HEARTH_DTYPE_F32, {s_.dk, s_.n_head, n}, q.data());
    int ki = b_.Add(HEARTH_DTYPE_F32, {s_.dk, s_.n_head_kv, n}, k.data());
    int vi = b_.Add(HEARTH_DTYPE_F32, {s_.dv, s_.n_head_kv, n}, v.data());
    int pi = b_.Add(HEARTH_DTYPE_I32, {n}, pos.data());
    int oi = b_.Add(HEARTH_DTYPE_F32, {s_.dv, s_.n_head, n});
    b_.Node(HEARTH_OP_ATTENTION, oi, {qi, ki, vi, kc_, vc_, pi}, {s_.scale, s_.softcap},
            {s_.window});
    EXPECT_EQ(b_.Supports(static_cast<uint32_t>(b_.nodes().size() - 1)), 1);
    EXPECT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
    b_.ClearNodes();
    std::vector<double> want = ref_->Step(q, k, v, pos);
    std::vector<float> got = b_.Read(oi);
    EXPECT_TRUE(Near(got, want, 2e-6, 2e-5));
    std::vector<float> kc = b_.Read(kc_);
    std::vector<double> want_kc = ref_->k_cache();
    EXPECT_TRUE(Near(kc, want_kc, 0, 0)) << "k cache after the write";
    return got;
  }

 private:
  Backend& b_;
  Shape s_;
  int kc_ = -1, vc_ = -1;
  std::unique_ptr<Reference> ref_;
  uint32_t seed_ = 0;
};

class AttentionTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { ASSERT_TRUE(b_.ok()); }
  Backend b_{static_cast<uint32_t>(GetParam())};
};

INSTANTIATE_TEST_SUITE_P(Threads, AttentionTest, ::testing::Values(1, 2, 3),
                         [](const auto& info) { return "t" + std::to_string(info.param); });

TEST_P(AttentionTest, MultiHeadPrompt) {
  Shape s{16, 16, 4, 4, 8, HEARTH_DTYPE_F32, HEARTH_DTYPE_F32, 0.25f, 0.0f, 0};
  Harness h(b_, s, 1);
  h.Step({0, 1, 2, 3, 4});
}

TEST_P(AttentionTest, GroupedQueryOverHistory) {
  // 6 query heads share 2 kv heads; rows before pos 7 hold earlier history.
  Shape s{20, 12, 6, 2, 16, HEARTH_DTYPE_F32, HEARTH_DTYPE_F32, 1.0f / std::sqrt(20.0f), 0.0f, 0};
  Harness h(b_, s, 2);
  h.Step({7, 8, 9});
  h.Step({10});
}

TEST_P(AttentionTest, WindowSoftcapF16CacheMultiQuery) {
  Shape s{24, 24, 3, 1, 20, HEARTH_DTYPE_F16, HEARTH_DTYPE_F16, 0.5f, 2.0f, 3};
  Harness h(b_, s, 3);
  h.Step({10, 11, 12, 13});
  h.Step({14});
  h.Step({19});  // a gap: the window only reaches back to 17
}

TEST_P(AttentionTest, MixedCacheDtypesLongContext) {
  Shape s{64, 40, 8, 2, 300, HEARTH_DTYPE_F16, HEARTH_DTYPE_F32, 0.125f, 30.0f, 0};
  Harness h(b_, s, 4);
  h.Step({250, 299});
  Shape w = s;
  w.window = 100;
  w.k_dtype = HEARTH_DTYPE_F32;
  w.v_dtype = HEARTH_DTYPE_F16;
  Harness h2(b_, w, 5);
  h2.Step({290, 291, 292});
}

TEST_P(AttentionTest, PromptThenDecodeEqualsOneShot) {
  for (uint32_t dtype : {HEARTH_DTYPE_F32, HEARTH_DTYPE_F16}) {
    Shape s{32, 32, 4, 2, 12, dtype, dtype, 0.2f, 0.0f, 0};
    const int64_t per_tok_q = s.dk * s.n_head, per_tok_k = s.dk * s.n_head_kv;
    const int64_t per_tok_v = s.dv * s.n_head_kv;
    std::vector<float> q = RandomF32(per_tok_q * 8, 10, -2, 2);
    std::vector<float> k = RandomF32(per_tok_k * 8, 11, -2, 2);
    std::vector<float> v = RandomF32(per_tok_v * 8, 12);
    auto slice = [](const std::vector<float>& x, int64_t per, int64_t t0, int64_t t1) {
      return std::vector<float>(x.begin() + per * t0, x.begin() + per * t1);
    };
    Harness whole(b_, s, 20);
    std::vector<float> all = whole.Run(q, k, v, {0, 1, 2, 3, 4, 5, 6, 7});
    Harness steps(b_, s, 20);
    steps.Run(slice(q, per_tok_q, 0, 5), slice(k, per_tok_k, 0, 5), slice(v, per_tok_v, 0, 5),
              {0, 1, 2, 3, 4});
    for (int32_t t = 5; t < 8; ++t) {
      std::vector<float> one =
          steps.Run(slice(q, per_tok_q, t, t + 1), slice(k, per_tok_k, t, t + 1),
                    slice(v, per_tok_v, t, t + 1), {t});
      std::vector<float> want = slice(all, s.dv * s.n_head, t, t + 1);
      ASSERT_EQ(one.size(), want.size());
      for (size_t i = 0; i < one.size(); ++i) {
        ASSERT_EQ(one[i], want[i]) << "token " << t << " element " << i << " dtype " << dtype;
      }
    }
  }
}

}  // namespace
}  // namespace hearth::cpu::testing
