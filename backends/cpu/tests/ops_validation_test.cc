// ops_validation_test.cc — graph_compute refuses malformed graphs before
// running anything, with INVALID_ARGUMENT and a message naming the node, the
// op and the problem; supports() answers for every implemented combination.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/tests/ops_test_util.h"

namespace hearth::cpu::testing {
namespace {

class ValidationTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(b_.ok()); }
  // Compute must fail with INVALID_ARGUMENT and every fragment in the message.
  void ExpectRejected(std::initializer_list<const char*> fragments) {
    EXPECT_EQ(b_.Compute(), HEARTH_P_INVALID_ARGUMENT);
    for (const char* f : fragments) {
      EXPECT_NE(Recorder().last_error.find(f), std::string::npos)
          << "message \"" << Recorder().last_error << "\" lacks \"" << f << "\"";
    }
  }
  Backend b_{2};
};

TEST_F(ValidationTest, InputIndexOutOfRange) {
  std::vector<float> a(8, 1.0f);
  int ai = b_.Add(HEARTH_DTYPE_F32, {8}, a.data());
  int oi = b_.Add(HEARTH_DTYPE_F32, {8});
  b_.Node(HEARTH_OP_ADD, oi, {ai, 99});
  ExpectRejected({"node 0 (ADD)", "input 1", "tensor index 99", "2 tensors"});
}

TEST_F(ValidationTest, ShapeMismatch) {
  std::vector<float> a(33, 1.0f);
  int ai = b_.Add(HEARTH_DTYPE_F32, {11, 3}, a.data());
  int bi = b_.Add(HEARTH_DTYPE_F32, {10, 3}, a.data());
  int oi = b_.Add(HEARTH_DTYPE_F32, {11, 3});
  b_.Node(HEARTH_OP_MUL, oi, {ai, bi});
  ExpectRejected({"node 0 (MUL)", "[10, 3, 1, 1]", "does not broadcast"});
}

TEST_F(ValidationTest, MulMatInnerDimensionMismatch) {
  std::vector<float> w(12 * 5, 0.5f), x(13 * 2, 0.5f);
  int wi = b_.Add(HEARTH_DTYPE_F32, {12, 5}, w.data());
  int xi = b_.Add(HEARTH_DTYPE_F32, {13, 2}, x.data());
  int oi = b_.Add(HEARTH_DTYPE_F32, {5, 2});
  b_.Node(HEARTH_OP_MUL_MAT, oi, {wi, xi});
  ExpectRejected({"node 0 (MUL_MAT)", "K = 12", "K = 13"});
}

TEST_F(ValidationTest, RowIdOutOfRange) {
  std::vector<float> table(4 * 6, 1.0f);
  std::vector<int32_t> ids = {1, 5, 6};
  int ti = b_.Add(HEARTH_DTYPE_F32, {4, 6}, table.data());
  int ii = b_.Add(HEARTH_DTYPE_I32, {3}, ids.data());
  int oi = b_.Add(HEARTH_DTYPE_F32, {4, 3});
  b_.Node(HEARTH_OP_GET_ROWS, oi, {ti, ii});
  ExpectRejected({"node 0 (GET_ROWS)", "ids[2] = 6", "6 rows"});
  ids = {-1};
  int i2 = b_.Add(HEARTH_DTYPE_I32, {1}, ids.data());
  int o2 = b_.Add(HEARTH_DTYPE_F32, {4, 1});
  b_.ClearNodes();
  b_.Node(HEARTH_OP_GET_ROWS, o2, {ti, i2});
  ExpectRejected({"ids[0] = -1"});
}

TEST_F(ValidationTest, PositionOutsideCache) {
  const int64_t d = 8, n_ctx = 4;
  std::vector<float> q(d * 2, 0.1f), cache(d * n_ctx, 0.0f);
  std::vector<int32_t> pos = {4};
  int qi = b_.Add(HEARTH_DTYPE_F32, {d, 2, 1}, q.data());
  int ki = b_.Add(HEARTH_DTYPE_F32, {d, 1, 1}, q.data());
  int vi = b_.Add(HEARTH_DTYPE_F32, {d, 1, 1}, q.data());
  int kc = b_.Add(HEARTH_DTYPE_F32, {d, 1, n_ctx}, cache.data());
  int vc = b_.Add(HEARTH_DTYPE_F32, {d, 1, n_ctx}, cache.data());
  int pi = b_.Add(HEARTH_DTYPE_I32, {1}, pos.data());
  int oi = b_.Add(HEARTH_DTYPE_F32, {d, 2, 1});
  b_.Node(HEARTH_OP_ATTENTION, oi, {qi, ki, vi, kc, vc, pi}, {1.0f});
  ExpectRejected({"node 0 (ATTENTION)", "pos[0] = 4", "[0, 4)"});
  // Nothing was written into the caches.
  std::vector<float> after = b_.Read(kc);
  for (float x : after) EXPECT_EQ(x, 0.0f);
}

