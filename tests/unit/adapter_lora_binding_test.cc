// adapter_lora_binding_test.cc — CheckLoraAgainstModel and LoraDeviceB:
// B's device layout against a plain reference (transpose, and for PEFT q/k
// on a ROPE_NORMAL model the per-head interleave written as nested loops),
// the real fixtures of tests/data/lora bound to their real base models (a
// PEFT adapter and its GGUF twin must give the same device bytes), every
// refusal message, and LoraDeviceB refusing what the check refuses or what
// a hand-made target lies about.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "hearth/hearth_plugin.h"
#include "sdk/src/lora/lora_binding.h"
#include "sdk/src/lora/lora_file.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/graph/graph.h"
#include "sdk/src/model/architecture.h"

namespace hearth {
namespace {

using ::testing::HasSubstr;

const std::string kLora = HEARTH_TEST_DATA "/lora/";
const std::string kModels = HEARTH_TEST_DATA "/models/";

struct Base {
  ModelConfig config;
  WeightSet weights;
};

// A model's config and buffer-less weight descriptors, as Model::Load reads them.
Base LoadBase(const std::string& file) {
  Base b;
  auto g = gguf::File::Open(kModels + file);
  EXPECT_TRUE(g.ok()) << g.status();
  if (!g.ok()) return b;
  const Architecture* arch = FindArchitecture(*(*g)->GetString("general.architecture"));
  EXPECT_NE(arch, nullptr);
  if (arch == nullptr) return b;
  EXPECT_TRUE(arch->ReadConfig(**g, &b.config).ok());
  for (const gguf::TensorInfo& t : (*g)->tensors()) {
    Shape s;
    s.n_dims = t.n_dims;
    for (int i = 0; i < 4; ++i) s.ne[i] = t.ne[i];
    b.weights.Add(t.name,
                  ContiguousDesc(static_cast<uint32_t>(gguf::GgmlTypeToHearthDtype(t.type)), s));
  }
  return b;
}

// Device B by the definition: output r of rank column k at k * n_out + r;
// with `heads`, HF row i * hd/2 + j of each head goes to row 2j + i.
std::vector<uint8_t> ReferenceDeviceB(const LoraTensor& b, int64_t heads) {
  const int64_t rank = b.ne[0], n_out = b.ne[1];
  const size_t elem = b.bytes / static_cast<size_t>(rank * n_out);
  std::vector<int64_t> hf_row_of(n_out);
  for (int64_t r = 0; r < n_out; ++r) hf_row_of[r] = r;
  if (heads > 0) {
    const int64_t hd = n_out / heads;
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t j = 0; j < hd / 2; ++j) {
        for (int64_t i = 0; i < 2; ++i) hf_row_of[h * hd + 2 * j + i] = h * hd + i * (hd / 2) + j;
      }
    }
  }
  std::vector<uint8_t> out(b.bytes);
  for (int64_t k = 0; k < rank; ++k) {
    for (int64_t r = 0; r < n_out; ++r) {
      std::memcpy(&out[(k * n_out + r) * elem], b.data + (hf_row_of[r] * rank + k) * elem, elem);
    }
  }
  return out;
}

// A two-layer llama-like model: n_embd 8, 2 heads of 4 for q, 1 for k, tied output.
Base HandBase(int32_t rope_mode) {
  Base b;
  b.config.arch = "llama";
  b.config.n_layer = 2;
  b.config.n_embd = 8;
  b.config.n_head = 2;
  b.config.n_head_kv = 1;
  b.config.head_dim = 4;
  b.config.rope_mode = rope_mode;
  b.weights.Add("token_embd.weight", ContiguousDesc(HEARTH_DTYPE_F32, Shape::Of({8, 16})));
  b.weights.Add("blk.0.attn_q.weight", ContiguousDesc(HEARTH_DTYPE_F32, Shape::Of({8, 8})));
  b.weights.Add("blk.0.attn_k.weight", ContiguousDesc(HEARTH_DTYPE_F32, Shape::Of({8, 4})));
  b.weights.Add("blk.1.ffn_down.weight", ContiguousDesc(HEARTH_DTYPE_F32, Shape::Of({12, 8})));
  return b;
}

