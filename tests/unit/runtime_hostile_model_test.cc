// Hostile model files that are valid GGUF but lie about the model: each must
// be refused at load with an error naming the bad key or tensor, never
// crash, never allocate what the lie asks for.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "sdk/src/runtime/model.h"
#include "tests/unit/cpu_host.h"
#include "tests/unit/gguf_builder.h"

namespace hearth {
namespace {

using testing::GgufBuilder;

using ::hearth::testing::CpuHost;

// A complete, loadable one-layer llama (hidden 32, 2 heads) with a tiny
// SentencePiece vocabulary; each test breaks one thing.
struct TinyLlama {
  uint32_t block_count = 1, head_count = 2, head_count_kv = 2;
  int32_t bos = 1;
  bool scores_as_int = false;
  std::string drop_tensor;
  std::string arch = "llama";  // or "gemma3": the same shapes plus Gemma's norms
  uint64_t output_rows = 8;    // output.weight is [E, output_rows]
  int64_t vocab_size = -1;     // <arch>.vocab_size, when >= 0

  std::vector<uint8_t> Build() const {
    const uint64_t E = 32, F = 64, V = 8;
    const bool gemma3 = arch == "gemma3";
    GgufBuilder b;
    b.AddString("general.architecture", arch)
        .AddU32(arch + ".embedding_length", E)
        .AddU32(arch + ".block_count", block_count)
        .AddU32(arch + ".feed_forward_length", F)
        .AddU32(arch + ".attention.head_count", head_count)
        .AddU32(arch + ".attention.head_count_kv", head_count_kv)
        .AddU32(arch + ".context_length", 64)
        .AddString("tokenizer.ggml.model", "llama")
        .AddStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "\xe2\x96\x81", "a", "b",
                                                  "\xe2\x96\x81"
                                                  "a",
                                                  "c"})
        .AddI32("tokenizer.ggml.bos_token_id", bos)
        .AddI32("tokenizer.ggml.eos_token_id", 2);
    if (gemma3) {
      b.AddU32("gemma3.attention.sliding_window", 16)
          .AddU32("gemma3.attention.sliding_window_pattern", block_count + 1);
    }
    if (vocab_size >= 0) b.AddU32(arch + ".vocab_size", static_cast<uint32_t>(vocab_size));
    if (scores_as_int) {
      b.AddArray<int32_t>("tokenizer.ggml.scores", GgufBuilder::kI32,
                          {0, 0, 0, -1, -2, -3, -4, -5});
    } else {
      b.AddArray<float>("tokenizer.ggml.scores", GgufBuilder::kF32, {0, 0, 0, -1, -2, -3, -4, -5});
    }
    auto t = [&](const std::string& name, std::vector<uint64_t> dims) {
      if (name != drop_tensor) b.AddTensor(name, GgufBuilder::kTF32, std::move(dims));
    };
    t("token_embd.weight", {E, V});
    t("output_norm.weight", {E});
    t("output.weight", {E, output_rows});
    for (uint32_t l = 0; l < std::min<uint32_t>(block_count, 1); ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      t(p + "attn_norm.weight", {E});
      t(p + "attn_q.weight", {E, E});
      t(p + "attn_k.weight", {E, E});
      t(p + "attn_v.weight", {E, E});
      t(p + "attn_output.weight", {E, E});
      t(p + "ffn_norm.weight", {E});
      t(p + "ffn_gate.weight", {E, F});
      t(p + "ffn_up.weight", {E, F});
      t(p + "ffn_down.weight", {F, E});
      if (gemma3) {
        t(p + "post_attention_norm.weight", {E});
        t(p + "post_ffw_norm.weight", {E});
        t(p + "attn_q_norm.weight", {E / head_count});
        t(p + "attn_k_norm.weight", {E / head_count});
      }
    }
    return b.Build();
  }
};