TEST_F(ValidationTest, NothingRunsWhenALaterNodeIsBad) {
  std::vector<float> a(6, 2.0f);
  int ai = b_.Add(HEARTH_DTYPE_F32, {6}, a.data());
  int o1 = b_.Add(HEARTH_DTYPE_F32, {6});
  int o2 = b_.Add(HEARTH_DTYPE_F32, {6});
  b_.Node(HEARTH_OP_SCALE, o1, {ai}, {3.0f});
  b_.Node(HEARTH_OP_RMS_NORM, o2, {o1}, {-1.0f});
  ExpectRejected({"node 1 (RMS_NORM)", "eps is -1"});
  for (float x : b_.Read(o1)) EXPECT_TRUE(std::isnan(x)) << "node 0 must not have run";
}

TEST_F(ValidationTest, UnknownOpAndMissingInput) {
  std::vector<float> a(6, 2.0f);
  int ai = b_.Add(HEARTH_DTYPE_F32, {6}, a.data());
  int oi = b_.Add(HEARTH_DTYPE_F32, {6});
  b_.Node(999, oi, {ai});
  ExpectRejected({"node 0", "op 999 is unknown"});
  EXPECT_EQ(b_.Supports(0), 0);
  b_.ClearNodes();
  b_.Node(HEARTH_OP_SILU_MUL, oi, {ai});
  ExpectRejected({"node 0 (SILU_MUL)", "input 1 is missing"});
}

TEST_F(ValidationTest, TensorPastItsBuffer) {
  std::vector<float> a(16, 1.0f);
  int ai = b_.Add(HEARTH_DTYPE_F32, {16}, a.data());
  int oi = b_.Add(HEARTH_DTYPE_F32, {16});
  b_.desc(ai).offset = 8;
  b_.Node(HEARTH_OP_SCALE, oi, {ai}, {1.0f});
  ExpectRejected({"node 0 (SCALE)", "tensor 0", "bytes [8, 72)", "(64 bytes)"});
  b_.desc(ai).offset = 0;
  b_.desc(ai).nb[0] = INT64_MAX / 2;  // hostile stride: must not wrap
  ExpectRejected({"tensor 0", "past"});
  b_.desc(ai).nb[0] = 4;
  b_.desc(ai).buffer = reinterpret_cast<hearth_pbuffer*>(&a);
  ExpectRejected({"tensor 0", "not a live buffer"});
}

TEST_F(ValidationTest, BadDescriptorFields) {
  std::vector<float> a(16, 1.0f);
  int ai = b_.Add(HEARTH_DTYPE_F32, {16}, a.data());
  int oi = b_.Add(HEARTH_DTYPE_F32, {16});
  b_.Node(HEARTH_OP_SCALE, oi, {ai}, {1.0f});
  b_.desc(ai).dtype = 77;
  ExpectRejected({"tensor 0", "dtype 77 is unknown"});
  b_.desc(ai).dtype = HEARTH_DTYPE_F32;
  b_.desc(ai).n_dims = 0;
  ExpectRejected({"n_dims is 0"});
  b_.desc(ai).n_dims = 1;
  b_.desc(ai).ne[0] = -2;
  ExpectRejected({"ne[0] = -2"});
  b_.desc(ai).ne[0] = 15;
  b_.desc(ai).offset = 2;
  ExpectRejected({"not aligned to 4 bytes"});
}

