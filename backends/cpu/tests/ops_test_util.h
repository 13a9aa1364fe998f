// ops_test_util.h — what the CPU backend's op tests share: a host-services
// table that records errors, a context per thread count, a small graph
// builder that gives every tensor its own NaN-poisoned buffer, random data
// and reference conversions that do not reuse the backend's own code.
#ifndef HEARTH_BACKENDS_CPU_TESTS_OPS_TEST_UTIL_H_
#define HEARTH_BACKENDS_CPU_TESTS_OPS_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/backend.h"
#include "backends/cpu/kernels.h"
#include "hearth/hearth_plugin.h"

namespace hearth::cpu::testing {

struct HostRecorder {
  int32_t last_code = 0;
  std::string last_error;
  int errors = 0;
  std::vector<std::string> logs;
};

inline HostRecorder& Recorder() {
  static HostRecorder r;
  return r;
}

inline const hearth_host_services* TestHost() {
  static const hearth_host_services host = {
      sizeof(hearth_host_services),
      &Recorder(),
      [](void* ctx, hearth_pstatus code, const char* msg) {
        auto* r = static_cast<HostRecorder*>(ctx);
        r->last_code = code;
        r->last_error = msg ? msg : "";
        ++r->errors;
      },
      [](void* ctx, int, const char* msg) { static_cast<HostRecorder*>(ctx)->logs.push_back(msg); },
      [](void*, size_t size, size_t align) -> void* {
        size = (size + align - 1) / align * align;
        return std::aligned_alloc(align, size ? size : align);
      },
      [](void*, void* p) { std::free(p); },
  };
  return &host;
}

inline const hearth_backend_vtable* InitPlugin() {
  hearth_plugin_init_info info{};
  info.struct_size = sizeof(info);
  info.host_abi_major = HEARTH_PLUGIN_ABI_MAJOR;
  info.host_abi_minor = HEARTH_PLUGIN_ABI_MINOR;
  info.host = TestHost();
  if (PluginInit(&info) != HEARTH_P_OK) return nullptr;
  return static_cast<const hearth_backend_vtable*>(info.vtable);
}

// Reference conversions, written independently of ops_vec.h.
inline double HalfToDouble(uint16_t h) {
  int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double v = e == 0    ? std::ldexp(m, -24)
             : e == 31 ? (m ? NAN : INFINITY)
                       : std::ldexp(1024 + m, e - 25);
  return (h & 0x8000) ? -v : v;
}
inline uint16_t DoubleToHalf(double v) {
  _Float16 h = static_cast<_Float16>(static_cast<float>(v));
  uint16_t u;
  std::memcpy(&u, &h, 2);
  return u;
}
inline double Bf16ToDouble(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// Nearest bfloat16 by comparing the two neighbours in double; ties to even.
inline uint16_t FloatToBf16Ref(float f) {
  if (std::isnan(f)) return 0x7fc0;
  uint32_t u;
  std::memcpy(&u, &f, 4);
  uint16_t lo = static_cast<uint16_t>(u >> 16), hi = static_cast<uint16_t>(lo + 1);
  double dlo = std::fabs(Bf16ToDouble(lo) - f), dhi = std::fabs(Bf16ToDouble(hi) - f);
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1) ? hi : lo;
}

inline std::vector<float> RandomF32(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// A context with n threads, and graphs built against it.
class Backend {
 public:
  explicit Backend(uint32_t n_threads) {
    vt_ = InitPlugin();
    if (!vt_) return;
    hearth_pcontext_options opt{sizeof(opt), 0, n_threads};
    if (vt_->context_create(&opt, &ctx_) != HEARTH_P_OK) ctx_ = nullptr;
  }
  ~Backend() {
    for (hearth_pbuffer* b : buffers_) vt_->buffer_free(ctx_, b);
    if (ctx_) vt_->context_free(ctx_);
  }
  bool ok() const { return vt_ && ctx_; }
  const hearth_backend_vtable* vt() const { return vt_; }
  hearth_pcontext* ctx() const { return ctx_; }

  // A new tensor with its own buffer. `nb` empty = contiguous; `data` (bytes)
  // uploaded when given, else the buffer is filled with NaN.
  int Add(uint32_t dtype, std::vector<int64_t> ne, const void* data = nullptr,
          std::vector<int64_t> nb = {}) {
    hearth_tensor_desc d{};
    d.dtype = dtype;
    d.n_dims = static_cast<uint32_t>(ne.size());
    int64_t be = hearth_dtype_block_elems(dtype), bb = hearth_dtype_block_bytes(dtype);
    for (int i = 0; i < 4; ++i) d.ne[i] = i < static_cast<int>(ne.size()) ? ne[i] : 1;
    if (nb.empty()) {
      d.nb[0] = bb;
      d.nb[1] = d.ne[0] / be * bb;
      for (int i = 2; i < 4; ++i) d.nb[i] = d.nb[i - 1] * d.ne[i - 1];
    } else {
      for (int i = 0; i < 4; ++i) d.nb[i] = i < static_cast<int>(nb.size()) ? nb[i] : 0;
    }
    int64_t bytes = be == 1 ? (d.ne[0] - 1) * d.nb[0] + bb : d.ne[0] / be * bb;
    for (int i = 1; i < 4; ++i) bytes += (d.ne[i] - 1) * d.nb[i];
    for (int i = 0; i < 4; ++i) {
      if (d.ne[i] == 0) bytes = 0;
    }
    hearth_pbuffer* buf = nullptr;
    EXPECT_EQ(vt_->buffer_alloc(ctx_, bytes, &buf), HEARTH_P_OK);
    buffers_.push_back(buf);
    void* p = vt_->buffer_host_ptr(ctx_, buf);
    if (data) {
      std::memcpy(p, data, static_cast<size_t>(bytes));
    } else {
      std::memset(p, 0xff, static_cast<size_t>(bytes));  // NaN in F32, F16 and BF16
    }
    d.buffer = buf;
    bytes_.push_back(bytes);
    tensors_.push_back(d);
    return static_cast<int>(tensors_.size()) - 1;
  }
  hearth_tensor_desc& desc(int id) { return tensors_[id]; }
  void* ptr(int id) {
    return static_cast<uint8_t*>(vt_->buffer_host_ptr(ctx_, tensors_[id].buffer)) +
           tensors_[id].offset;
  }
  int64_t bytes(int id) const { return bytes_[id]; }

  // A node whose params come as the short float/int lists the ops' tests
  // were written with, packed into the op's params struct: f = {scale} for
  // SCALE, SOFTMAX and LORA_MUL_MAT, {eps} for RMS_NORM, {theta, freq_scale}
  // + i = {n_rot, mode} for ROPE, {scale, softcap} + {window} for ATTENTION.
  void Node(uint32_t op, int out, std::initializer_list<int> inputs,
            std::initializer_list<float> f = {}, std::initializer_list<int32_t> i = {}) {
    std::vector<float> fv(f);
    std::vector<int32_t> iv(i);
    fv.resize(4, 0.0f);
    iv.resize(4, 0);
    switch (op) {
      case HEARTH_OP_ROPE:
        NodeP(op, {out}, inputs, hearth_rope_params{fv[0], fv[1], iv[0], iv[1]});
        return;
      case HEARTH_OP_ATTENTION:
        NodeP(op, {out}, inputs, hearth_attention_params{fv[0], fv[1], iv[0]});
        return;
      default:
        if (f.size() > 0) {
          NodeP(op, {out}, inputs, hearth_scale_params{fv[0]});  // also eps: one float
        } else {
          NodeRaw(op, {out}, inputs, nullptr, 0);
        }
    }
  }
  // A node with its params struct and any number of outputs (the first is
  // the node's output, the rest its extra outputs).
  template <typename P>
  void NodeP(uint32_t op, std::initializer_list<int> outs, std::initializer_list<int> inputs,
             const P& params) {
    NodeRaw(op, outs, inputs, &params, sizeof(P));
  }
  void NodeRaw(uint32_t op, std::vector<int> outs, std::vector<int> inputs, const void* params,
               size_t size) {
    hearth_node n{};
    n.op = op;
    n.output = outs.empty() ? -1 : outs[0];
    n.first_input = static_cast<uint32_t>(node_inputs_.size());
    n.n_inputs = static_cast<uint16_t>(inputs.size());
    n.n_extra_outputs = static_cast<uint16_t>(outs.empty() ? 0 : outs.size() - 1);
    for (int in : inputs) node_inputs_.push_back(in);
    for (size_t k = 1; k < outs.size(); ++k) node_inputs_.push_back(outs[k]);
    if (size > 0) {
      n.params_offset = static_cast<uint32_t>(params_.size() * 8);
      n.params_size = static_cast<uint32_t>(size);
      params_.resize(params_.size() + (size + 7) / 8, 0);
      std::memcpy(reinterpret_cast<uint8_t*>(params_.data()) + n.params_offset, params, size);
    }
    nodes_.push_back(n);
  }
  std::vector<hearth_node>& nodes() { return nodes_; }
  void ClearNodes() {
    nodes_.clear();
    node_inputs_.clear();
    params_.clear();
  }

  hearth_graph Graph() const {
    hearth_graph g{};
    g.struct_size = sizeof(g);
    g.n_tensors = static_cast<uint32_t>(tensors_.size());
    g.tensors = tensors_.data();
    g.n_nodes = static_cast<uint32_t>(nodes_.size());
    g.nodes = nodes_.data();
    g.n_node_inputs = static_cast<uint32_t>(node_inputs_.size());
    g.node_inputs = node_inputs_.data();
    g.params_bytes = static_cast<uint32_t>(params_.size() * 8);
    g.params = params_.data();
    return g;
  }
  hearth_pstatus Compute() {
    Recorder().last_error.clear();
    hearth_graph g = Graph();
    return vt_->graph_compute(ctx_, &g);
  }
  int32_t Supports(uint32_t index) {
    hearth_graph g = Graph();
    return vt_->supports(ctx_, &g, index);
  }

  // The F32 elements of tensor id in ne order, honouring strides.
  std::vector<float> Read(int id) {
    const hearth_tensor_desc& d = tensors_[id];
    const uint8_t* base = static_cast<const uint8_t*>(ptr(id));
    std::vector<float> out;
    for (int64_t i3 = 0; i3 < d.ne[3]; ++i3)
      for (int64_t i2 = 0; i2 < d.ne[2]; ++i2)
        for (int64_t i1 = 0; i1 < d.ne[1]; ++i1)
          for (int64_t i0 = 0; i0 < d.ne[0]; ++i0) {
            const uint8_t* p = base + i0 * d.nb[0] + i1 * d.nb[1] + i2 * d.nb[2] + i3 * d.nb[3];
            uint16_t h;
            float f;
            switch (d.dtype) {
              case HEARTH_DTYPE_F32:
                std::memcpy(&f, p, 4);
                break;
              case HEARTH_DTYPE_F16:
                std::memcpy(&h, p, 2);
                f = static_cast<float>(HalfToDouble(h));
                break;
              default:
                std::memcpy(&h, p, 2);
                f = static_cast<float>(Bf16ToDouble(h));
                break;
            }
            out.push_back(f);
          }
    return out;
  }

 private:
  const hearth_backend_vtable* vt_ = nullptr;
  hearth_pcontext* ctx_ = nullptr;
  std::vector<hearth_pbuffer*> buffers_;
  std::vector<hearth_tensor_desc> tensors_;
  std::vector<int64_t> bytes_;
  std::vector<hearth_node> nodes_;
  std::vector<int32_t> node_inputs_;
  std::vector<uint64_t> params_;
};

// `rows` rows of K weights in dtype, as raw bytes, with sane block scales.
inline std::vector<uint8_t> RandomWeights(uint32_t dtype, int64_t rows, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> val(-1.0f, 1.0f), scale(0.002f, 0.02f);
  const int64_t be = hearth_dtype_block_elems(dtype), bb = hearth_dtype_block_bytes(dtype);
  std::vector<uint8_t> out(static_cast<size_t>(rows * (k / be) * bb));
  auto put_half = [&](uint8_t* p, double v) {
    uint16_t h = DoubleToHalf(v);
    std::memcpy(p, &h, 2);
  };
  if (dtype == HEARTH_DTYPE_F32) {
    for (size_t i = 0; i < out.size() / 4; ++i) {
      float f = val(rng);
      std::memcpy(&out[i * 4], &f, 4);
    }
    return out;
  }
  if (dtype == HEARTH_DTYPE_F16 || dtype == HEARTH_DTYPE_BF16) {
    for (size_t i = 0; i < out.size() / 2; ++i) {
      float f = val(rng);
      uint16_t h = dtype == HEARTH_DTYPE_F16 ? DoubleToHalf(f) : FloatToBf16Ref(f);
      std::memcpy(&out[i * 2], &h, 2);
    }
    return out;
  }
  for (uint8_t& byte : out) byte = static_cast<uint8_t>(rng());
  for (size_t blk = 0; blk < out.size() / bb; ++blk) {
    uint8_t* p = &out[blk * bb];
    if (dtype == HEARTH_DTYPE_Q6_K) {
      put_half(p + 208, scale(rng));
    } else {
      put_half(p, scale(rng));
      if (dtype == HEARTH_DTYPE_Q4_K) put_half(p + 2, scale(rng));
      if (dtype == HEARTH_DTYPE_Q4_1) put_half(p + 2, 8 * scale(rng) * val(rng));  // m
    }
  }
  return out;
}

// Row r of weights as doubles, through the kernels' scalar reference for
// block formats (tested against gguf by the kernels' own tests).
inline std::vector<double> WeightRow(uint32_t dtype, const std::vector<uint8_t>& w, int64_t k,
                                     int64_t r) {
  const int64_t row_bytes = k / hearth_dtype_block_elems(dtype) * hearth_dtype_block_bytes(dtype);
  const uint8_t* p = w.data() + r * row_bytes;
  std::vector<double> out(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) {
    uint16_t h;
    if (dtype == HEARTH_DTYPE_F32) {
      float f;
      std::memcpy(&f, p + 4 * i, 4);
      out[i] = f;
    } else if (dtype == HEARTH_DTYPE_F16 || dtype == HEARTH_DTYPE_BF16) {
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = dtype == HEARTH_DTYPE_F16 ? HalfToDouble(h) : Bf16ToDouble(h);
    }
  }
  if (hearth_dtype_block_elems(dtype) > 1) {
    std::vector<float> f(static_cast<size_t>(k));
    DequantizeRowRef(dtype, p, f.data(), k);
    for (int64_t i = 0; i < k; ++i) out[i] = f[i];
  }
  return out;
}

inline constexpr uint32_t kAllWeightDtypes[] = {
    HEARTH_DTYPE_F32,  HEARTH_DTYPE_F16,  HEARTH_DTYPE_BF16, HEARTH_DTYPE_Q8_0, HEARTH_DTYPE_Q4_0,
    HEARTH_DTYPE_Q5_0, HEARTH_DTYPE_Q4_1, HEARTH_DTYPE_Q4_K, HEARTH_DTYPE_Q6_K};

inline int64_t KFor(uint32_t dtype, int64_t plain) {
  int64_t be = hearth_dtype_block_elems(dtype);
  return be == 1 ? plain : be * 2;
}

using Vec = std::vector<double>;

inline Vec ToDouble(const std::vector<float>& f) { return Vec(f.begin(), f.end()); }

// d loss / d x[i] by central differences (step 1e-5) of loss() in double.
inline Vec FiniteDiff(Vec x, const std::function<double(const Vec&)>& loss) {
  constexpr double h = 1e-5;
  Vec g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double lp = loss(x);
    x[i] = x0 - h;
    const double lm = loss(x);
    x[i] = x0;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}

// Every element finite and within atol + rtol*|ref| of the reference.
inline ::testing::AssertionResult Near(const std::vector<float>& got,
                                       const std::vector<double>& ref, double atol, double rtol) {
  if (got.size() != ref.size()) {
    return ::testing::AssertionFailure() << "size " << got.size() << " vs " << ref.size();
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] == ref[i]) continue;  // also equal infinities; NaN never passes
    double tol = atol + rtol * std::fabs(ref[i]);
    if (!std::isfinite(got[i]) || std::fabs(got[i] - ref[i]) > tol) {
      return ::testing::AssertionFailure() << "element " << i << ": got " << got[i] << ", want "
                                           << ref[i] << " (tol " << tol << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace hearth::cpu::testing

#endif  // HEARTH_BACKENDS_CPU_TESTS_OPS_TEST_UTIL_H_
