// cpu_kernels_bench.cc — how close the CPU matrix-vector products come to
// the machine's memory read bandwidth, the ceiling of a decode step.
//
// 1. Measures read bandwidth: T threads sum a 1 GiB buffer (best of 5).
// 2. For each weight format and shape, runs y = W x (N = 1) on T threads of
//    its own (phase 1, spin barrier, phase 2), rotating over ~200 MB of
//    distinct weight matrices so that no matrix is in cache when it is read,
//    and reports GB/s of weights streamed (best of 20 timed windows) and the
//    fraction of (1) and of the bandwidth measured again just before the
//    case (256 MB, best of 3); beside it, one thread's compute ceiling: GB/s of the
//    same product on ~256 KB of rows read from L2 again and again.
// 3. For information, the prompt-processing rate (N = 64) in GFLOP/s.
//
// Usage: cpu_kernels_bench [threads=2] [weight_set_MB=200] [seconds_per_case=1] [formats]
// where formats is a comma-separated subset such as Q4_0,Q4_K (default: all).
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backends/cpu/kernels.h"
#include "hearth/hearth_plugin.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Generation-counting spin barrier: the phases of one product are
// microseconds apart, too short for a futex round trip.
class SpinBarrier {
 public:
  explicit SpinBarrier(int n) : n_(n) {}
  void Wait() {
    const int gen = gen_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
      count_.store(0, std::memory_order_relaxed);
      gen_.store(gen + 1, std::memory_order_release);
      return;
    }
    // Spin briefly, then yield: on a loaded machine the other thread may be
    // descheduled, and spinning through its time slice would be measured.
    for (int spins = 0; gen_.load(std::memory_order_acquire) == gen; ++spins) {
      if (spins < 2000) {
        _mm_pause();
      } else {
        std::this_thread::yield();
      }
    }
  }

 private:
  const int n_;
  std::atomic<int> count_{0};
  std::atomic<int> gen_{0};
};

__attribute__((target("avx2"))) uint64_t SumAvx2(const uint8_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  uint64_t r[4];
  std::memcpy(r, &s, 32);
  return r[0] + r[1] + r[2] + r[3];
}

uint64_t SumScalar(const uint8_t* p, size_t n) {
  uint64_t a = 0, b = 0;
  for (size_t i = 0; i + 16 <= n; i += 16) {
    uint64_t u, v;
    std::memcpy(&u, p + i, 8);
    std::memcpy(&v, p + i + 8, 8);
    a += u;
    b += v;
  }
  return a + b;
}

// Best of `reps` streaming sums of `bytes` split over nth threads, in GB/s.
double MeasureBandwidth(int nth, size_t bytes, int reps) {
  uint8_t* buf = static_cast<uint8_t*>(std::aligned_alloc(64, bytes));
  if (buf == nullptr) return 0;
  std::memset(buf, 1, bytes);
  const bool avx2 = __builtin_cpu_supports("avx2");
  double best = 0;
  std::atomic<uint64_t> sink{0};
  for (int rep = 0; rep < reps; ++rep) {
    SpinBarrier start(nth);
    std::vector<double> secs(nth);
    std::vector<std::thread> threads;
    for (int t = 0; t < nth; ++t) {
      threads.emplace_back([&, t] {
        const size_t b = bytes / nth * t / 64 * 64, e = bytes / nth * (t + 1) / 64 * 64;
        start.Wait();
        const auto t0 = Clock::now();
        sink += avx2 ? SumAvx2(buf + b, e - b) : SumScalar(buf + b, e - b);
        secs[t] = Seconds(t0, Clock::now());
      });
    }
    for (auto& th : threads) th.join();
    const double s = *std::max_element(secs.begin(), secs.end());
    best = std::max(best, bytes / s / 1e9);
  }
  std::free(buf);
  return best + 0 * static_cast<double>(sink.load());
}

struct Case {
  uint32_t dtype;
  const char* name;
  // Q4_0x8, Q8_0x8: repacked the way weight_place stores a model's matrices.
  hearth::cpu::WeightLayout layout = hearth::cpu::WeightLayout::kPlain;
};

const Case kCases[] = {
    {HEARTH_DTYPE_Q8_0, "Q8_0"},
    {HEARTH_DTYPE_Q8_0, "Q8_0x8", hearth::cpu::WeightLayout::kQ8_0x8},
    {HEARTH_DTYPE_Q4_0, "Q4_0"},
    {HEARTH_DTYPE_Q4_0, "Q4_0x8", hearth::cpu::WeightLayout::kQ4_0x8},
    {HEARTH_DTYPE_Q5_0, "Q5_0"},
    {HEARTH_DTYPE_Q4_K, "Q4_K"},
    {HEARTH_DTYPE_Q4_K, "Q4_Kx8", hearth::cpu::WeightLayout::kQ4_Kx8},
    {HEARTH_DTYPE_Q6_K, "Q6_K"},
    {HEARTH_DTYPE_Q6_K, "Q6_Kx8", hearth::cpu::WeightLayout::kQ6_Kx8},
    {HEARTH_DTYPE_F16, "F16"},
    {HEARTH_DTYPE_BF16, "BF16"},
    {HEARTH_DTYPE_F32, "F32"},
};