TEST_F(ValidationTest, OutputOverlapsInput) {
  std::vector<float> w(16 * 16, 0.5f);
  int wi = b_.Add(HEARTH_DTYPE_F32, {16, 16}, w.data());
  int xi = b_.Add(HEARTH_DTYPE_F32, {16, 16}, w.data());
  b_.Node(HEARTH_OP_MUL_MAT, xi, {wi, xi});
  ExpectRejected({"node 0 (MUL_MAT)", "overlaps input 1", "cannot run in place"});
  // An output whose rows overlap each other (stride 0).
  b_.ClearNodes();
  int oi = b_.Add(HEARTH_DTYPE_F32, {16, 4}, nullptr, {4, 0});
  int ai = b_.Add(HEARTH_DTYPE_F32, {16, 4}, w.data());
  b_.Node(HEARTH_OP_SCALE, oi, {ai}, {1.0f});
  ExpectRejected({"node 0 (SCALE)", "output", "overlap"});
}

TEST_F(ValidationTest, WrongDtypeAndBadParams) {
  std::vector<float> x(8 * 2 * 3, 1.0f);
  std::vector<int32_t> pos = {0, 1, 2};
  int xi = b_.Add(HEARTH_DTYPE_F32, {8, 2, 3}, x.data());
  int pi = b_.Add(HEARTH_DTYPE_I32, {3}, pos.data());
  int oi = b_.Add(HEARTH_DTYPE_F32, {8, 2, 3});
  b_.Node(HEARTH_OP_ROPE, oi, {xi, pi}, {10000.0f, 1.0f}, {7, HEARTH_ROPE_NORMAL});
  ExpectRejected({"node 0 (ROPE)", "n_rot is 7"});
  b_.ClearNodes();
  b_.Node(HEARTH_OP_ROPE, oi, {xi, pi}, {10000.0f, 1.0f}, {8, 1});
  ExpectRejected({"mode is 1"});
  b_.ClearNodes();
  b_.Node(HEARTH_OP_ROPE, oi, {xi, xi}, {10000.0f, 1.0f}, {8, 0});
  ExpectRejected({"input 1 (tensor 0) has dtype F32, want I32"});
  EXPECT_EQ(b_.Supports(0), 0);
}

TEST_F(ValidationTest, SupportsEveryImplementedCombination) {
  std::vector<float> x(64, 1.0f);
  int f32 = b_.Add(HEARTH_DTYPE_F32, {64}, x.data());
  int f16 = b_.Add(HEARTH_DTYPE_F16, {64}, x.data());
  int bf16 = b_.Add(HEARTH_DTYPE_BF16, {64}, x.data());
  int i32 = b_.Add(HEARTH_DTYPE_I32, {64}, x.data());
  int q4k = b_.Add(HEARTH_DTYPE_Q4_K, {256}, nullptr);
  int q8 = b_.Add(HEARTH_DTYPE_Q8_0, {64}, nullptr);
  struct Case {
    uint32_t op;
    int out;
    std::vector<int> in;
    int32_t want;
  };
  const std::vector<Case> cases = {
      {HEARTH_OP_GET_ROWS, f32, {q4k, i32}, 1},
      {HEARTH_OP_GET_ROWS, f32, {bf16, i32}, 1},
      {HEARTH_OP_GET_ROWS, f32, {i32, i32}, 0},
      {HEARTH_OP_MUL_MAT, f32, {q8, f32}, 1},
      {HEARTH_OP_MUL_MAT, f32, {f16, f32}, 1},
      {HEARTH_OP_MUL_MAT, f32, {f32, f16}, 0},
      {HEARTH_OP_ADD, f32, {f32, f32}, 1},
      {HEARTH_OP_ADD, f16, {f32, f32}, 0},
      {HEARTH_OP_COPY, bf16, {f16}, 1},
      {HEARTH_OP_COPY, f32, {q8}, 0},
      {HEARTH_OP_RMS_NORM, f32, {f32, -1}, 1},
      {HEARTH_OP_SOFTMAX, f32, {f32}, 1},
      {HEARTH_OP_ATTENTION, f32, {f32, f32, f32, f16, f32, i32}, 1},
      {HEARTH_OP_ATTENTION, f32, {f32, f32, f32, bf16, f32, i32}, 0},
      {HEARTH_OP_NONE, f32, {f32}, 0},
  };
  for (const Case& c : cases) {
    b_.ClearNodes();
    b_.NodeRaw(c.op, {c.out}, c.in, nullptr, 0);
    EXPECT_EQ(b_.Supports(0), c.want) << "op " << c.op;
  }
  EXPECT_EQ(b_.Supports(5), 0) << "index past the nodes";
}

