// graph.cc — graph construction and arena planning (first-fit over the
// live ranges of planned tensors).
#include "sdk/src/graph/graph.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <unordered_map>

#include "backends/common/plugin_common.h"

namespace hearth {
namespace {

constexpr uint64_t kArenaAlign = 64;

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// Graph keys: a 64-bit multiply-rotate hash with a splitmix64 finish, seeded
// once per process (keys are never meant to outlive it).
uint64_t KeySeed() {
  static const uint64_t seed = [] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ 0x9e3779b97f4a7c15ull;
  }();
  return seed;
}

uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v * 0xbf58476d1ce4e5b9ull;
  h = (h << 27) | (h >> 37);
  return h * 0x94d049bb133111ebull + 0x9e3779b97f4a7c15ull;
}

uint64_t Finish(uint64_t h) {
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h == 0 ? 1 : h;  // 0 means "no key"
}

std::mutex g_ids_mu;
std::unordered_map<const hearth_pbuffer*, uint64_t>* g_ids = nullptr;  // under g_ids_mu
uint64_t g_next_id = 1;

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

uint64_t BufferIdentity(const hearth_pbuffer* buf) {
  std::lock_guard<std::mutex> lock(g_ids_mu);
  if (g_ids == nullptr) return 0;
  auto it = g_ids->find(buf);
  return it == g_ids->end() ? 0 : it->second;
}

void RegisterBufferIdentity(const hearth_pbuffer* buf) {
  std::lock_guard<std::mutex> lock(g_ids_mu);
  if (g_ids == nullptr) g_ids = new std::unordered_map<const hearth_pbuffer*, uint64_t>();
  (*g_ids)[buf] = g_next_id++;
}

void ForgetBufferIdentity(const hearth_pbuffer* buf) {
  std::lock_guard<std::mutex> lock(g_ids_mu);
  if (g_ids != nullptr) g_ids->erase(buf);
}

std::string OpName(uint32_t op) {
  if (op < HEARTH_OP_COUNT_) {
    std::string name = plugin::OpName(op);
    for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return name;
  }
  return "op " + std::to_string(op);
}

std::string DtypeName(uint32_t dtype) {
  if (dtype < HEARTH_DTYPE_COUNT_) return plugin::DtypeName(dtype);
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

std::vector<int> Graph::AddNode(hearth_op op, std::initializer_list<OutputSpec> outputs,
                                std::initializer_list<int> inputs, const void* params,
                                size_t size) {
  const int node_index = static_cast<int>(nodes_.size());
  std::vector<int> outs;
  for (const OutputSpec& o : outputs) {
    const int t = Input(o.dtype, o.shape);
    meta_[t].def = node_index;
    outs.push_back(t);
  }
  AddNodeWith(op, outs, inputs, params, size);
  return outs;
}

void Graph::AddNodeWith(hearth_op op, const std::vector<int>& outs,
                        std::initializer_list<int> inputs, const void* params, size_t size) {
  const int node_index = static_cast<int>(nodes_.size());
  hearth_node n;
  std::memset(&n, 0, sizeof(n));
  n.op = op;
  n.output = outs[0];
  n.first_input = static_cast<uint32_t>(node_inputs_.size());
  n.n_inputs = static_cast<uint16_t>(inputs.size());
  n.n_extra_outputs = static_cast<uint16_t>(outs.size() - 1);
  for (int in : inputs) {
    node_inputs_.push_back(in);
    if (in >= 0) meta_[Root(in)].last_use = node_index;
  }
  for (size_t i = 1; i < outs.size(); ++i) node_inputs_.push_back(outs[i]);
  if (size > 0) {
    n.params_offset = params_bytes_;
    n.params_size = static_cast<uint32_t>(size);
    const size_t words = (size + 7) / 8;
    params_.resize(params_.size() + words, 0);
    std::memcpy(reinterpret_cast<uint8_t*>(params_.data()) + params_bytes_, params, size);
    params_bytes_ += static_cast<uint32_t>(words * 8);
  }
  nodes_.push_back(n);
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
  // Plan key (hearth_plugin.h): nodes and descriptors, without params
  // values, buffers and offsets.
  uint64_t h = Mix(KeySeed(), tensors_.size());
  for (const hearth_tensor_desc& d : tensors_) {
    h = Mix(Mix(h, d.dtype), d.n_dims);
    for (int i = 0; i < 4; ++i) {
      h = Mix(Mix(h, static_cast<uint64_t>(d.ne[i])), static_cast<uint64_t>(d.nb[i]));
    }
  }
  h = Mix(h, nodes_.size());
  for (const hearth_node& n : nodes_) {
    h = Mix(Mix(h, n.op), static_cast<uint64_t>(static_cast<int64_t>(n.output)));
    h = Mix(Mix(Mix(h, n.n_inputs), n.n_extra_outputs), n.params_size);
    for (uint32_t i = 0; i < n.n_inputs + n.n_extra_outputs; ++i) {
      h = Mix(h, static_cast<uint64_t>(static_cast<int64_t>(node_inputs_[n.first_input + i])));
    }
  }
  plan_key_ = Finish(h);
  binding_key_ = 0;
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
  ComputeBindingKey();
}

void Graph::ComputeBindingKey() {
  uint64_t h = Mix(plan_key_, params_bytes_);
  for (uint64_t w : params_) h = Mix(h, w);
  for (const hearth_tensor_desc& d : tensors_) {
    h = Mix(Mix(h, BufferIdentity(d.buffer)), d.offset);
  }
  binding_key_ = Finish(h);
}

hearth_graph Graph::view() const {
  hearth_graph g;
  g.struct_size = sizeof(hearth_graph);
  g.n_tensors = static_cast<uint32_t>(tensors_.size());
  g.tensors = tensors_.data();
  g.n_nodes = static_cast<uint32_t>(nodes_.size());
  g.nodes = nodes_.data();
  g.n_node_inputs = static_cast<uint32_t>(node_inputs_.size());
  g.node_inputs = node_inputs_.data();
  g.params_bytes = params_bytes_;
  g.params = params_.data();
  g.plan_key = plan_key_;
  g.binding_key = binding_key_;
  return g;
}

}  // namespace hearth
