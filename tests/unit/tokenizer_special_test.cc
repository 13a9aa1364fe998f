// tokenizer_special_test.cc — what every kind shares: special-token parsing,
// invalid input, Decode errors, end-of-generation ids, the streaming decoder,
// vocabulary validation and the kind registry.
#include <algorithm>
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

// A small SentencePiece vocabulary: <unk> <s> </s>, 256 byte tokens (ids 3 +
// byte), then the pieces below.
struct Spm {
  VocabData v;
  int mark, a, b, ma, mb, ab, im_end, start, start_b, user, eot_normal;
  Spm() {
    v.model = "llama";
    Add("<unk>", kUnknown);
    Add("<s>", kControl);
    Add("</s>", kControl);
    for (int i = 0; i < 256; ++i) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", i);
      Add(name, kByte);
    }
    mark = Add(kMark);
    a = Add("a");
    b = Add("b");
    ma = Add(std::string(kMark) + "a");
    mb = Add(std::string(kMark) + "b");
    ab = Add("ab");
    im_end = Add("<|im_end|>", kControl);
    start = Add("<x>", kControl);
    start_b = Add("<x>b", kControl);  // longer match at the same position
    user = Add("[U]", kUserDefined);
    eot_normal = Add("<end_of_turn>", kNormal);  // same text as an EOG name, but not control
    v.unk = 0;
    v.bos = 1;
    v.eos = 2;
    v.add_bos = true;
  }
  int Add(const std::string& t, int32_t type = kNormal) {
    v.tokens.push_back(t);
    v.scores.push_back(-static_cast<float>(v.tokens.size()));
    v.token_types.push_back(type);
    return static_cast<int>(v.tokens.size() - 1);
  }
  std::unique_ptr<Tokenizer> Build() const {
    auto t = Tokenizer::Create(v);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *std::move(t) : nullptr;
  }
};

std::vector<int32_t> Enc(const Tokenizer& t, const std::string& s, bool add_special,
                         bool parse_special) {
  auto ids = t.Encode(s, add_special, parse_special);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : std::vector<int32_t>{};
}

TEST(SpecialTokensTest, ParsedOnlyWithParseSpecial) {
  Spm s;
  auto tok = s.Build();
  ASSERT_NE(tok, nullptr);
  // Each text fragment after a special token gets its own space prefix,
  // as SentencePiece encodes each fragment on its own.
  EXPECT_THAT(Enc(*tok, "a<|im_end|>b", false, true), ElementsAre(s.ma, s.im_end, s.mb));
  EXPECT_THAT(Enc(*tok, "<s>a", false, true), ElementsAre(1, s.ma));
  const auto plain = Enc(*tok, "a<|im_end|>b", false, false);
  EXPECT_THAT(plain, ::testing::Not(::testing::Contains(s.im_end)));
  EXPECT_EQ(*tok->Decode(plain, false), "a<|im_end|>b");
  EXPECT_THAT(Enc(*tok, "<unk>", false, false), ::testing::Not(::testing::Contains(0)));
}

TEST(SpecialTokensTest, LongestMatchWins) {
  Spm s;
  auto tok = s.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "<x>b", false, true), ElementsAre(s.start_b));
  EXPECT_THAT(Enc(*tok, "<x>a", false, true), ElementsAre(s.start, s.ma));
}

TEST(SpecialTokensTest, UserDefinedTokensAreAlwaysAtomic) {
  Spm s;
  auto tok = s.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "[U]", false, false), ElementsAre(s.user));
  EXPECT_THAT(Enc(*tok, "[U]", false, true), ElementsAre(s.user));
  EXPECT_EQ(tok->TokenToPiece(s.user, false), "[U]");
}

TEST(SpecialTokensTest, AddSpecialAddsBos) {
  Spm s;
  auto tok = s.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "a", true, false), ElementsAre(1, s.ma));
  EXPECT_THAT(Enc(*tok, "a", false, false), ElementsAre(s.ma));
}

