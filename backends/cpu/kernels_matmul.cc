// kernels_matmul.cc — the ISA-neutral half of the matrix products: argument
// checks, scratch sizing, how (ith, nth) split the two phases, the double
// precision reference, and which ISA runs.
//
// Work split of phase 2: y is cut into jobs of (a block of up to 64 rows of
// w) x (a block of up to 64 rows of x); jobs are numbered w-block-major and
// thread ith takes a contiguous run of them, so each thread streams its own
// rows of w once from memory (decode) and reuses them from cache across the
// rows of x (prompts). Inside a job, register tiles of max_rw w rows by
// max_rx x rows sweep the w block for each group of x rows.
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "backends/cpu/kernels.h"
#include "backends/cpu/quant_blocks.h"
#include "backends/cpu/quant_dispatch.h"
#include "hearth/hearth_plugin.h"

namespace hearth::cpu {
namespace {

std::atomic<int> g_forced_isa{-1};

int64_t XBlockElems(XFormat f) { return f == XFormat::kQ8Block256 ? 256 : 32; }
int64_t XBlockBytes(XFormat f) {
  return f == XFormat::kQ8Block256 ? sizeof(XBlock256) : sizeof(XBlock32);
}

// Bytes of one row of x in scratch.
int64_t XRowBytes(XFormat f, int64_t K) { return K / XBlockElems(f) * XBlockBytes(f); }

TileKernel KernelFor(uint32_t w_dtype) {
  switch (ActiveIsa()) {
    case Isa::kAvx512:
      return Avx512TileKernel(w_dtype);
    case Isa::kAvx2:
      return Avx2TileKernel(w_dtype);
    case Isa::kScalar:
      break;
  }
  return ScalarTileKernel(w_dtype);
}

// Splits [0, total) into nth near-equal contiguous parts; part ith.
void Share(int64_t total, int ith, int nth, int64_t* begin, int64_t* end) {
  *begin = total * ith / nth;
  *end = total * (ith + 1) / nth;
}

bool ThreadArgsOk(int ith, int nth) { return nth >= 1 && ith >= 0 && ith < nth; }

// AVX2, FMA and F16C in the CPU, and YMM state enabled by the OS. cpuid by
// hand: clang's __builtin_cpu_supports does not know "f16c".
bool DetectAvx2FmaF16c() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return false;
  const bool fma = ecx & (1u << 12), osxsave = ecx & (1u << 27), avx = ecx & (1u << 28);
  const bool f16c = ecx & (1u << 29);
  if (!(fma && osxsave && avx && f16c)) return false;
  unsigned xcr0_lo, xcr0_hi;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & 0x6u) != 0x6u) return false;  // XMM and YMM state
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  return ebx & (1u << 5);
#else
  return false;
#endif
}

// AVX-512 F, BW, VL and VNNI in the CPU, and opmask, ZMM0-15 upper halves and
// ZMM16-31 state enabled by the OS (XCR0 bits 5-7), besides XMM and YMM.
bool DetectAvx512Vnni() {
#if defined(__x86_64__) || defined(__i386__)
  if (!CpuHasAvx2()) return false;  // also checks OSXSAVE, so xgetbv is there
  unsigned xcr0_lo, xcr0_hi;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & 0xe6u) != 0xe6u) return false;
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool f = ebx & (1u << 16), bw = ebx & (1u << 30), vl = ebx & (1u << 31);
  const bool vnni = ecx & (1u << 11);
  return f && bw && vl && vnni;
#else
  return false;
#endif
}

// The level HEARTH_CPU_ISA leaves the kernels, read once.
Isa EnvIsa() {
  static const Isa isa = IsaFromEnvValue(std::getenv("HEARTH_CPU_ISA"), BestIsa());
  return isa;
}

}  // namespace

bool CpuHasAvx2() {
  static const bool has = DetectAvx2FmaF16c();
  return has;
}

bool CpuHasAvx512() {
  static const bool has = DetectAvx512Vnni();
  return has;
}

