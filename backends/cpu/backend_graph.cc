// backend_graph.cc — graph_compute and supports() of the CPU backend: resolve
// and check every descriptor and node of a graph before anything runs, size
// the context's scratch once, then run the nodes in order on the pool.
#include <algorithm>
#include <exception>
#include <new>

#include "backends/cpu/backend.h"

namespace hearth::cpu {
namespace {

const char* OpNameOf(uint32_t op) {
  const OpInfo* info = FindOp(op);
  return info ? info->name : "unknown op";
}

// Resolves a descriptor into *t: the checks every backend makes
// (plugin::CheckDesc), then the address and its alignment in memory.
bool ResolveTensor(const hearth_tensor_desc& d, const BufferRegistryReader& buffers, Tensor* t,
                   std::string* why) {
  if (d.buffer == nullptr || !buffers.Contains(d.buffer)) {
    *why =
        StrFormat("buffer %p is not a live buffer of the cpu plugin", static_cast<void*>(d.buffer));
    return false;
  }
  plugin::DescView v;
  const bool repacked = d.buffer->layout != WeightLayout::kPlain;
  // A repacked buffer's descriptors are logical: they are checked against the
  // plain size of its rows.
  const uint64_t logical_size = repacked ? d.buffer->size /
                                               static_cast<uint64_t>(d.buffer->layout_row_bytes) *
                                               static_cast<uint64_t>(d.buffer->row_bytes)
                                         : d.buffer->size;
  if (!plugin::CheckDesc(d, logical_size, &v, why)) return false;
  t->dtype = v.dtype;
  for (int i = 0; i < 4; ++i) {
    t->ne[i] = v.ne[i];
    t->nb[i] = v.nb[i];
  }
  t->data = d.buffer->data + d.offset;
  t->layout = d.buffer->layout;
  if (repacked) {
    // A repacked weight is read in whole groups of rows: a view must keep
    // the dtype and row length, start on a group and stay 2-D. Its address
    // and row stride become the layout's.
    const int64_t group_bytes = kX8Rows * d.buffer->row_bytes;
    const uint32_t dtype = X8Dtype(t->layout);
    if (v.dtype != dtype || v.nb[1] != d.buffer->row_bytes ||
        RowBytes(v.dtype, v.ne[0]) != d.buffer->row_bytes || d.offset % group_bytes != 0 ||
        v.ne[2] != 1 || v.ne[3] != 1) {
      *why = StrFormat(
          "buffer %p holds a %s weight repacked by weight_place (rows of %lld bytes in groups "
          "of %d); a view of it must be %s, 2-D, with that row length and stride, and start on "
          "a group (offset %llu, dtype %s, shape %s)",
          static_cast<void*>(d.buffer), DtypeName(dtype),
          static_cast<long long>(d.buffer->row_bytes), kX8Rows, DtypeName(dtype),
          static_cast<unsigned long long>(d.offset), DtypeName(v.dtype), ShapeStr(*t).c_str());
      return false;
    }
    const int64_t first_row = static_cast<int64_t>(d.offset) / d.buffer->row_bytes;
    t->data = d.buffer->data + first_row * d.buffer->layout_row_bytes;
    for (int i = 2; i < 4; ++i) t->nb[i] = d.buffer->layout_row_bytes * t->ne[1];
    t->nb[1] = d.buffer->layout_row_bytes;
  }
  // Plain elements are read as their type, quantized blocks start with an f16.
  const int64_t elem = PlainElemBytes(d.dtype);
  const int64_t align = elem > 0 ? elem : 2;
  if (reinterpret_cast<uintptr_t>(t->data) % align != 0) {
    *why = StrFormat("address %p (offset %llu) is not aligned to %lld bytes for %s",
                     static_cast<void*>(t->data), static_cast<unsigned long long>(d.offset),
                     static_cast<long long>(align), DtypeName(d.dtype));
    return false;
  }
  return true;
}

// Two threads must never write the same byte of an output: every stride,
// taken in increasing order, must step over everything the smaller ones span.
bool OutputHasNoSelfOverlap(const Tensor& t, std::string* why) {
  int d = 0;
  int64_t covered = 0;
  if (plugin::ElementsApart(t.dtype, t.ne, t.nb, &d, &covered)) return true;
  *why = StrFormat(
      "its strides make elements overlap (nb[%d] = %lld < "
      "%lld bytes spanned by "
      "the smaller dims); shape %s",
      d, static_cast<long long>(t.nb[d]), static_cast<long long>(covered), ShapeStr(t).c_str());
  return false;
}

bool SameView(const Tensor& a, const Tensor& b) {
  if (a.data != b.data || a.dtype != b.dtype) return false;
  for (int i = 0; i < 4; ++i) {
    if (a.ne[i] != b.ne[i] || (a.ne[i] > 1 && a.nb[i] != b.nb[i])) return false;
  }
  return true;
}

bool Overlap(const Tensor& a, const Tensor& b) {
  uintptr_t alo, ahi, blo, bhi;
  ByteSpan(a, &alo, &ahi);
  ByteSpan(b, &blo, &bhi);
  return alo < ahi && blo < bhi && alo < bhi && blo < ahi;
}

// Resolves tensor `id` once per graph.
bool UseTensor(hearth_pcontext* ctx, const hearth_graph* g, int32_t id,
               const BufferRegistryReader& buffers, std::string* why) {
  if (id < 0 || static_cast<uint32_t>(id) >= g->n_tensors) {
    *why = StrFormat("tensor index %d is out of range (graph has %u tensors)", id, g->n_tensors);
    return false;
  }
  if (ctx->tensor_state[id]) return true;
  if (!ResolveTensor(g->tensors[id], buffers, &ctx->tensors[id], why)) {
    *why = StrFormat("tensor %d: ", id) + *why;
    return false;
  }
  ctx->tensor_state[id] = 1;
  return true;
}

// Fills *n for node `index`; false and *why (prefixed by the caller).
bool ResolveNode(hearth_pcontext* ctx, const hearth_graph* g, uint32_t index,
                 const BufferRegistryReader& buffers, Node* n, const OpInfo** op_out,
                 std::string* why) {
  const hearth_node& hn = g->nodes[index];
  const OpInfo* op = FindOp(hn.op);
  if (op == nullptr) {
    *why = StrFormat("op %u is unknown to the cpu plugin", hn.op);
    return false;
  }
  *op_out = op;
  *n = Node();
  n->graph = g;
  n->node = &hn;
  n->index = index;
  n->out_id = hn.output;
  const int n_slots = op->n_required + op->n_optional;
  const int n_extra = op->n_extra_required + op->n_extra_optional;
  if (hn.n_inputs > n_slots) {
    *why = StrFormat("%u inputs given; %s takes at most %d", hn.n_inputs, op->name, n_slots);
    return false;
  }
  if (hn.n_extra_outputs > n_extra || hn.n_extra_outputs < op->n_extra_required) {
    *why = StrFormat("%u extra outputs given; %s takes %d to %d", hn.n_extra_outputs, op->name,
                     op->n_extra_required, n_extra);
    return false;
  }
  if (!UseTensor(ctx, g, hn.output, buffers, why)) {
    *why = "output: " + *why;
    return false;
  }
  n->out = ctx->tensors[hn.output];
  for (int e = 0; e < hn.n_extra_outputs; ++e) {
    const int32_t id = plugin::NodeOutput(g, hn, static_cast<uint32_t>(e + 1));
    n->extra_id[e] = id;
    if (id == -1 && e >= op->n_extra_required) continue;
    if (!UseTensor(ctx, g, id, buffers, why)) {
      *why = StrFormat("output %d: ", e + 1) + *why;
      return false;
    }
    n->has_extra[e] = true;
    n->extra[e] = ctx->tensors[id];
  }
  for (int s = 0; s < n_slots; ++s) {
    const int32_t id = plugin::NodeInput(g, hn, static_cast<uint32_t>(s));
    n->in_id[s] = id;
    if (id == -1) {
      if (s < op->n_required) {
        *why =
            StrFormat("input %d is missing (-1); %s needs %d inputs", s, op->name, op->n_required);
        return false;
      }
      continue;
    }
    if (!UseTensor(ctx, g, id, buffers, why)) {
      *why = StrFormat("input %d: ", s) + *why;
      return false;
    }
    n->has[s] = true;
    n->in[s] = ctx->tensors[id];
  }
  // A repacked weight is only ever the weight input of the ops that read it
  // through its layout, and never written.
  for (int o = -1; o >= -1 - n_extra; --o) {
    if (o < -1 && !n->has_extra[-o - 2]) continue;
    if (SlotTensor(*n, o).layout != WeightLayout::kPlain) {
      *why = SlotName(*n, o) + " is a weight repacked by weight_place; it cannot be written";
      return false;
    }
  }
  const bool reads_weights =
      hn.op == HEARTH_OP_GET_ROWS || hn.op == HEARTH_OP_MUL_MAT || hn.op == HEARTH_OP_MUL_MAT_T;
  for (int s = 0; s < n_slots; ++s) {
    if (n->has[s] && n->in[s].layout != WeightLayout::kPlain && !(reads_weights && s == 0)) {
      *why = SlotName(*n, s) + " is a weight repacked by weight_place; " + op->name +
             " cannot read it there";
      return false;
    }
  }
  if (!op->dtypes_ok(*n, why)) return false;
  // Every output (the first is slot -1, extra e is slot -2 - e) must not
  // overlap itself, another output, or an input other than the one it may
  // update in place.
  for (int o = -1; o >= -1 - n_extra; --o) {
    if (o < -1 && !n->has_extra[-o - 2]) continue;
    const Tensor& out = SlotTensor(*n, o);
    if (!OutputHasNoSelfOverlap(out, why)) {
      *why = SlotName(*n, o) + ": " + *why;
      return false;
    }
    for (int o2 = o - 1; o2 >= -1 - n_extra; --o2) {
      if (!n->has_extra[-o2 - 2] || !Overlap(out, SlotTensor(*n, o2))) continue;
      *why = SlotName(*n, o) + " overlaps " + SlotName(*n, o2);
      return false;
    }
    const int in_place = o == -1 ? -2 : op->in_place_extra[-o - 2];
    for (int s = 0; s < n_slots; ++s) {
      if (!n->has[s] || !Overlap(out, n->in[s])) continue;
      if (o == -1 && op->in_place_ok && SameView(out, n->in[s])) continue;
      if (o < -1 && s == in_place && SameView(out, n->in[s])) continue;
      const bool may = o == -1 ? op->in_place_ok : in_place >= 0;
      *why = SlotName(*n, o) + " overlaps " + SlotName(*n, s) +
             (may ? "; only an exactly identical view (in place) is allowed"
                  : "; this op cannot run in place");
      return false;
    }
  }
  return op->check(*n, why);
}

hearth_pstatus GraphComputeImpl(hearth_pcontext* ctx, const hearth_graph* g) {
  if (ctx == nullptr || g == nullptr) {
    return Fail(HEARTH_P_INVALID_ARGUMENT, "cpu graph_compute: ctx or graph is NULL");
  }
  {
    std::string why;
    if (!plugin::CheckGraphLayout(g, &why)) {
      return Fail(HEARTH_P_INVALID_ARGUMENT, "cpu graph_compute: " + why);
    }
  }
  ctx->tensors.resize(g->n_tensors);
  ctx->tensor_state.assign(g->n_tensors, 0);
  ctx->nodes.resize(g->n_nodes);
  size_t scratch = 0;
  {
    BufferRegistryReader buffers;
    std::string why;
    for (uint32_t i = 0; i < g->n_nodes; ++i) {
      const OpInfo* op = nullptr;
      if (!ResolveNode(ctx, g, i, buffers, &ctx->nodes[i], &op, &why)) {
        return Fail(HEARTH_P_INVALID_ARGUMENT, StrFormat("cpu graph_compute: node %u (%s): %s", i,
                                                         OpNameOf(g->nodes[i].op), why.c_str()));
      }
      scratch = std::max(scratch, op->scratch(ctx->nodes[i], ctx->n_threads));
    }
  }
  if (scratch > ctx->scratch_bytes) {
    HostFree(ctx->scratch);
    ctx->scratch_bytes = 0;
    ctx->scratch = static_cast<uint8_t*>(HostAlloc(scratch, 64));
    if (ctx->scratch == nullptr) {
      return Fail(HEARTH_P_RESOURCE_EXHAUSTED,
                  StrFormat("cpu graph_compute: cannot allocate %zu bytes of scratch", scratch));
    }
    ctx->scratch_bytes = scratch;
  }
  ExecEnv env;
  env.pool = ctx->pool.get();
  env.n_threads = ctx->n_threads;
  env.scratch = ctx->scratch;
  env.scratch_bytes = ctx->scratch_bytes;
  env.dnnl = ctx->dnnl.get();
  std::string why;
  for (uint32_t i = 0; i < g->n_nodes; ++i) {
    const OpInfo* op = FindOp(g->nodes[i].op);
    if (!op->run(ctx->nodes[i], env, &why)) {
      return Fail(HEARTH_P_INVALID_ARGUMENT,
                  StrFormat("cpu graph_compute: node %u (%s): %s", i, op->name, why.c_str()));
    }
  }
  return HEARTH_P_OK;
}

}  // namespace

hearth_pstatus GraphCompute(hearth_pcontext* ctx, const hearth_graph* graph) {
  try {
    return GraphComputeImpl(ctx, graph);
  } catch (const std::bad_alloc&) {
    return Fail(HEARTH_P_RESOURCE_EXHAUSTED, "cpu graph_compute: out of memory");
  } catch (const std::exception& e) {
    return Fail(HEARTH_P_INTERNAL, std::string("cpu graph_compute: ") + e.what());
  }
}

int32_t Supports(hearth_pcontext* ctx, const hearth_graph* g, uint32_t index) {
  std::string why;
  if (ctx == nullptr || !plugin::CheckGraphLayout(g, &why) || index >= g->n_nodes) return 0;
  const hearth_node& hn = g->nodes[index];
  const OpInfo* op = FindOp(hn.op);
  if (op == nullptr) return 0;
  if (hn.n_inputs > op->n_required + op->n_optional ||
      hn.n_extra_outputs > op->n_extra_required + op->n_extra_optional ||
      hn.n_extra_outputs < op->n_extra_required) {
    return 0;
  }
  // Capability only: dtypes of the node's tensors. Shapes and buffers are
  // graph_compute's to check, with a message.
  Node n;
  n.graph = g;
  n.node = &hn;
  n.index = index;
  auto dtype_of = [&](int32_t id, Tensor* t) {
    if (id < 0 || static_cast<uint32_t>(id) >= g->n_tensors) return false;
    t->dtype = g->tensors[id].dtype;
    return true;
  };
  if (!dtype_of(hn.output, &n.out)) return 0;
  n.out_id = hn.output;
  for (int e = 0; e < hn.n_extra_outputs; ++e) {
    const int32_t id = plugin::NodeOutput(g, hn, static_cast<uint32_t>(e + 1));
    n.extra_id[e] = id;
    if (id == -1 && e >= op->n_extra_required) continue;
    if (!dtype_of(id, &n.extra[e])) return 0;
    n.has_extra[e] = true;
  }
  for (int s = 0; s < op->n_required + op->n_optional; ++s) {
    const int32_t id = plugin::NodeInput(g, hn, static_cast<uint32_t>(s));
    n.in_id[s] = id;
    if (id == -1 && s >= op->n_required) continue;
    if (!dtype_of(id, &n.in[s])) return 0;
    n.has[s] = true;
  }
  return op->dtypes_ok(n, &why) ? 1 : 0;
}

}  // namespace hearth::cpu
