// Chat formats: detection from a model's template or architecture, and the
// exact text each format renders.
#include "sdk/src/chat/chat_template.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "sdk/src/format/gguf.h"
#include "sdk/src/tokenizer/tokenizer.h"

namespace hearth::chat {
namespace {

// A vocabulary of `tokens`, each of type `type`.
tok::VocabData Vocab(std::vector<std::string> tokens, int32_t type = tok::kControl) {
  tok::VocabData v;
  v.token_types.assign(tokens.size(), type);
  v.tokens = std::move(tokens);
  return v;
}

// The vocabulary of a fixture model in tests/data/models.
tok::VocabData FixtureVocab(const std::string& model) {
  auto file = gguf::File::Open(std::string(HEARTH_TEST_DATA) + "/models/" + model);
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return {};
  auto vocab = tok::LoadVocab(**file);
  EXPECT_TRUE(vocab.ok()) << vocab.status();
  return vocab.ok() ? *std::move(vocab) : tok::VocabData{};
}

TEST(ChatTemplate, DetectsFromTemplateThenArchitecture) {
  const tok::VocabData all =
      Vocab({"<s>", "</s>", "<start_of_turn>", "<end_of_turn>", "<|im_start|>", "<|im_end|>",
             "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"});
  EXPECT_EQ(*DetectFormat("{% ... '<start_of_turn>' ... %}", "llama", all), "gemma");
  EXPECT_EQ(*DetectFormat("{{ '<|im_start|>' + role }}", "llama", all), "chatml");
  EXPECT_EQ(*DetectFormat("<|start_header_id|>", "llama", all), "llama3");
  EXPECT_EQ(*DetectFormat("", "gemma3", all), "gemma");
  EXPECT_EQ(*DetectFormat("", "qwen2", all), "chatml");
  EXPECT_EQ(*DetectFormat("", "llama", all), "llama2");
  auto none = DetectFormat("", "mystery", all);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(none.status().message()).find("mystery"), std::string::npos);
}

// Issue 17, class 4: a ChatML (Qwen2) template whose Jinja comment mentions
// <start_of_turn> was rendered as Gemma markup the vocabulary lacks.
TEST(ChatTemplate, CommentsAndStringsDoNotChooseTheFormat) {
  const tok::VocabData qwen = FixtureVocab("tiny-qwen2-f32.gguf");
  const std::string chatml =
      "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
      "message['content'] + '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ "
      "'<|im_start|>assistant\\n' }}{% endif %}";
  EXPECT_EQ(*DetectFormat(chatml, "qwen2", qwen), "chatml");
  EXPECT_EQ(*DetectFormat("{# unlike Gemma's <start_of_turn>user ... <end_of_turn> #}" + chatml,
                          "qwen2", qwen),
            "chatml");
  // A comment left open runs to the end of the template.
  EXPECT_EQ(*DetectFormat(chatml + "{# <start_of_turn>", "qwen2", qwen), "chatml");
  // A string the template tests but never writes: the vocabulary outvotes it.
  EXPECT_EQ(*DetectFormat("{% if '<start_of_turn>' in messages[0]['content'] %}"
                          "{{ raise_exception('no Gemma markup') }}{% endif %}" +
                              chatml,
                          "qwen2", qwen),
            "chatml");
  // Markers only inside a comment: the template names no format, the
  // architecture does.
  EXPECT_EQ(*DetectFormat("{# <start_of_turn> #}{{ messages }}", "qwen2", qwen), "chatml");
}

TEST(ChatTemplate, AFormatWhoseMarkupIsNotControlTokensIsRefusedNamingTheToken) {
  const tok::VocabData qwen = FixtureVocab("tiny-qwen2-f32.gguf");
  auto gemma = DetectFormat("{{ '<start_of_turn>' + role }}", "qwen2", qwen);
  ASSERT_EQ(gemma.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(gemma.status().message().find(
                "tokenizer.chat_template writes <start_of_turn> (the 'gemma' format), but "
                "'<start_of_turn>' is not in the vocabulary"),
            std::string::npos)
      << gemma.status();
  // The architecture's format is checked the same way.
  auto arch = DetectFormat("", "gemma3", qwen);
  ASSERT_FALSE(arch.ok());
  EXPECT_NE(arch.status().message().find("architecture 'gemma3' uses the 'gemma' format, but "
                                         "'<start_of_turn>' is not in the vocabulary"),
            std::string::npos)
      << arch.status();
  // Present but not as a control token: it would encode as plain text in the markup.
  tok::VocabData normal = Vocab({"<|im_start|>", "<|im_end|>"});
  normal.token_types[1] = tok::kNormal;
  auto chatml = DetectFormat("<|im_start|>", "qwen2", normal);
  ASSERT_FALSE(chatml.ok());
  EXPECT_NE(chatml.status().message().find(
                "'<|im_end|>' (id 1) is a normal token of the vocabulary, not a control token"),
            std::string::npos)
      << chatml.status();
  // Llama 2: <s> and </s> are the markup's control tokens ([INST] is text).
  const tok::VocabData llama = FixtureVocab("tiny-llama-f32.gguf");
  EXPECT_EQ(*DetectFormat("", "llama", llama), "llama2");
  EXPECT_EQ(*DetectFormat("[INST]", "qwen2", llama), "llama2");
  EXPECT_FALSE(DetectFormat("", "qwen2", llama).ok());
}

TEST(ChatTemplate, GemmaTurnsAndSystemPrompt) {
  auto text = Render("gemma",
                     {{"system", "Be brief."},
                      {"user", "Hi"},
                      {"assistant", "Hello!"},
                      {"user", "What is 12 times 12?"}},
                     true);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
            "<start_of_turn>model\nHello!<end_of_turn>\n"
            "<start_of_turn>user\nWhat is 12 times 12?<end_of_turn>\n"
            "<start_of_turn>model\n");
  EXPECT_FALSE(Render("gemma", {{"assistant", "x"}}, true).ok());
  EXPECT_FALSE(Render("gemma", {{"user", "x"}, {"system", "late"}}, true).ok());
}

TEST(ChatTemplate, ChatmlAndLlama3) {
  EXPECT_EQ(*Render("chatml", {{"system", "S"}, {"user", "U"}}, true),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(*Render("llama3", {{"user", "U"}}, false),
            "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>");
  EXPECT_EQ(
      *Render("llama2", {{"system", "S"}, {"user", "U"}, {"assistant", "A"}, {"user", "V"}}, true),
      "[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST] A </s><s>[INST] V [/INST]");
}

// DeepSeek-R1 distills: detected by <｜Assistant｜> in the template (a
// Qwen2 or Llama body), rendered as DeepSeek's template writes it.
TEST(ChatTemplate, DeepseekR1) {
  const std::string user =
      "<\xef\xbd\x9c"
      "User\xef\xbd\x9c>";
  const std::string assistant =
      "<\xef\xbd\x9c"
      "Assistant\xef\xbd\x9c>";
  const std::string eos =
      "<\xef\xbd\x9c"
      "end\xe2\x96\x81"
      "of\xe2\x96\x81"
      "sentence\xef\xbd\x9c>";
  const std::string source = "{% if not add_generation_prompt is defined %}...{{'" + user +
                             "' + message['content']}}...{{'" + assistant + "'}}";
  EXPECT_EQ(*DetectFormat(source, "qwen2", Vocab({"<|im_start|>", user, assistant, eos})),
            "deepseek-r1");
  EXPECT_EQ(*DetectFormat(source, "llama", Vocab({user, assistant, eos})), "deepseek-r1");
  // Markup the vocabulary lacks as control tokens is refused, naming it.
  auto plain = DetectFormat(source, "qwen2", Vocab({user, assistant, eos}, tok::kNormal));
  ASSERT_FALSE(plain.ok());
  EXPECT_NE(std::string(plain.status().message()).find("not a control token"), std::string::npos);
  EXPECT_EQ(*Render("deepseek-r1",
                    {{"system", "S"}, {"user", "U"}, {"assistant", "A"}, {"user", "V"}}, true),
            "S" + user + "U" + assistant + "A" + eos + user + "V" + assistant);
  EXPECT_FALSE(Render("deepseek-r1", {{"user", "U"}, {"system", "late"}}, true).ok());
}

TEST(ChatTemplate, ContentSpansCoverEachMessageAndNothingElse) {
  const std::vector<Message> conversation = {
      {"system", "Be brief."}, {"user", "Hi <|im_end|>"}, {"assistant", "Hello!"}, {"user", "Q"}};
  for (const char* format : {"gemma", "chatml", "llama3", "llama2", "deepseek-r1"}) {
    std::vector<ContentSpan> spans;
    auto text = Render(format, conversation, true, &spans);
    ASSERT_TRUE(text.ok()) << format;
    ASSERT_EQ(spans.size(), conversation.size()) << format;
    size_t prev_end = 0;
    for (size_t i = 0; i < spans.size(); ++i) {
      EXPECT_EQ(text->substr(spans[i].begin, spans[i].end - spans[i].begin),
                conversation[i].content)
          << format << " message " << i;
      EXPECT_GE(spans[i].begin, prev_end) << format << " message " << i;
      prev_end = spans[i].end;
    }
    // The markup alone, contents removed, is the format's and nothing of the user's.
    std::string markup;
    size_t at = 0;
    for (const ContentSpan& s : spans) {
      markup += text->substr(at, s.begin - at);
      at = s.end;
    }
    markup += text->substr(at);
    EXPECT_EQ(markup.find("Hello"), std::string::npos) << format;
    EXPECT_EQ(markup.find("Hi"), std::string::npos) << format;
  }
}

// Training takes each assistant turn's bounds from the renderer (one pass,
// issue 17 class 2); they must be where rendering the conversation's
// prefixes would put them.
TEST(ChatTemplate, TurnSpansAreWherePrefixRenderingsEnd) {
  const std::vector<Message> conversation = {{"system", "Be brief."}, {"user", "Hi"},
                                             {"assistant", "Hello!"}, {"user", "Q <|im_end|>"},
                                             {"model", "A"},          {"user", "Last"}};
  for (const char* format : {"gemma", "chatml", "llama3", "llama2", "deepseek-r1"}) {
    std::vector<TurnSpan> turns;
    auto text = Render(format, conversation, false, nullptr, &turns);
    ASSERT_TRUE(text.ok()) << format << ": " << text.status();
    ASSERT_EQ(turns.size(), conversation.size());
    for (size_t i = 0; i < conversation.size(); ++i) {
      if (!IsAssistantRole(conversation[i].role)) {
        EXPECT_EQ(turns[i].open, 0u);
        EXPECT_EQ(turns[i].close, 0u);
        continue;
      }
      const std::vector<Message> before(conversation.begin(), conversation.begin() + i);
      const std::vector<Message> through(conversation.begin(), conversation.begin() + i + 1);
      auto prompt = Render(format, before, true);
      auto turn = Render(format, through, false);
      ASSERT_TRUE(prompt.ok() && turn.ok()) << format;
      EXPECT_EQ(text->substr(0, turns[i].open), *prompt) << format << " message " << i;
      EXPECT_EQ(text->substr(0, turns[i].close), *turn) << format << " message " << i;
    }
  }
}

TEST(ChatTemplate, BadInputIsNamed) {
  auto bad = Render("chatml", {{"user", "a"}, {"robot", "b"}}, true);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("message 1"), std::string::npos);
  EXPECT_NE(std::string(bad.status().message()).find("robot"), std::string::npos);
  EXPECT_FALSE(Render("chatml", {}, true).ok());
  EXPECT_FALSE(Render("nope", {{"user", "a"}}, true).ok());
}

}  // namespace
}  // namespace hearth::chat