Isa BestIsa() {
  if (CpuHasAvx512()) return Isa::kAvx512;
  return CpuHasAvx2() ? Isa::kAvx2 : Isa::kScalar;
}

Isa IsaFromEnvValue(const char* value, Isa best) {
  if (value == nullptr) return best;
  Isa want;
  if (std::strcmp(value, "scalar") == 0) {
    want = Isa::kScalar;
  } else if (std::strcmp(value, "avx2") == 0) {
    want = Isa::kAvx2;
  } else if (std::strcmp(value, "avx512") == 0) {
    want = Isa::kAvx512;
  } else {
    return best;
  }
  return want < best ? want : best;
}

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kScalar:
      break;
  }
  return "scalar";
}

Isa ActiveIsa() {
  const int forced = g_forced_isa.load(std::memory_order_relaxed);
  if (forced < 0) return EnvIsa();
  const Isa want = static_cast<Isa>(forced), best = BestIsa();
  return want < best ? want : best;
}

void ForceIsaForTesting(Isa isa) {
  g_forced_isa.store(static_cast<int>(isa), std::memory_order_relaxed);
}
void ClearForcedIsaForTesting() { g_forced_isa.store(-1, std::memory_order_relaxed); }

const char* KernelIsa() { return IsaName(ActiveIsa()); }

uint32_t KernelSimdWidth() {
  switch (ActiveIsa()) {
    case Isa::kAvx512:
      return 16;
    case Isa::kAvx2:
      return 8;
    case Isa::kScalar:
      break;
  }
  return 1;
}

XFormat XFormatFor(uint32_t w_dtype) {
  switch (w_dtype) {
    case HEARTH_DTYPE_Q8_0:
    case HEARTH_DTYPE_Q4_0:
    case HEARTH_DTYPE_Q5_0:
    case HEARTH_DTYPE_Q4_1:
      return XFormat::kQ8Block32;
    case HEARTH_DTYPE_Q4_K:
    case HEARTH_DTYPE_Q6_K:
      return XFormat::kQ8Block256;
    default:
      return XFormat::kF32;
  }
}

std::string MatMulCheck(const MatMulArgs& a) {
  if (!KernelSupportsDtype(a.w_dtype)) {
    return "weight dtype " + std::to_string(a.w_dtype) + " has no CPU matmul kernel";
  }
  if (a.K < 0 || a.M < 0 || a.N < 0) {
    return "negative shape K = " + std::to_string(a.K) + ", M = " + std::to_string(a.M) +
           ", N = " + std::to_string(a.N);
  }
  const int64_t be = hearth_dtype_block_elems(a.w_dtype);
  if (a.K % be != 0) {
    return "K = " + std::to_string(a.K) + " is not a multiple of the " + DtypeName(a.w_dtype) +
           " block size (" + std::to_string(be) + ")";
  }
  const int64_t row_bytes = a.K / be * hearth_dtype_block_bytes(a.w_dtype);
  if (a.w_layout != WeightLayout::kPlain) {
    const uint32_t want = X8Dtype(a.w_layout);
    if (want == 0) return "unknown weight layout " + std::to_string(static_cast<int>(a.w_layout));
    const int64_t layout_row_bytes = LayoutRowBytes(a.w_layout, want, a.K);
    if (a.w_dtype != want || a.w_row_bytes != layout_row_bytes) {
      return std::string("weights repacked by 8 rows must be ") + DtypeName(want) +
             " with rows of exactly " + std::to_string(layout_row_bytes) + " bytes (got " +
             DtypeName(a.w_dtype) + ", " + std::to_string(a.w_row_bytes) + ")";
    }
  }
  if (a.M == 0 || a.N == 0) return "";
  if (a.M > 1 && a.w_row_bytes < row_bytes) {
    return "weight row stride " + std::to_string(a.w_row_bytes) + " bytes is less than a row of " +
           std::to_string(a.K) + " " + DtypeName(a.w_dtype) + " elements (" +
           std::to_string(row_bytes) + " bytes)";
  }
  if (a.N > 1 && a.x_row_stride < a.K) {
    return "x row stride " + std::to_string(a.x_row_stride) +
           " is less than K = " + std::to_string(a.K);
  }
  if (a.N > 1 && a.y_row_stride < a.M) {
    return "y row stride " + std::to_string(a.y_row_stride) +
           " is less than M = " + std::to_string(a.M);
  }
  if (a.y == nullptr || (a.K > 0 && (a.w == nullptr || a.x == nullptr))) {
    return "null weight, x or y pointer";
  }
  return "";
}

