// ops_attention_back_test.cc — ATTENTION's lse extra output and
// ATTENTION_BACK on the CPU: one graph runs the forward on an empty
// (NaN-poisoned) cache with lse, then the backward from its output and lse;
// both are compared with a double reference written here, and the
// gradients with central finite differences of that reference forward.
// GQA and MQA, two interleaved sequences, sliding window and softcap, 1 and
// 2 threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <vector>

#include "backends/cpu/tests/ops_test_util.h"

namespace hearth::cpu::testing {
namespace {


class AttentionBackTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { ASSERT_TRUE(b_.ok()); }
  Backend b_{static_cast<uint32_t>(GetParam())};
};

INSTANTIATE_TEST_SUITE_P(Threads, AttentionBackTest, ::testing::Values(1, 2),
                         [](const auto& info) { return "t" + std::to_string(info.param); });

struct Case {
  int64_t dk, dv, H, Hkv;
  float scale, softcap;
  int32_t window;
  bool with_seq;
};

struct Batch {
  std::vector<int32_t> pos, seq;
  int64_t T() const { return static_cast<int64_t>(pos.size()); }
  bool Visible(int64_t t, int64_t j, int32_t window) const {
    return seq[j] == seq[t] && pos[j] <= pos[t] && (window <= 0 || pos[t] - pos[j] < window);
  }
};

// Double reference forward: out [T][H][dv] and lse [T][H].
void Forward(const Case& c, const Batch& bt, const Vec& q, const Vec& k, const Vec& v, Vec* out,
             Vec* lse) {
  const int64_t T = bt.T(), group = c.H / c.Hkv;
  out->assign(T * c.H * c.dv, 0.0);
  lse->assign(T * c.H, 0.0);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < c.H; ++h) {
      const int64_t g = h / group;
      Vec sc(T, -INFINITY);
      double m = -INFINITY;
      for (int64_t j = 0; j < T; ++j) {
        if (!bt.Visible(t, j, c.window)) continue;
        double s = 0;
        for (int64_t i = 0; i < c.dk; ++i)
          s += q[(t * c.H + h) * c.dk + i] * k[(j * c.Hkv + g) * c.dk + i];
        s *= c.scale;
        if (c.softcap > 0) s = c.softcap * std::tanh(s / c.softcap);
        sc[j] = s;
        m = std::max(m, s);
      }
      double sum = 0;
      for (int64_t j = 0; j < T; ++j) sum += std::isfinite(sc[j]) ? std::exp(sc[j] - m) : 0.0;
      for (int64_t j = 0; j < T; ++j) {
        if (!std::isfinite(sc[j])) continue;
        const double p = std::exp(sc[j] - m) / sum;
        for (int64_t i = 0; i < c.dv; ++i)
          (*out)[(t * c.H + h) * c.dv + i] += p * v[(j * c.Hkv + g) * c.dv + i];
      }
      (*lse)[t * c.H + h] = m + std::log(sum);
    }
  }
}

// Double reference backward, written from the chain rule directly (softmax
// Jacobian, tanh derivative), independent of the op's formulation.
void Backward(const Case& c, const Batch& bt, const Vec& q, const Vec& k, const Vec& v,
              const Vec& dout, Vec* dq, Vec* dk, Vec* dv) {
  const int64_t T = bt.T(), group = c.H / c.Hkv;
  dq->assign(q.size(), 0.0);
  dk->assign(k.size(), 0.0);
  dv->assign(v.size(), 0.0);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < c.H; ++h) {
      const int64_t g = h / group;
      std::vector<int64_t> keys;
      Vec raw, cap, dcap;
      for (int64_t j = 0; j < T; ++j) {
        if (!bt.Visible(t, j, c.window)) continue;
        double s = 0;
        for (int64_t i = 0; i < c.dk; ++i)
          s += q[(t * c.H + h) * c.dk + i] * k[(j * c.Hkv + g) * c.dk + i];
        s *= c.scale;
        keys.push_back(j);
        if (c.softcap > 0) {
          const double th = std::tanh(s / c.softcap);
          cap.push_back(c.softcap * th);
          dcap.push_back(1 - th * th);
        } else {
          cap.push_back(s);
          dcap.push_back(1);
        }
      }
      double m = -INFINITY, sum = 0;
      for (double x : cap) m = std::max(m, x);
      for (double x : cap) sum += std::exp(x - m);
      Vec p(keys.size()), dp(keys.size());
      double pdp = 0;
      for (size_t a = 0; a < keys.size(); ++a) {
        p[a] = std::exp(cap[a] - m) / sum;
        for (int64_t i = 0; i < c.dv; ++i) {
          dp[a] += dout[(t * c.H + h) * c.dv + i] * v[(keys[a] * c.Hkv + g) * c.dv + i];
          (*dv)[(keys[a] * c.Hkv + g) * c.dv + i] += p[a] * dout[(t * c.H + h) * c.dv + i];
        }
        pdp += p[a] * dp[a];
      }
      for (size_t a = 0; a < keys.size(); ++a) {
        const double ds = p[a] * (dp[a] - pdp) * dcap[a] * c.scale;
        for (int64_t i = 0; i < c.dk; ++i) {
          (*dq)[(t * c.H + h) * c.dk + i] += ds * k[(keys[a] * c.Hkv + g) * c.dk + i];
          (*dk)[(keys[a] * c.Hkv + g) * c.dk + i] += ds * q[(t * c.H + h) * c.dk + i];
        }
      }
    }
  }
}