TEST_F(ValidationTest, EmptyTensorsRunAndTouchNothing) {
  std::vector<float> a(8, 1.0f);
  int ai = b_.Add(HEARTH_DTYPE_F32, {8, 0}, a.data());
  int oi = b_.Add(HEARTH_DTYPE_F32, {8, 0});
  b_.Node(HEARTH_OP_ADD, oi, {ai, ai});
  b_.Node(HEARTH_OP_SILU_MUL, oi, {ai, ai});
  b_.Node(HEARTH_OP_RMS_NORM, oi, {ai}, {1e-6f});
  b_.Node(HEARTH_OP_SOFTMAX, oi, {ai}, {1.0f});
  EXPECT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
  // Attention over zero tokens and zero query heads.
  b_.ClearNodes();
  std::vector<float> cache(8 * 4, 0.0f);
  int q = b_.Add(HEARTH_DTYPE_F32, {8, 0, 0}, a.data());
  int k = b_.Add(HEARTH_DTYPE_F32, {8, 1, 0}, a.data());
  int kc = b_.Add(HEARTH_DTYPE_F32, {8, 1, 4}, cache.data());
  int vc = b_.Add(HEARTH_DTYPE_F32, {8, 1, 4}, cache.data());
  int pos = b_.Add(HEARTH_DTYPE_I32, {0}, a.data());
  int out = b_.Add(HEARTH_DTYPE_F32, {8, 0, 0});
  b_.Node(HEARTH_OP_ATTENTION, out, {q, k, k, kc, vc, pos}, {1.0f});
  EXPECT_EQ(b_.Compute(), HEARTH_P_OK) << Recorder().last_error;
}