size_t MatMulScratchBytes(uint32_t w_dtype, int64_t K, int64_t N) {
  if (!KernelSupportsDtype(w_dtype) || K <= 0 || N <= 0) return 0;
  const XFormat f = XFormatFor(w_dtype);
  if (f == XFormat::kF32 || K % XBlockElems(f) != 0) return 0;
  return static_cast<size_t>(N) * static_cast<size_t>(XRowBytes(f, K));
}

void MatMulPrepare(const MatMulArgs& a, void* scratch, int ith, int nth) {
  const XFormat f = XFormatFor(a.w_dtype);
  if (f == XFormat::kF32 || !ThreadArgsOk(ith, nth) || !MatMulCheck(a).empty()) return;
  if (a.M == 0 || a.N == 0 || a.K == 0 || scratch == nullptr) return;
  // Blocks of all rows are one range so that a single row (decode) is still
  // shared by every thread.
  const int64_t nb = a.K / XBlockElems(f);
  const int64_t row_bytes = XRowBytes(f, a.K);
  int64_t begin, end;
  Share(a.N * nb, ith, nth, &begin, &end);
  // AVX-512 prepares x with the AVX2 quantizer: the scratch bytes are the
  // same on every ISA, and phase 1 is a small part of a product.
  const bool avx2 = ActiveIsa() >= Isa::kAvx2;
  uint8_t* base = static_cast<uint8_t*>(scratch);
  for (int64_t i = begin; i < end;) {
    const int64_t n = i / nb, b0 = i % nb;
    const int64_t b1 = (end - n * nb) < nb ? end - n * nb : nb;
    const float* x = a.x + n * a.x_row_stride;
    uint8_t* dst = base + n * row_bytes;
    if (avx2) {
      Avx2QuantizeX(f, x, b0, b1, dst);
    } else {
      ScalarQuantizeX(f, x, b0, b1, dst);
    }
    i = n * nb + b1;
  }
}