// Two sequences interleaved in the batch, positions in order within each.
Batch TwoSequences() { return Batch{{0, 1, 0, 2, 1, 2, 3, 4}, {0, 0, 1, 0, 1, 1, 0, 0}}; }

void RunCase(Backend& b, const Case& c, const Batch& bt, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "H " << c.H << " Hkv " << c.Hkv << " softcap " << c.softcap
                                    << " window " << c.window);
  const int64_t T = bt.T();
  const int64_t n_ctx = std::max<int64_t>(8, *std::max_element(bt.pos.begin(), bt.pos.end()) + 1);
  const int64_t n_seq = std::max<int64_t>(2, *std::max_element(bt.seq.begin(), bt.seq.end()) + 1);
  std::vector<float> q = RandomF32(c.dk * c.H * T, seed, -2, 2);
  std::vector<float> k = RandomF32(c.dk * c.Hkv * T, seed + 1, -2, 2);
  std::vector<float> v = RandomF32(c.dv * c.Hkv * T, seed + 2);
  std::vector<float> dout = RandomF32(c.dv * c.H * T, seed + 3);
  int qi = b.Add(HEARTH_DTYPE_F32, {c.dk, c.H, T}, q.data());
  int ki = b.Add(HEARTH_DTYPE_F32, {c.dk, c.Hkv, T}, k.data());
  int vi = b.Add(HEARTH_DTYPE_F32, {c.dv, c.Hkv, T}, v.data());
  int kc = b.Add(HEARTH_DTYPE_F32, {c.dk, c.Hkv, n_ctx, n_seq});  // NaN: empty
  int vc = b.Add(HEARTH_DTYPE_F32, {c.dv, c.Hkv, n_ctx, n_seq});
  int pi = b.Add(HEARTH_DTYPE_I32, {T}, bt.pos.data());
  int si = c.with_seq ? b.Add(HEARTH_DTYPE_I32, {T}, bt.seq.data()) : -1;
  int oi = b.Add(HEARTH_DTYPE_F32, {c.dv, c.H, T});
  int li = b.Add(HEARTH_DTYPE_F32, {c.H, T});
  int doi = b.Add(HEARTH_DTYPE_F32, {c.dv, c.H, T}, dout.data());
  int dqi = b.Add(HEARTH_DTYPE_F32, {c.dk, c.H, T});
  int dki = b.Add(HEARTH_DTYPE_F32, {c.dk, c.Hkv, T});
  int dvi = b.Add(HEARTH_DTYPE_F32, {c.dv, c.Hkv, T});
  const hearth_attention_params prm{c.scale, c.softcap, c.window};
  b.NodeP(HEARTH_OP_ATTENTION, {oi, li}, {qi, ki, vi, kc, vc, pi, si}, prm);
  b.NodeP(HEARTH_OP_ATTENTION_BACK, {dqi, dki, dvi}, {qi, ki, vi, oi, doi, li, pi, si}, prm);
  ASSERT_EQ(b.Supports(1), 1);
  ASSERT_EQ(b.Compute(), HEARTH_P_OK) << Recorder().last_error;
  b.ClearNodes();

  const Vec qd = ToDouble(q), kd = ToDouble(k), vd = ToDouble(v), dd = ToDouble(dout);
  Vec out, lse;
  Forward(c, bt, qd, kd, vd, &out, &lse);
  // Float softmax with SIMD exp: out and lse to atol 1e-5 + rtol 1e-5.
  EXPECT_TRUE(Near(b.Read(oi), out, 1e-5, 1e-5));
  EXPECT_TRUE(Near(b.Read(li), lse, 1e-5, 1e-5));

  Vec rq, rk, rv;
  Backward(c, bt, qd, kd, vd, dd, &rq, &rk, &rv);
  // Float scores and exp, sums over at most T * group terms: atol 2e-5,
  // rtol 1e-4 against the double chain rule.
  EXPECT_TRUE(Near(b.Read(dqi), rq, 2e-5, 1e-4));
  EXPECT_TRUE(Near(b.Read(dki), rk, 2e-5, 1e-4));
  EXPECT_TRUE(Near(b.Read(dvi), rv, 2e-5, 1e-4));
  if (T > 16) return;  // finite differences of the O(T^2) reference cost too much

  // And against finite differences of loss = dout . forward(q, k, v).
  auto loss = [&](const Vec& qq, const Vec& kk, const Vec& vv) {
    Vec o, l;
    Forward(c, bt, qq, kk, vv, &o, &l);
    double s = 0;
    for (size_t i = 0; i < o.size(); ++i) s += o[i] * dd[i];
    return s;
  };
  EXPECT_TRUE(
      Near(b.Read(dqi), FiniteDiff(qd, [&](const Vec& x) { return loss(x, kd, vd); }), 2e-5, 1e-4));
  EXPECT_TRUE(
      Near(b.Read(dki), FiniteDiff(kd, [&](const Vec& x) { return loss(qd, x, vd); }), 2e-5, 1e-4));
  EXPECT_TRUE(
      Near(b.Read(dvi), FiniteDiff(vd, [&](const Vec& x) { return loss(qd, kd, x); }), 2e-5, 1e-4));
}