// A hand-made adapter whose matrices live in `storage`; values are distinct bytes.
class HandFile {
 public:
  HandFile() { file.path = "hand/adapter_config.json"; }
  void Add(const std::string& weight, int64_t layer, int64_t n_in, int64_t n_out, int64_t rank,
           uint32_t dtype, bool hf_row_order) {
    const size_t elem = dtype == HEARTH_DTYPE_F32 ? 4 : 2;
    LoraTarget t;
    t.weight = weight;
    t.source_module = weight.substr(0, weight.size() - 7);
    t.layer = layer;
    t.rank = rank;
    t.hf_row_order = hf_row_order;
    t.a = Matrix(weight + ".lora_a", dtype, n_in, rank, elem);
    t.b = Matrix(weight + ".lora_b", dtype, rank, n_out, elem);
    file.targets.push_back(t);
  }
  LoraFile file;

 private:
  LoraTensor Matrix(const std::string& name, uint32_t dtype, int64_t ne0, int64_t ne1,
                    size_t elem) {
    storage_.emplace_back(static_cast<size_t>(ne0 * ne1) * elem);
    for (size_t i = 0; i < storage_.back().size(); ++i) {
      storage_.back()[i] = static_cast<uint8_t>(i * 7 + storage_.size());
    }
    LoraTensor m;
    m.dtype = dtype;
    m.ne[0] = ne0;
    m.ne[1] = ne1;
    m.data = storage_.back().data();
    m.bytes = storage_.back().size();
    m.source = name;
    return m;
  }
  std::vector<std::vector<uint8_t>> storage_;  // inner buffers never move
};

TEST(LoraBindingTest, DeviceBIsTheTransposeWithQkRowsInterleavedForPeftOnRopeNormal) {
  for (int32_t rope : {HEARTH_ROPE_NORMAL, HEARTH_ROPE_NEOX}) {
    for (bool hf : {true, false}) {
      for (uint32_t dtype : {HEARTH_DTYPE_F32, HEARTH_DTYPE_F16, HEARTH_DTYPE_BF16}) {
        SCOPED_TRACE(::testing::Message() << "rope " << rope << " hf " << hf << " dtype " << dtype);
        const Base base = HandBase(rope);
        HandFile h;
        h.Add("blk.0.attn_q.weight", 0, 8, 8, 3, dtype, hf);
        h.Add("blk.0.attn_k.weight", 0, 8, 4, 2, dtype, hf);
        h.Add("blk.1.ffn_down.weight", 1, 12, 8, 1, dtype, hf);
        h.Add("output.weight", -1, 8, 16, 2, dtype, hf);
        ASSERT_TRUE(CheckLoraAgainstModel(h.file, base.config, base.weights).ok());
        const bool permute = hf && rope == HEARTH_ROPE_NORMAL;
        const int64_t heads[] = {permute ? 2 : 0, permute ? 1 : 0, 0, 0};
        for (size_t i = 0; i < h.file.targets.size(); ++i) {
          SCOPED_TRACE(h.file.targets[i].weight);
          auto b = LoraDeviceB(h.file, i, base.config, base.weights);
          ASSERT_TRUE(b.ok()) << b.status();
          EXPECT_EQ(*b, ReferenceDeviceB(h.file.targets[i].b, heads[i]));
        }
      }
    }
  }
}