void MatMulCompute(const MatMulArgs& a, const void* scratch, int ith, int nth) {
  if (!ThreadArgsOk(ith, nth) || !MatMulCheck(a).empty() || a.M == 0 || a.N == 0) return;
  if (a.K == 0) {
    int64_t begin, end;
    Share(a.N, ith, nth, &begin, &end);
    for (int64_t n = begin; n < end; ++n) {
      for (int64_t m = 0; m < a.M; ++m) a.y[n * a.y_row_stride + m] = 0.0f;
    }
    return;
  }
  const XFormat f = XFormatFor(a.w_dtype);
  if (f != XFormat::kF32 && scratch == nullptr) return;
  TileKernel tk = KernelFor(a.w_dtype);
  TileFn tile_fn = a.N == 1 && tk.decode_fn != nullptr ? tk.decode_fn : tk.fn;
  TileFn job_fn = tk.job_fn;
  int64_t rw = a.N == 1 ? tk.decode_rw : tk.max_rw;
  const int64_t rx = tk.max_rx;
  if (a.w_layout != WeightLayout::kPlain) {
    // Groups of 8 rows: tiles of one group for decode, jobs of whole groups.
    if (tk.x8_decode_fn == nullptr || tk.x8_job_fn == nullptr) tk = ScalarTileKernel(a.w_dtype);
    tile_fn = tk.x8_decode_fn;
    job_fn = tk.x8_job_fn;
    rw = kX8Rows;
    if (tile_fn == nullptr || job_fn == nullptr) return;
  }

  // Job geometry (see the file comment). Rows of x per job: at most 64, a
  // multiple of the register tile.
  const int64_t n_per_job = a.N <= 64 ? a.N : 64 / rx * rx;
  const int64_t n_jobs_n = (a.N + n_per_job - 1) / n_per_job;
  const int64_t m_tiles = (a.M + rw - 1) / rw;
  // Enough w blocks for 4 jobs per thread (load balance), each at most
  // 64 rows so that it stays in L2 while it is reused.
  const int64_t max_tiles_per_block = (64 + rw - 1) / rw;
  int64_t m_blocks = (4 * nth + n_jobs_n - 1) / n_jobs_n;
  if (m_blocks > m_tiles) m_blocks = m_tiles;
  const int64_t min_blocks = (m_tiles + max_tiles_per_block - 1) / max_tiles_per_block;
  if (m_blocks < min_blocks) m_blocks = min_blocks;
  const int64_t tiles_per_block = (m_tiles + m_blocks - 1) / m_blocks;
  m_blocks = (m_tiles + tiles_per_block - 1) / tiles_per_block;
  const int64_t m_per_job = tiles_per_block * rw;

  TileArgs t;
  t.w_row_bytes = a.w_row_bytes;
  t.y_row_stride = a.y_row_stride;
  const uint8_t* x_base;
  if (f == XFormat::kF32) {
    x_base = reinterpret_cast<const uint8_t*>(a.x);
    t.x_row_bytes = a.x_row_stride * static_cast<int64_t>(sizeof(float));
    t.k_units = a.K;
  } else {
    x_base = static_cast<const uint8_t*>(scratch);
    t.x_row_bytes = XRowBytes(f, a.K);
    t.k_units = a.K / XBlockElems(f);
  }

  int64_t begin, end;
  Share(m_blocks * n_jobs_n, ith, nth, &begin, &end);
  for (int64_t job = begin; job < end; ++job) {
    const int64_t m_begin = job / n_jobs_n * m_per_job;
    const int64_t m_end = m_begin + m_per_job < a.M ? m_begin + m_per_job : a.M;
    const int64_t n_begin = job % n_jobs_n * n_per_job;
    const int64_t n_end = n_begin + n_per_job < a.N ? n_begin + n_per_job : a.N;
    if (a.N > 1 && job_fn != nullptr) {
      t.rw = static_cast<int>(m_end - m_begin);
      t.rx = static_cast<int>(n_end - n_begin);
      t.w = a.w + m_begin * a.w_row_bytes;
      t.x = x_base + n_begin * t.x_row_bytes;
      t.y = a.y + n_begin * a.y_row_stride + m_begin;
      job_fn(t);
      continue;
    }
    for (int64_t n0 = n_begin; n0 < n_end; n0 += rx) {
      t.rx = static_cast<int>(n_end - n0 < rx ? n_end - n0 : rx);
      t.x = x_base + n0 * t.x_row_bytes;
      for (int64_t m0 = m_begin; m0 < m_end; m0 += rw) {
        t.rw = static_cast<int>(m_end - m0 < rw ? m_end - m0 : rw);
        t.w = a.w + m0 * a.w_row_bytes;
        t.y = a.y + n0 * a.y_row_stride + m0;
        tile_fn(t);
      }
    }
  }
}

void MatMulRef(const MatMulArgs& a) {
  if (!MatMulCheck(a).empty() || a.M == 0 || a.N == 0) return;
  std::vector<float> w(static_cast<size_t>(a.K));
  for (int64_t m = 0; m < a.M; ++m) {
    WeightRowRef(a.w_dtype, a.w_layout, a.w, a.w_row_bytes, m, w.data(), a.K);
    for (int64_t n = 0; n < a.N; ++n) {
      const float* x = a.x + n * a.x_row_stride;
      double acc = 0.0;
      for (int64_t k = 0; k < a.K; ++k) acc += static_cast<double>(w[k]) * x[k];
      a.y[n * a.y_row_stride + m] = static_cast<float>(acc);
    }
  }
}

}  // namespace hearth::cpu
