// flops.cc — the fused multiply-add throughput probe of flops.h.
#include "flops.h"

#include "run_together.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HEARTH_FLOPS_X86 1
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <thread>
#include <vector>

namespace hearth::cli {
namespace {

// Each loop keeps 12 accumulators in registers: 12 independent chains hide
// the 4-5 cycle latency of an FMA on two FMA ports (8-10 in flight needed).
constexpr int kAccumulators = 12;
// Iterations between clock reads: 12 x 4096 vector FMAs, some 10 µs.
constexpr int64_t kChunk = 4096;

// Keeps the sums alive so the compiler cannot drop the arithmetic.
std::atomic<uint32_t> g_sink{0};
// Read through volatile so the compiler cannot fold the loop away.
volatile float g_mul = 0.9999f, g_add = 1e-4f;

enum class Level { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

// acc = acc * m + a per lane converges to a / (1 - m), so nothing overflows
// or goes denormal however long it runs.
#ifdef HEARTH_FLOPS_X86
__attribute__((target("avx512f"))) float LoopAvx512(int64_t iters, float m, float a) {
  const __m512 vm = _mm512_set1_ps(m), va = _mm512_set1_ps(a);
  __m512 c[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i) c[i] = _mm512_set1_ps(a * float(i));
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < kAccumulators; ++i) c[i] = _mm512_fmadd_ps(c[i], vm, va);
  }
  __m512 s = c[0];
  for (int i = 1; i < kAccumulators; ++i) s = _mm512_add_ps(s, c[i]);
  // Not _mm512_reduce_add_ps: GCC 12 warns (-Wuninitialized) inside it.
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, s);
  float sum = 0;
  for (float v : lanes) sum += v;
  return sum;
}

__attribute__((target("avx2,fma"))) float LoopAvx2(int64_t iters, float m, float a) {
  const __m256 vm = _mm256_set1_ps(m), va = _mm256_set1_ps(a);
  __m256 c[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i) c[i] = _mm256_set1_ps(a * float(i));
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < kAccumulators; ++i) c[i] = _mm256_fmadd_ps(c[i], vm, va);
  }
  __m256 s = c[0];
  for (int i = 1; i < kAccumulators; ++i) s = _mm256_add_ps(s, c[i]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  float sum = 0;
  for (float v : lanes) sum += v;
  return sum;
}

// The baseline x86-64 ISA has no FMA: a multiply and an add, 2 FLOPs too.
float LoopBase(int64_t iters, float m, float a) {
  const __m128 vm = _mm_set1_ps(m), va = _mm_set1_ps(a);
  __m128 c[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i) c[i] = _mm_set1_ps(a * float(i));
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < kAccumulators; ++i) c[i] = _mm_add_ps(_mm_mul_ps(c[i], vm), va);
  }
  __m128 s = c[0];
  for (int i = 1; i < kAccumulators; ++i) s = _mm_add_ps(s, c[i]);
  alignas(16) float lanes[4];
  _mm_store_ps(lanes, s);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}
constexpr int kBaseLanes = 4;
#else
// Elsewhere plain floats; the compiler may contract or vectorize them.
float LoopBase(int64_t iters, float m, float a) {
  float c[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i) c[i] = a * float(i);
  for (int64_t it = 0; it < iters; ++it) {
    for (int i = 0; i < kAccumulators; ++i) c[i] = c[i] * m + a;
  }
  float sum = 0;
  for (float v : c) sum += v;
  return sum;
}
constexpr int kBaseLanes = 1;
#endif

Level BestLevel() {
#ifdef HEARTH_FLOPS_X86
  __builtin_cpu_init();
  // The CPU plugin's AVX-512 tier needs F, BW, VL and VNNI; the probe asks
  // the same, so the peak is measured on the units the kernels use.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni")) {
    return Level::kAvx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Level::kAvx2;
#endif
  return Level::kScalar;
}

// The CPU plugin's rule (backends/cpu IsaFromEnvValue): HEARTH_CPU_ISA
// "scalar", "avx2" or "avx512" can lower the level, never raise it.
Level ActiveLevel() {
  const Level best = BestLevel();
  const char* v = std::getenv("HEARTH_CPU_ISA");
  if (v == nullptr) return best;
  Level want;
  if (std::strcmp(v, "scalar") == 0) {
    want = Level::kScalar;
  } else if (std::strcmp(v, "avx2") == 0) {
    want = Level::kAvx2;
  } else if (std::strcmp(v, "avx512") == 0) {
    want = Level::kAvx512;
  } else {
    return best;
  }
  return std::min(want, best);
}

using LoopFn = float (*)(int64_t, float, float);

struct Kernel {
  LoopFn fn;
  int lanes;
  const char* name;
};

Kernel KernelFor(Level level) {
  switch (level) {
#ifdef HEARTH_FLOPS_X86
    case Level::kAvx512:
      return {LoopAvx512, 16, "avx512f"};
    case Level::kAvx2:
      return {LoopAvx2, 8, "avx2+fma"};
    case Level::kScalar:
      return {LoopBase, kBaseLanes, "sse2 mul+add"};
#else
    default:
      return {LoopBase, kBaseLanes, "scalar"};
#endif
  }
  return {LoopBase, kBaseLanes, "scalar"};
}

}  // namespace

std::string PeakFlopsIsa() { return KernelFor(ActiveLevel()).name; }

bool MeasurePeakFlops(int threads, int passes, double seconds_per_pass, FlopsResult* out,
                      std::string* error) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  passes = std::max(passes, 1);
  const Kernel k = KernelFor(ActiveLevel());
  const float m = g_mul, a = g_add;
  std::vector<int64_t> chunks(static_cast<size_t>(threads));
  // Each thread loops until `secs` have passed since it started; FLOPs are
  // counted over the wall time from the common start to the last finish.
  auto pass = [&](double secs) {
    return RunTogether(
        threads, "FLOP/s",
        [&](int t) {
          const auto begin = std::chrono::steady_clock::now();
          const auto until = begin + std::chrono::duration<double>(secs);
          uint32_t bits = 0;
          int64_t n = 0;
          do {
            const float s = k.fn(kChunk, m, a);
            uint32_t b;
            std::memcpy(&b, &s, sizeof(b));
            bits ^= b;
            ++n;
          } while (std::chrono::steady_clock::now() < until);
          chunks[t] = n;
          g_sink.fetch_xor(bits, std::memory_order_relaxed);
        },
        error);
  };
  // Warm-up: wakes the cores and lets the vector units reach their clocks.
  if (pass(0.05) < 0) return false;
  const double flops_per_chunk = double(kChunk) * kAccumulators * k.lanes * 2.0;
  double best = 0;
  for (int p = 0; p < passes; ++p) {
    const double secs = pass(seconds_per_pass);
    if (secs < 0) return false;
    int64_t total = 0;
    for (int64_t n : chunks) total += n;
    if (secs > 0) best = std::max(best, double(total) * flops_per_chunk / secs);
  }
  out->flops_per_second = best;
  out->isa = k.name;
  out->threads = threads;
  out->passes = passes;
  return true;
}

}  // namespace hearth::cli
