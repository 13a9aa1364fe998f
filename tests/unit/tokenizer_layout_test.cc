// tokenizer_layout_test.cc — Tokenizer::EncodeLayout: per-range special
// parsing and forced cuts, checked against plain Encode on the same real
// vocabularies (SentencePiece llama, byte-level BPE SmolLM2).
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "sdk/src/tokenizer/tokenizer.h"
#include "tokenizer_file.h"

namespace hearth::tok {
namespace {

std::vector<int32_t> Concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(TokenizerLayoutTest, WithoutCutsItIsEncode) {
  for (const std::string& path :
       {std::string(HEARTH_TEST_DATA) + "/tokenizers/smollm2-vocab.gguf",
        std::string(HEARTH_SHARED_DATA) + "/tokenizers/ggml-vocab-llama-spm.gguf"}) {
    auto t = LoadTokenizerFile(path);
    ASSERT_NE(t, nullptr) << path;
    for (const std::string text : {"Hello <|im_end|> world </s> <s>x", "  two  spaces\n\nend",
                                   "ünïcödé 日本語 <|im_start|>user", ""}) {
      for (bool add_special : {false, true}) {
        TextLayout none;
        TextLayout all;
        all.special.emplace_back(0, text.size());
        auto plain = t->Encode(text, add_special, false);
        auto parsed = t->Encode(text, add_special, true);
        auto lnone = t->EncodeLayout(text, add_special, none, nullptr);
        auto lall = t->EncodeLayout(text, add_special, all, nullptr);
        ASSERT_TRUE(plain.ok() && parsed.ok() && lnone.ok() && lall.ok()) << text;
        EXPECT_EQ(*lnone, *plain) << path << ": " << text;
        EXPECT_EQ(*lall, *parsed) << path << ": " << text;
      }
    }
  }
}

TEST(TokenizerLayoutTest, SpecialTokensOnlyInsideTheirRanges) {
  auto t = LoadTokenizerFile(std::string(HEARTH_TEST_DATA) + "/tokenizers/smollm2-vocab.gguf");
  ASSERT_NE(t, nullptr);
  const std::string text = "<|im_end|>x<|im_end|>";
  TextLayout first;
  first.special.emplace_back(0, 10);  // the first marker only
  auto ids = t->EncodeLayout(text, false, first, nullptr);
  ASSERT_TRUE(ids.ok());
  auto head = t->Encode("<|im_end|>", false, true);
  auto tail = t->Encode("x<|im_end|>", false, false);
  ASSERT_TRUE(head.ok() && tail.ok());
  EXPECT_EQ(*ids, Concat(*head, *tail));
  // A range that ends inside a marker's text does not parse it.
  TextLayout partial;
  partial.special.emplace_back(0, 5);
  auto none = t->EncodeLayout(text, false, partial, nullptr);
  auto plain = t->Encode(text, false, false);
  ASSERT_TRUE(none.ok() && plain.ok());
  EXPECT_EQ(*none, *plain);
}

TEST(TokenizerLayoutTest, CutsSplitWhereEncodeWouldMergeAndCountIds) {
  auto t =
      LoadTokenizerFile(std::string(HEARTH_SHARED_DATA) + "/tokenizers/ggml-vocab-llama-spm.gguf");
  ASSERT_NE(t, nullptr);
  const std::string text = "Hello world";
  TextLayout cut;
  cut.cuts = {2, 11};
  std::vector<size_t> at;
  auto ids = t->EncodeLayout(text, /*add_special=*/true, cut, &at);
  ASSERT_TRUE(ids.ok()) << ids.status();
  // "He" starts the text (space prefix); "llo world" continues it (none).
  auto head = t->Encode("He", true, false);
  ASSERT_TRUE(head.ok());
  ASSERT_EQ(at.size(), 2u);
  EXPECT_EQ(at[0], head->size());
  EXPECT_EQ(at[1], ids->size());
  EXPECT_TRUE(std::equal(head->begin(), head->end(), ids->begin()));
  std::string rest;
  for (size_t i = at[0]; i < ids->size(); ++i) rest += t->TokenToPiece((*ids)[i], false);
  EXPECT_EQ(rest, "llo world");
  auto whole = t->Encode(text, true, false);
  ASSERT_TRUE(whole.ok());
  EXPECT_NE(*ids, *whole);  // "Hello" is one token when nothing cuts it
}

TEST(TokenizerLayoutTest, BadLayoutsAreErrors) {
  auto t = LoadTokenizerFile(std::string(HEARTH_TEST_DATA) + "/tokenizers/smollm2-vocab.gguf");
  ASSERT_NE(t, nullptr);
  const std::string text = "aé";  // é is two bytes: offsets 1 and 2
  TextLayout inside;
  inside.cuts = {2};
  EXPECT_FALSE(t->EncodeLayout(text, false, inside, nullptr).ok());
  TextLayout past;
  past.cuts = {4};
  EXPECT_FALSE(t->EncodeLayout(text, false, past, nullptr).ok());
  TextLayout unordered;
  unordered.cuts = {2, 1};
  EXPECT_FALSE(t->EncodeLayout(text, false, unordered, nullptr).ok());
  TextLayout range;
  range.special.emplace_back(2, 1);
  EXPECT_FALSE(t->EncodeLayout(text, false, range, nullptr).ok());
  range.special = {{0, 2}, {1, 3}};
  EXPECT_FALSE(t->EncodeLayout(text, false, range, nullptr).ok());
}

}  // namespace
}  // namespace hearth::tok
