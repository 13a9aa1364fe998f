// ops_dnnl.h — the CPU backend's one use of oneDNN: dense F32 matrix
// products for prompts (N >= 16 rows of activations), where a blocked GEMM
// beats the dot-product kernels, and BF16 x BF16 -> F32 products for
// mixed-precision training (HEARTH_MUL_MAT_BF16) on CPUs with AVX512-BF16 or
// AMX, where oneDNN runs them several times faster than F32. Primitives are created once per shape
// and kept in a small per-context cache, since the same shapes recur every step.
#ifndef HEARTH_BACKENDS_CPU_OPS_DNNL_H_
#define HEARTH_BACKENDS_CPU_OPS_DNNL_H_

#include <cstdint>
#include <memory>
#include <string>

namespace hearth::cpu {

class DnnlMatMul {
 public:
  // nullptr and *error when oneDNN cannot give a CPU engine.
  static std::unique_ptr<DnnlMatMul> Create(std::string* error);
  ~DnnlMatMul();

  // y[n, m] = sum_k x[n, k] * w[m, k] (all F32; leading dimensions ldx, ldw,
  // ldy in elements) on n_threads OpenMP threads. False and *error when
  // oneDNN refuses (never for well-formed strides). Running out of memory
  // throws std::bad_alloc, which graph_compute turns into
  // RESOURCE_EXHAUSTED: call these from the thread that runs the graph,
  // never from a pool task.
  bool Run(const float* x, int64_t ldx, const float* w, int64_t ldw, float* y, int64_t ldy,
           int64_t K, int64_t M, int64_t N, int n_threads, std::string* error);

  // The general form the backward ops need: y[n, m] (+)= sum_k x[n, k] *
  // w[k, m], where element (n, k) of x is at x[n * xs_n + k * xs_k], (k, m)
  // of w at w[k * ws_k + m * ws_m] (strides in elements, so either operand
  // may be read transposed) and y has row stride ldy. accumulate adds to y
  // instead of overwriting it.
  bool RunStrided(const float* x, int64_t xs_n, int64_t xs_k, const float* w, int64_t ws_k,
                  int64_t ws_m, float* y, int64_t ldy, int64_t K, int64_t M, int64_t N,
                  bool accumulate, int n_threads, std::string* error);
  // The same with x and w in bfloat16 (raw bits) and y in F32.
  bool RunStridedBf16(const uint16_t* x, int64_t xs_n, int64_t xs_k, const uint16_t* w,
                      int64_t ws_k, int64_t ws_m, float* y, int64_t ldy, int64_t K, int64_t M,
                      int64_t N, bool accumulate, int n_threads, std::string* error);

  // Whether oneDNN runs BF16 products on this CPU with native instructions
  // (AVX512-BF16 or AMX); otherwise it would emulate them, slower than F32,
  // and the ops keep F32.
  bool bf16_fast() const;

  size_t cached_primitives() const;

 private:
  struct State;
  explicit DnnlMatMul(std::unique_ptr<State> state);
  bool Execute(bool bf16, const void* x, int64_t xs_n, int64_t xs_k, const void* w, int64_t ws_k,
               int64_t ws_m, float* y, int64_t ldy, int64_t K, int64_t M, int64_t N,
               bool accumulate, int n_threads, std::string* error);
  std::unique_ptr<State> state_;
};

}  // namespace hearth::cpu

#endif  // HEARTH_BACKENDS_CPU_OPS_DNNL_H_
