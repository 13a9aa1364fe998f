// graph.cc — graph construction and arena planning (first-fit over the
// live ranges of planned tensors).
#include "sdk/src/graph/graph.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>

namespace hearth {
namespace {

constexpr uint64_t kArenaAlign = 64;

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

uint64_t Mix(uint64_t h, uint64_t v) {
  // FNV-1a over the 8 bytes of v.
  for (int i = 0; i < 8; ++i) {
    h ^= (v >> (8 * i)) & 0xff;
    h *= 1099511628211ull;
  }
  return h;
}

// First-fit allocator over [0, inf) with coalescing free blocks.
class ArenaPlanner {
 public:
  uint64_t Alloc(uint64_t size) {
    size = AlignUp(std::max<uint64_t>(size, 1), kArenaAlign);
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->second >= size) {
        uint64_t off = it->first;
        uint64_t rest = it->second - size;
        free_.erase(it);
        if (rest > 0) free_[off + size] = rest;
        return off;
      }
    }
    // Extend the end (merging with a free block that touches the end).
    uint64_t off = top_;
    if (!free_.empty()) {
      auto last = std::prev(free_.end());
      if (last->first + last->second == top_) {
        off = last->first;
        free_.erase(last);
      }
    }
    top_ = off + size;
    return off;
  }
  void Free(uint64_t off, uint64_t size) {
    size = AlignUp(std::max<uint64_t>(size, 1), kArenaAlign);
    auto [it, ok] = free_.emplace(off, size);
    (void)ok;
    auto next = std::next(it);
    if (next != free_.end() && it->first + it->second == next->first) {
      it->second += next->second;
      free_.erase(next);
    }
    if (it != free_.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second == it->first) {
        prev->second += it->second;
        free_.erase(it);
      }
    }
  }
  uint64_t top() const { return top_; }

 private:
  std::map<uint64_t, uint64_t> free_;  // offset -> size
  uint64_t top_ = 0;
};

}  // namespace

std::string OpName(uint32_t op) {
  static const char* const kNames[] = {"none",      "get_rows", "mul_mat",  "add",
                                       "mul",       "scale",    "rms_norm", "rope",
                                       "attention", "silu_mul", "gelu_mul", "softmax",
                                       "copy",      "lora_mul_mat"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == HEARTH_OP_COUNT_, "name every op");
  if (op < HEARTH_OP_COUNT_) return kNames[op];
  return "op " + std::to_string(op);
}

std::string DtypeName(uint32_t dtype) {
  static const char* const kNames[] = {"F32",  "F16",  "BF16", "I32",  "Q8_0",
                                       "Q4_0", "Q5_0", "Q4_K", "Q6_K", "Q4_1"};
  static_assert(sizeof(kNames) / sizeof(kNames[0]) == HEARTH_DTYPE_COUNT_, "name every dtype");
  if (dtype < HEARTH_DTYPE_COUNT_) return kNames[dtype];
  return "dtype " + std::to_string(dtype);
}

Shape Shape::Of(std::initializer_list<int64_t> dims) {
  Shape s;
  int i = 0;
  for (int64_t d : dims) {
    if (i < 4) s.ne[i++] = d;
  }
  s.n_dims = static_cast<uint32_t>(std::max(i, 1));
  return s;
}

hearth_tensor_desc ContiguousDesc(uint32_t dtype, const Shape& shape) {
  hearth_tensor_desc d;
  std::memset(&d, 0, sizeof(d));
  d.dtype = dtype;
  d.n_dims = shape.n_dims;
  for (int i = 0; i < 4; ++i) d.ne[i] = shape.ne[i];
  const int64_t blk = hearth_dtype_block_elems(dtype);
  d.nb[0] = hearth_dtype_block_bytes(dtype);
  d.nb[1] = blk > 0 ? shape.ne[0] / blk * d.nb[0] : 0;
  d.nb[2] = d.nb[1] * shape.ne[1];
  d.nb[3] = d.nb[2] * shape.ne[2];
  return d;
}

uint64_t ContiguousBytes(uint32_t dtype, const Shape& shape) {
  hearth_tensor_desc d = ContiguousDesc(dtype, shape);
  return static_cast<uint64_t>(d.nb[3] * shape.ne[3]);
}

int Graph::External(const hearth_tensor_desc& desc) {
  tensors_.push_back(desc);
  Meta m;
  m.kind = Kind::kExternal;
  meta_.push_back(m);
  return static_cast<int>(tensors_.size()) - 1;
}

int Graph::Input(uint32_t dtype, const Shape& shape) {
  tensors_.push_back(ContiguousDesc(dtype, shape));
  meta_.push_back(Meta{});
  return static_cast<int>(tensors_.size()) - 1;
}

int Graph::Root(int t) const {
  while (meta_[t].kind == Kind::kView) t = meta_[t].base;
  return t;
}

