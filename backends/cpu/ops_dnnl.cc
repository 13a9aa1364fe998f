// ops_dnnl.cc — oneDNN matmul primitives for the CPU backend's dense F32
// products, cached by shape. oneDNN 2.6 here runs on OpenMP, so the thread
// count is set on the calling thread before each creation and execution.
#include "backends/cpu/ops_dnnl.h"

#include <array>
#include <new>
#include <unordered_map>

#include "dnnl.hpp"

#if defined(HEARTH_CPU_HAVE_OMP)
#include <omp.h>
#endif

namespace hearth::cpu {
namespace {

// Prompt lengths vary, so shapes do too; a cache that only grows would keep
// every length ever seen. Past this many entries it starts over.
constexpr size_t kMaxCachedPrimitives = 1024;

using Key = std::array<int64_t, 10>;  // K, M, N, x strides, w strides, ldy, accumulate, bf16

struct KeyHash {
  size_t operator()(const Key& k) const {
    size_t h = 1469598103934665603ull;
    for (int64_t v : k) h = (h ^ static_cast<size_t>(v)) * 1099511628211ull;
    return h;
  }
};

void SetThreads(int n_threads) {
#if defined(HEARTH_CPU_HAVE_OMP)
  omp_set_num_threads(n_threads > 0 ? n_threads : 1);
#else
  (void)n_threads;
#endif
}

}  // namespace

struct DnnlMatMul::State {
  dnnl::engine engine;
  dnnl::stream stream;
  bool bf16_fast = false;
  std::unordered_map<Key, dnnl::matmul, KeyHash> cache;
};

DnnlMatMul::DnnlMatMul(std::unique_ptr<State> state) : state_(std::move(state)) {}
DnnlMatMul::~DnnlMatMul() = default;

std::unique_ptr<DnnlMatMul> DnnlMatMul::Create(std::string* error) {
  try {
    auto state = std::make_unique<State>();
    // oneDNN's own primitive cache (process-wide) is off: this class keeps
    // its primitives itself, and oneDNN 2.6 leaves that cache with a freed
    // entry when an allocation fails while a primitive is being created (a
    // use after free at the next creation). docs/reliability.md, "Out of
    // memory".
    dnnl::set_primitive_cache_capacity(0);
    state->engine = dnnl::engine(dnnl::engine::kind::cpu, 0);
    state->stream = dnnl::stream(state->engine);
    // ISA values are bit sets: every ISA with native BF16 includes these bits.
    const unsigned bf16_bits = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
    state->bf16_fast =
        (static_cast<unsigned>(dnnl::get_effective_cpu_isa()) & bf16_bits) == bf16_bits;
    return std::unique_ptr<DnnlMatMul>(new DnnlMatMul(std::move(state)));
  } catch (const dnnl::error& e) {
    *error = std::string("oneDNN: cannot create a CPU engine: ") + e.what();
  } catch (const std::exception& e) {
    *error = std::string("oneDNN: ") + e.what();
  }
  return nullptr;
}

size_t DnnlMatMul::cached_primitives() const { return state_->cache.size(); }

bool DnnlMatMul::bf16_fast() const { return state_->bf16_fast; }

bool DnnlMatMul::Run(const float* x, int64_t ldx, const float* w, int64_t ldw, float* y,
                     int64_t ldy, int64_t K, int64_t M, int64_t N, int n_threads,
                     std::string* error) {
  // Row-major w[M, K] is the column-major K x M weights matrix oneDNN wants.
  return RunStrided(x, ldx, 1, w, 1, ldw, y, ldy, K, M, N, false, n_threads, error);
}

bool DnnlMatMul::RunStrided(const float* x, int64_t xs_n, int64_t xs_k, const float* w,
                            int64_t ws_k, int64_t ws_m, float* y, int64_t ldy, int64_t K, int64_t M,
                            int64_t N, bool accumulate, int n_threads, std::string* error) {
  return Execute(false, x, xs_n, xs_k, w, ws_k, ws_m, y, ldy, K, M, N, accumulate, n_threads,
                 error);
}

bool DnnlMatMul::RunStridedBf16(const uint16_t* x, int64_t xs_n, int64_t xs_k, const uint16_t* w,
                                int64_t ws_k, int64_t ws_m, float* y, int64_t ldy, int64_t K,
                                int64_t M, int64_t N, bool accumulate, int n_threads,
                                std::string* error) {
  return Execute(true, x, xs_n, xs_k, w, ws_k, ws_m, y, ldy, K, M, N, accumulate, n_threads, error);
}

bool DnnlMatMul::Execute(bool bf16, const void* x, int64_t xs_n, int64_t xs_k, const void* w,
                         int64_t ws_k, int64_t ws_m, float* y, int64_t ldy, int64_t K, int64_t M,
                         int64_t N, bool accumulate, int n_threads, std::string* error) {
  using dt = dnnl::memory::data_type;
  const dt in_type = bf16 ? dt::bf16 : dt::f32;
  try {
    dnnl::memory::desc src_md({N, K}, in_type, dnnl::memory::dims{xs_n, xs_k});
    dnnl::memory::desc wei_md({K, M}, in_type, dnnl::memory::dims{ws_k, ws_m});
    dnnl::memory::desc dst_md({N, M}, dt::f32, dnnl::memory::dims{ldy, 1});
    SetThreads(n_threads);
    Key key = {K, M, N, xs_n, xs_k, ws_k, ws_m, ldy, accumulate ? 1 : 0, bf16 ? 1 : 0};
    auto it = state_->cache.find(key);
    if (it == state_->cache.end()) {
      if (state_->cache.size() >= kMaxCachedPrimitives) state_->cache.clear();
      dnnl::primitive_attr attr;
      if (accumulate) {
        dnnl::post_ops ops;
        ops.append_sum(1.0f);
        attr.set_post_ops(ops);
      }
      dnnl::matmul::desc desc(src_md, wei_md, dst_md);
      dnnl::matmul::primitive_desc pd(desc, attr, state_->engine);
      it = state_->cache.emplace(key, dnnl::matmul(pd)).first;
    }
    dnnl::memory src(src_md, state_->engine, const_cast<void*>(x));
    dnnl::memory wei(wei_md, state_->engine, const_cast<void*>(w));
    dnnl::memory dst(dst_md, state_->engine, y);
    it->second.execute(state_->stream,
                       {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
    state_->stream.wait();
  } catch (const std::bad_alloc&) {
    throw;  // graph_compute's catch: RESOURCE_EXHAUSTED, like any op's
  } catch (const dnnl::error& e) {
    if (e.status == dnnl_out_of_memory) throw std::bad_alloc();
    *error = std::string("oneDNN matmul failed: ") + e.what();
    return false;
  } catch (const std::exception& e) {
    *error = std::string("oneDNN matmul failed: ") + e.what();
    return false;
  }
  return true;
}

}  // namespace hearth::cpu
