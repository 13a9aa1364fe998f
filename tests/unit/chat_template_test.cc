// Chat formats: detection from a model's template or architecture, and the
// exact text each format renders.
#include "sdk/src/chat/chat_template.h"

#include <gtest/gtest.h>

namespace hearth::chat {
namespace {

TEST(ChatTemplate, DetectsFromTemplateThenArchitecture) {
  EXPECT_EQ(*DetectFormat("{% ... '<start_of_turn>' ... %}", "llama"), "gemma");
  EXPECT_EQ(*DetectFormat("{{ '<|im_start|>' + role }}", "llama"), "chatml");
  EXPECT_EQ(*DetectFormat("<|start_header_id|>", "llama"), "llama3");
  EXPECT_EQ(*DetectFormat("", "gemma3"), "gemma");
  EXPECT_EQ(*DetectFormat("", "qwen2"), "chatml");
  auto none = DetectFormat("", "mystery");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(none.status().message()).find("mystery"), std::string::npos);
}

TEST(ChatTemplate, GemmaTurnsAndSystemPrompt) {
  auto text = Render("gemma",
                     {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"},
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
  EXPECT_EQ(*Render("llama2", {{"system", "S"}, {"user", "U"}, {"assistant", "A"}, {"user", "V"}},
                    true),
            "[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST] A </s><s>[INST] V [/INST]");
}

TEST(ChatTemplate, ContentSpansCoverEachMessageAndNothingElse) {
  const std::vector<Message> conversation = {
      {"system", "Be brief."}, {"user", "Hi <|im_end|>"}, {"assistant", "Hello!"}, {"user", "Q"}};
  for (const char* format : {"gemma", "chatml", "llama3", "llama2"}) {
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
  for (const char* format : {"gemma", "chatml", "llama3", "llama2"}) {
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