// Random malformed (and sometimes well-formed) graphs: graph_compute must
// answer OK or INVALID_ARGUMENT and never touch memory it should not (the
// sanitizer builds run this too).
TEST_F(ValidationTest, RandomGraphsNeverCrash) {
  std::mt19937 rng(2024);
  auto pick = [&](std::initializer_list<int64_t> v) {
    return *(v.begin() + std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng));
  };
  const float fvals[] = {0.0f, 1.0f, -1.0f, 0.5f, 1e4f, NAN, INFINITY};
  std::vector<hearth_pbuffer*> bufs;
  int ok = 0, rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    std::vector<hearth_tensor_desc> t(6);
    // Mostly one shared shape and F32, so that a fair share of graphs is
    // valid and runs; the rest is mutated.
    const int64_t base[3] = {pick({1, 2, 3, 5, 8, 32, 64, 256}), pick({1, 2, 3, 4}),
                             pick({1, 2, 3})};
    for (hearth_tensor_desc& d : t) {
      d = {};
      const uint32_t roll = rng() % 20;
      d.dtype = roll < 13 ? 0 : roll < 16 ? 3 : static_cast<uint32_t>(pick({1, 2, 4, 5, 7, 8, 9}));
      d.n_dims = 3;
      d.ne[0] = base[0];
      d.ne[1] = base[1];
      d.ne[2] = base[2];
      d.ne[3] = 1;
      if (d.dtype == HEARTH_DTYPE_I32) {
        d.n_dims = 1;
        d.ne[0] = base[rng() % 3];
      }
      if (rng() % 6 == 0) d.n_dims = static_cast<uint32_t>(pick({1, 2, 4, 0, 5}));
      if (rng() % 6 == 0) d.ne[rng() % 4] = pick({0, 1, 2, 3, 5, 64});
      const int64_t be = std::max<int64_t>(hearth_dtype_block_elems(d.dtype), 1);
      const int64_t bb = std::max<int64_t>(hearth_dtype_block_bytes(d.dtype), 1);
      d.nb[0] = bb;
      d.nb[1] = std::max<int64_t>(d.ne[0] / be, 1) * bb + (rng() % 8 == 0 ? pick({4, -2}) : 0);
      for (int i = 2; i < 4; ++i) d.nb[i] = d.nb[i - 1] * std::max<int64_t>(d.ne[i - 1], 1);
      if (rng() % 10 == 0) d.nb[rng() % 4] = pick({0, 2, 6, -4, 1 << 20});
      const int64_t want = d.nb[3] * std::max<int64_t>(d.ne[3], 1);
      const int64_t bytes =
          std::max<int64_t>(std::min<int64_t>(want, 1 << 16) + (rng() % 10 == 0 ? -4 : 0), 0);
      hearth_pbuffer* buf = nullptr;
      ASSERT_EQ(b_.vt()->buffer_alloc(b_.ctx(), static_cast<uint64_t>(bytes), &buf), HEARTH_P_OK);
      bufs.push_back(buf);
      uint8_t* p = static_cast<uint8_t*>(b_.vt()->buffer_host_ptr(b_.ctx(), buf));
      if (d.dtype == HEARTH_DTYPE_I32) {
        for (int64_t i = 0; i + 4 <= bytes; i += 4) {
          int32_t v = static_cast<int32_t>(rng() % 5) - (rng() % 40 == 0 ? 3 : 0);
          std::memcpy(p + i, &v, 4);
        }
      } else {
        for (int64_t i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(rng() & 0x3f);
      }
      d.buffer = rng() % 50 == 0 ? nullptr : buf;
      d.offset = rng() % 10 == 0 ? static_cast<uint64_t>(pick({2, 4, 64})) : 0;
    }
    std::vector<hearth_node> nodes(1 + rng() % 3);
    std::vector<int32_t> node_inputs;
    std::vector<uint64_t> params;  // each node: 2 words, e.g. 2 floats + 2 ints (ROPE)
    for (hearth_node& n : nodes) {
      n = {};
      n.op = static_cast<uint32_t>(rng() % (HEARTH_OP_COUNT_ + 1));
      n.output = static_cast<int32_t>(rng() % 40 == 0 ? pick({6, -1}) : rng() % 6);
      n.first_input = static_cast<uint32_t>(node_inputs.size());
      n.n_inputs = static_cast<uint16_t>(rng() % 9);
      n.n_extra_outputs = static_cast<uint16_t>(rng() % 8 == 0 ? rng() % 3 : 0);
      for (int k = 0; k < n.n_inputs + n.n_extra_outputs; ++k) {
        node_inputs.push_back(static_cast<int32_t>(rng() % 30 == 0 ? pick({-1, 9}) : rng() % 6));
      }
      if (n.n_inputs > 2 && rng() % 2) {
        node_inputs[n.first_input + 2] = -1;  // the optional slots of RMS_NORM and ROPE
      }
      n.params_offset = static_cast<uint32_t>(params.size() * 8);
      n.params_size = static_cast<uint32_t>(rng() % 17);
      float f[2];
      int32_t v[2];
      for (float& x : f) x = rng() % 4 ? 0.5f : fvals[rng() % 7];
      for (int32_t& x : v) x = static_cast<int32_t>(pick({0, 2, 2, 2, 4, 8, -1, 64}));
      uint64_t words[2];
      std::memcpy(&words[0], f, 8);
      std::memcpy(&words[1], v, 8);
      params.push_back(words[0]);
      params.push_back(words[1]);
    }
    hearth_graph g{};
    g.struct_size = sizeof(g);
    g.n_tensors = static_cast<uint32_t>(t.size());
    g.tensors = t.data();
    g.n_nodes = static_cast<uint32_t>(nodes.size());
    g.nodes = nodes.data();
    g.n_node_inputs = static_cast<uint32_t>(node_inputs.size());
    g.node_inputs = node_inputs.data();
    g.params_bytes = static_cast<uint32_t>(params.size() * 8);
    g.params = params.data();
    hearth_pstatus st = b_.vt()->graph_compute(b_.ctx(), &g);
    ASSERT_TRUE(st == HEARTH_P_OK || st == HEARTH_P_INVALID_ARGUMENT) << st;
    if (st == HEARTH_P_OK) {
      ++ok;
    } else {
      ++rejected;
      EXPECT_NE(Recorder().last_error.find("node "), std::string::npos) << Recorder().last_error;
    }
    for (uint32_t i = 0; i < nodes.size(); ++i) b_.vt()->supports(b_.ctx(), &g, i);
    for (hearth_pbuffer* b : bufs) b_.vt()->buffer_free(b_.ctx(), b);
    bufs.clear();
  }
  std::printf("random graphs: %d ran, %d refused\n", ok, rejected);
  EXPECT_GT(ok, 0);
  EXPECT_GT(rejected, 0);
}

}  // namespace
}  // namespace hearth::cpu::testing