TEST(LoraBindingTest, PeftAdapterAndItsGgufTwinGiveTheSameDeviceBytes) {
  for (const char* name : {"llama-all", "qwen2-all"}) {
    SCOPED_TRACE(name);
    const Base base =
        LoadBase(std::string("tiny-") + (name[0] == 'l' ? "llama" : "qwen2") + "-f32.gguf");
    auto peft = LoadLoraFile(kLora + name);
    auto gguf = LoadLoraFile(kLora + name + ".gguf");
    ASSERT_TRUE(peft.ok()) << peft.status();
    ASSERT_TRUE(gguf.ok()) << gguf.status();
    ASSERT_TRUE(CheckLoraAgainstModel(**peft, base.config, base.weights).ok());
    ASSERT_TRUE(CheckLoraAgainstModel(**gguf, base.config, base.weights).ok());
    ASSERT_EQ((*peft)->targets.size(), (*gguf)->targets.size());
    for (size_t i = 0; i < (*peft)->targets.size(); ++i) {
      SCOPED_TRACE((*peft)->targets[i].weight);
      auto p = LoraDeviceB(**peft, i, base.config, base.weights);
      auto g = LoraDeviceB(**gguf, i, base.config, base.weights);
      ASSERT_TRUE(p.ok()) << p.status();
      ASSERT_TRUE(g.ok()) << g.status();
      EXPECT_EQ(*p, *g);
      // GGUF rows are already in the model's order: a plain transpose.
      EXPECT_EQ(*g, ReferenceDeviceB((*gguf)->targets[i].b, 0));
    }
  }
}

