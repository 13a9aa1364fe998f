// Tests of the graph builder's arena planning: live tensors never overlap,
// dead ones are reused, views keep their bases alive, outputs survive.
#include "sdk/src/graph/graph.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace hearth {
namespace {

struct Interval {
  uint64_t begin, end;
};

bool Overlap(const hearth_tensor_desc& a, uint64_t a_bytes, const hearth_tensor_desc& b,
             uint64_t b_bytes) {
  return a.offset < b.offset + b_bytes && b.offset < a.offset + a_bytes;
}

uint64_t Bytes(const hearth_tensor_desc& d) { return static_cast<uint64_t>(d.nb[3] * d.ne[3]); }

TEST(GraphTest, ChainReusesMemory) {
  Graph g;
  int x = g.Input(HEARTH_DTYPE_F32, Shape::Of({1024}));
  for (int i = 0; i < 10; ++i) {
    x = g.Op(HEARTH_OP_SCALE, HEARTH_DTYPE_F32, Shape::Of({1024}), {x}, hearth_scale_params{2.0f});
  }
  g.MarkOutput(x);
  const uint64_t arena = g.Plan();
  // A chain needs at most two live 4 KiB tensors at a time (+ the input
  // until its reader ran), never eleven.
  EXPECT_LE(arena, 3u * 4096);
  EXPECT_GE(arena, 2u * 4096);
}

TEST(GraphTest, NodeOutputNeverOverlapsItsInputs) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 50; ++trial) {
    Graph g;
    std::vector<int> live = {g.Input(HEARTH_DTYPE_F32, Shape::Of({64, 3}))};
    std::vector<std::pair<int, std::vector<int>>> nodes;
    for (int i = 0; i < 40; ++i) {
      int a = live[rng() % live.size()], b = live[rng() % live.size()];
      int64_t rows = 1 + rng() % 5;
      int out = g.Op(HEARTH_OP_ADD, HEARTH_DTYPE_F32, Shape::Of({64, rows}), {a, b});
      nodes.push_back({out, {a, b}});
      live.push_back(out);
      if (rng() % 3 == 0) live.push_back(g.Reshape(out, Shape::Of({64 * rows})));
    }
    g.MarkOutput(live.back());
    g.Plan();
    g.Bind(nullptr);
    // For each node, its output must not overlap any tensor read by this or
    // any later node that was produced before it (i.e. still live).
    for (size_t i = 0; i < nodes.size(); ++i) {
      const auto& out = g.tensor(nodes[i].first);
      for (size_t j = i; j < nodes.size(); ++j) {
        for (int in : nodes[j].second) {
          if (in == nodes[i].first) continue;
          const auto& d = g.tensor(in);
          // Inputs of node j produced before node i must not be clobbered by
          // node i's output: find whether `in` was produced at or before i.
          bool produced_before = false;
          for (size_t k = 0; k < i; ++k) {
            if (nodes[k].first == in) produced_before = true;
          }
          if (in == 0) produced_before = true;
          if (produced_before && d.offset != out.offset) {
            EXPECT_FALSE(Overlap(out, Bytes(out), d, Bytes(d)))
                << "trial " << trial << " node " << i << " output overlaps input of node " << j;
          }
        }
      }
    }
  }
}

