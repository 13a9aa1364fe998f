// threadpool_test.cc — the CPU backend's worker pool: every (ith, nth) runs
// exactly once per dispatch, results are visible after Run() returns (the
// barrier), workers that went to sleep wake up, and dispatch stays cheap.
// Also the scalar and AVX2 vector tables agree on random data.
#include "backends/cpu/threadpool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "backends/cpu/ops_vec.h"

namespace hearth::cpu {
namespace {

std::unique_ptr<ThreadPool> MakePool(int n) {
  std::string error;
  auto pool = ThreadPool::Create(n, &error);
  EXPECT_NE(pool, nullptr) << error;
  return pool;
}

TEST(ThreadPoolTest, EveryThreadRunsOncePerJob) {
  for (int n : {1, 2, 3, 5}) {
    auto pool = MakePool(n);
    for (int nth : {1, 2, n, n + 4}) {
      std::vector<int> hits(8, 0);  // plain ints: Run() must order them
      int seen_nth = 0;
      std::atomic<int> bad_nth{0};
      pool->Run(nth, [&](int ith, int nt) {
        hits[ith] += 1;
        if (ith == 0) seen_nth = nt;
        if (nt != std::min(nth, n)) bad_nth.fetch_add(1);
      });
      EXPECT_EQ(seen_nth, std::min(nth, n));
      EXPECT_EQ(bad_nth.load(), 0);
      for (int i = 0; i < 8; ++i) EXPECT_EQ(hits[i], i < std::min(nth, n) ? 1 : 0) << i;
    }
  }
}

TEST(ThreadPoolTest, PhasesSeeEachOthersWrites) {
  auto pool = MakePool(3);
  std::vector<int64_t> data(3000, 0), sums(3, 0);
  for (int round = 0; round < 200; ++round) {
    pool->Run(3, [&](int ith, int nth) {
      for (size_t i = ith; i < data.size(); i += nth) data[i] += static_cast<int64_t>(i);
    });
    // The next phase reads what the other threads wrote.
    pool->Run(3, [&](int ith, int nth) {
      int64_t s = 0;
      for (size_t i = (ith + 1) % nth; i < data.size(); i += nth) s += data[i];
      sums[ith] = s;
    });
    int64_t total = sums[0] + sums[1] + sums[2];
    EXPECT_EQ(total, static_cast<int64_t>(round + 1) * 2999 * 3000 / 2);
  }
}

TEST(ThreadPoolTest, SleepingWorkersWakeUp) {
  auto pool = MakePool(3);
  for (int round = 0; round < 5; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(3));  // past the spin window
    if (round % 2) pool->Park();
    std::atomic<int> count{0};
    pool->Run(3, [&](int, int) { count.fetch_add(1); });
    EXPECT_EQ(count.load(), 3);
  }
}

TEST(ThreadPoolTest, DispatchIsCheap) {
  auto pool = MakePool(2);
  std::atomic<int64_t> sink{0};
  const int kRuns = 20000;
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < kRuns; ++i) {
    pool->Run(2, [&](int ith, int) { sink.fetch_add(ith, std::memory_order_relaxed); });
  }
  double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                  .count() / kRuns;
  EXPECT_EQ(sink.load(), kRuns);
  std::printf("pool dispatch + barrier, 2 threads: %.2f us\n", us);
  // Loose bound: the machine running the tests is shared; this catches a
  // pool that sleeps in the kernel on every job (tens of microseconds).
  EXPECT_LT(us, 50.0);
}

// ----------------------------------------------------------- vector tables

TEST(VecTest, HalfConversionsAreExact) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = HalfToFloat(static_cast<uint16_t>(h));
    _Float16 ref;
    uint16_t hb = static_cast<uint16_t>(h);
    std::memcpy(&ref, &hb, 2);
    if (std::isnan(f)) {
      ASSERT_TRUE(std::isnan(static_cast<float>(ref)));
      continue;
    }
    ASSERT_EQ(FloatBits(f), FloatBits(static_cast<float>(ref))) << std::hex << h;
    ASSERT_EQ(FloatToHalf(f), h) << std::hex << h;
  }
  // Rounding of floats between halves, ties included, over a sweep of bits.
  for (uint64_t u = 0; u < (uint64_t{1} << 32); u += 4099) {
    float f = BitsFloat(static_cast<uint32_t>(u));
    if (std::isnan(f)) continue;
    _Float16 ref = static_cast<_Float16>(f);
    uint16_t rb;
    std::memcpy(&rb, &ref, 2);
    ASSERT_EQ(FloatToHalf(f), rb) << std::hex << u;
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
      h[i] = FloatToHalf(b[i]);
    }
    auto near = [](double x, double y, double tol) { return std::fabs(x - y) <= tol; };
    EXPECT_TRUE(near(avx2->dot_f32(a.data(), b.data(), n), ref.dot_f32(a.data(), b.data(), n), 1e-3));
    EXPECT_TRUE(near(avx2->dot_f16(a.data(), h.data(), n), ref.dot_f16(a.data(), h.data(), n), 1e-3));
    EXPECT_TRUE(near(avx2->sum_sq(a.data(), n), ref.sum_sq(a.data(), n), 1e-2));
    EXPECT_EQ(avx2->max(a.data(), n), ref.max(a.data(), n));
    float s1 = avx2->exp_sum(y1.data(), a.data(), 0.7f, 3.0f, n);
    float s2 = ref.exp_sum(y2.data(), a.data(), 0.7f, 3.0f, n);
    EXPECT_NEAR(s1, s2, 1e-6 * std::fabs(s2) * 4);
    for (int64_t i = 0; i < n; ++i) EXPECT_NEAR(y1[i], y2[i], 3e-7 * y2[i]);
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
  }
}

}  // namespace
}  // namespace hearth::cpu
