// tokenizer_conformance_test.cc — the published llama.cpp vocab test vectors
// (shared/data/tokenizers, see its README): every string of every vocab must
// tokenize to exactly the reference ids and detokenize back to itself.
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/tokenizer/tokenizer.h"
#include "sdk/src/tokenizer/unicode_class.h"

namespace hearth::tok {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The .inp layout: each string is followed by "\n__ggml_vocab_test__\n", so
// splitting on that separator leaves one empty tail after the last string.
std::vector<std::string> ReadInputs(const std::string& path) {
  const std::string data = ReadFile(path);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t next = data.find(sep, pos);
    if (next == std::string::npos) break;
    out.push_back(data.substr(pos, next - pos));
    pos = next + sep.size();
  }
  EXPECT_EQ(pos, data.size()) << path << ": text after the last separator";
  return out;
}

// The .out layout: one line per string, ids separated (and preceded) by spaces.
std::vector<std::vector<int32_t>> ReadOutputs(const std::string& path) {
  std::istringstream in(ReadFile(path));
  std::vector<std::vector<int32_t>> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    int32_t id;
    while (ls >> id) ids.push_back(id);
    out.push_back(std::move(ids));
  }
  return out;
}

struct Loaded {
  std::unique_ptr<gguf::File> file;
  std::unique_ptr<Tokenizer> tok;
};

// Loads each vocab once per test program (the deepseek one is 100k tokens and
// 100k merges: reloading it per test is most of the suite's time under ASan).
const Loaded& Load(const std::string& name) {
  static auto* cache = new std::map<std::string, Loaded>();
  auto it = cache->find(name);
  if (it != cache->end()) return it->second;
  Loaded& l = (*cache)[name];
  const std::string path =
      std::string(HEARTH_SHARED_DATA) + "/tokenizers/ggml-vocab-" + name + ".gguf";
  auto file = gguf::File::Open(path);
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return l;
  l.file = *std::move(file);
  auto vocab = LoadVocab(*l.file);
  EXPECT_TRUE(vocab.ok()) << vocab.status();
  if (!vocab.ok()) return l;
  auto tok = Tokenizer::Create(*std::move(vocab));
  EXPECT_TRUE(tok.ok()) << tok.status();
  if (tok.ok()) l.tok = *std::move(tok);
  return l;
}

class ConformanceTest : public ::testing::TestWithParam<const char*> {};

TEST_P(ConformanceTest, EveryStringMatchesAndRoundTrips) {
  const std::string name = GetParam();
  const std::string base =
      std::string(HEARTH_SHARED_DATA) + "/tokenizers/ggml-vocab-" + name + ".gguf";
  const std::vector<std::string> inputs = ReadInputs(base + ".inp");
  const std::vector<std::vector<int32_t>> expected = ReadOutputs(base + ".out");
  ASSERT_EQ(inputs.size(), 46u);
  ASSERT_EQ(inputs.size(), expected.size());
  const Loaded& l = Load(name);
  ASSERT_NE(l.tok, nullptr);
  for (size_t i = 0; i < inputs.size(); ++i) {
    SCOPED_TRACE(testing::Message() << name << " string #" << i << ": \"" << inputs[i] << "\"");
    auto ids = l.tok->Encode(inputs[i], /*add_special=*/false, /*parse_special=*/false);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, expected[i]);
    auto text = l.tok->Decode(*ids, /*render_special=*/false);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, inputs[i]);
  }
}

// Scripts, emoji sequences, combining marks and odd whitespace that the
// published vectors cover thinly: each must come back byte for byte, both
// through Decode and through the streaming decoder.
const char* const kMultilingual[] = {
    "Emoji: \xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 "
    "\xF0\x9F\x8F\xB3\xEF\xB8\x8F\xE2\x80\x8D\xF0\x9F\x8C\x88 \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD",
    "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE\xE3\x83\x86\xE3\x82\xAD\xE3\x82\xB9"
    "\xE3\x83\x88\xE3\x81\xA8\xE4\xB8\xAD\xE6\x96\x87\xEF\xBC\x8C\xED\x95\x9C\xEA\xB5\xAD"
    "\xEC\x96\xB4\xE3\x80\x82",
    "\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7 \xD8\xA8\xD8\xA7\xD9\x84\xD8\xB9\xD8\xA7\xD9\x84"
    "\xD9\x85! (Arabic) \xD7\xA9\xD7\x81\xD6\xB8\xD7\x9C\xD7\x95\xD6\xB9\xD7\x9D",
    "e\xCC\x81 a\xCC\x88 Z\xCC\xA4\xCD\x94\xCD\xA7\xCC\x91 \xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8"
    "\xE0\xA5\x8D\xE0\xA4\xA4\xE0\xA5\x87 \xE0\xB8\xAA\xE0\xB8\xA7\xE0\xB8\xB1\xE0\xB8\xAA"
    "\xE0\xB8\x94\xE0\xB8\xB5",
    "tab\there\r\nCRLF\xC2\xA0nbsp\xE3\x80\x80ideographic   \n\n  end  ",
    "\xE2\x88\x80x\xE2\x88\x88\xE2\x84\x9D: x\xC2\xB2 \xE2\x89\xA5 0 \xE2\x80\x94 "
    "\xE2\x80\x9Cquotes\xE2\x80\x9D \xE2\x80\xA6 \xE2\x84\xAA 1,234.5e-6",
    "  \n leading and <|endoftext|> <s> [PAD100015] text",
};