TEST(GraphTest, RowsViewPointsIntoBase) {
  Graph g;
  int x = g.Input(HEARTH_DTYPE_F32, Shape::Of({16, 8}));
  int y =
      g.Op(HEARTH_OP_SCALE, HEARTH_DTYPE_F32, Shape::Of({16, 8}), {x}, hearth_scale_params{1.0f});
  int last = g.Rows(y, 7, 1);
  int z = g.Op(HEARTH_OP_SCALE, HEARTH_DTYPE_F32, Shape::Of({16, 1}), {last},
               hearth_scale_params{1.0f});
  g.MarkOutput(z);
  g.Plan();
  g.Bind(nullptr);
  EXPECT_EQ(g.tensor(last).offset, g.tensor(y).offset + 7 * 16 * 4);
  EXPECT_EQ(g.tensor(last).ne[0], 16);
  EXPECT_EQ(g.tensor(last).ne[1], 1);
  // z must not overlap y, which it reads through the view.
  EXPECT_FALSE(Overlap(g.tensor(z), Bytes(g.tensor(z)), g.tensor(y), Bytes(g.tensor(y))));
  hearth_graph view = g.view();
  EXPECT_EQ(view.n_nodes, 2u);
  ASSERT_EQ(view.nodes[1].n_inputs, 1u);
  EXPECT_EQ(view.node_inputs[view.nodes[1].first_input], last);
  EXPECT_EQ(view.nodes[1].n_extra_outputs, 0u);
  ASSERT_EQ(view.nodes[1].params_size, sizeof(hearth_scale_params));
  EXPECT_EQ(view.nodes[1].params_offset % 8, 0u);
}

// A stand-in buffer handle: graphs only carry the pointer, never read it.
hearth_pbuffer* FakeBuffer(uintptr_t id) { return reinterpret_cast<hearth_pbuffer*>(id * 64); }

struct Keys {
  uint64_t plan, binding;
};

// x -> SCALE(s) -> ROPE(theta) over one external weight-like tensor.
Keys BuildAndBind(int64_t n, float s, float theta, hearth_pbuffer* arena, uint64_t ext_offset) {
  Graph g;
  hearth_tensor_desc ext = ContiguousDesc(HEARTH_DTYPE_F32, Shape::Of({n}));
  ext.buffer = FakeBuffer(7);
  ext.offset = ext_offset;
  const int w = g.External(ext);
  const int pos = g.Input(HEARTH_DTYPE_I32, Shape::Of({1}));
  int x = g.Op(HEARTH_OP_MUL, HEARTH_DTYPE_F32, Shape::Of({n}), {w, w});
  x = g.Op(HEARTH_OP_SCALE, HEARTH_DTYPE_F32, Shape::Of({n}), {x}, hearth_scale_params{s});
  x = g.Op(HEARTH_OP_ROPE, HEARTH_DTYPE_F32, Shape::Of({n, 1, 1}), {x, pos},
           hearth_rope_params{theta, 1.0f, static_cast<int32_t>(n), HEARTH_ROPE_NEOX});
  g.MarkOutput(x);
  g.Plan();
  g.Bind(arena);
  const hearth_graph v = g.view();
  EXPECT_EQ(v.plan_key, g.plan_key());
  EXPECT_EQ(v.binding_key, g.binding_key());
  return {v.plan_key, v.binding_key};
}

TEST(GraphTest, PlanKeyCoversShapesAndNothingElse) {
  RegisterBufferIdentity(FakeBuffer(7));
  RegisterBufferIdentity(FakeBuffer(1));
  RegisterBufferIdentity(FakeBuffer(2));
  const Keys base = BuildAndBind(32, 2.0f, 10000.0f, FakeBuffer(1), 0);
  EXPECT_NE(base.plan, 0u);
  EXPECT_NE(base.binding, 0u);
  // Identical graphs on identical buffers: both keys equal.
  const Keys same = BuildAndBind(32, 2.0f, 10000.0f, FakeBuffer(1), 0);
  EXPECT_EQ(same.plan, base.plan);
  EXPECT_EQ(same.binding, base.binding);
  // Another shape: another plan.
  EXPECT_NE(BuildAndBind(64, 2.0f, 10000.0f, FakeBuffer(1), 0).plan, base.plan);
}

