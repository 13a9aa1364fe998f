// threadpool_test.cc — the CPU backend's worker pool: every (ith, nth) runs
// exactly once per dispatch, results are visible after Run() returns (the
// barrier), workers that went to sleep wake up, and dispatch stays cheap.
#include "backends/cpu/threadpool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

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

double LoadAverage() {
  double load = 0;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &load) != 1) load = 0;
    std::fclose(f);
  }
  return load;
}

TEST(ThreadPoolTest, DispatchIsCheap) {
  auto pool = MakePool(2);
  std::atomic<int64_t> sink{0};
  const int kBatches = 20, kRuns = 500;
  double best_us = 1e9;
  for (int b = 0; b < kBatches; ++b) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < kRuns; ++i) {
      pool->Run(2, [&](int ith, int) { sink.fetch_add(ith, std::memory_order_relaxed); });
    }
    double us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
        kRuns;
    best_us = std::min(best_us, us);
  }
  EXPECT_EQ(sink.load(), kBatches * kRuns);
  const double load = LoadAverage();
  const unsigned cpus = std::thread::hardware_concurrency();
  std::printf("pool dispatch + barrier, 2 threads: %.2f us (best batch; load %.1f on %u cpus)\n",
              best_us, load, cpus);
  // Timing is the benchmark's business (hearth bench); this bound only
  // catches a pool that sleeps in the kernel or waits on a timer per job, and
  // only where two cores are free (threads on a busy machine wait for the
  // scheduler, not for the pool).
  if (cpus >= 2 && load + 2 <= cpus) {
    EXPECT_LT(best_us, 50.0);
  }
}

}  // namespace
}  // namespace hearth::cpu
