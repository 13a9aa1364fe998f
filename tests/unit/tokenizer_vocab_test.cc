// tokenizer_vocab_test.cc — LoadVocab on GGUF images built in memory: what it
// reads, the defaults it applies, and the key each malformed field is
// reported under.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/tokenizer/tokenizer.h"

namespace hearth::tok {
namespace {

using ::testing::HasSubstr;

// Writes a GGUF v3 image with metadata only (no tensors), per the GGUF spec:
// magic, version, tensor count, kv count, then key/type/value records.
class GgufImage {
 public:
  GgufImage& Str(const std::string& key, const std::string& v) {
    Key(key, 8);
    PutStr(v);
    ++n_kv_;
    return *this;
  }
  GgufImage& U32(const std::string& key, uint32_t v) {
    Key(key, 4);
    Put(v);
    ++n_kv_;
    return *this;
  }
  GgufImage& Bool(const std::string& key, bool v) {
    Key(key, 7);
    Put(static_cast<uint8_t>(v));
    ++n_kv_;
    return *this;
  }
  GgufImage& StrArray(const std::string& key, const std::vector<std::string>& v) {
    Key(key, 9);
    Put(uint32_t{8});
    Put(uint64_t{v.size()});
    for (const auto& s : v) PutStr(s);
    ++n_kv_;
    return *this;
  }
  GgufImage& F32Array(const std::string& key, const std::vector<float>& v) {
    Key(key, 9);
    Put(uint32_t{6});
    Put(uint64_t{v.size()});
    for (float f : v) Put(f);
    ++n_kv_;
    return *this;
  }
  GgufImage& I32Array(const std::string& key, const std::vector<int32_t>& v) {
    Key(key, 9);
    Put(uint32_t{5});
    Put(uint64_t{v.size()});
    for (int32_t i : v) Put(i);
    ++n_kv_;
    return *this;
  }
  std::vector<uint8_t> Bytes() const {
    std::vector<uint8_t> out = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
    auto put64 = [&](uint64_t x) {
      for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(x >> (8 * i)));
    };
    put64(0);
    put64(n_kv_);
    out.insert(out.end(), body_.begin(), body_.end());
    return out;
  }

 private:
  template <typename T>
  void Put(T v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));  // GGUF is little-endian, as is the host
    body_.insert(body_.end(), b, b + sizeof(T));
  }
  void PutStr(const std::string& s) {
    Put(uint64_t{s.size()});
    body_.insert(body_.end(), s.begin(), s.end());
  }
  void Key(const std::string& key, uint32_t type) {
    PutStr(key);
    Put(type);
  }
  std::vector<uint8_t> body_;
  uint64_t n_kv_ = 0;
};

absl::StatusOr<VocabData> LoadImage(const GgufImage& img) {
  static std::vector<std::vector<uint8_t>> keep;  // the File points into its bytes
  keep.push_back(img.Bytes());
  auto file = gguf::File::FromMemory(keep.back().data(), keep.back().size(), "vocab.gguf");
  if (!file.ok()) return file.status();
  return LoadVocab(**file);
}

const std::vector<std::string> kTokens = {"<unk>", "<s>", "</s>", "a", "b"};

GgufImage SpmBase() {
  GgufImage g;
  g.Str("tokenizer.ggml.model", "llama")
      .StrArray("tokenizer.ggml.tokens", kTokens)
      .F32Array("tokenizer.ggml.scores", {0, 0, 0, -1, -2})
      .I32Array("tokenizer.ggml.token_type", {2, 3, 3, 1, 1})
      .U32("tokenizer.ggml.bos_token_id", 1)
      .U32("tokenizer.ggml.eos_token_id", 2)
      .U32("tokenizer.ggml.unknown_token_id", 0);
  return g;
}