TEST(LoraBindingTest, RefusalsNameTheFileTheTensorAndTheMismatch) {
  const Base base = HandBase(HEARTH_ROPE_NORMAL);
  struct Case {
    const char* what;
    void (*edit)(HandFile*);
    std::string message;
  };
  const Case cases[] = {
      {"arch", [](HandFile* h) { h->file.base_arch = "qwen2"; },
       "hand/adapter_config.json: the adapter is for architecture 'qwen2' but the model is "
       "'llama'"},
      {"layer", [](HandFile* h) { h->file.targets[0].layer = 2; },
       "hand/adapter_config.json: blk.0.attn_q targets layer 2 but the model has 2 layers (an "
       "adapter for a different model?)"},
      {"weight", [](HandFile* h) { h->file.targets[0].weight = "blk.0.attn_v.weight"; },
       "hand/adapter_config.json: blk.0.attn_q targets 'blk.0.attn_v.weight', which the model "
       "does not have"},
      {"n_in", [](HandFile* h) { h->file.targets[0].a.ne[0] = 9; },
       "hand/adapter_config.json: blk.0.attn_q.weight.lora_a takes 9 inputs but the model's "
       "blk.0.attn_q.weight takes 8 (an adapter for a different hidden size?)"},
      {"n_out", [](HandFile* h) { h->file.targets[0].b.ne[1] = 6; },
       "hand/adapter_config.json: blk.0.attn_q.weight.lora_b has 6 outputs but the model's "
       "blk.0.attn_q.weight has 8 (an adapter for a different model?)"},
      {"rank", [](HandFile* h) { h->file.targets[0].a.ne[1] = 3; },
       "hand/adapter_config.json: blk.0.attn_q.weight.lora_a has rank 3 but "
       "blk.0.attn_q.weight.lora_b has rank 2"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    HandFile h;
    h.Add("blk.0.attn_q.weight", 0, 8, 8, 2, HEARTH_DTYPE_F32, true);
    c.edit(&h);
    const absl::Status st = CheckLoraAgainstModel(h.file, base.config, base.weights);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(st.message(), c.message);
    // The layout refuses the same target with the same words, before reading B.
    auto b = LoraDeviceB(h.file, 0, base.config, base.weights);
    EXPECT_EQ(b.status(), st);
  }
}

TEST(LoraBindingTest, HeadsThatDoNotSplitEvenlyAreRefusedOnlyWhereRowsArePermuted) {
  Base base = HandBase(HEARTH_ROPE_NORMAL);
  base.config.n_head = 3;     // 8 q rows: no 3 heads
  base.config.n_head_kv = 4;  // 4 k rows: heads of 1, odd
  for (const char* weight : {"blk.0.attn_q.weight", "blk.0.attn_k.weight"}) {
    SCOPED_TRACE(weight);
    HandFile h;
    const bool q = std::string(weight).find("attn_q") != std::string::npos;
    h.Add(weight, 0, 8, q ? 8 : 4, 2, HEARTH_DTYPE_F32, true);
    const absl::Status st = CheckLoraAgainstModel(h.file, base.config, base.weights);
    EXPECT_EQ(st.message(), std::string("hand/adapter_config.json: ") + weight + ".lora_b has " +
                                (q ? "8" : "4") + " rows, which do not split into " +
                                (q ? "3" : "4") + " heads of an even size");
    EXPECT_EQ(LoraDeviceB(h.file, 0, base.config, base.weights).status(), st);
    // A GGUF B (rows already in the model's order) is not split at all.
    h.file.targets[0].hf_row_order = false;
    EXPECT_TRUE(CheckLoraAgainstModel(h.file, base.config, base.weights).ok());
    EXPECT_TRUE(LoraDeviceB(h.file, 0, base.config, base.weights).ok());
  }
}

TEST(LoraBindingTest, DeviceBRefusesATargetWhoseGeometryLies) {
  const Base base = HandBase(HEARTH_ROPE_NORMAL);
  struct Case {
    const char* what;
    void (*edit)(LoraTensor*);
    const char* message;
  };
  const Case cases[] = {
      {"short", [](LoraTensor* b) { b->bytes -= 4; }, "claims 60 bytes for a 2 x 8 F32 matrix"},
      {"long", [](LoraTensor* b) { b->bytes += 4; }, "claims 68 bytes for a 2 x 8 F32 matrix"},
      {"no data", [](LoraTensor* b) { b->data = nullptr; },
       "claims 64 bytes (no data) for a 2 x 8 F32 matrix"},
      {"dtype", [](LoraTensor* b) { b->dtype = HEARTH_DTYPE_Q8_0; },
       "is Q8_0; a LoRA matrix must be F32, F16 or BF16"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    HandFile h;
    h.Add("blk.0.attn_q.weight", 0, 8, 8, 2, HEARTH_DTYPE_F32, true);
    c.edit(&h.file.targets[0].b);
    auto b = LoraDeviceB(h.file, 0, base.config, base.weights);
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(b.status().message(), HasSubstr(c.message));
    EXPECT_THAT(b.status().message(), HasSubstr("blk.0.attn_q.weight.lora_b"));
  }
  HandFile h;
  h.Add("blk.0.attn_q.weight", 0, 8, 8, 2, HEARTH_DTYPE_F32, true);
  auto past = LoraDeviceB(h.file, 1, base.config, base.weights);
  EXPECT_EQ(past.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(past.status().message(), "hand/adapter_config.json: no target 1 (the adapter has 1)");
}

TEST(LoraBindingTest, RealAdaptersAgainstTheWrongBaseAreRefused) {
  const Base llama = LoadBase("tiny-llama-f32.gguf");
  auto qwen_gguf = LoadLoraFile(kLora + "qwen2-all.gguf");
  ASSERT_TRUE(qwen_gguf.ok()) << qwen_gguf.status();
  const absl::Status st = CheckLoraAgainstModel(**qwen_gguf, llama.config, llama.weights);
  EXPECT_THAT(st.message(), HasSubstr("the adapter is for architecture 'qwen2' but the model is "
                                      "'llama'"));
  auto hidden = LoadLoraFile(kLora + "bad/hidden-32");
  ASSERT_TRUE(hidden.ok()) << hidden.status();
  EXPECT_THAT(CheckLoraAgainstModel(**hidden, llama.config, llama.weights).message(),
              HasSubstr("takes 32 inputs but the model's blk.0.attn_q.weight takes 64"));
  for (size_t i = 0; i < (*hidden)->targets.size(); ++i) {
    EXPECT_FALSE(LoraDeviceB(**hidden, i, llama.config, llama.weights).ok());
  }
}

}  // namespace
}  // namespace hearth