// Random bytes with small finite f16 scales wherever a block has one.
void FillWeights(uint32_t dtype, uint8_t* w, int64_t bytes, std::mt19937_64& rng) {
  for (int64_t i = 0; i + 8 <= bytes; i += 8) {
    const uint64_t r = rng();
    std::memcpy(w + i, &r, 8);
  }
  const int64_t bb = hearth_dtype_block_bytes(dtype);
  const uint16_t small = 0x2000;  // 2^-7
  for (int64_t b = 0; b + bb <= bytes; b += bb) {
    uint8_t* blk = w + b;
    switch (dtype) {
      case HEARTH_DTYPE_F16:
        std::memcpy(blk, &small, 2);
        break;
      case HEARTH_DTYPE_BF16:
        blk[1] &= 0x3f;
        break;  // finite, |v| < 2
      case HEARTH_DTYPE_F32:
        blk[3] &= 0x3f;
        break;
      case HEARTH_DTYPE_Q4_K:
        std::memcpy(blk + 2, &small, 2);
        [[fallthrough]];
      case HEARTH_DTYPE_Q8_0:
      case HEARTH_DTYPE_Q4_0:
      case HEARTH_DTYPE_Q5_0:
        std::memcpy(blk, &small, 2);
        break;
      case HEARTH_DTYPE_Q6_K:
        std::memcpy(blk + 208, &small, 2);
        break;
      default:
        break;
    }
  }
}

struct Result {
  double seconds_per_product = 0;  // best of the timed windows
  int64_t products = 0;            // in all windows
};

