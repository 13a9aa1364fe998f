// tokenizer_spm_test.cc — the "llama" (SentencePiece BPE) kind on small
// hand-built vocabularies: merge order, byte fallback, the space prefix and
// its removal on decode, and a Gemma-sized vocabulary.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sdk/src/tokenizer/tokenizer.h"

namespace hearth::tok {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr const char* kMark = "\xE2\x96\x81";  // ▁

struct Builder {
  VocabData v;
  Builder(bool byte_tokens, bool space_prefix) {
    v.model = "llama";
    Add("<unk>", 0, kUnknown);
    Add("<s>", 0, kControl);
    Add("</s>", 0, kControl);
    v.unk = 0;
    v.bos = 1;
    v.eos = 2;
    v.add_space_prefix = space_prefix;
    if (byte_tokens) {
      for (int b = 0; b < 256; ++b) {
        char name[8];
        std::snprintf(name, sizeof(name), "<0x%02X>", b);
        Add(name, 0, kByte);
      }
    }
  }
  int32_t Add(const std::string& text, float score, int32_t type = kNormal) {
    v.tokens.push_back(text);
    v.scores.push_back(score);
    v.token_types.push_back(type);
    return static_cast<int32_t>(v.tokens.size() - 1);
  }
  std::unique_ptr<Tokenizer> Build() {
    auto t = Tokenizer::Create(v);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *std::move(t) : nullptr;
  }
};

std::vector<int32_t> Enc(const Tokenizer& t, const std::string& s, bool add_special = false) {
  auto ids = t.Encode(s, add_special, /*parse_special=*/false);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : std::vector<int32_t>{};
}

std::string Dec(const Tokenizer& t, const std::vector<int32_t>& ids) {
  auto s = t.Decode(ids, /*render_special=*/false);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : "";
}

TEST(SpmTest, HighestScoringPairMergesFirst) {
  Builder b(/*byte_tokens=*/true, /*space_prefix=*/false);
  const int a = b.Add("a", -1), bb = b.Add("b", -1), c = b.Add("c", -1);
  const int ab = b.Add("ab", -5), bc = b.Add("bc", -2);
  auto tok = b.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "abc"), ElementsAre(a, bc));
  EXPECT_THAT(Enc(*tok, "ab"), ElementsAre(ab));
  EXPECT_THAT(Enc(*tok, "cab"), ElementsAre(c, ab));
  EXPECT_THAT(Enc(*tok, "b"), ElementsAre(bb));
}

TEST(SpmTest, MergedSymbolsKeepMerging) {
  Builder b(true, false);
  b.Add("a", -1);
  b.Add("b", -1);
  b.Add("c", -1);
  b.Add("bc", -2);
  const int abc = b.Add("abc", -9);  // reachable only through "bc"
  auto tok = b.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "abc"), ElementsAre(abc));
}

TEST(SpmTest, EqualScoresMergeLeftmostFirst) {
  Builder b(true, false);
  const int a = b.Add("a", -1);
  const int aa = b.Add("aa", -3);
  auto tok = b.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "aaa"), ElementsAre(aa, a));
  EXPECT_THAT(Enc(*tok, "aaaa"), ElementsAre(aa, aa));
}

TEST(SpmTest, UnknownCharactersFallBackToBytes) {
  Builder b(true, false);
  const int x = b.Add("x", -1);
  auto tok = b.Build();
  ASSERT_NE(tok, nullptr);
  // U+00E9 is C3 A9; byte tokens are ids 3 + byte.
  EXPECT_THAT(Enc(*tok, "x\xC3\xA9"), ElementsAre(x, 3 + 0xC3, 3 + 0xA9));
  EXPECT_EQ(Dec(*tok, Enc(*tok, "x\xC3\xA9")), "x\xC3\xA9");
  EXPECT_EQ(tok->TokenToPiece(3 + 0x41, false), "A");
  // Byte tokens never come out of merging plain text that spells them.
  EXPECT_THAT(Enc(*tok, "<0x41>"), ::testing::Not(::testing::Contains(3 + 0x41)));
}

TEST(SpmTest, WithoutByteTokensUnknownCharactersAreUnk) {
  Builder b(/*byte_tokens=*/false, false);
  const int x = b.Add("x", -1);
  auto tok = b.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "x\xC3\xA9x"), ElementsAre(x, 0, x));  // one <unk> per character
}

