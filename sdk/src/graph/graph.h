// graph.h — builds the flat hearth_graph a backend runs, and plans where
// every intermediate tensor lives inside one arena buffer.
//
// Tensors are of three kinds: external (weights, KV caches: the caller gives
// the buffer and offset), planned (graph inputs and op outputs: placed in the
// arena by Plan()), and views (a different shape over another tensor's bytes;
// a view keeps its base alive). Plan() reuses the bytes of tensors whose last
// reader has run, so the arena is the peak of live data, not the sum.
#ifndef HEARTH_SDK_SRC_GRAPH_GRAPH_H_
#define HEARTH_SDK_SRC_GRAPH_GRAPH_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "hearth/hearth_plugin.h"

namespace hearth {

// Shape in hearth order: ne[0] innermost. Unused dims are 1.
struct Shape {
  int64_t ne[4] = {1, 1, 1, 1};
  uint32_t n_dims = 1;
  static Shape Of(std::initializer_list<int64_t> dims);
  int64_t elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

// "mul_mat", "attention", … ("op 42" for values this build does not know).
std::string OpName(uint32_t op);
// "F32", "Q4_K", … ("dtype 42" for unknown values).
std::string DtypeName(uint32_t dtype);

// A tensor descriptor with contiguous strides for `dtype` and `shape`.
hearth_tensor_desc ContiguousDesc(uint32_t dtype, const Shape& shape);
// Bytes of a contiguous tensor.
uint64_t ContiguousBytes(uint32_t dtype, const Shape& shape);

// The host-wide identity of a backend buffer, for graph binding keys: a
// buffer gets a fresh number when the plugin host creates it, so a freed
// buffer's successor at the same address is a different buffer. 0 for a
// buffer the host never registered.
uint64_t BufferIdentity(const hearth_pbuffer* buf);
void RegisterBufferIdentity(const hearth_pbuffer* buf);
void ForgetBufferIdentity(const hearth_pbuffer* buf);

class Graph {
 public:
  // A tensor whose buffer the caller owns (weights, caches).
  int External(const hearth_tensor_desc& desc);
  // A graph input planned in the arena (token ids, positions); it is live
  // from the start, so its bytes can be uploaded before Compute.
  int Input(uint32_t dtype, const Shape& shape);
  // A node writing a new planned tensor; returns the output tensor index.
  // `params` is the op's params struct (hearth_plugin.h), if it has one.
  int Op(hearth_op op, uint32_t dtype, const Shape& shape, std::initializer_list<int> inputs) {
    return AddNode(op, {{dtype, shape}}, inputs, nullptr, 0)[0];
  }
  template <typename P>
  int Op(hearth_op op, uint32_t dtype, const Shape& shape, std::initializer_list<int> inputs,
         const P& params) {
    return AddNode(op, {{dtype, shape}}, inputs, &params, sizeof(P))[0];
  }
  // A node with several outputs (ATTENTION's lse, the backward ops); returns
  // the output tensor indices in order.
  struct OutputSpec {
    uint32_t dtype;
    Shape shape;
  };
  template <typename P>
  std::vector<int> OpOutputs(hearth_op op, std::initializer_list<OutputSpec> outputs,
                             std::initializer_list<int> inputs, const P& params) {
    return AddNode(op, outputs, inputs, &params, sizeof(P));
  }
  std::vector<int> OpOutputs(hearth_op op, std::initializer_list<OutputSpec> outputs,
                             std::initializer_list<int> inputs) {
    return AddNode(op, outputs, inputs, nullptr, 0);
  }
  // A node that writes existing tensors (external buffers, or views of
  // them) instead of new planned ones: training updates gradients,
  // parameters and optimizer state in place (OUTER's acc, ADAMW_STEP).
  void OpInto(hearth_op op, std::initializer_list<int> outputs, std::initializer_list<int> inputs) {
    AddNodeWith(op, outputs, inputs, nullptr, 0);
  }
  template <typename P>
  void OpInto(hearth_op op, std::initializer_list<int> outputs, std::initializer_list<int> inputs,
              const P& params) {
    AddNodeWith(op, outputs, inputs, &params, sizeof(P));
  }
  // A contiguous reshape of `base` (same element count).
  int Reshape(int base, const Shape& shape);
  // Rows [first, first + count) of a 2-D contiguous `base` ([ne0, rows]).
  int Rows(int base, int64_t first, int64_t count);

  // Keeps `t` (and its base) intact until the end of the graph, so the
  // caller can read it after Compute (logits).
  void MarkOutput(int t);

  // Places planned tensors; returns the arena size needed (bytes).
  uint64_t Plan();
  // Points planned tensors and views at `arena` (after Plan()) and computes
  // the binding key (hearth_graph.binding_key) from the plan key, the params
  // bytes and every tensor's buffer identity and offset.
  void Bind(hearth_pbuffer* arena);

  const hearth_tensor_desc& tensor(int index) const { return tensors_[index]; }
  // The tensor whose bytes view `t` shows (Reshape, Rows), or -1 when `t`
  // is not a view; and the view's byte offset into it.
  int view_base(int t) const { return meta_[t].kind == Kind::kView ? meta_[t].base : -1; }
  int64_t view_offset(int t) const { return meta_[t].view_offset; }
  hearth_graph view() const;
  size_t n_nodes() const { return nodes_.size(); }
  uint64_t plan_key() const { return plan_key_; }
  uint64_t binding_key() const { return binding_key_; }

 private:
  enum class Kind { kExternal, kPlanned, kView };
  struct Meta {
    Kind kind = Kind::kPlanned;
    int base = -1;           // for views: the tensor whose bytes it shows
    int64_t view_offset = 0; // bytes from the base's start
    int def = -1;            // node that writes it (-1: before the graph)
    int last_use = -1;       // last node that reads it (or any view of it)
    uint64_t arena_offset = 0;
  };
  int Root(int t) const;

  std::vector<int> AddNode(hearth_op op, std::initializer_list<OutputSpec> outputs,
                           std::initializer_list<int> inputs, const void* params, size_t size);
  void AddNodeWith(hearth_op op, const std::vector<int>& outputs, std::initializer_list<int> inputs,
                   const void* params, size_t size);
  void ComputeBindingKey();

  std::vector<hearth_tensor_desc> tensors_;
  std::vector<Meta> meta_;
  std::vector<hearth_node> nodes_;
  std::vector<int32_t> node_inputs_;  // every node's inputs, then its extra outputs
  std::vector<uint64_t> params_;      // params blocks, each at an 8-byte boundary
  uint32_t params_bytes_ = 0;
  uint64_t plan_key_ = 0;
  uint64_t binding_key_ = 0;
};

}  // namespace hearth

#endif  // HEARTH_SDK_SRC_GRAPH_GRAPH_H_
