// harness.h — how the conformance tool builds and checks one case: a graph
// whose tensors all live in ONE device buffer (an arena), each at its own
// offset between guard bytes, inputs laid out with the strides the case
// asks for and the gaps between rows poisoned with NaN, outputs poisoned
// with NaN. After graph_compute the whole arena comes back; every output
// element is compared with the float64 reference and every byte the node
// may not write (guards, gaps, inputs) must be unchanged.
#ifndef HEARTH_BACKENDS_CONFORMANCE_HARNESS_H_
#define HEARTH_BACKENDS_CONFORMANCE_HARNESS_H_

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backends/conformance/reference.h"
#include "hearth/hearth_plugin.h"

namespace hearth::conformance {

using Rng = std::mt19937_64;
using Shape = std::vector<int64_t>;

// Uniform in [lo, hi).
double Uniform(Rng& rng, double lo, double hi);
int64_t UniformInt(Rng& rng, int64_t lo, int64_t hi);  // [lo, hi]
Vec RandomVec(Rng& rng, size_t n, double lo = -1, double hi = 1);
// `rows` rows of k elements of a block dtype, as GGUF bytes: random quants,
// sane scales (so values stay O(1)).
std::vector<uint8_t> RandomBlocks(Rng& rng, uint32_t dtype, int64_t rows, int64_t k);

// A tensor of a case.
struct TensorSpec {
  hearth_tensor_desc desc{};  // buffer set when the case runs
  uint64_t span = 0;          // bytes from desc.offset the view reaches
};

// One graph to run and what must come out of it.
class Case {
 public:
  explicit Case(Rng* rng, std::string what) : rng_(rng), what_(std::move(what)) {}

  // How a tensor is laid out: contiguous, or every dim's stride padded
  // (rows further apart than their length: a view of a wider tensor).
  enum Layout { kContiguous, kStrided };

  // A plain (F32/F16/BF16) input holding `values` (ne order) once rounded to
  // dtype; returns the tensor index, and the values as stored in *stored.
  int Input(uint32_t dtype, const Shape& ne, const Vec& values, Layout layout,
            Vec* stored = nullptr);
  // An input with explicit byte strides (e.g. a transposed view).
  int InputStrided(uint32_t dtype, const Shape& ne, const int64_t nb[4], const Vec& values,
                   Vec* stored = nullptr);
  int InputI32(const Shape& ne, const std::vector<int32_t>& values);
  // A block-quantized input: `rows` rows of contiguous GGUF blocks.
  int InputBlocks(uint32_t dtype, const Shape& ne, const std::vector<uint8_t>& rows, Layout layout);
  // A 2-D weight placed through the plugin's weight_place hook, in a buffer
  // of its own that the plugin may repack; `rows` are GGUF bytes (or plain
  // elements) of the whole [K, M] tensor. The graph sees rows
  // [first_row, first_row + view_rows) of it, as the host does. With
  // outlives = false the tool overwrites its copy right after placing, so a
  // plugin that kept a pointer instead of copying reads garbage. A plugin
  // without weight_place does not claim the case.
  int PlacedWeight(uint32_t dtype, int64_t K, int64_t M, const std::vector<uint8_t>& rows,
                   bool outlives, int64_t first_row, int64_t view_rows);
  // An output, NaN-poisoned; may be written in full.
  int Output(uint32_t dtype, const Shape& ne, Layout layout);
  // A tensor the node writes besides its outputs (a KV cache): its elements
  // may change; the case checks them with Expect.
  void MarkWritable(int tensor);

  // A node. outs[0] is its output, the rest its extra outputs.
  void Node(uint32_t op, const std::vector<int>& outs, const std::vector<int>& inputs,
            const void* params = nullptr, size_t params_size = 0);
  template <typename P>
  void NodeP(uint32_t op, const std::vector<int>& outs, const std::vector<int>& inputs,
             const P& p) {
    Node(op, outs, inputs, &p, sizeof(P));
  }

  // Tensor `t` must hold `want` (ne order), element i within tol[i]
  // (absolute). One tolerance for all when tol has one element.
  void Expect(int t, Vec want, Vec tol);
  // graph_compute must fail (bad ids, positions, pages, targets).
  void ExpectError() { expect_error_ = true; }

  // What the table shows for a failure: "[64, 7] strided, T=7 …".
  const std::string& what() const { return what_; }

  // ---- used by the runner
  struct Check {
    int tensor;
    Vec want, tol;
  };
  struct Placed {
    int tensor;
    hearth_tensor_desc whole;  // the placed tensor (offset 0, all M rows)
    std::vector<uint8_t> bytes;
    bool outlives;
    uint64_t view_offset;  // where the graph's view starts
  };
  const std::vector<Placed>& placed() const { return placed_; }
  const std::vector<TensorSpec>& tensors() const { return tensors_; }
  const std::vector<hearth_node>& nodes() const { return nodes_; }
  const std::vector<int32_t>& node_inputs() const { return node_inputs_; }
  const std::vector<uint64_t>& params() const { return params_; }
  const std::vector<uint8_t>& arena() const { return arena_; }
  const std::vector<uint8_t>& writable() const { return writable_; }
  const std::vector<Check>& checks() const { return checks_; }
  bool expect_error() const { return expect_error_; }
  // Reads element i (ne order) of tensor t from an arena image as a double.
  double ReadElem(const std::vector<uint8_t>& image, int t, int64_t i) const;
  int64_t Elems(int t) const;

 private:
  int Place(uint32_t dtype, const Shape& ne, const int64_t* nb, Layout layout);
  uint8_t* ElemPtr(int t, int64_t i);
  void ForEachElemByte(int t, const std::function<void(uint64_t)>& f) const;

  Rng* rng_;
  std::string what_;
  std::vector<TensorSpec> tensors_;
  std::vector<hearth_node> nodes_;
  std::vector<int32_t> node_inputs_;
  std::vector<uint64_t> params_;
  std::vector<uint8_t> arena_;     // the buffer's initial contents
  std::vector<uint8_t> writable_;  // 1 where the graph may write
  std::vector<Check> checks_;
  std::vector<Placed> placed_;
  bool expect_error_ = false;
};

// Tolerance helpers: one (atol, rtol) for every element of want.
Vec TolAbsRel(const Vec& want, double atol, double rtol);

// What one case came to.
struct CaseResult {
  enum Status { kPass, kFail, kNotClaimed } status = kPass;
  double worst_ratio = 0;  // max |got - want| / tol over the checked elements
  double worst_err = 0, worst_tol = 0;
  std::string failure;  // first problem, in words
};

// The plugin under test, loaded as a host would.
class PluginUnderTest {
 public:
  // Loads, handshakes and opens a context on `device`; "" or why not.
  std::string Open(const std::string& path, uint32_t device);
  ~PluginUnderTest();
  const char* name() const { return name_; }
  std::string DeviceName() const;
  CaseResult Run(const Case& c);
  // buffer_copy between and within buffers against memmove, and a range
  // past a buffer's end refused with nothing changed.
  CaseResult RunBufferCopy(Rng& rng, uint64_t size_a, uint64_t size_b);

 private:
  const hearth_backend_vtable* vt_ = nullptr;
  hearth_pcontext* ctx_ = nullptr;
  const char* name_ = "?";
  uint32_t device_ = 0;
};

// The error the plugin last reported through set_error ("" if none).
std::string LastPluginError();
void ClearPluginError();

}  // namespace hearth::conformance

#endif  // HEARTH_BACKENDS_CONFORMANCE_HARNESS_H_
