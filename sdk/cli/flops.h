// flops.h — the machine's peak fp32 multiply-add throughput, measured
// in-process so `hearth bench` can say what fraction of it prompt processing
// reaches (the counterpart of bandwidth.h for the compute-bound test).
//
// Every thread runs a register-resident loop of independent fused
// multiply-adds on the widest vectors the CPU has (lowered by HEARTH_CPU_ISA
// the way the CPU plugin lowers its kernels) for a fixed time; the best of a
// few passes counts.
#ifndef HEARTH_SDK_CLI_FLOPS_H_
#define HEARTH_SDK_CLI_FLOPS_H_

#include <string>

namespace hearth::cli {

struct FlopsResult {
  double flops_per_second = 0;  // best pass; a fused multiply-add is 2 FLOPs
  std::string isa;              // e.g. "avx2+fma": the loop that ran
  int threads = 0;
  int passes = 0;
};

// The loop MeasurePeakFlops runs here: "avx512f", "avx2+fma", "sse2 mul+add"
// (x86 without FMA, or HEARTH_CPU_ISA=scalar) or "scalar" (elsewhere).
std::string PeakFlopsIsa();

// `threads` <= 0 means one per hardware thread; each pass runs for
// `seconds_per_pass` after one short warm-up. False with `error` set when a
// thread cannot start.
bool MeasurePeakFlops(int threads, int passes, double seconds_per_pass, FlopsResult* out,
                      std::string* error);

}  // namespace hearth::cli

#endif  // HEARTH_SDK_CLI_FLOPS_H_