TEST(EncodeTest, InvalidUtf8NamesTheByteOffset) {
  Spm s;
  auto tok = s.Build();
  ASSERT_NE(tok, nullptr);
  for (const auto& [text, offset] : std::vector<std::pair<std::string, int>>{{"ab\xFF"
                                                                              "cd",
                                                                              2},
                                                                             {"a\xC3", 1},
                                                                             {"\xED\xA0\x80", 0},
                                                                             {"ok \xC0\xAF", 3}}) {
    auto ids = tok->Encode(text, true, true);
    ASSERT_FALSE(ids.ok()) << text;
    EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(ids.status().message(), HasSubstr("offset " + std::to_string(offset)));
  }
}

TEST(DecodeTest, IdOutOfRangeNamesIdAndPosition) {
  Spm s;
  auto tok = s.Build();
  ASSERT_NE(tok, nullptr);
  auto text = tok->Decode({s.a, s.b, 999999}, false);
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(text.status().message(), HasSubstr("999999"));
  EXPECT_THAT(text.status().message(), HasSubstr("position 2"));
  auto neg = tok->Decode({-3}, false);
  ASSERT_FALSE(neg.ok());
  EXPECT_THAT(neg.status().message(), HasSubstr("-3"));
  EXPECT_THAT(neg.status().message(), HasSubstr("position 0"));
}

TEST(EogTest, EosEotAndNamedControlTokens) {
  Spm s;
  s.v.eot = s.a;  // any id the file names as eot
  auto tok = s.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_TRUE(tok->IsEog(2));
  EXPECT_TRUE(tok->IsEog(s.a));
  EXPECT_TRUE(tok->IsEog(s.im_end));
  EXPECT_FALSE(tok->IsEog(s.eot_normal));  // right text, but a normal token
  EXPECT_FALSE(tok->IsEog(1));
  EXPECT_FALSE(tok->IsEog(-1));
  EXPECT_FALSE(tok->IsEog(1 << 30));
}

TEST(StreamDecoderTest, HoldsBackSplitCharacters) {
  Spm s;
  auto tok = s.Build();
  ASSERT_NE(tok, nullptr);
  StreamDecoder d(*tok);
  auto byte = [](int b) { return 3 + b; };
  // "é" (C3 A9) arrives as two byte tokens.
  EXPECT_EQ(d.Push(s.ma), " a");  // no leading-space stripping while streaming
  EXPECT_EQ(d.Push(byte(0xC3)), "");
  EXPECT_EQ(d.Push(byte(0xA9)), "\xC3\xA9");
  // A four-byte emoji arrives one byte at a time.
  EXPECT_EQ(d.Push(byte(0xF0)), "");
  EXPECT_EQ(d.Push(byte(0x9F)), "");
  EXPECT_EQ(d.Push(byte(0xA6)), "");
  EXPECT_EQ(d.Push(byte(0x99)), "\xF0\x9F\xA6\x99");
  // A byte that can never start a sequence comes out as U+FFFD at once.
  EXPECT_EQ(d.Push(byte(0xFF)), "\xEF\xBF\xBD");
  // An unfinished sequence is replaced on Flush.
  EXPECT_EQ(d.Push(byte(0xE2)), "");
  EXPECT_EQ(d.Push(byte(0x82)), "");
  EXPECT_EQ(d.Flush(), "\xEF\xBF\xBD");
  EXPECT_EQ(d.Flush(), "");
  // A lead byte that interrupts an unfinished sequence: the old bytes are
  // bad, the new one waits.
  EXPECT_EQ(d.Push(byte(0xE2)), "");
  EXPECT_EQ(d.Push(byte(0xC3)), "\xEF\xBF\xBD");
  EXPECT_EQ(d.Push(byte(0xA9)), "\xC3\xA9");
  EXPECT_EQ(d.Push(2), "");   // control tokens render as nothing
  EXPECT_EQ(d.Push(-1), "");  // out of range: nothing, no crash
}