int Graph::Op(hearth_op op, uint32_t dtype, const Shape& shape,
              std::initializer_list<int> inputs, std::initializer_list<float> fparams,
              std::initializer_list<int32_t> iparams) {
  const int node_index = static_cast<int>(nodes_.size());
  const int out = Input(dtype, shape);
  meta_[out].def = node_index;
  hearth_node n;
  std::memset(&n, 0, sizeof(n));
  n.op = op;
  n.output = out;
  for (int i = 0; i < HEARTH_MAX_NODE_INPUTS; ++i) n.inputs[i] = -1;
  int i = 0;
  for (int in : inputs) {
    n.inputs[i++] = in;
    if (in >= 0) {
      meta_[Root(in)].last_use = node_index;
    }
  }
  i = 0;
  for (float f : fparams) n.fparams[i++] = f;
  i = 0;
  for (int32_t v : iparams) n.iparams[i++] = v;
  nodes_.push_back(n);
  return out;
}

int Graph::Reshape(int base, const Shape& shape) {
  hearth_tensor_desc d = ContiguousDesc(tensors_[base].dtype, shape);
  d.buffer = tensors_[base].buffer;
  d.offset = tensors_[base].offset;
  tensors_.push_back(d);
  Meta m;
  m.kind = Kind::kView;
  m.base = base;
  meta_.push_back(m);
  return static_cast<int>(tensors_.size()) - 1;
}

int Graph::Rows(int base, int64_t first, int64_t count) {
  const hearth_tensor_desc b = tensors_[base];  // a copy: push_back below may reallocate
  Shape s = Shape::Of({b.ne[0], count});
  hearth_tensor_desc d = ContiguousDesc(b.dtype, s);
  d.buffer = b.buffer;
  d.offset = b.offset + static_cast<uint64_t>(first * b.nb[1]);
  tensors_.push_back(d);
  Meta m;
  m.kind = Kind::kView;
  m.base = base;
  m.view_offset = first * b.nb[1];
  meta_.push_back(m);
  return static_cast<int>(tensors_.size()) - 1;
}

void Graph::MarkOutput(int t) { meta_[Root(t)].last_use = INT_MAX; }

uint64_t Graph::Plan() {
  ArenaPlanner planner;
  // Frees scheduled after each node: tensors whose last reader is that node.
  std::vector<std::vector<int>> frees(nodes_.size());
  auto bytes = [&](int t) {
    const hearth_tensor_desc& d = tensors_[t];
    return static_cast<uint64_t>(d.nb[3] * d.ne[3]);
  };
  // Inputs (planned, def == -1) first: they must not overlap anything.
  for (size_t t = 0; t < meta_.size(); ++t) {
    Meta& m = meta_[t];
    if (m.kind != Kind::kPlanned || m.def != -1) continue;
    m.arena_offset = planner.Alloc(bytes(static_cast<int>(t)));
    if (m.last_use >= 0 && m.last_use != INT_MAX) frees[m.last_use].push_back(static_cast<int>(t));
  }
  // Outputs of node i are allocated before node i's frees run, so a node
  // never writes over its own inputs.
  std::vector<std::vector<int>> outputs(nodes_.size());
  for (size_t t = 0; t < meta_.size(); ++t) {
    const Meta& m = meta_[t];
    if (m.kind == Kind::kPlanned && m.def >= 0) outputs[m.def].push_back(static_cast<int>(t));
  }
  for (size_t i = 0; i < nodes_.size(); ++i) {
    for (int t : outputs[i]) {
      Meta& m = meta_[t];
      m.arena_offset = planner.Alloc(bytes(t));
      // A tensor nobody reads dies right away (after its own node).
      int last = m.last_use < 0 ? static_cast<int>(i) : m.last_use;
      if (last != INT_MAX) frees[last].push_back(t);
    }
    for (int t : frees[i]) planner.Free(meta_[t].arena_offset, bytes(t));
  }
  // Shape key: everything but buffers and offsets.
  uint64_t h = 1469598103934665603ull;
  for (const hearth_tensor_desc& d : tensors_) {
    h = Mix(h, d.dtype);
    for (int i = 0; i < 4; ++i) h = Mix(Mix(h, static_cast<uint64_t>(d.ne[i])), static_cast<uint64_t>(d.nb[i]));
  }
  for (const hearth_node& n : nodes_) {
    h = Mix(h, n.op);
    h = Mix(h, static_cast<uint64_t>(n.output));
    for (int in : n.inputs) h = Mix(h, static_cast<uint64_t>(in));
  }
  shape_key_ = h;
  return planner.top();
}

void Graph::Bind(hearth_pbuffer* arena) {
  for (size_t t = 0; t < meta_.size(); ++t) {
    if (meta_[t].kind == Kind::kPlanned) {
      tensors_[t].buffer = arena;
      tensors_[t].offset = meta_[t].arena_offset;
    }
  }
  // Views after their bases (bases always have smaller indices).
  for (size_t t = 0; t < meta_.size(); ++t) {
    if (meta_[t].kind == Kind::kView) {
      const hearth_tensor_desc& b = tensors_[meta_[t].base];
      tensors_[t].buffer = b.buffer;
      tensors_[t].offset = b.offset + static_cast<uint64_t>(meta_[t].view_offset);
    }
  }
}

hearth_graph Graph::view() const {
  hearth_graph g;
  g.struct_size = sizeof(hearth_graph);
  g.n_tensors = static_cast<uint32_t>(tensors_.size());
  g.tensors = tensors_.data();
  g.n_nodes = static_cast<uint32_t>(nodes_.size());
  g.nodes = nodes_.data();
  g.shape_key = shape_key_;
  return g;
}

}  // namespace hearth
