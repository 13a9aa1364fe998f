// kernels_test.cc — the CPU kernels against independent references:
// dequantization bit-exact against fixtures made by the gguf Python package
// (scripts/make_dequant_fixtures.py) and SIMD against scalar; matrix products
// against MatMulRef (dequantize, accumulate in double) on both ISAs, many
// shapes and thread counts, with poisoned outputs.
//
// Tolerance of the quantized products against the reference: x is quantized
// per block to q = round(x / d_x), d_x = max|x_block| / 127, so each element
// is off by at most d_x / 2 (+ float rounding of d_x and x/d_x, < 1e-3 of
// that). Hence, per output,
//   |y - y_ref| <= 0.5005 * sum_k |w_k| * d_x(k) + 1e-4 * sum_k |w_k x_k|,
// the second term covering float rounding of the block scales and of the
// per-block float accumulation. Float weights: |y - y_ref| <= 1e-5 *
// sum_k |w_k x_k| (K <= 768 terms accumulated 8 lanes wide in float).
#include "backends/cpu/kernels.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/quant_dispatch.h"
#include "hearth/hearth_plugin.h"

namespace hearth::cpu {
namespace {

struct Format {
  uint32_t dtype;
  const char* name;  // fixture file stem
};

const Format kFormats[] = {
    {HEARTH_DTYPE_F32, "f32"},   {HEARTH_DTYPE_F16, "f16"},   {HEARTH_DTYPE_BF16, "bf16"},
    {HEARTH_DTYPE_Q8_0, "q8_0"}, {HEARTH_DTYPE_Q4_0, "q4_0"}, {HEARTH_DTYPE_Q5_0, "q5_0"},
    {HEARTH_DTYPE_Q4_K, "q4_k"}, {HEARTH_DTYPE_Q6_K, "q6_k"}, {HEARTH_DTYPE_Q4_1, "q4_1"},
};

std::string FormatName(const testing::TestParamInfo<Format>& info) { return info.param.name; }

bool IsQuantized(uint32_t dtype) { return hearth_dtype_block_elems(dtype) > 1; }

int64_t RowBytes(uint32_t dtype, int64_t k) {
  return k / hearth_dtype_block_elems(dtype) * hearth_dtype_block_bytes(dtype);
}

uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

bool SameBitsOrBothNaN(float a, float b) {
  return FloatBits(a) == FloatBits(b) || (std::isnan(a) && std::isnan(b));
}

std::vector<uint8_t> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

// Pins an ISA for one scope.
class ScopedIsa {
 public:
  explicit ScopedIsa(Isa isa) { ForceIsaForTesting(isa); }
  ~ScopedIsa() { ClearForcedIsaForTesting(); }
};

// Every level this CPU runs (HEARTH_CPU_ISA does not narrow it: a pin
// overrides the variable), so each is compared with the reference.
std::vector<Isa> IsasToTest() {
  std::vector<Isa> isas = {Isa::kScalar};
  if (CpuHasAvx2()) isas.push_back(Isa::kAvx2);
  if (CpuHasAvx512()) isas.push_back(Isa::kAvx512);
  return isas;
}

// A random half with the given exponent range (biased), random sign and
// mantissa: finite, moderate scales for weights.
uint16_t RandomHalf(std::mt19937& rng, int exp_lo, int exp_hi) {
  const uint32_t exp = exp_lo + rng() % (exp_hi - exp_lo + 1);
  return static_cast<uint16_t>(((rng() & 1u) << 15) | (exp << 10) | (rng() & 0x3ffu));
}

void PutHalf(uint8_t* p, uint16_t h) { std::memcpy(p, &h, 2); }

// `rows` rows of K weights of `dtype`, each row_bytes apart: random bytes with
// moderate finite scales (quantized) or random values (floats).
std::vector<uint8_t> RandomWeights(uint32_t dtype, int64_t rows, int64_t k, int64_t row_bytes,
                                   std::mt19937& rng) {
  std::vector<uint8_t> w(static_cast<size_t>(rows * row_bytes + 64));
  for (auto& b : w) b = static_cast<uint8_t>(rng());
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t bb = hearth_dtype_block_bytes(dtype), be = hearth_dtype_block_elems(dtype);
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = w.data() + r * row_bytes;
    for (int64_t i = 0; i < k / be; ++i) {
      uint8_t* blk = row + i * bb;
      switch (dtype) {
        case HEARTH_DTYPE_F32: {
          const float v = normal(rng);
          std::memcpy(blk, &v, 4);
          break;
        }
        case HEARTH_DTYPE_F16:
          PutHalf(blk, RandomHalf(rng, 10, 16));
          break;
        case HEARTH_DTYPE_BF16: {
          const uint32_t bits = FloatBits(normal(rng));
          PutHalf(blk, static_cast<uint16_t>(bits >> 16));
          break;
        }
        case HEARTH_DTYPE_Q8_0:
        case HEARTH_DTYPE_Q4_0:
        case HEARTH_DTYPE_Q5_0:
          PutHalf(blk, RandomHalf(rng, 8, 12));
          break;
        case HEARTH_DTYPE_Q4_K:
        case HEARTH_DTYPE_Q4_1:  // d, and dmin or m
          PutHalf(blk, RandomHalf(rng, 8, 12));
          PutHalf(blk + 2, RandomHalf(rng, 8, 12));
          break;
        case HEARTH_DTYPE_Q6_K:
          PutHalf(blk + 208, RandomHalf(rng, 8, 12));
          break;
        default:
          break;
      }
    }
  }
  return w;
}

// ---------------------------------------------------------------- dequantize

class DequantTest : public testing::TestWithParam<Format> {};

TEST_P(DequantTest, MatchesGgufFixtureBitExactly) {
  const Format f = GetParam();
  const std::string base = std::string(HEARTH_TEST_DATA) + "/dequant/" + f.name;
  const std::vector<uint8_t> blocks = ReadFile(base + ".bin");
  const std::vector<uint8_t> expected_bytes = ReadFile(base + ".f32");
  ASSERT_FALSE(blocks.empty()) << base << ".bin is missing; see scripts/make_dequant_fixtures.py";
  ASSERT_EQ(expected_bytes.size() % 4, 0u);
  const int64_t n = static_cast<int64_t>(expected_bytes.size() / 4);
  ASSERT_GT(n, 0);
  ASSERT_EQ(static_cast<int64_t>(blocks.size()), RowBytes(f.dtype, n)) << f.name;
  std::vector<float> expected(n);
  std::memcpy(expected.data(), expected_bytes.data(), expected_bytes.size());

  std::vector<float> got(n, std::nanf(""));
  DequantizeRowRef(f.dtype, blocks.data(), got.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(FloatBits(got[i]), FloatBits(expected[i]))
        << f.name << " reference, element " << i << ": " << got[i] << " vs " << expected[i];
  }
  for (Isa isa : IsasToTest()) {
    ScopedIsa pin(isa);
    std::fill(got.begin(), got.end(), std::nanf(""));
    DequantizeRow(f.dtype, blocks.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(FloatBits(got[i]), FloatBits(expected[i]))
          << f.name << " isa " << static_cast<int>(isa) << ", element " << i << ": " << got[i]
          << " vs " << expected[i];
    }
  }
}

// Fully random bytes, scales included (NaN, infinity, subnormal halves): the
// SIMD path still equals the reference bit for bit (NaN payloads aside).
TEST_P(DequantTest, SimdMatchesReferenceOnRandomBytes) {
  const Format f = GetParam();
  if (!CpuHasAvx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(7 + f.dtype);
  const int64_t n = 256 * 40 + (IsQuantized(f.dtype) ? 0 : 5);  // odd tail for floats
  std::vector<uint8_t> src(static_cast<size_t>(RowBytes(f.dtype, n)));
  for (auto& b : src) b = static_cast<uint8_t>(rng());
  std::vector<float> ref(n + 1, 1.5f), simd(n + 1, 2.5f);
  DequantizeRowRef(f.dtype, src.data(), ref.data(), n);
  {
    ScopedIsa pin(Isa::kAvx2);
    DequantizeRow(f.dtype, src.data(), simd.data(), n);
  }
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_TRUE(SameBitsOrBothNaN(ref[i], simd[i]))
        << f.name << " element " << i << ": " << ref[i] << " vs " << simd[i];
  }
  EXPECT_EQ(ref[n], 1.5f) << "wrote past n";
  EXPECT_EQ(simd[n], 2.5f) << "wrote past n";
}

INSTANTIATE_TEST_SUITE_P(AllFormats, DequantTest, testing::ValuesIn(kFormats), FormatName);

TEST(DequantArgs, RejectedArgumentsWriteNothing) {
  std::vector<uint8_t> src(1024, 0x3c);
  std::vector<float> dst(64, 7.0f);
  DequantizeRow(99, src.data(), dst.data(), 32);                   // unknown dtype
  DequantizeRowRef(HEARTH_DTYPE_I32, src.data(), dst.data(), 32);  // no kernel for I32
  DequantizeRow(HEARTH_DTYPE_Q4_K, src.data(), dst.data(), 32);    // not whole blocks
  DequantizeRow(HEARTH_DTYPE_Q8_0, nullptr, dst.data(), 32);
  DequantizeRow(HEARTH_DTYPE_F32, src.data(), dst.data(), -8);
  for (float v : dst) EXPECT_EQ(v, 7.0f);
  EXPECT_FALSE(KernelSupportsDtype(HEARTH_DTYPE_I32));
  EXPECT_FALSE(KernelSupportsDtype(HEARTH_DTYPE_COUNT_));
  for (const Format& f : kFormats) EXPECT_TRUE(KernelSupportsDtype(f.dtype)) << f.name;
}

TEST(KernelIsaTest, NamesTheActivePath) {
  const std::string isa = KernelIsa();
  const Isa best = BestIsa();
  EXPECT_EQ(best, CpuHasAvx512() ? Isa::kAvx512 : CpuHasAvx2() ? Isa::kAvx2 : Isa::kScalar);
  EXPECT_TRUE(!CpuHasAvx512() || CpuHasAvx2());
  // Without HEARTH_CPU_ISA the best level; with it, what it asks for.
  EXPECT_EQ(isa, IsaName(IsaFromEnvValue(std::getenv("HEARTH_CPU_ISA"), best)));
  const uint32_t widths[] = {1, 8, 16};
  for (Isa level : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    ScopedIsa pin(level);
    // A level above the CPU's falls back to its best.
    const Isa got = level < best ? level : best;
    EXPECT_EQ(ActiveIsa(), got) << IsaName(level);
    EXPECT_STREQ(KernelIsa(), IsaName(got));
    EXPECT_EQ(KernelSimdWidth(), widths[static_cast<int>(got)]);
  }
}

TEST(KernelIsaTest, EnvironmentValueOnlyLowersTheLevel) {
  for (Isa best : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    SCOPED_TRACE(IsaName(best));
    EXPECT_EQ(IsaFromEnvValue(nullptr, best), best);
    EXPECT_EQ(IsaFromEnvValue("", best), best);
    EXPECT_EQ(IsaFromEnvValue("AVX2 ", best), best);  // unknown: ignored
    EXPECT_EQ(IsaFromEnvValue("amx", best), best);
    EXPECT_EQ(IsaFromEnvValue("scalar", best), Isa::kScalar);
    EXPECT_EQ(IsaFromEnvValue("avx2", best), best < Isa::kAvx2 ? best : Isa::kAvx2);
    EXPECT_EQ(IsaFromEnvValue("avx512", best), best);
  }
  EXPECT_STREQ(IsaName(Isa::kScalar), "scalar");
  EXPECT_STREQ(IsaName(Isa::kAvx2), "avx2");
  EXPECT_STREQ(IsaName(Isa::kAvx512), "avx512");
}

// HEARTH_CPU_ISA is read once per process: run NamesTheActivePath (which
// checks KernelIsa() against the variable) in a child with each value.
TEST(KernelIsaTest, EnvironmentVariableIsHonouredInAFreshProcess) {
  char exe[4096];
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (len <= 0) GTEST_SKIP() << "no /proc/self/exe";
  exe[len] = '\0';
  if (std::getenv("HEARTH_KERNELS_TEST_CHILD") != nullptr) GTEST_SKIP() << "already the child";
  for (const char* value : {"scalar", "avx2", "avx512", "bogus"}) {
    const std::string cmd = std::string("HEARTH_KERNELS_TEST_CHILD=1 HEARTH_CPU_ISA=") + value +
                            " '" + exe +
                            "' --gtest_filter=KernelIsaTest.NamesTheActivePath >/dev/null 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << "HEARTH_CPU_ISA=" << value;
  }
}

// ------------------------------------------------------------ matrix product

struct Problem {
  uint32_t dtype = 0;
  int64_t K = 0, M = 0, N = 0;
  int64_t w_row_bytes = 0, x_stride = 0, y_stride = 0;
  std::vector<uint8_t> w;
  std::vector<float> x;
  std::vector<float> wf;  // w dequantized by the reference, M x K
};

// Random weights and activations with padded strides; some x blocks are all
// zeros (d_x = 0) and some rows are 1000x larger.
Problem MakeProblem(uint32_t dtype, int64_t k, int64_t m, int64_t n, std::mt19937& rng) {
  Problem p;
  p.dtype = dtype;
  p.K = k;
  p.M = m;
  p.N = n;
  p.w_row_bytes = RowBytes(dtype, k) + (m % 2 ? hearth_dtype_block_bytes(dtype) : 0);
  p.x_stride = k + 3;
  p.y_stride = m + 5;
  p.w = RandomWeights(dtype, m, k, p.w_row_bytes, rng);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  p.x.assign(static_cast<size_t>(n * p.x_stride), std::nanf(""));  // padding stays NaN
  for (int64_t r = 0; r < n; ++r) {
    const float scale = r % 5 == 2 ? 1000.0f : 1.0f;
    for (int64_t i = 0; i < k; ++i) {
      p.x[r * p.x_stride + i] = (r % 3 == 1 && i < 32) ? 0.0f : scale * normal(rng);
    }
  }
  p.wf.resize(static_cast<size_t>(m * k));
  for (int64_t r = 0; r < m; ++r) {
    DequantizeRowRef(dtype, p.w.data() + r * p.w_row_bytes, p.wf.data() + r * k, k);
  }
  return p;
}

MatMulArgs ArgsFor(const Problem& p, float* y) {
  MatMulArgs a;
  a.w_dtype = p.dtype;
  a.w = p.w.data();
  a.w_row_bytes = p.w_row_bytes;
  a.x = p.x.data();
  a.x_row_stride = p.x_stride;
  a.y = y;
  a.y_row_stride = p.y_stride;
  a.K = p.K;
  a.M = p.M;
  a.N = p.N;
  return a;
}

// Both phases the way a thread pool runs them: phase 1 for every ith, then
// (after the barrier) phase 2 for every ith. y starts poisoned with NaN.
std::vector<float> RunKernel(const Problem& p, int nth,
                             std::vector<uint8_t>* scratch_out = nullptr) {
  std::vector<float> y(static_cast<size_t>(p.N * p.y_stride), std::nanf(""));
  const MatMulArgs a = ArgsFor(p, y.data());
  const size_t bytes = MatMulScratchBytes(p.dtype, p.K, p.N);
  std::vector<uint64_t> scratch(bytes / 8 + 1, 0xdeadbeefdeadbeefull);
  for (int ith = 0; ith < nth; ++ith) MatMulPrepare(a, scratch.data(), ith, nth);
  for (int ith = 0; ith < nth; ++ith) MatMulCompute(a, scratch.data(), ith, nth);
  if (scratch_out != nullptr) {
    const uint8_t* s = reinterpret_cast<const uint8_t*>(scratch.data());
    scratch_out->assign(s, s + bytes);
  }
  return y;
}

// Error bounds per output (see the file comment): `quant` is the activation
// quantization term, `sum_abs` is sum_k |w_k x_k|.
struct Bound {
  double quant = 0, sum_abs = 0;
};

Bound BoundFor(const Problem& p, int64_t n, int64_t m) {
  const float* x = p.x.data() + n * p.x_stride;
  const float* w = p.wf.data() + m * p.K;
  const int64_t xb = hearth_dtype_block_elems(p.dtype) == 256 ? 256 : 32;
  Bound b;
  for (int64_t k0 = 0; k0 < p.K; k0 += xb) {
    double amax = 0, wsum = 0;
    for (int64_t k = k0; k < k0 + xb && k < p.K; ++k) {
      amax = std::fmax(amax, std::fabs(x[k]));
      wsum += std::fabs(w[k]);
      b.sum_abs += std::fabs(static_cast<double>(w[k]) * x[k]);
    }
    b.quant += 0.5005 * wsum * amax / 127.0;
  }
  return b;
}

double Tolerance(uint32_t dtype, const Bound& b) {
  if (!IsQuantized(dtype)) return 1e-5 * b.sum_abs + 1e-30;
  return b.quant + 1e-4 * b.sum_abs + 1e-30;
}

std::vector<int64_t> KsFor(uint32_t dtype) {
  // 2304 = 9 super-blocks: more than one 8-block chunk of the AVX2 Q4_K panels.
  if (hearth_dtype_block_elems(dtype) == 256) return {256, 512, 768, 2304};
  // Odd and even block counts; 2144 = 67 blocks: more than one 64-block
  // chunk of the AVX2 prompt panels.
  if (IsQuantized(dtype)) return {32, 64, 96, 256, 512, 768, 2144};
  return {3, 32, 37, 64, 256, 512, 768};  // 3 and 37 exercise the non-SIMD tail
}

class MatMulTest : public testing::TestWithParam<Format> {};

TEST_P(MatMulTest, MatchesReferenceForAllShapesIsasAndThreadCounts) {
  const Format f = GetParam();
  std::mt19937 rng(1000 + f.dtype);
  for (int64_t k : KsFor(f.dtype)) {
    for (int64_t m : {1, 3, 64, 67}) {
      for (int64_t n : {1, 2, 7, 33}) {
        SCOPED_TRACE(std::string(f.name) + " K=" + std::to_string(k) + " M=" + std::to_string(m) +
                     " N=" + std::to_string(n));
        const Problem p = MakeProblem(f.dtype, k, m, n, rng);
        std::vector<float> ref(static_cast<size_t>(n * p.y_stride), std::nanf(""));
        MatMulRef(ArgsFor(p, ref.data()));
        std::vector<Bound> bounds(static_cast<size_t>(n * m));
        for (int64_t r = 0; r < n; ++r) {
          for (int64_t c = 0; c < m; ++c) bounds[r * m + c] = BoundFor(p, r, c);
        }
        std::vector<std::vector<float>> per_isa;
        for (Isa isa : IsasToTest()) {
          ScopedIsa pin(isa);
          std::vector<float> first;
          for (int nth : {1, 2, 3, 5}) {
            const std::vector<float> y = RunKernel(p, nth);
            for (int64_t r = 0; r < n; ++r) {
              for (int64_t c = 0; c < p.y_stride; ++c) {
                const float got = y[r * p.y_stride + c];
                if (c >= m) {
                  ASSERT_TRUE(std::isnan(got)) << "wrote into y's row padding at " << r << "," << c;
                  continue;
                }
                const double want = ref[r * p.y_stride + c];
                const double tol = Tolerance(f.dtype, bounds[r * m + c]);
                ASSERT_LE(std::fabs(got - want), tol)
                    << "isa " << IsaName(isa) << " nth " << nth << " y[" << r << "," << c
                    << "] = " << got << ", reference " << want;
              }
            }
            // Each output is summed in the same order whatever the split.
            if (first.empty()) {
              first = y;
            } else {
              for (size_t i = 0; i < y.size(); ++i) {
                ASSERT_TRUE(SameBitsOrBothNaN(y[i], first[i])) << "nth " << nth << " index " << i;
              }
            }
          }
          per_isa.push_back(first);
        }
        // Every ISA computes the same integer dot products on the same
        // scratch; only float summation order differs.
        for (size_t v = 1; v < per_isa.size() && IsQuantized(f.dtype); ++v) {
          for (int64_t r = 0; r < n; ++r) {
            for (int64_t c = 0; c < m; ++c) {
              const size_t i = r * p.y_stride + c;
              ASSERT_LE(std::fabs(per_isa[0][i] - per_isa[v][i]),
                        1e-4 * bounds[r * m + c].sum_abs + 1e-30)
                  << "scalar vs " << IsaName(IsasToTest()[v]) << " at " << r << "," << c;
            }
          }
        }
      }
    }
  }
}

TEST_P(MatMulTest, ScratchIsTheSameOnEveryIsa) {
  const Format f = GetParam();
  if (!IsQuantized(f.dtype)) {
    EXPECT_EQ(MatMulScratchBytes(f.dtype, 512, 7), 0u);
    return;
  }
  if (!CpuHasAvx2()) GTEST_SKIP() << "no AVX2 on this CPU";
  std::mt19937 rng(3);
  const Problem p = MakeProblem(f.dtype, 768, 5, 7, rng);
  std::vector<uint8_t> scalar, simd;
  {
    ScopedIsa pin(Isa::kScalar);
    RunKernel(p, 3, &scalar);
  }
  ASSERT_FALSE(scalar.empty());
  for (Isa isa : IsasToTest()) {
    ScopedIsa pin(isa);
    RunKernel(p, 2, &simd);
    EXPECT_TRUE(scalar == simd) << IsaName(isa);
  }
}

TEST_P(MatMulTest, NaNInXReachesItsRowOfY) {
  const Format f = GetParam();
  std::mt19937 rng(5);
  Problem p = MakeProblem(f.dtype, 512, 6, 3, rng);
  p.x[1 * p.x_stride + 300] = std::nanf("");
  for (Isa isa : IsasToTest()) {
    ScopedIsa pin(isa);
    const std::vector<float> y = RunKernel(p, 2);
    for (int64_t c = 0; c < p.M; ++c) {
      EXPECT_TRUE(std::isnan(y[1 * p.y_stride + c])) << "isa " << IsaName(isa) << " m " << c;
      EXPECT_FALSE(std::isnan(y[0 * p.y_stride + c]));
      EXPECT_FALSE(std::isnan(y[2 * p.y_stride + c]));
    }
  }
}

TEST_P(MatMulTest, EmptyShapes) {
  const Format f = GetParam();
  std::mt19937 rng(9);
  const Problem p = MakeProblem(f.dtype, 0, 3, 2, rng);  // K = 0: y = 0
  for (Isa isa : IsasToTest()) {
    ScopedIsa pin(isa);
    const std::vector<float> y = RunKernel(p, 3);
    for (int64_t r = 0; r < 2; ++r) {
      for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(y[r * p.y_stride + c], 0.0f);
    }
  }
  for (int64_t m : {0, 4}) {  // M = 0 or N = 0: nothing to write, nothing read
    std::vector<float> y(8, 5.0f);
    MatMulArgs a;
    a.w_dtype = f.dtype;
    a.y = y.data();
    a.K = hearth_dtype_block_elems(f.dtype) * 32;
    a.M = m;
    a.N = m == 0 ? 1 : 0;
    EXPECT_EQ(MatMulCheck(a), "");
    MatMulPrepare(a, nullptr, 0, 1);
    MatMulCompute(a, nullptr, 0, 1);
    MatMulRef(a);
    for (float v : y) EXPECT_EQ(v, 5.0f);
  }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, MatMulTest, testing::ValuesIn(kFormats), FormatName);

// Q4_0 and Q8_0 weights in weight_place's repacked layouts (kQ4_0x8,
// kQ8_0x8): rows read back equal the plain rows exactly, and every ISA and
// thread count matches the reference on the plain weights, views of fewer
// rows than the groups hold included; with AVX2 a prompt row equals the
// same row decoded alone.
class MatMulRepackedTest : public testing::TestWithParam<WeightLayout> {};

TEST_P(MatMulRepackedTest, MatchesThePlainWeights) {
  const WeightLayout layout = GetParam();
  const uint32_t dt = X8Dtype(layout);
  ASSERT_NE(dt, 0u);
  std::mt19937 rng(77);
  const std::vector<int64_t> ks = hearth_dtype_block_elems(dt) == 256
                                      ? std::vector<int64_t>{256, 512, 2304}
                                      : std::vector<int64_t>{32, 64, 96, 512, 2144};
  for (int64_t k : ks) {
    for (int64_t rows : {8, 16, 72}) {
      const Problem full = MakeProblem(dt, k, rows, 33, rng);
      ASSERT_EQ(full.w_row_bytes, RowBytes(dt, k));
      ASSERT_EQ(RepackLayoutFor(dt, k, rows, full.w_row_bytes), layout);
      ASSERT_EQ(RepackLayoutFor(dt, k, rows + 4, full.w_row_bytes), WeightLayout::kPlain);
      ASSERT_EQ(RepackLayoutFor(dt, k, rows, full.w_row_bytes + hearth_dtype_block_bytes(dt)),
                WeightLayout::kPlain);
      const int64_t packed_row_bytes = LayoutRowBytes(layout, dt, k);
      ASSERT_GE(packed_row_bytes, full.w_row_bytes);
      std::vector<uint8_t> packed(static_cast<size_t>(rows * packed_row_bytes), 0xee);
      RepackWeight(layout, dt, full.w.data(), full.w_row_bytes, rows, packed.data());
      ASSERT_NE(packed, full.w);
      std::vector<float> plain_row(static_cast<size_t>(k)), got(static_cast<size_t>(k));
      for (int64_t m = 0; m < rows; ++m) {
        DequantizeRowRef(dt, full.w.data() + m * full.w_row_bytes, plain_row.data(), k);
        WeightRowRef(dt, layout, packed.data(), packed_row_bytes, m, got.data(), k);
        ASSERT_EQ(got, plain_row) << "WeightRowRef row " << m << " K " << k;
        WeightRow(dt, layout, packed.data(), packed_row_bytes, m, got.data(), k);
        ASSERT_EQ(got, plain_row) << "WeightRow row " << m << " K " << k;
      }
      for (int64_t m : {rows, rows - 3}) {
        for (int64_t n : {1, 2, 7, 33}) {
          SCOPED_TRACE("K=" + std::to_string(k) + " rows=" + std::to_string(rows) +
                       " M=" + std::to_string(m) + " N=" + std::to_string(n));
          Problem p = full;
          p.M = m;
          p.N = n;
          std::vector<float> ref(static_cast<size_t>(n * p.y_stride), std::nanf(""));
          MatMulRef(ArgsFor(p, ref.data()));
          std::vector<float> ref_packed(ref.size(), std::nanf(""));
          MatMulArgs rp = ArgsFor(p, ref_packed.data());
          rp.w = packed.data();
          rp.w_layout = layout;
          rp.w_row_bytes = packed_row_bytes;
          ASSERT_EQ(MatMulCheck(rp), "");
          MatMulRef(rp);
          for (size_t i = 0; i < ref.size(); ++i)
            ASSERT_TRUE(SameBitsOrBothNaN(ref[i], ref_packed[i]));
          for (Isa isa : IsasToTest()) {
            ScopedIsa pin(isa);
            std::vector<float> first;
            for (int nth : {1, 2, 3, 5}) {
              std::vector<float> y(static_cast<size_t>(n * p.y_stride), std::nanf(""));
              MatMulArgs a = ArgsFor(p, y.data());
              a.w = packed.data();
              a.w_layout = layout;
              a.w_row_bytes = packed_row_bytes;
              std::vector<uint64_t> scratch(MatMulScratchBytes(dt, k, n) / 8 + 1);
              for (int ith = 0; ith < nth; ++ith) MatMulPrepare(a, scratch.data(), ith, nth);
              for (int ith = 0; ith < nth; ++ith) MatMulCompute(a, scratch.data(), ith, nth);
              for (int64_t r = 0; r < n; ++r) {
                for (int64_t c = 0; c < p.y_stride; ++c) {
                  const float v = y[r * p.y_stride + c];
                  if (c >= m) {
                    ASSERT_TRUE(std::isnan(v)) << "wrote y padding at " << r << "," << c;
                    continue;
                  }
                  const double want = ref[r * p.y_stride + c];
                  ASSERT_LE(std::fabs(v - want), Tolerance(dt, BoundFor(p, r, c)))
                      << IsaName(isa) << " nth " << nth << " y[" << r << "," << c << "] = " << v
                      << ", reference " << want;
                }
              }
              if (first.empty()) {
                first = y;
              } else {
                for (size_t i = 0; i < y.size(); ++i) {
                  ASSERT_TRUE(SameBitsOrBothNaN(y[i], first[i])) << "nth " << nth << " at " << i;
                }
              }
            }
            if (isa == Isa::kScalar || n == 1) continue;
            for (int64_t r = 0; r < n; r += 3) {  // row r of the prompt, decoded alone
              Problem one = p;
              one.N = 1;
              one.x.assign(p.x.begin() + r * p.x_stride, p.x.begin() + (r + 1) * p.x_stride);
              std::vector<float> y1(static_cast<size_t>(p.y_stride), std::nanf(""));
              MatMulArgs a = ArgsFor(one, y1.data());
              a.w = packed.data();
              a.w_layout = layout;
              a.w_row_bytes = packed_row_bytes;
              std::vector<uint64_t> scratch(MatMulScratchBytes(dt, k, 1) / 8 + 1);
              MatMulPrepare(a, scratch.data(), 0, 1);
              MatMulCompute(a, scratch.data(), 0, 1);
              for (int64_t c = 0; c < m; ++c) {
                ASSERT_TRUE(SameBitsOrBothNaN(y1[c], first[r * p.y_stride + c]))
                    << IsaName(isa) << " decode vs prompt row " << r << " col " << c;
              }
            }
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, MatMulRepackedTest,
                         testing::Values(WeightLayout::kQ4_0x8, WeightLayout::kQ8_0x8,
                                         WeightLayout::kQ4_Kx8, WeightLayout::kQ6_Kx8),
                         [](const testing::TestParamInfo<WeightLayout>& i) {
                           return std::string(DtypeName(X8Dtype(i.param))) + "x8";
                         });

TEST(MatMulRepackedArgsTest, RejectsARepackedLayoutItCannotRead) {
  MatMulArgs a;
  std::vector<uint8_t> w(8 * 18);
  std::vector<float> x(32, 1.0f), y(8, 5.0f);
  a.w_dtype = HEARTH_DTYPE_Q8_0;
  a.w_layout = WeightLayout::kQ4_0x8;
  a.w = w.data();
  a.w_row_bytes = 34;
  a.x = x.data();
  a.y = y.data();
  a.K = 32;
  a.M = 8;
  a.N = 1;
  EXPECT_NE(MatMulCheck(a).find("repacked"), std::string::npos) << MatMulCheck(a);
  a.w_dtype = HEARTH_DTYPE_Q4_0;
  a.w_row_bytes = 36;  // padded rows cannot be repacked
  EXPECT_NE(MatMulCheck(a).find("18"), std::string::npos) << MatMulCheck(a);
  a.w_row_bytes = 18;
  EXPECT_EQ(MatMulCheck(a), "");
}

TEST(MatMulArgsTest, RejectsBadArgumentsAndWritesNothing) {
  std::mt19937 rng(11);
  const Problem p = MakeProblem(HEARTH_DTYPE_Q4_K, 512, 4, 2, rng);
  std::vector<float> y(static_cast<size_t>(p.N * p.y_stride), 5.0f);
  const MatMulArgs good = ArgsFor(p, y.data());
  EXPECT_EQ(MatMulCheck(good), "");

  struct Case {
    MatMulArgs a;
    const char* expect;  // substring of the message
  };
  std::vector<Case> cases;
  MatMulArgs a = good;
  a.K = 100;
  cases.push_back({a, "K = 100 is not a multiple of the Q4_K block size (256)"});
  a = good;
  a.w_dtype = HEARTH_DTYPE_I32;
  cases.push_back({a, "weight dtype 3 has no CPU matmul kernel"});
  a = good;
  a.w_row_bytes = 100;
  cases.push_back({a, "weight row stride 100 bytes is less than a row of 512 Q4_K elements (288"});
  a = good;
  a.x_row_stride = 10;
  cases.push_back({a, "x row stride 10 is less than K = 512"});
  a = good;
  a.y_row_stride = 1;
  cases.push_back({a, "y row stride 1 is less than M = 4"});
  a = good;
  a.N = -1;
  cases.push_back({a, "negative shape"});
  a = good;
  a.x = nullptr;
  cases.push_back({a, "null"});
  for (const Case& c : cases) {
    const std::string why = MatMulCheck(c.a);
    EXPECT_NE(why.find(c.expect), std::string::npos) << "got: " << why;
    std::vector<uint64_t> scratch(MatMulScratchBytes(good.w_dtype, good.K, good.N) / 8 + 1);
    MatMulPrepare(c.a, scratch.data(), 0, 1);
    MatMulCompute(c.a, scratch.data(), 0, 1);
    MatMulRef(c.a);
  }
  // A thread index outside [0, nth) does nothing either.
  std::vector<uint64_t> scratch(MatMulScratchBytes(good.w_dtype, good.K, good.N) / 8 + 1);
  MatMulPrepare(good, scratch.data(), 2, 2);
  MatMulCompute(good, scratch.data(), -1, 2);
  MatMulCompute(good, scratch.data(), 0, 0);
  for (float v : y) EXPECT_EQ(v, 5.0f);
}

}  // namespace
}  // namespace hearth::cpu