TEST(VocabValidationTest, ErrorsNameTheKey) {
  struct Case {
    void (*mutate)(VocabData*);
    const char* key;
  };
  const Case cases[] = {
      {[](VocabData* v) { v->tokens.clear(); }, "tokenizer.ggml.tokens"},
      {[](VocabData* v) { v->scores.pop_back(); }, "tokenizer.ggml.scores"},
      {[](VocabData* v) { v->token_types.push_back(1); }, "tokenizer.ggml.token_type"},
      {[](VocabData* v) { v->token_types[5] = 9; }, "tokenizer.ggml.token_type[5]"},
      {[](VocabData* v) { v->bos = 100000; }, "tokenizer.ggml.bos_token_id"},
      {[](VocabData* v) { v->eos = -7; }, "tokenizer.ggml.eos_token_id"},
      {[](VocabData* v) { v->unk = 1 << 30; }, "tokenizer.ggml.unknown_token_id"},
      {[](VocabData* v) { v->pad = 300000; }, "tokenizer.ggml.padding_token_id"},
      {[](VocabData* v) { v->eot = 300000; }, "tokenizer.ggml.eot_token_id"},
      {[](VocabData* v) { v->bos = -1; }, "tokenizer.ggml.add_bos_token"},
      {[](VocabData* v) { v->eos = -1, v->add_eos = true; }, "tokenizer.ggml.add_eos_token"},
      {[](VocabData* v) { v->model = "wordpiece"; }, "tokenizer.ggml.model"},
  };
  for (const Case& c : cases) {
    Spm s;
    c.mutate(&s.v);
    auto tok = Tokenizer::Create(s.v);
    ASSERT_FALSE(tok.ok()) << c.key;
    EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument) << c.key;
    EXPECT_THAT(tok.status().message(), HasSubstr(c.key));
  }
}

TEST(RegistryTest, UnknownKindNamesItAndKnownKindsAreListed) {
  Spm s;
  s.v.model = "wordpiece";
  auto tok = Tokenizer::Create(s.v);
  ASSERT_FALSE(tok.ok());
  EXPECT_THAT(tok.status().message(), HasSubstr("\"wordpiece\""));
  EXPECT_THAT(tok.status().message(), HasSubstr("llama"));
  EXPECT_THAT(RegisteredTokenizerKinds(), ::testing::Contains("llama"));
  EXPECT_THAT(RegisteredTokenizerKinds(), ::testing::Contains("gpt2"));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> RefusingFactory(VocabData vocab) {
  return absl::UnimplementedError("test kind saw " + std::to_string(vocab.tokens.size()));
}

TEST(RegistryTest, RegisteredKindsAreDispatchedByModelName) {
  EXPECT_FALSE(RegisterTokenizerKind("llama", &RefusingFactory));  // taken
  EXPECT_TRUE(RegisterTokenizerKind("test-kind", &RefusingFactory));
  Spm s;
  s.v.model = "test-kind";
  auto tok = Tokenizer::Create(s.v);
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(tok.status().message(),
              HasSubstr("test kind saw " + std::to_string(s.v.tokens.size())));
}

TEST(TokenizerLayout, UserDefinedTokensMatchAcrossTheEndOfASpecialRange) {
  Spm spm;
  auto t = spm.Build();
  const std::string text = "x<|im_end|>[U]y";
  TextLayout layout;
  layout.special.emplace_back(0, 13);  // the marker and "[U" only
  auto ids = t->EncodeLayout(text, false, layout, nullptr);
  auto parsed = t->Encode(text, false, true);
  ASSERT_TRUE(ids.ok() && parsed.ok());
  // As in Encode: the control token inside the range, [U] wherever it is.
  EXPECT_EQ(*ids, *parsed);
  EXPECT_EQ(std::count(ids->begin(), ids->end(), spm.user), 1);
  // A cut still splits it.
  layout.cuts = {12};
  auto cut = t->EncodeLayout(text, false, layout, nullptr);
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(std::count(cut->begin(), cut->end(), spm.user), 0);
}

}  // namespace
}  // namespace hearth::tok
