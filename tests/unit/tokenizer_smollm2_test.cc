// tokenizer_smollm2_test.cc — SmolLM2's byte-level BPE ("smollm" pre-tokenizer:
// digits one by one, then GPT-2's pattern) against the Hugging Face tokenizer:
// tests/data/tokenizers/smollm2-vectors.json holds 300+ strings (English, code,
// numbers, scripts, whitespace runs, special tokens, seeded random mixes) with
// the ids HF tokenizers gives them, made by
// scripts/fixtures/make_smollm2_tokenizer_fixtures.py from the vocabulary in
// smollm2-vocab.gguf (SmolLM2-135M-Instruct's tokenizer metadata, no tensors).
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sdk/src/format/gguf.h"
#include "sdk/src/tokenizer/tokenizer.h"

namespace hearth::tok {
namespace {

const std::string kDir = std::string(HEARTH_TEST_DATA) + "/tokenizers/";

struct Vector {
  std::string text;
  bool parse_special = false;
  std::vector<int32_t> ids;
};

std::vector<Vector> ReadVectors() {
  std::ifstream f(kDir + "smollm2-vectors.json", std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  std::vector<Vector> out;
  const nlohmann::json doc = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("vectors")) return out;
  for (const auto& v : doc["vectors"]) {
    Vector vec;
    vec.text = v.at("text").get<std::string>();
    vec.parse_special = v.at("parse_special").get<bool>();
    vec.ids = v.at("ids").get<std::vector<int32_t>>();
    out.push_back(std::move(vec));
  }
  return out;
}

class SmolLM2TokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto file = gguf::File::Open(kDir + "smollm2-vocab.gguf");
    ASSERT_TRUE(file.ok()) << file.status();
    file_ = file->release();
    auto vocab = LoadVocab(*file_);
    ASSERT_TRUE(vocab.ok()) << vocab.status();
    auto tok = Tokenizer::Create(*std::move(vocab));
    ASSERT_TRUE(tok.ok()) << tok.status();
    tok_ = tok->release();
  }
  static void TearDownTestSuite() {
    delete tok_;
    delete file_;
    tok_ = nullptr;
    file_ = nullptr;
  }
  static gguf::File* file_;
  static Tokenizer* tok_;
};
gguf::File* SmolLM2TokenizerTest::file_ = nullptr;
Tokenizer* SmolLM2TokenizerTest::tok_ = nullptr;

TEST_F(SmolLM2TokenizerTest, VocabularyIsSmolLM2s) {
  ASSERT_NE(tok_, nullptr);
  EXPECT_EQ(tok_->n_vocab(), 49152);
  EXPECT_EQ(tok_->vocab().pre, "smollm");
  EXPECT_NE(tok_->Describe().find("pre-tokenizer smollm"), std::string::npos) << tok_->Describe();
  EXPECT_FALSE(tok_->vocab().add_bos);
  EXPECT_TRUE(tok_->IsEog(2));  // <|im_end|>, the end of an assistant turn
}

TEST_F(SmolLM2TokenizerTest, EveryVectorMatchesHuggingFaceAndRoundTrips) {
  ASSERT_NE(tok_, nullptr);
  const std::vector<Vector> vectors = ReadVectors();
  ASSERT_GE(vectors.size(), 300u) << "smollm2-vectors.json is missing or unreadable";
  int n_special = 0, n_digits = 0;
  for (size_t i = 0; i < vectors.size(); ++i) {
    const Vector& v = vectors[i];
    SCOPED_TRACE(testing::Message() << "vector #" << i << " (parse_special " << v.parse_special
                                    << "): \"" << v.text << "\"");
    auto ids = tok_->Encode(v.text, /*add_special=*/false, v.parse_special);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, v.ids);
    auto text = tok_->Decode(*ids, /*render_special=*/v.parse_special);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, v.text);
    n_special += v.parse_special && v.text.find("<|im_") != std::string::npos;
    n_digits += v.text.find_first_of("0123456789") != std::string::npos;
  }
  // The set covers what the pre-tokenizer and special-token parsing decide.
  EXPECT_GE(n_special, 3);
  EXPECT_GE(n_digits, 50);
}

// Digits are split before GPT-2's pattern runs, so a run of spaces before a
// digit stays one piece ("ĠĠ" = 256) instead of giving its last space to the
// number as GPT-2's " ?\p{N}+" would.
TEST_F(SmolLM2TokenizerTest, SpacesBeforeDigitsStayTogether) {
  ASSERT_NE(tok_, nullptr);
  auto ids = tok_->Encode("a  1", false, false);
  ASSERT_TRUE(ids.ok()) << ids.status();
  auto a = tok_->Encode("a", false, false), two = tok_->Encode("  ", false, false),
       one = tok_->Encode("1", false, false);
  ASSERT_TRUE(a.ok() && two.ok() && one.ok());
  ASSERT_EQ(two->size(), 1u);
  EXPECT_EQ(*ids, (std::vector<int32_t>{(*a)[0], (*two)[0], (*one)[0]}));
}

}  // namespace
}  // namespace hearth::tok