TEST(SpmTest, NoByteTokensAndNoUnkIsAnErrorNotACrash) {
  Builder b(false, false);
  b.v.unk = -1;
  b.v.token_types[0] = kNormal;
  b.Add("x", -1);
  auto tok = b.Build();
  ASSERT_NE(tok, nullptr);
  auto ids = tok->Encode("xy", false, false);
  ASSERT_FALSE(ids.ok());
  EXPECT_THAT(ids.status().message(), HasSubstr("\"y\""));
}

TEST(SpmTest, SpacePrefixAndItsRemovalOnDecode) {
  Builder b(true, /*space_prefix=*/true);
  const int mark = b.Add(kMark, -1);
  const int a = b.Add("a", -1);
  b.Add("b", -1);
  const int ma = b.Add(std::string(kMark) + "a", -2);
  const int mb = b.Add(std::string(kMark) + "b", -2);
  auto tok = b.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "a b"), ElementsAre(ma, mb));
  EXPECT_THAT(Enc(*tok, " a"), ElementsAre(mark, ma));
  EXPECT_THAT(Enc(*tok, ""), ElementsAre());
  EXPECT_EQ(tok->TokenToPiece(ma, false), " a");
  EXPECT_EQ(Dec(*tok, {ma, mb}), "a b");
  EXPECT_EQ(Dec(*tok, {mark, ma}), " a");  // only the one added space goes
  EXPECT_EQ(Dec(*tok, {a, mb}), "a b");
  // A leading control token renders as nothing, so the strip moves past it.
  EXPECT_EQ(Dec(*tok, {1, ma}), "a");
  auto with_bos = tok->Decode({1, ma}, /*render_special=*/true);
  ASSERT_TRUE(with_bos.ok());
  EXPECT_EQ(*with_bos, "<s> a");
}

TEST(SpmTest, NoSpacePrefixMeansNoStrip) {
  Builder b(true, /*space_prefix=*/false);
  const int mark = b.Add(kMark, -1);
  const int a = b.Add("a", -1);
  const int ma = b.Add(std::string(kMark) + "a", -2);
  auto tok = b.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "a"), ElementsAre(a));
  EXPECT_THAT(Enc(*tok, " a"), ElementsAre(ma));
  EXPECT_THAT(Enc(*tok, "  "), ElementsAre(mark, mark));
  EXPECT_EQ(Dec(*tok, {ma}), " a");
}

TEST(SpmTest, AddSpecialAddsBosAndEos) {
  Builder b(true, true);
  b.Add(kMark, -1);
  const int ma = b.Add(std::string(kMark) + "a", -2);
  b.v.add_bos = true;
  auto tok = b.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "a", /*add_special=*/true), ElementsAre(1, ma));
  EXPECT_THAT(Enc(*tok, "", true), ElementsAre(1));
  b.v.add_eos = true;
  auto tok2 = b.Build();
  ASSERT_NE(tok2, nullptr);
  EXPECT_THAT(Enc(*tok2, "a", true), ElementsAre(1, ma, 2));
  EXPECT_THAT(Enc(*tok2, "a", false), ElementsAre(ma));
}

TEST(SpmTest, DescribeNamesTheKind) {
  Builder b(true, false);
  auto tok = b.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(tok->Describe(), HasSubstr("SentencePiece"));
  EXPECT_THAT(tok->Describe(), HasSubstr("byte fallback"));
  EXPECT_THAT(tok->Describe(), HasSubstr("add_space_prefix=false"));
}

// A Gemma-3-sized vocabulary (262144 tokens, no space prefix): builds and
// encodes a long text correctly. Speed is a benchmark's job; this only keeps
// the hash-map/queue design honest on a vocabulary of that size.
TEST(SpmTest, LargeVocabulary) {
  Builder b(true, /*space_prefix=*/false);
  b.Add(kMark, -1);
  b.Add("w", -1);
  b.Add(std::string(kMark) + "w", -2);
  for (char c = '0'; c <= '9'; ++c) b.Add(std::string(1, c), -1);
  // "▁w<i>" for every i: each word's prefixes are words too, so merges build
  // it from "▁w" one digit at a time.
  for (int i = 0; b.v.tokens.size() < 262144; ++i) {
    b.Add(std::string(kMark) + "w" + std::to_string(i), -3 - static_cast<float>(i));
  }
  auto tok = b.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->n_vocab(), 262144);
  std::string text;
  size_t words = 0;
  for (int i = 0; i < 200000; i += 13, ++words) text += " w" + std::to_string(i);
  auto ids = tok->Encode(text, false, false);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(ids->size(), words);  // one token per word
  EXPECT_EQ(Dec(*tok, *ids), text);
}

}  // namespace
}  // namespace hearth::tok
