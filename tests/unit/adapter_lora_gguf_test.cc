// adapter_lora_gguf_test.cc — GGUF LoRA adapters (llama.cpp's converter
// layout) parsed without a base model, on images built with gguf_builder.h:
// the metadata rules, tensor names, types, shapes and pairs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "hearth/hearth_plugin.h"
#include "sdk/src/lora/lora_file.h"
#include "sdk/src/format/gguf.h"
#include "tests/unit/gguf_builder.h"

namespace hearth {
namespace {

using ::hearth::testing::GgufBuilder;
using ::testing::HasSubstr;

// The header keys of a converter-written LoRA file; `skip` leaves one out.
GgufBuilder Header(const std::string& skip = "") {
  GgufBuilder b;
  if (skip != "general.architecture") b.AddString("general.architecture", "llama");
  if (skip != "general.type") b.AddString("general.type", "adapter");
  if (skip != "adapter.type") b.AddString("adapter.type", "lora");
  if (skip != "adapter.lora.alpha") b.AddF32("adapter.lora.alpha", 8.0f);
  return b;
}

// lora_a ne [n_in, r], lora_b ne [r, n_out].
void AddPair(GgufBuilder* b, const std::string& weight, uint64_t r, uint64_t n_in, uint64_t n_out,
             uint32_t type = GgufBuilder::kTF32) {
  b->AddTensor(weight + ".lora_a", type, {n_in, r});
  b->AddTensor(weight + ".lora_b", type, {r, n_out});
}

struct Parsed {
  std::vector<uint8_t> image;
  absl::StatusOr<std::unique_ptr<LoraFile>> file = absl::UnknownError("not parsed");
};

std::unique_ptr<Parsed> Parse(GgufBuilder* b) {
  auto p = std::make_unique<Parsed>();
  p->image = b->Build();
  auto g = gguf::File::FromMemory(p->image.data(), p->image.size(), "lora.gguf");
  if (!g.ok()) {
    p->file = g.status();
    return p;
  }
  p->file = ParseGgufLora(std::move(*g));
  return p;
}

void ExpectError(GgufBuilder* b, absl::StatusCode code, const std::vector<std::string>& parts) {
  auto p = Parse(b);
  ASSERT_FALSE(p->file.ok());
  EXPECT_EQ(p->file.status().code(), code) << p->file.status();
  EXPECT_THAT(std::string(p->file.status().message()), HasSubstr("lora.gguf: "));
  for (const std::string& s : parts) {
    EXPECT_THAT(std::string(p->file.status().message()), HasSubstr(s));
  }
}

TEST(LoraGgufTest, ParsesConverterLayout) {
  GgufBuilder b = Header();
  b.AddString("general.name", "tiny-llama-lora");
  AddPair(&b, "output.weight", 2, 16, 40);
  AddPair(&b, "blk.1.attn_v.weight", 4, 16, 8);
  AddPair(&b, "blk.0.ffn_down.weight", 4, 24, 16);
  AddPair(&b, "blk.10.attn_q.weight", 4, 16, 16);
  auto p = Parse(&b);
  ASSERT_TRUE(p->file.ok()) << p->file.status();
  const LoraFile& f = **p->file;
  EXPECT_EQ(f.format, LoraFormat::kGguf);
  EXPECT_EQ(f.path, "lora.gguf");
  EXPECT_EQ(f.base_arch, "llama");
  EXPECT_EQ(f.base_model, "tiny-llama-lora");
  EXPECT_EQ(f.rank, 4);  // the largest
  EXPECT_EQ(f.alpha, 8.0f);
  EXPECT_FALSE(f.use_rslora);
  ASSERT_NE(f.gguf_file, nullptr);
  EXPECT_EQ(f.safetensors_file, nullptr);
  EXPECT_EQ(f.n_params, 2u * (16 + 40) + 4u * (16 + 8) + 4u * (24 + 16) + 4u * (16 + 16));

  std::vector<std::string> weights;
  for (const LoraTarget& t : f.targets) weights.push_back(t.weight);
  EXPECT_EQ(weights, (std::vector<std::string>{"blk.0.ffn_down.weight", "blk.1.attn_v.weight",
                                               "blk.10.attn_q.weight", "output.weight"}));
  const LoraTarget& down = f.targets[0];
  EXPECT_EQ(down.source_module, "blk.0.ffn_down");
  EXPECT_EQ(down.layer, 0);
  EXPECT_EQ(down.rank, 4);
  EXPECT_EQ(down.scale, 2.0f);
  EXPECT_FALSE(down.hf_row_order);
  EXPECT_EQ(down.a.ne[0], 24);
  EXPECT_EQ(down.a.ne[1], 4);
  EXPECT_EQ(down.b.ne[0], 4);
  EXPECT_EQ(down.b.ne[1], 16);
  EXPECT_EQ(down.a.dtype, static_cast<uint32_t>(HEARTH_DTYPE_F32));
  EXPECT_EQ(down.a.source, "blk.0.ffn_down.weight.lora_a");
  EXPECT_EQ(down.b.source, "blk.0.ffn_down.weight.lora_b");
  const gguf::TensorInfo* a = f.gguf_file->FindTensor("blk.0.ffn_down.weight.lora_a");
  EXPECT_EQ(down.a.data, a->data);
  EXPECT_EQ(down.a.bytes, a->size);

  const LoraTarget& out = f.targets.back();
  EXPECT_EQ(out.layer, -1);
  EXPECT_EQ(out.source_module, "output");
  EXPECT_EQ(out.rank, 2);
  EXPECT_EQ(out.scale, 4.0f);  // alpha / this target's rank
}

TEST(LoraGgufTest, AcceptsHalfTypesF64AlphaAndBasename) {
  GgufBuilder b;
  b.AddString("general.architecture", "qwen2")
      .AddString("general.type", "adapter")
      .AddString("adapter.type", "lora")
      .AddF64("adapter.lora.alpha", 3.0)
      .AddString("general.basename", "qwen-base");
  AddPair(&b, "blk.0.attn_k.weight", 3, 8, 4, GgufBuilder::kTF16);
  AddPair(&b, "blk.0.ffn_gate.weight", 3, 8, 4, GgufBuilder::kTBF16);
  auto p = Parse(&b);
  ASSERT_TRUE(p->file.ok()) << p->file.status();
  const LoraFile& f = **p->file;
  EXPECT_EQ(f.base_model, "qwen-base");
  EXPECT_EQ(f.base_arch, "qwen2");
  EXPECT_EQ(f.Find("blk.0.attn_k.weight")->a.dtype, static_cast<uint32_t>(HEARTH_DTYPE_F16));
  EXPECT_EQ(f.Find("blk.0.ffn_gate.weight")->b.dtype, static_cast<uint32_t>(HEARTH_DTYPE_BF16));
  EXPECT_FLOAT_EQ(f.targets[0].scale, 1.0f);
}

TEST(LoraGgufTest, RejectsFilesThatAreNotLoraAdapters) {
  const auto err = absl::StatusCode::kInvalidArgument;
  GgufBuilder no_type = Header("general.type");
  AddPair(&no_type, "blk.0.attn_q.weight", 4, 8, 8);
  ExpectError(&no_type, err, {"not an adapter: general.type is missing"});

  GgufBuilder model = Header("general.type");
  model.AddString("general.type", "model");
  AddPair(&model, "blk.0.attn_q.weight", 4, 8, 8);
  ExpectError(&model, err, {"not an adapter: general.type is 'model'"});

  GgufBuilder typed = Header("general.type");
  typed.AddU32("general.type", 1);
  AddPair(&typed, "blk.0.attn_q.weight", 4, 8, 8);
  ExpectError(&typed, err, {"'general.type' is u32, expected a string"});

  GgufBuilder no_adapter_type = Header("adapter.type");
  AddPair(&no_adapter_type, "blk.0.attn_q.weight", 4, 8, 8);
  ExpectError(&no_adapter_type, err, {"adapter.type is missing (expected \"lora\")"});

  GgufBuilder control = Header("adapter.type");
  control.AddString("adapter.type", "control_vector");
  AddPair(&control, "blk.0.attn_q.weight", 4, 8, 8);
  ExpectError(&control, absl::StatusCode::kUnimplemented,
              {"adapter.type is 'control_vector'; hearth reads LoRA adapters only"});

  GgufBuilder alora = Header();
  alora.AddArray<uint32_t>("adapter.alora.invocation_tokens", GgufBuilder::kU32, {1, 2});
  AddPair(&alora, "blk.0.attn_q.weight", 4, 8, 8);
  ExpectError(&alora, absl::StatusCode::kUnimplemented, {"adapter.alora.invocation_tokens"});

  GgufBuilder no_arch = Header("general.architecture");
  AddPair(&no_arch, "blk.0.attn_q.weight", 4, 8, 8);
  ExpectError(&no_arch, err, {"general.architecture is missing"});
}

TEST(LoraGgufTest, RejectsBadAlpha) {
  const auto err = absl::StatusCode::kInvalidArgument;
  GgufBuilder missing = Header("adapter.lora.alpha");
  AddPair(&missing, "blk.0.attn_q.weight", 4, 8, 8);
  ExpectError(&missing, err, {"adapter.lora.alpha is missing"});
  for (float bad : {0.0f, -0.0f, std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::infinity()}) {
    GgufBuilder b = Header("adapter.lora.alpha");
    b.AddF32("adapter.lora.alpha", bad);
    AddPair(&b, "blk.0.attn_q.weight", 4, 8, 8);
    ExpectError(&b, err, {"adapter.lora.alpha is ", "expected a finite non-zero number"});
  }
  GgufBuilder too_big = Header("adapter.lora.alpha");
  too_big.AddF64("adapter.lora.alpha", 1e300);
  AddPair(&too_big, "blk.0.attn_q.weight", 4, 8, 8);
  ExpectError(&too_big, err, {"adapter.lora.alpha is 1e+300"});
  GgufBuilder integer = Header("adapter.lora.alpha");
  integer.AddU32("adapter.lora.alpha", 8);
  AddPair(&integer, "blk.0.attn_q.weight", 4, 8, 8);
  ExpectError(&integer, err, {"'adapter.lora.alpha' is u32, expected f32 or f64"});
}

// Issue 17: a GGUF LoRA must be refused wherever the same PEFT adapter is
// (one rule, lora_internal::AlphaProblem): an alpha that is zero to
// flush-to-zero arithmetic, or a scale alpha / r that is; and an empty
// general.architecture, which would skip the check against the model.
TEST(LoraGgufTest, AlphaNearZeroAndAnEmptyArchitectureAreRefused) {
  const auto err = absl::StatusCode::kInvalidArgument;
  for (double tiny : {1e-40, -1e-40, 1.1e-38, 1e-45}) {
    GgufBuilder b = Header("adapter.lora.alpha");
    b.AddF64("adapter.lora.alpha", tiny);
    AddPair(&b, "blk.0.attn_q.weight", 4, 8, 8);
    ExpectError(
        &b, err,
        {"adapter.lora.alpha is ", "below the least normal float", "switches the adapter off"});
  }
  GgufBuilder f32 = Header("adapter.lora.alpha");
  f32.AddF32("adapter.lora.alpha", 1e-40f);  // a subnormal float
  AddPair(&f32, "blk.0.attn_q.weight", 4, 8, 8);
  ExpectError(&f32, err, {"below the least normal float"});
  // Alpha itself normal, alpha / r not.
  GgufBuilder scale = Header("adapter.lora.alpha");
  scale.AddF32("adapter.lora.alpha", 2e-38f);
  AddPair(&scale, "blk.0.attn_q.weight", 64, 8, 8);
  ExpectError(&scale, err, {"blk.0.attn_q.weight: scale alpha / r", "is not a usable float"});
  // The smallest alpha that is a normal float is fine.
  GgufBuilder least = Header("adapter.lora.alpha");
  least.AddF32("adapter.lora.alpha", std::numeric_limits<float>::min());
  AddPair(&least, "blk.0.attn_q.weight", 1, 8, 8);
  EXPECT_TRUE(Parse(&least)->file.ok());

  GgufBuilder empty_arch = Header("general.architecture");
  empty_arch.AddString("general.architecture", "");
  AddPair(&empty_arch, "blk.0.attn_q.weight", 4, 8, 8);
  ExpectError(&empty_arch, err, {"general.architecture is empty"});
}

TEST(LoraGgufTest, RejectsUnsupportedTensorNames) {
  const std::pair<const char*, const char*> cases[] = {
      {"token_embd.weight.lora_a", "hearth does not apply LoRA to 'token_embd.weight'"},
      {"blk.0.attn_qkv.weight.lora_a", "'blk.0.attn_qkv.weight'"},
      {"blk.0.attn_norm.weight.lora_a", "'blk.0.attn_norm.weight'"},
      {"blk.x.attn_q.weight.lora_a", "'blk.x.attn_q.weight'"},
      {"blk.01.attn_q.weight.lora_a", "'blk.01.attn_q.weight'"},
      {"blk.100000.attn_q.weight.lora_a", "'blk.100000.attn_q.weight'"},
      {"blk.0.attn_q.bias.lora_a", "'blk.0.attn_q.bias'"},
      {"blk.weight.lora_a", "'blk.weight'"},
      {"blk.0.attn_q.weight", "is not a LoRA matrix"},
      {"blk.0.attn_q.weight.lora_c", "is not a LoRA matrix"},
  };
  for (const auto& [name, why] : cases) {
    SCOPED_TRACE(name);
    GgufBuilder b = Header();
    AddPair(&b, "blk.0.attn_k.weight", 4, 8, 8);
    b.AddTensor(name, GgufBuilder::kTF32, {8, 4});
    ExpectError(&b, absl::StatusCode::kInvalidArgument, {std::string("tensor '") + name, why});
  }
}

TEST(LoraGgufTest, RejectsQuantizedTypesAndHigherRanks) {
  GgufBuilder q = Header();
  q.AddTensor("blk.0.attn_q.weight.lora_a", GgufBuilder::kTQ8_0, {32, 4});
  q.AddTensor("blk.0.attn_q.weight.lora_b", GgufBuilder::kTF32, {4, 8});
  ExpectError(&q, absl::StatusCode::kUnimplemented,
              {"tensor 'blk.0.attn_q.weight.lora_a' is Q8_0",
               "hearth reads F32, F16 and BF16 LoRA tensors (convert with --outtype f16)"});
  GgufBuilder f64 = Header();
  AddPair(&f64, "blk.0.attn_q.weight", 4, 8, 8, GgufBuilder::kTF64);
  ExpectError(&f64, absl::StatusCode::kUnimplemented, {"is F64"});

  GgufBuilder three = Header();
  three.AddTensor("blk.0.attn_q.weight.lora_a", GgufBuilder::kTF32, {8, 4, 2});
  three.AddTensor("blk.0.attn_q.weight.lora_b", GgufBuilder::kTF32, {4, 8});
  ExpectError(&three, absl::StatusCode::kInvalidArgument,
              {"tensor 'blk.0.attn_q.weight.lora_a' has 3 dimensions [8, 4, 2, 1], expected 2"});
}

TEST(LoraGgufTest, RejectsIncompletePairsAndRankMismatch) {
  const auto err = absl::StatusCode::kInvalidArgument;
  GgufBuilder only_a = Header();
  AddPair(&only_a, "blk.0.attn_k.weight", 4, 8, 8);
  only_a.AddTensor("blk.1.attn_q.weight.lora_a", GgufBuilder::kTF32, {8, 4});
  ExpectError(&only_a, err,
              {"blk.1.attn_q.weight: blk.1.attn_q.weight.lora_b is missing "
               "(blk.1.attn_q.weight.lora_a has no partner)"});
  GgufBuilder only_b = Header();
  only_b.AddTensor("output.weight.lora_b", GgufBuilder::kTF32, {4, 8});
  ExpectError(&only_b, err, {"output.weight: output.weight.lora_a is missing"});

  GgufBuilder mismatch = Header();
  mismatch.AddTensor("blk.0.attn_q.weight.lora_a", GgufBuilder::kTF32, {8, 4});
  mismatch.AddTensor("blk.0.attn_q.weight.lora_b", GgufBuilder::kTF32, {2, 8});
  ExpectError(&mismatch, err,
              {"blk.0.attn_q.weight: lora_a has rank 4 (ne [8, 4]) but lora_b has rank 2 "
               "(ne [2, 8])"});
  // lora_a written as numpy (n_in, r), i.e. ne = [r, n_in]: the ranks disagree.
  GgufBuilder transposed = Header();
  transposed.AddTensor("blk.0.attn_q.weight.lora_a", GgufBuilder::kTF32, {4, 64});
  transposed.AddTensor("blk.0.attn_q.weight.lora_b", GgufBuilder::kTF32, {4, 64});
  ExpectError(&transposed, err, {"lora_a has rank 64 (ne [4, 64]) but lora_b has rank 4"});
}

TEST(LoraGgufTest, RejectsAFileWithoutTensors) {
  GgufBuilder b = Header();
  ExpectError(&b, absl::StatusCode::kInvalidArgument, {"lora.gguf: no LoRA tensors"});
  EXPECT_FALSE(ParseGgufLora(nullptr).ok());
}

}  // namespace
}  // namespace hearth