TEST_P(AttentionBackTest, GqaTwoSequences) {
  RunCase(b_, Case{8, 6, 4, 2, 0.35f, 0.0f, 0, true}, TwoSequences(), 100);
}

TEST_P(AttentionBackTest, MqaWithSoftcapAndWindow) {
  RunCase(b_, Case{16, 8, 3, 1, 0.5f, 3.0f, 2, true}, TwoSequences(), 200);
}

TEST_P(AttentionBackTest, OneSequenceWithoutSeqInput) {
  Batch bt{{3, 0, 1, 2, 4}, {0, 0, 0, 0, 0}};  // out of order in the batch
  RunCase(b_, Case{5, 7, 2, 2, 0.4f, 0.0f, 0, false}, bt, 300);
  RunCase(b_, Case{5, 7, 2, 2, 0.4f, 2.0f, 3, false}, bt, 400);
}

// Batches longer than one tile of the op (64 queries x 64 keys): partial
// tiles, head sizes that are not a multiple of the vector width, key tiles
// wholly masked by position, sequence or window, positions out of order.
Batch Interleaved(int64_t T, int n_seq, uint32_t seed) {
  std::mt19937 rng(seed);
  Batch bt;
  std::vector<int32_t> next(n_seq, 0);
  for (int64_t t = 0; t < T; ++t) {
    const int32_t s = static_cast<int32_t>(rng() % n_seq);
    bt.seq.push_back(s);
    bt.pos.push_back(next[s]++);
  }
  // Swap a few positions within a sequence so that they are not in batch order.
  for (int i = 0; i < 40; ++i) {
    const int64_t a = rng() % T, b = rng() % T;
    if (bt.seq[a] == bt.seq[b]) std::swap(bt.pos[a], bt.pos[b]);
  }
  return bt;
}

TEST_P(AttentionBackTest, SeveralTilesGqaSequencesWindows) {
  const Batch three = Interleaved(150, 3, 7);
  RunCase(b_, Case{20, 12, 4, 2, 0.3f, 0.0f, 0, true}, three, 500);
  RunCase(b_, Case{20, 12, 4, 2, 0.3f, 0.0f, 37, true}, three, 600);
  RunCase(b_, Case{9, 17, 3, 1, 0.4f, 2.5f, 5, true}, three, 700);
  Batch one;
  for (int32_t t = 0; t < 131; ++t) one.pos.push_back(t), one.seq.push_back(0);
  RunCase(b_, Case{64, 64, 2, 1, 0.125f, 0.0f, 0, false}, one, 800);
  RunCase(b_, Case{32, 32, 4, 4, 0.2f, 0.0f, 70, false}, one, 900);
}