absl::Status LoadImage(const std::vector<uint8_t>& image) {
  // One file per test and process: ctest runs these tests in parallel.
  const std::string path = ::testing::TempDir() + "/hostile_model_" +
                           ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
                           std::to_string(::getpid()) + ".gguf";
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(image.data()),
              static_cast<std::streamsize>(image.size()));
  }
  auto m = Model::Load(CpuHost(), path, {});
  std::remove(path.c_str());
  return m.status();
}

void ExpectRefused(const TinyLlama& spec, const std::string& must_name) {
  absl::Status s = LoadImage(spec.Build());
  ASSERT_FALSE(s.ok()) << "loaded a model that should be refused (" << must_name << ")";
  EXPECT_NE(std::string(s.message()).find(must_name), std::string::npos) << s;
}

TEST(HostileModel, TheBaselineLoads) {
  absl::Status s = LoadImage(TinyLlama{}.Build());
  EXPECT_TRUE(s.ok()) << s;
}

TEST(HostileModel, ZeroHeads) {
  TinyLlama m;
  m.head_count = 0;
  ExpectRefused(m, "attention.head_count");
}

TEST(HostileModel, KvHeadsThatDoNotDivide) {
  TinyLlama m;
  m.head_count_kv = 3;
  ExpectRefused(m, "head_count_kv");
}

TEST(HostileModel, BlockCountAboveTheMaximum) {
  TinyLlama m;
  m.block_count = 100000;
  ExpectRefused(m, "block_count");
}

TEST(HostileModel, BlockCountLargerThanTheTensors) {
  TinyLlama m;
  m.block_count = 3;  // tensors exist for layer 0 only
  ExpectRefused(m, "blk.1.");
}

TEST(HostileModel, SpecialTokenIdOutOfRange) {
  TinyLlama m;
  m.bos = 4096;
  ExpectRefused(m, "bos_token_id");
}

TEST(HostileModel, ScoresOfTheWrongElementType) {
  TinyLlama m;
  m.scores_as_int = true;
  ExpectRefused(m, "tokenizer.ggml.scores");
}

TEST(HostileModel, MissingWeight) {
  TinyLlama m;
  m.drop_tensor = "blk.0.ffn_down.weight";
  ExpectRefused(m, "blk.0.ffn_down.weight");
}

// Every weight of every architecture is shape-checked at load, so no plugin
// is handed a graph that reads out of bounds. Gemma 3's output.weight was
// not: [E, 4] for an 8-token vocabulary loaded, and generation failed later
// inside the CPU plugin (issue 17, class 7).
TEST(HostileModel, Gemma3BaselineLoads) {
  TinyLlama m;
  m.arch = "gemma3";
  absl::Status s = LoadImage(m.Build());
  EXPECT_TRUE(s.ok()) << s;
}

TEST(HostileModel, OutputWeightOfTheWrongShape) {
  for (const std::string arch : {"llama", "gemma3"}) {
    SCOPED_TRACE(arch);
    TinyLlama m;
    m.arch = arch;
    m.output_rows = 4;
    ExpectRefused(m, "output.weight");
    absl::Status s = LoadImage(m.Build());
    EXPECT_NE(std::string(s.message()).find("expected [32, 8, 1, 1]"), std::string::npos) << s;
    EXPECT_NE(std::string(s.message()).find("has shape [32, 4, 1, 1]"), std::string::npos) << s;
  }
}

// <arch>.vocab_size that disagrees with the vocabulary (the embedding's
// rows) was accepted; the same value is fine.
TEST(HostileModel, VocabSizeThatDisagreesWithTheVocabulary) {
  TinyLlama m;
  m.vocab_size = 8;
  absl::Status s = LoadImage(m.Build());
  EXPECT_TRUE(s.ok()) << s;
  m.vocab_size = 32000;
  ExpectRefused(m, "llama.vocab_size is 32000 but token_embd.weight has 8 rows");
}

}  // namespace
}  // namespace hearth
