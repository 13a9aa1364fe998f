// tokenizer_conformance_test.cc — the published llama.cpp vocab test vectors
// (shared/data/tokenizers, see its README): every string of every vocab must
// tokenize to exactly the reference ids and detokenize back to itself.
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sdk/src/format/gguf.h"
#include "sdk/src/tokenizer/tokenizer.h"

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

Loaded Load(const std::string& name) {
  Loaded l;
  const std::string path = std::string(HEARTH_SHARED_DATA) + "/tokenizers/ggml-vocab-" + name + ".gguf";
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
  const std::string base = std::string(HEARTH_SHARED_DATA) + "/tokenizers/ggml-vocab-" + name + ".gguf";
  const std::vector<std::string> inputs = ReadInputs(base + ".inp");
  const std::vector<std::vector<int32_t>> expected = ReadOutputs(base + ".out");
  ASSERT_EQ(inputs.size(), 46u);
  ASSERT_EQ(inputs.size(), expected.size());
  Loaded l = Load(name);
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

INSTANTIATE_TEST_SUITE_P(Vocabs, ConformanceTest,
                         ::testing::Values("llama-spm", "gpt-2", "deepseek-llm"));

}  // namespace
}  // namespace hearth::tok
