// `hearth serve`'s <think> splitting (sdk/cli/serve_response.cc): every way
// of cutting a reply into released pieces gives the same reasoning and
// content, and nothing that could still be a tag goes out early.
#include "sdk/cli/serve_response.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace hearth::cli {
namespace {

struct Split {
  std::string reasoning, content;
};

// `text` fed in pieces cut at `cuts` (increasing byte offsets).
Split Run(const std::string& text, const std::vector<size_t>& cuts) {
  ReasoningSplitter splitter;
  Split out;
  size_t at = 0;
  for (size_t cut : cuts) {
    splitter.Feed(std::string_view(text).substr(at, cut - at), &out.reasoning, &out.content);
    at = cut;
  }
  splitter.Feed(std::string_view(text).substr(at), &out.reasoning, &out.content);
  splitter.Finish(&out.reasoning, &out.content);
  return out;
}

void ExpectEveryCut(const std::string& text, const std::string& reasoning,
                    const std::string& content) {
  for (size_t a = 0; a <= text.size(); ++a) {
    for (size_t b = a; b <= text.size(); ++b) {
      const Split s = Run(text, {a, b});
      EXPECT_EQ(s.reasoning, reasoning) << "cuts " << a << ", " << b;
      EXPECT_EQ(s.content, content) << "cuts " << a << ", " << b;
    }
  }
}

TEST(ReasoningSplitter, ThinkBlockThenAnswer) {
  ExpectEveryCut("<think>\nchest pain: rule out ACS\n</think>\n\nTriage: urgent",
                 "\nchest pain: rule out ACS\n", "Triage: urgent");
}

TEST(ReasoningSplitter, LeadingBlanksBeforeThink) {
  ExpectEveryCut("\n <think>a<b</think>ok", "a<b", "ok");
}

TEST(ReasoningSplitter, NoThinkBlockIsAllContent) {
  ExpectEveryCut("  Hello <think>not reasoning</think>", "",
                 "  Hello <think>not reasoning</think>");
  ExpectEveryCut("<thin", "", "<thin");
  ExpectEveryCut("", "", "");
}

TEST(ReasoningSplitter, CutOffWhileThinking) {
  ExpectEveryCut("<think>still going </thi", "still going </thi", "");
}

TEST(ReasoningSplitter, MultibyteTextStaysWhole) {
  const std::string text = "<think>\xC3\xA9\xE4\xB8\xAD</think>\xF0\x9F\x98\x80";
  ExpectEveryCut(text, "\xC3\xA9\xE4\xB8\xAD", "\xF0\x9F\x98\x80");
}

TEST(ReasoningSplitter, HoldsBackOnlyAPossibleTag) {
  ReasoningSplitter splitter;
  std::string reasoning, content;
  splitter.Feed("<think>abc</th", &reasoning, &content);
  EXPECT_EQ(reasoning, "abc");
  splitter.Feed("e", &reasoning, &content);  // "</the" is no tag's start
  EXPECT_EQ(reasoning, "abc</the");
}

TEST(ServeResponse, ReasoningGoesOutAsReasoningContent) {
  ResponseMeta meta;
  meta.kind = ServeKind::kChat;
  meta.id = "chatcmpl-1";
  meta.model = "m";
  ChoiceResult c;
  c.text = "answer";
  c.reasoning = "why";
  c.finish_reason = "stop";
  const std::string whole = ResponseJson(meta, {c}, Usage());
  EXPECT_NE(whole.find("\"reasoning_content\":\"why\""), std::string::npos) << whole;
  const std::string chunk = TextChunk(meta, 0, "", nullptr, 0, "why");
  EXPECT_NE(chunk.find("\"delta\":{\"reasoning_content\":\"why\"}"), std::string::npos) << chunk;
  const std::string plain = TextChunk(meta, 0, "a", nullptr, 0);
  EXPECT_NE(plain.find("\"delta\":{\"content\":\"a\"}"), std::string::npos) << plain;
}

}  // namespace
}  // namespace hearth::cli