TEST(LoadVocabTest, ReadsFieldsAndAppliesSpmDefaults) {
  auto v = LoadImage(SpmBase());
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->model, "llama");
  EXPECT_EQ(v->pre, "default");
  EXPECT_EQ(v->tokens, kTokens);
  EXPECT_EQ(v->scores, (std::vector<float>{0, 0, 0, -1, -2}));
  EXPECT_EQ(v->token_types, (std::vector<int32_t>{2, 3, 3, 1, 1}));
  EXPECT_EQ(v->bos, 1);
  EXPECT_EQ(v->eos, 2);
  EXPECT_EQ(v->unk, 0);
  EXPECT_EQ(v->pad, -1);
  EXPECT_EQ(v->eot, -1);
  EXPECT_TRUE(v->add_bos);  // SentencePiece models add BOS unless told not to
  EXPECT_FALSE(v->add_eos);
  EXPECT_TRUE(v->add_space_prefix);
}

TEST(LoadVocabTest, ExplicitFlagsAndOptionalIds) {
  GgufImage g = SpmBase();
  g.Bool("tokenizer.ggml.add_bos_token", false)
      .Bool("tokenizer.ggml.add_eos_token", true)
      .Bool("tokenizer.ggml.add_space_prefix", false)
      .U32("tokenizer.ggml.eot_token_id", 4)
      .U32("tokenizer.ggml.padding_token_id", 3)
      .Str("tokenizer.ggml.pre", "whatever");
  auto v = LoadImage(g);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->add_bos);
  EXPECT_TRUE(v->add_eos);
  EXPECT_FALSE(v->add_space_prefix);
  EXPECT_EQ(v->eot, 4);
  EXPECT_EQ(v->pad, 3);
  EXPECT_EQ(v->pre, "whatever");
}

TEST(LoadVocabTest, Gpt2ReadsMergesAndAddsNoBosByDefault) {
  GgufImage g;
  g.Str("tokenizer.ggml.model", "gpt2")
      .Str("tokenizer.ggml.pre", "qwen2")
      .StrArray("tokenizer.ggml.tokens", {"a", "b", "ab"})
      .StrArray("tokenizer.ggml.merges", {"a b"})
      .U32("tokenizer.ggml.bos_token_id", 2);
  auto v = LoadImage(g);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->merges, std::vector<std::string>{"a b"});
  EXPECT_TRUE(v->scores.empty());
  EXPECT_TRUE(v->token_types.empty());
  EXPECT_FALSE(v->add_bos);
  EXPECT_FALSE(v->add_space_prefix);
}

struct BadCase {
  const char* what;
  GgufImage image;
  const char* key;  // must appear in the message
};