// Not a test: the time of one ATTENTION_BACK (and of the forward) at
// T = 512, n_head 32, n_head_kv 8, head_dim 64, one sequence. Run with
// --gtest_also_run_disabled_tests --gtest_filter='*Time512*'.
TEST_P(AttentionBackTest, DISABLED_Time512) {
  const int64_t T = 512, H = 32, Hkv = 8, d = 64;
  std::vector<int32_t> pos(T), seq(T, 0);
  for (int64_t t = 0; t < T; ++t) pos[t] = static_cast<int32_t>(t);
  int qi = b_.Add(HEARTH_DTYPE_F32, {d, H, T}, RandomF32(d * H * T, 1, -2, 2).data());
  int ki = b_.Add(HEARTH_DTYPE_F32, {d, Hkv, T}, RandomF32(d * Hkv * T, 2, -2, 2).data());
  int vi = b_.Add(HEARTH_DTYPE_F32, {d, Hkv, T}, RandomF32(d * Hkv * T, 3).data());
  int kc = b_.Add(HEARTH_DTYPE_F32, {d, Hkv, T, 1});
  int vc = b_.Add(HEARTH_DTYPE_F32, {d, Hkv, T, 1});
  int pi = b_.Add(HEARTH_DTYPE_I32, {T}, pos.data());
  int si = b_.Add(HEARTH_DTYPE_I32, {T}, seq.data());
  int oi = b_.Add(HEARTH_DTYPE_F32, {d, H, T});
  int li = b_.Add(HEARTH_DTYPE_F32, {H, T});
  int doi = b_.Add(HEARTH_DTYPE_F32, {d, H, T}, RandomF32(d * H * T, 4).data());
  int dqi = b_.Add(HEARTH_DTYPE_F32, {d, H, T});
  int dki = b_.Add(HEARTH_DTYPE_F32, {d, Hkv, T});
  int dvi = b_.Add(HEARTH_DTYPE_F32, {d, Hkv, T});
  const hearth_attention_params prm{0.125f, 0.0f, 0};
  auto time = [&](const char* what) {
    ASSERT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;  // warm-up
    double best = 1e30;
    for (int i = 0; i < 5; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      ASSERT_EQ(b_.Compute(), HEARTH_P_OK);
      best = std::min(
          best,
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::printf("%s T=%lld H=%lld Hkv=%lld d=%lld threads=%d: best of 5 %.1f ms\n", what,
                static_cast<long long>(T), static_cast<long long>(H), static_cast<long long>(Hkv),
                static_cast<long long>(d), GetParam(), best);
    b_.ClearNodes();
  };
  b_.NodeP(HEARTH_OP_ATTENTION, {oi, li}, {qi, ki, vi, kc, vc, pi, si}, prm);
  time("ATTENTION");
  b_.NodeP(HEARTH_OP_ATTENTION_BACK, {dqi, dki, dvi}, {qi, ki, vi, oi, doi, li, pi, si}, prm);
  time("ATTENTION_BACK");
}

// Bad positions and rows two tokens share are refused before anything runs.
TEST_P(AttentionBackTest, RejectsNegativeAndDuplicateRows) {
  struct Bad {
    std::vector<int32_t> pos, seq;
    const char* message;
  };
  for (const Bad& bad :
       {Bad{{0, -1, 2}, {0, 0, 0}, "pos[1] = -1"}, Bad{{0, 1, 2}, {0, -2, 0}, "seq[1] = -2"},
        Bad{{0, 1, 1}, {0, 1, 1}, "tokens 1 and 2"}}) {
    const int64_t T = 3, d = 4;
    int qi = b_.Add(HEARTH_DTYPE_F32, {d, 1, T}, RandomF32(d * T, 1).data());
    int ki = b_.Add(HEARTH_DTYPE_F32, {d, 1, T}, RandomF32(d * T, 2).data());
    int vi = b_.Add(HEARTH_DTYPE_F32, {d, 1, T}, RandomF32(d * T, 3).data());
    int oi = b_.Add(HEARTH_DTYPE_F32, {d, 1, T}, RandomF32(d * T, 4).data());
    int doi = b_.Add(HEARTH_DTYPE_F32, {d, 1, T}, RandomF32(d * T, 5).data());
    int li = b_.Add(HEARTH_DTYPE_F32, {1, T}, RandomF32(T, 6).data());
    int pi = b_.Add(HEARTH_DTYPE_I32, {T}, bad.pos.data());
    int si = b_.Add(HEARTH_DTYPE_I32, {T}, bad.seq.data());
    int dq = b_.Add(HEARTH_DTYPE_F32, {d, 1, T}), dk = b_.Add(HEARTH_DTYPE_F32, {d, 1, T});
    int dv = b_.Add(HEARTH_DTYPE_F32, {d, 1, T});
    b_.NodeP(HEARTH_OP_ATTENTION_BACK, {dq, dk, dv}, {qi, ki, vi, oi, doi, li, pi, si},
             hearth_attention_params{0.5f, 0.0f, 0});
    EXPECT_EQ(b_.Compute(), HEARTH_P_INVALID_ARGUMENT);
    EXPECT_NE(Recorder().last_error.find(bad.message), std::string::npos) << Recorder().last_error;
    EXPECT_TRUE(std::isnan(b_.Read(dq)[0]));
    b_.ClearNodes();
  }
}

}  // namespace
}  // namespace hearth::cpu::testing
