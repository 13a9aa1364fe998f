// tokenizer_bpe_test.cc — the "gpt2" (byte-level BPE) kind on small
// hand-built vocabularies: merge ranks, the byte-level alphabet, Llama 3's
// ignore_merges, and the errors a malformed vocabulary gets.
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

// GPT-2's byte -> stand-in character, written out independently of the
// library: printable Latin-1 maps to itself, the rest to U+0100.. in order.
std::string ByteChar(unsigned b) {
  static const std::vector<unsigned> map = [] {
    std::vector<unsigned> m(256);
    unsigned next = 256;
    for (unsigned c = 0; c < 256; ++c) {
      const bool keep = (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174);
      m[c] = keep ? c : next++;
    }
    return m;
  }();
  const unsigned cp = map[b];
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

// Ids 0..255 are the byte tokens (id == byte), then whatever Add adds.
struct Builder {
  VocabData v;
  explicit Builder(const char* pre = "gpt2") {
    v.model = "gpt2";
    v.pre = pre;
    for (unsigned b = 0; b < 256; ++b) Add(ByteChar(b));
  }
  int32_t Add(const std::string& text, int32_t type = kNormal) {
    v.tokens.push_back(text);
    v.token_types.push_back(type);
    return static_cast<int32_t>(v.tokens.size() - 1);
  }
  // Adds the merge "a b" and the token a+b (if new); returns its id.
  int32_t Merge(const std::string& a, const std::string& b) {
    v.merges.push_back(a + " " + b);
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      if (v.tokens[i] == a + b) return static_cast<int32_t>(i);
    }
    return Add(a + b);
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> Create() { return Tokenizer::Create(v); }
  std::unique_ptr<Tokenizer> Build() {
    auto t = Create();
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *std::move(t) : nullptr;
  }
};

std::vector<int32_t> Enc(const Tokenizer& t, const std::string& s, bool parse_special = false) {
  auto ids = t.Encode(s, /*add_special=*/false, parse_special);
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : std::vector<int32_t>{};
}

TEST(BpeTest, ByteLevelAlphabetCoversEveryByte) {
  Builder b;
  auto tok = b.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "a b"), ElementsAre('a', ' ', 'b'));
  // Emoji: four bytes, four byte tokens, and back.
  const std::string llama = "\xF0\x9F\xA6\x99";
  EXPECT_THAT(Enc(*tok, llama), ElementsAre(0xF0, 0x9F, 0xA6, 0x99));
  EXPECT_EQ(tok->TokenToPiece(' ', false), " ");
  EXPECT_EQ(tok->TokenToPiece('\n', false), "\n");
  EXPECT_EQ(*tok->Decode(Enc(*tok, "x\ty\n" + llama), false), "x\ty\n" + llama);
}

TEST(BpeTest, LowerRankMergesFirst) {
  Builder b;
  const int ab = b.Merge("a", "b");
  b.Merge("b", "c");
  auto tok = b.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "abc"), ElementsAre(ab, 'c'));

  Builder r;
  const int bc2 = r.Merge("b", "c");
  r.Merge("a", "b");
  auto tok2 = r.Build();
  ASSERT_NE(tok2, nullptr);
  EXPECT_THAT(Enc(*tok2, "abc"), ElementsAre('a', bc2));
}

TEST(BpeTest, MergesChainAndTiesGoLeftmost) {
  Builder b;
  const std::string sp = ByteChar(' ');  // "Ġ"
  const int st = b.Merge(sp, "t");
  b.Merge("h", "e");
  const int sthe = b.Merge(sp + "t", "he");
  const int aa = b.Merge("a", "a");
  auto tok = b.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, " the"), ElementsAre(sthe));
  EXPECT_THAT(Enc(*tok, " t"), ElementsAre(st));
  EXPECT_THAT(Enc(*tok, "aaa"), ElementsAre(aa, 'a'));
  EXPECT_EQ(tok->TokenToPiece(sthe, false), " the");
}

TEST(BpeTest, MergesStayInsidePreTokenizerPieces) {
  Builder b;
  b.Merge("a", ByteChar(' '));  // "a " would span two GPT-2 pieces
  auto tok = b.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "a b"), ElementsAre('a', ' ', 'b'));
}