// Runs y = W_i x over the weight set, on nth threads, in 20 timed windows of
// about seconds / 20 each; the best window counts (other processes on a
// shared machine only ever slow a window down).
Result RunProducts(const Case& c, const std::vector<uint8_t*>& mats, int64_t m, int64_t k,
                   int64_t n, int nth, double seconds) {
  const uint32_t dtype = c.dtype;
  const int64_t row_bytes = hearth::cpu::LayoutRowBytes(c.layout, dtype, k);
  std::vector<float> x(static_cast<size_t>(n * k)), y(static_cast<size_t>(n * m));
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  for (float& v : x) v = normal(rng);
  std::vector<uint64_t> scratch(hearth::cpu::MatMulScratchBytes(dtype, k, n) / 8 + 8);
  hearth::cpu::MatMulArgs a;
  a.w_dtype = dtype;
  a.w_layout = c.layout;
  a.w_row_bytes = row_bytes;
  a.x = x.data();
  a.x_row_stride = k;
  a.y = y.data();
  a.y_row_stride = m;
  a.K = k;
  a.M = m;
  a.N = n;
  constexpr int kWindows = 20;
  const double window = seconds / kWindows;
  SpinBarrier barrier(nth);
  std::atomic<bool> stop{false};
  Result result;
  result.seconds_per_product = 1e30;
  std::vector<std::thread> threads;
  for (int t = 0; t < nth; ++t) {
    threads.emplace_back([&, t] {
      hearth::cpu::MatMulArgs local = a;
      // One untimed pass over the set warms code and the page tables.
      const int64_t warm = static_cast<int64_t>(mats.size());
      Clock::time_point t0;
      int64_t in_window = 0, windows = 0;
      for (int64_t i = 0;; ++i) {
        if (i >= warm && (i - warm) % 8 == 0) {
          if (t == 0) {
            const auto now = Clock::now();
            if (i > warm && Seconds(t0, now) >= window) {
              result.seconds_per_product =
                  std::min(result.seconds_per_product, Seconds(t0, now) / in_window);
              result.products += in_window;
              in_window = 0;
              stop = ++windows == kWindows;
            }
            if (in_window == 0) t0 = now;
          }
          barrier.Wait();
          if (stop) break;
        }
        local.w = mats[i % mats.size()];
        hearth::cpu::MatMulPrepare(local, scratch.data(), t, nth);
        barrier.Wait();
        hearth::cpu::MatMulCompute(local, scratch.data(), t, nth);
        barrier.Wait();
        if (i >= warm) ++in_window;
      }
    });
  }
  for (auto& th : threads) th.join();
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  const int nth = argc > 1 ? std::max(1, std::atoi(argv[1])) : 2;
  const double set_mb = argc > 2 ? std::max(1.0, std::atof(argv[2])) : 200.0;
  const double seconds = argc > 3 ? std::max(0.1, std::atof(argv[3])) : 1.0;
  const std::string only = argc > 4 ? std::string(",") + argv[4] + "," : "";

  std::printf("hearth CPU kernels bench: isa %s, %d threads, weight set %.0f MB\n",
              hearth::cpu::KernelIsa(), nth, set_mb);
  const double bw = MeasureBandwidth(nth, size_t{1} << 30, 5);
  std::printf("memory read bandwidth (%d threads, 1 GiB streaming sum, best of 5): %.2f GB/s\n\n",
              nth, bw);

  std::printf("decode, y = W x (N = 1):\n");
  std::printf("%-6s %6s %6s %10s %10s %9s %8s %11s %14s\n", "format", "M", "K", "MB/matrix",
              "us/matvec", "GB/s", "of bw", "of bw now", "1 thread, L2");
  const int64_t shapes[][2] = {{2048, 2048}, {8192, 2048}};
  for (const Case& c : kCases) {
    if (!only.empty() && only.find(std::string(",") + c.name + ",") == std::string::npos) continue;
    for (const auto& s : shapes) {
      const int64_t m = s[0], k = s[1];
      const int64_t plain_row_bytes =
          k / hearth_dtype_block_elems(c.dtype) * hearth_dtype_block_bytes(c.dtype);
      // What a product reads: the layout's bytes (Q4_Kx8 takes 148 per 144).
      const int64_t row_bytes = hearth::cpu::LayoutRowBytes(c.layout, c.dtype, k);
      const int64_t mat_bytes = row_bytes * m;
      const int64_t count = std::max<int64_t>(2, static_cast<int64_t>(set_mb * 1e6 / mat_bytes));
      std::vector<uint8_t*> mats;
      std::mt19937_64 rng(42);
      for (int64_t i = 0; i < count; ++i) {
        uint8_t* p = static_cast<uint8_t*>(std::aligned_alloc(64, (mat_bytes + 63) / 64 * 64));
        if (p == nullptr) {
          std::fprintf(stderr, "out of memory for the weight set\n");
          return 1;
        }
        if (c.layout != hearth::cpu::WeightLayout::kPlain) {
          std::vector<uint8_t> plain(static_cast<size_t>(plain_row_bytes * m));
          FillWeights(c.dtype, plain.data(), plain_row_bytes * m, rng);
          hearth::cpu::RepackWeight(c.layout, c.dtype, plain.data(), plain_row_bytes, m, p);
        } else {
          FillWeights(c.dtype, p, mat_bytes, rng);
        }
        mats.push_back(p);
      }
      // Bandwidth again, just before: on a shared machine it moves.
      const double bw_now = MeasureBandwidth(nth, size_t{256} << 20, 3);
      const Result r = RunProducts(c, mats, m, k, 1, nth, seconds);
      const double gbs = mat_bytes / r.seconds_per_product / 1e9;
      // The compute ceiling of one thread: the first ~256 KB of rows of one
      // matrix over and over, from L2.
      const int64_t hot_rows = std::max<int64_t>(8, (256 << 10) / row_bytes / 8 * 8);
      const Result h = RunProducts(c, {mats[0]}, hot_rows, k, 1, 1, seconds / 2);
      const double hot_gbs = hot_rows * row_bytes / h.seconds_per_product / 1e9;
      std::printf("%-6s %6lld %6lld %10.2f %10.1f %9.2f %7.0f%% %10.0f%% %14.2f\n", c.name,
                  static_cast<long long>(m), static_cast<long long>(k), mat_bytes / 1e6,
                  r.seconds_per_product * 1e6, gbs, 100.0 * gbs / bw, 100.0 * gbs / bw_now,
                  hot_gbs);
      std::fflush(stdout);
      if (s[0] == 2048) {
        // A batch of 8 decode rows (the engine's), then prompt processing,
        // N = 64, on the same (cache-cold) set.
        const Result b8 = RunProducts(c, mats, m, k, 8, nth, seconds);
        std::printf("%-6s %6lld %6lld   batch N=8:   %8.1f us, %6.1f GFLOP/s\n", c.name,
                    static_cast<long long>(m), static_cast<long long>(k),
                    b8.seconds_per_product * 1e6, 2.0 * m * k * 8 / b8.seconds_per_product / 1e9);
        const Result p = RunProducts(c, mats, m, k, 64, nth, seconds);
        std::printf("%-6s %6lld %6lld   prompt N=64: %8.1f us, %6.1f GFLOP/s\n", c.name,
                    static_cast<long long>(m), static_cast<long long>(k),
                    p.seconds_per_product * 1e6, 2.0 * m * k * 64 / p.seconds_per_product / 1e9);
      }
      for (uint8_t* p : mats) std::free(p);
    }
  }
  return 0;
}
