// format_strict_json_test.cc — the strict JSON reader: exactly one value,
// then nothing but whitespace. nlohmann's lexer takes a NUL byte for the end
// of the input, so a NUL and whatever follows it must be refused, not
// dropped (issue 17, class 8).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "sdk/src/format/strict_json.h"

namespace hearth::format {
namespace {

using ::testing::HasSubstr;

std::string ErrorOf(const std::string& text) {
  auto v = ParseStrictJson(text, "t.json");
  EXPECT_FALSE(v.ok()) << "accepted: " << ShowText(text);
  if (v.ok()) return "";
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(v.status().message());
}

TEST(StrictJsonTest, WhitespaceAfterTheValueIsFine) {
  for (const std::string text : {"{\"a\": 1}", "{\"a\": 1}  \t\r\n", " [1, 2] ", "3\n"}) {
    auto v = ParseStrictJson(text, "t.json");
    EXPECT_TRUE(v.ok()) << ShowText(text) << ": " << v.status();
  }
}

TEST(StrictJsonTest, AnythingElseAfterTheValueIsAnError) {
  EXPECT_THAT(ErrorOf("{\"a\": 1} x"), HasSubstr("t.json: invalid JSON at byte"));
  EXPECT_THAT(ErrorOf("{\"a\": 1}{\"b\": 2}"), HasSubstr("t.json: invalid JSON at byte"));
}

TEST(StrictJsonTest, NulByteAndWhatFollowsItAreNotIgnored) {
  // sizeof - 1: the literal's bytes, NUL included, without the terminator.
  static const char kAfterValue[] = "{\"text\":\"a\"}\0{\"text\":\"b\"} garbage";
  const std::string after_value(kAfterValue, sizeof(kAfterValue) - 1);
  EXPECT_THAT(ErrorOf(after_value), HasSubstr("t.json: invalid JSON at byte 13: a NUL byte"));
  EXPECT_THAT(ErrorOf(std::string("{\"a\": 1}\0", 9)), HasSubstr("at byte 9: a NUL byte"));
  EXPECT_THAT(ErrorOf(std::string("{\"a\": 1}  \0  ", 13)), HasSubstr("a NUL byte"));
  EXPECT_THAT(ErrorOf(std::string("\0{\"a\": 1}", 9)), HasSubstr("at byte 1: a NUL byte"));
  EXPECT_THAT(ErrorOf(std::string("{\"a\": \"x\0y\"}", 12)), HasSubstr("a NUL byte"));
}

}  // namespace
}  // namespace hearth::format