TEST(BpeTest, Llama3IgnoresMergesForWholeTokens) {
  for (const char* pre : {"llama-bpe", "gpt2"}) {
    Builder b(pre);
    const int ab = b.Merge("a", "b");
    const int abc = b.Add("abc");  // no merge path reaches it
    auto tok = b.Build();
    ASSERT_NE(tok, nullptr);
    if (std::string(pre) == "llama-bpe") {
      EXPECT_THAT(Enc(*tok, "abc"), ElementsAre(abc));
    } else {
      EXPECT_THAT(Enc(*tok, "abc"), ElementsAre(ab, 'c'));
    }
  }
}

TEST(BpeTest, UnknownPreTokenizerIsAnErrorNamingIt) {
  Builder b("some-new-model");
  auto tok = b.Create();
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tok.status().message(), HasSubstr("tokenizer.ggml.pre"));
  EXPECT_THAT(tok.status().message(), HasSubstr("some-new-model"));
}

TEST(BpeTest, MalformedMergesAreErrorsNamingTheLine) {
  {
    Builder b;
    b.v.merges.push_back("ab");
    auto tok = b.Create();
    ASSERT_FALSE(tok.ok());
    EXPECT_THAT(tok.status().message(), HasSubstr("tokenizer.ggml.merges[0]"));
  }
  {
    Builder b;
    b.Merge("a", "b");
    b.v.merges.push_back("x yz");  // "yz" is no token
    auto tok = b.Create();
    ASSERT_FALSE(tok.ok());
    EXPECT_THAT(tok.status().message(), HasSubstr("tokenizer.ggml.merges[1]"));
    EXPECT_THAT(tok.status().message(), HasSubstr("\"yz\" is not a token"));
  }
  {
    Builder b;
    b.v.merges.push_back("q r");  // "qr" is no token
    auto tok = b.Create();
    ASSERT_FALSE(tok.ok());
    EXPECT_THAT(tok.status().message(), HasSubstr("\"qr\" is not a token"));
  }
}

TEST(BpeTest, AByteWithNoTokenUsesARealUnknownTokenOrIsDropped) {
  // As Hugging Face's byte-level BPE: no unknown token, the byte is dropped.
  Builder b;
  b.v.tokens['z'] = "<never>";  // drop the token for byte 'z'
  auto tok = b.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(Enc(*tok, "az"), ElementsAre('a'));
  EXPECT_THAT(Enc(*tok, "z"), ElementsAre());
  // A control token recorded as "unknown" (SmolLM2: <|endoftext|>) must
  // never be injected into a prompt.
  b.v.unk = b.Add("<|endoftext|>", kControl);
  auto tok_ctl = b.Build();
  ASSERT_NE(tok_ctl, nullptr);
  EXPECT_THAT(Enc(*tok_ctl, "aza"), ElementsAre('a', 'a'));
  // A real unknown token stands in for it.
  b.v.unk = b.Add("<unk>", kUnknown);
  auto tok2 = b.Build();
  ASSERT_NE(tok2, nullptr);
  EXPECT_THAT(Enc(*tok2, "az"), ElementsAre('a', b.v.unk));
}

TEST(BpeTest, ControlTokensRenderOnlyOnRequest) {
  Builder b;
  const int eot = b.Add("<|endoftext|>", kControl);
  auto tok = b.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->TokenToPiece(eot, false), "");
  EXPECT_EQ(tok->TokenToPiece(eot, true), "<|endoftext|>");
  EXPECT_THAT(Enc(*tok, "<|endoftext|>", /*parse_special=*/true), ElementsAre(eot));
  EXPECT_THAT(Enc(*tok, "<|endoftext|>", /*parse_special=*/false),
              ::testing::Not(::testing::Contains(eot)));
  EXPECT_EQ(tok->TokenToPiece(-1, true), "");
  EXPECT_EQ(tok->TokenToPiece(tok->n_vocab(), true), "");
}

TEST(BpeTest, DescribeNamesKindAndPreTokenizer) {
  Builder b("qwen2");
  b.Merge("a", "b");
  auto tok = b.Build();
  ASSERT_NE(tok, nullptr);
  EXPECT_THAT(tok->Describe(), HasSubstr("byte-level BPE"));
  EXPECT_THAT(tok->Describe(), HasSubstr("qwen2"));
  EXPECT_THAT(tok->Describe(), HasSubstr("1 merges"));
}

}  // namespace
}  // namespace hearth::tok