TEST(GraphTest, BindingKeyChangesWithParamsBuffersAndOffsets) {
  RegisterBufferIdentity(FakeBuffer(7));
  RegisterBufferIdentity(FakeBuffer(1));
  RegisterBufferIdentity(FakeBuffer(2));
  const Keys base = BuildAndBind(32, 2.0f, 10000.0f, FakeBuffer(1), 0);
  // Only a params value differs (a LoRA scale, a rope base): same plan,
  // another binding.
  for (const Keys k : {BuildAndBind(32, 2.5f, 10000.0f, FakeBuffer(1), 0),
                       BuildAndBind(32, 2.0f, 500000.0f, FakeBuffer(1), 0)}) {
    EXPECT_EQ(k.plan, base.plan);
    EXPECT_NE(k.binding, base.binding);
  }
  // Only the arena differs (a rebind after the arena grew).
  const Keys other_arena = BuildAndBind(32, 2.0f, 10000.0f, FakeBuffer(2), 0);
  EXPECT_EQ(other_arena.plan, base.plan);
  EXPECT_NE(other_arena.binding, base.binding);
  // Only an external tensor's offset differs.
  const Keys moved = BuildAndBind(32, 2.0f, 10000.0f, FakeBuffer(1), 128);
  EXPECT_EQ(moved.plan, base.plan);
  EXPECT_NE(moved.binding, base.binding);
  // A buffer freed and another allocated at the same address is another
  // buffer: a captured stream must not replay against it.
  ForgetBufferIdentity(FakeBuffer(1));
  RegisterBufferIdentity(FakeBuffer(1));
  const Keys reused = BuildAndBind(32, 2.0f, 10000.0f, FakeBuffer(1), 0);
  EXPECT_EQ(reused.plan, base.plan);
  EXPECT_NE(reused.binding, base.binding);
}

TEST(GraphTest, ExtraOutputsFollowTheInputsAndArePlanned) {
  Graph g;
  const int q = g.Input(HEARTH_DTYPE_F32, Shape::Of({8, 2, 3}));
  const std::vector<int> outs = g.OpOutputs(
      HEARTH_OP_SILU_MUL_BACK,
      {{HEARTH_DTYPE_F32, Shape::Of({8, 2, 3})}, {HEARTH_DTYPE_F32, Shape::Of({8, 2, 3})}},
      {q, q, q});
  ASSERT_EQ(outs.size(), 2u);
  g.MarkOutput(outs[0]);
  g.MarkOutput(outs[1]);
  g.Plan();
  g.Bind(nullptr);
  const hearth_graph v = g.view();
  ASSERT_EQ(v.n_nodes, 1u);
  EXPECT_EQ(v.nodes[0].output, outs[0]);
  EXPECT_EQ(v.nodes[0].n_inputs, 3u);
  ASSERT_EQ(v.nodes[0].n_extra_outputs, 1u);
  EXPECT_EQ(v.node_inputs[v.nodes[0].first_input + 3], outs[1]);
  EXPECT_EQ(v.nodes[0].params_size, 0u);
  // Both outputs are live at once, so they do not share bytes.
  EXPECT_FALSE(Overlap(g.tensor(outs[0]), Bytes(g.tensor(outs[0])), g.tensor(outs[1]),
                       Bytes(g.tensor(outs[1]))));
}

TEST(GraphTest, QuantizedContiguousStrides) {
  hearth_tensor_desc d = ContiguousDesc(HEARTH_DTYPE_Q4_K, Shape::Of({512, 3}));
  EXPECT_EQ(d.nb[0], 144);
  EXPECT_EQ(d.nb[1], 2 * 144);
  EXPECT_EQ(d.nb[2], 3 * 2 * 144);
  EXPECT_EQ(OpName(HEARTH_OP_ATTENTION), "attention");
  EXPECT_EQ(DtypeName(HEARTH_DTYPE_Q6_K), "Q6_K");
  EXPECT_EQ(DtypeName(HEARTH_DTYPE_Q4_1), "Q4_1");
  EXPECT_EQ(DtypeName(HEARTH_DTYPE_COUNT_), "dtype " + std::to_string(HEARTH_DTYPE_COUNT_));
  EXPECT_EQ(OpName(999), "op 999");
}

}  // namespace
}  // namespace hearth
