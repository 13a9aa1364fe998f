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
    x = g.Op(HEARTH_OP_SCALE, HEARTH_DTYPE_F32, Shape::Of({1024}), {x}, {2.0f});
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
  int y = g.Op(HEARTH_OP_SCALE, HEARTH_DTYPE_F32, Shape::Of({16, 8}), {x}, {1.0f});
  int last = g.Rows(y, 7, 1);
  int z = g.Op(HEARTH_OP_SCALE, HEARTH_DTYPE_F32, Shape::Of({16, 1}), {last}, {1.0f});
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
  EXPECT_EQ(view.nodes[1].inputs[0], last);
  EXPECT_EQ(view.nodes[1].inputs[1], -1);
}

TEST(GraphTest, ShapeKeyIgnoresBuffersButNotShapes) {
  auto build = [](int64_t n) {
    Graph g;
    int x = g.Input(HEARTH_DTYPE_F32, Shape::Of({n}));
    g.MarkOutput(g.Op(HEARTH_OP_SCALE, HEARTH_DTYPE_F32, Shape::Of({n}), {x}, {1.0f}));
    g.Plan();
    return g.view().shape_key;
  };
  EXPECT_EQ(build(32), build(32));
  EXPECT_NE(build(32), build(33));
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