TEST_P(ConformanceTest, MultilingualRoundTrip) {
  const std::string name = GetParam();
  const Loaded& l = Load(name);
  ASSERT_NE(l.tok, nullptr);
  const bool spm_prefix = l.tok->vocab().model == "llama" && l.tok->vocab().add_space_prefix;
  for (const char* text : kMultilingual) {
    SCOPED_TRACE(testing::Message() << name << ": \"" << text << "\"");
    auto ids = l.tok->Encode(text, /*add_special=*/false, /*parse_special=*/false);
    ASSERT_TRUE(ids.ok()) << ids.status();
    auto back = l.tok->Decode(*ids, false);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, text);
    StreamDecoder stream(*l.tok);
    std::string streamed;
    for (int32_t id : *ids) streamed += stream.Push(id);
    streamed += stream.Flush();
    EXPECT_EQ(streamed, (spm_prefix ? " " : "") + std::string(text));
  }
}

TEST_P(ConformanceTest, SpecialTokensAndEndOfGeneration) {
  const std::string name = GetParam();
  const Loaded& l = Load(name);
  ASSERT_NE(l.tok, nullptr);
  const VocabData& v = l.tok->vocab();
  ASSERT_GE(v.eos, 0);
  EXPECT_TRUE(l.tok->IsEog(v.eos));
  const std::string eos_text = v.tokens[v.eos];
  auto parsed = l.tok->Encode(eos_text, /*add_special=*/false, /*parse_special=*/true);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, std::vector<int32_t>{v.eos});
  auto plain = l.tok->Encode(eos_text, false, false);
  ASSERT_TRUE(plain.ok());
  EXPECT_GT(plain->size(), 1u);
  auto with_bos = l.tok->Encode("Hi", /*add_special=*/true, false);
  ASSERT_TRUE(with_bos.ok());
  EXPECT_EQ(!with_bos->empty() && with_bos->front() == v.bos, v.add_bos);
  auto rendered = l.tok->Decode({v.eos}, /*render_special=*/true);
  ASSERT_TRUE(rendered.ok());
  EXPECT_EQ(*rendered, eos_text);
  EXPECT_FALSE(l.tok->Describe().empty());
}

// Hostile and random input, fixed seed: random code points (weighted to
// ASCII, spaces and newlines) must round-trip; random bytes and ids must give
// a result or an error, never a crash (run under ASan/UBSan in CI).
TEST_P(ConformanceTest, RandomInputRoundTripsOrFailsCleanly) {
  const std::string name = GetParam();
  const Loaded& l = Load(name);
  ASSERT_NE(l.tok, nullptr);
  const bool spm = l.tok->vocab().model == "llama";
  std::mt19937 rng(20240601);
  auto pick_cp = [&]() -> uint32_t {
    switch (rng() % 6) {
      case 0:
        return " \n\t\r"[rng() % 4];
      case 1:
      case 2:
        return 0x20 + rng() % 0x5F;
      case 3:
        return 0x80 + rng() % 0x780;
      case 4:
        return 0x3000 + rng() % 0x7000;
      default: {
        uint32_t cp = rng() % 0x110000;
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
        return cp;
      }
    }
  };
  for (int n = 0; n < 200; ++n) {
    std::string text;
    const int len = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < len; ++i) {
      uint32_t cp = pick_cp();
      if (spm && cp == 0x2581) cp = 'x';  // SentencePiece's own space mark decodes to ' '
      AppendUtf8(cp, &text);
    }
    SCOPED_TRACE(testing::Message() << name << " random text #" << n);
    auto ids = l.tok->Encode(text, false, false);
    ASSERT_TRUE(ids.ok()) << ids.status();
    auto back = l.tok->Decode(*ids, false);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, text);
  }
  for (int n = 0; n < 200; ++n) {
    std::string bytes(1 + rng() % 24, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() % 256);
    auto ids = l.tok->Encode(bytes, true, true);
    EXPECT_EQ(ids.ok(), ValidUtf8Prefix(bytes) == bytes.size());
    std::vector<int32_t> random_ids(1 + rng() % 16);
    bool in_range = true;
    for (int32_t& id : random_ids) {
      id = static_cast<int32_t>(rng() % (l.tok->n_vocab() + 8)) - 4;
      in_range = in_range && id >= 0 && id < l.tok->n_vocab();
    }
    EXPECT_EQ(l.tok->Decode(random_ids, true).ok(), in_range);
    StreamDecoder stream(*l.tok);
    std::string streamed;
    for (int32_t id : random_ids) streamed += stream.Push(id);
    streamed += stream.Flush();
    EXPECT_EQ(ValidUtf8Prefix(streamed), streamed.size());  // always valid UTF-8
  }
}

INSTANTIATE_TEST_SUITE_P(Vocabs, ConformanceTest,
                         ::testing::Values("llama-spm", "gpt-2", "deepseek-llm"));

}  // namespace
}  // namespace hearth::tok