TEST(LoadVocabTest, ErrorsNameTheKey) {
  std::vector<BadCase> cases;
  {
    GgufImage g;
    g.StrArray("tokenizer.ggml.tokens", kTokens);
    cases.push_back({"no model", g, "tokenizer.ggml.model"});
  }
  {
    GgufImage g;
    g.Str("tokenizer.ggml.model", "llama");
    cases.push_back({"no tokens", g, "tokenizer.ggml.tokens"});
  }
  {
    GgufImage g;
    g.Str("tokenizer.ggml.model", "llama").Str("tokenizer.ggml.tokens", "a");
    cases.push_back({"tokens not an array", g, "tokenizer.ggml.tokens"});
  }
  {
    GgufImage g;
    g.Str("tokenizer.ggml.model", "llama")
        .StrArray("tokenizer.ggml.tokens", kTokens)
        .F32Array("tokenizer.ggml.scores", {0, 0, 0});
    cases.push_back({"scores too short", g, "tokenizer.ggml.scores"});
  }
  {
    GgufImage g;
    g.Str("tokenizer.ggml.model", "llama")
        .StrArray("tokenizer.ggml.tokens", kTokens)
        .I32Array("tokenizer.ggml.scores", {0, 0, 0, 0, 0});
    cases.push_back({"scores of ints", g, "tokenizer.ggml.scores"});
  }
  {
    GgufImage g;
    g.Str("tokenizer.ggml.model", "llama")
        .StrArray("tokenizer.ggml.tokens", kTokens)
        .F32Array("tokenizer.ggml.token_type", {1, 1, 1, 1, 1});
    cases.push_back({"token_type of floats", g, "tokenizer.ggml.token_type"});
  }
  {
    GgufImage g;
    g.Str("tokenizer.ggml.model", "llama")
        .StrArray("tokenizer.ggml.tokens", kTokens)
        .I32Array("tokenizer.ggml.token_type", {1, 1, 42, 1, 1});
    cases.push_back({"token_type value", g, "tokenizer.ggml.token_type[2]"});
  }
  {
    GgufImage g = SpmBase();
    g.U32("tokenizer.ggml.padding_token_id", 5);
    cases.push_back({"pad out of range", g, "tokenizer.ggml.padding_token_id"});
  }
  {
    GgufImage g = SpmBase();
    g.Str("tokenizer.ggml.eot_token_id", "7");
    cases.push_back({"eot as a string", g, "tokenizer.ggml.eot_token_id"});
  }
  {
    GgufImage g = SpmBase();
    g.U32("tokenizer.ggml.add_bos_token", 1);
    cases.push_back({"add_bos as an int", g, "tokenizer.ggml.add_bos_token"});
  }
  {
    GgufImage g;
    g.Str("tokenizer.ggml.model", "gpt2")
        .StrArray("tokenizer.ggml.tokens", kTokens)
        .Bool("tokenizer.ggml.add_bos_token", true);
    cases.push_back({"add_bos without bos", g, "tokenizer.ggml.add_bos_token"});
  }
  {
    GgufImage g;
    g.Str("tokenizer.ggml.model", "gpt2")
        .StrArray("tokenizer.ggml.tokens", kTokens)
        .F32Array("tokenizer.ggml.merges", {1});
    cases.push_back({"merges of floats", g, "tokenizer.ggml.merges"});
  }
  for (const BadCase& c : cases) {
    auto v = LoadImage(c.image);
    ASSERT_FALSE(v.ok()) << c.what;
    EXPECT_THAT(v.status().message(), HasSubstr(c.key)) << c.what;
    EXPECT_THAT(v.status().message(), HasSubstr("vocab.gguf")) << c.what;
  }
}

TEST(LoadVocabTest, SharedVocabFilesLoad) {
  struct Expect {
    const char* name;
    const char* model;
    const char* pre;
    size_t n_tokens;
    int32_t bos, eos;
    bool add_bos;
  };
  for (const Expect& e :
       {Expect{"llama-spm", "llama", "default", 32000, 1, 2, true},
        Expect{"gpt-2", "gpt2", "gpt-2", 50257, 50256, 50256, false},
        Expect{"deepseek-llm", "gpt2", "deepseek-llm", 102400, 100000, 100001, true}}) {
    const std::string path =
        std::string(HEARTH_SHARED_DATA) + "/tokenizers/ggml-vocab-" + e.name + ".gguf";
    auto file = gguf::File::Open(path);
    ASSERT_TRUE(file.ok()) << file.status();
    auto v = LoadVocab(**file);
    ASSERT_TRUE(v.ok()) << v.status();
    EXPECT_EQ(v->model, e.model);
    EXPECT_EQ(v->pre, e.pre);
    EXPECT_EQ(v->tokens.size(), e.n_tokens);
    EXPECT_EQ(v->bos, e.bos);
    EXPECT_EQ(v->eos, e.eos);
    EXPECT_EQ(v->add_bos, e.add_bos);
    if (std::string(e.model) == "gpt2") {
      EXPECT_FALSE(v->merges.empty());
    } else {
      EXPECT_EQ(v->scores.size(), e.n_tokens);
    }
  }
}

}  // namespace
}  // namespace hearth::tok
