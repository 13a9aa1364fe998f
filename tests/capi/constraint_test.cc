// Constrained decoding through hearth.h: hearth_generate_params.constraint
// names an extension plugin (here the shipped banned-strings plugin) whose
// logits mask runs before every sampled token.
#include <gtest/gtest.h>

#include <string>

#include "capi_test_util.h"
#include "hearth/hearth.h"

namespace {

using hearth_test::Error;

const std::string kTinyLlama = std::string(HEARTH_TEST_DATA) + "/models/tiny-llama-f32.gguf";

class Constraint : public ::testing::Test {
 protected:
  void SetUp() override {
    Error err;
    rt_ = hearth_test::TestRuntime(&err);
    ASSERT_NE(rt_, nullptr) << err.message();
    Error load{hearth_model_load(rt_, kTinyLlama.c_str(), nullptr, &model_)};
    ASSERT_NE(model_, nullptr) << load.message();
  }
  void TearDown() override {
    hearth_model_free(model_);
    hearth_runtime_free(rt_);
  }
  // Greedy text for a fixed prompt in a fresh session, or the error.
  std::string Generate(const char* constraint, const char* config, hearth_stop_reason* reason,
                       Error* err, int max_tokens = 24) {
    hearth_session* s = nullptr;
    err->e = hearth_session_create(model_, nullptr, &s);
    if (err->e != nullptr) return "";
    hearth_generate_params gp = HEARTH_GENERATE_PARAMS_INIT;
    gp.max_tokens = max_tokens;
    gp.sampling.temperature = 0.0f;
    gp.constraint = constraint;
    gp.constraint_config = config;
    std::string text;
    hearth_generate_result result = HEARTH_GENERATE_RESULT_INIT;
    const std::string prompt = "Once upon a time";
    err->e = hearth_session_generate(
        s, prompt.data(), prompt.size(), &gp,
        [](const char* piece, size_t len, void* user) {
          static_cast<std::string*>(user)->append(piece, len);
          return 0;
        },
        &text, &result);
    if (reason != nullptr) *reason = result.stop_reason;
    hearth_session_free(s);
    return text;
  }
  hearth_runtime* rt_ = nullptr;
  hearth_model* model_ = nullptr;
};

TEST_F(Constraint, TheRuntimeLoadsTheBannedStringsExtension) {
  bool found = false;
  for (size_t i = 0; i < hearth_runtime_plugin_count(rt_); ++i) {
    hearth_plugin_info pi = HEARTH_PLUGIN_INFO_INIT;
    Error e{hearth_runtime_plugin_info(rt_, i, &pi)};
    ASSERT_EQ(e.e, nullptr) << e.message();
    if (std::string(pi.name) == "banned-strings") {
      found = true;
      EXPECT_EQ(pi.load_error, nullptr);
    }
  }
  EXPECT_TRUE(found);
  // An extension brings no device.
  for (size_t i = 0; i < hearth_runtime_device_count(rt_); ++i) {
    hearth_device_info di = HEARTH_DEVICE_INFO_INIT;
    Error e{hearth_runtime_device_info(rt_, i, &di)};
    EXPECT_STRNE(di.plugin, "banned-strings");
  }
}

TEST_F(Constraint, BannedTextNeverAppearsAndTheRestIsUnchangedUntilIt) {
  Error e1;
  const std::string free_text = Generate(nullptr, nullptr, nullptr, &e1);
  ASSERT_EQ(e1.e, nullptr) << e1.message();
  ASSERT_GE(free_text.size(), 6u) << "the tiny model must produce some text to ban";
  // Ban a piece from the middle of what greedy decoding produced.
  const size_t at = free_text.size() / 2;
  const std::string banned = free_text.substr(at, 3);
  const std::string config = banned + "\n";
  Error e2;
  const std::string constrained = Generate("banned-strings", config.c_str(), nullptr, &e2);
  ASSERT_EQ(e2.e, nullptr) << e2.message();
  EXPECT_EQ(constrained.find(banned), std::string::npos)
      << "banned '" << banned << "' in '" << constrained << "'";
  EXPECT_NE(constrained, free_text);
  // Greedy decoding only diverges where the banned text would have begun
  // to complete: before the first occurrence the two agree.
  const size_t first = free_text.find(banned);
  ASSERT_NE(first, std::string::npos);
  EXPECT_EQ(constrained.substr(0, first / 2), free_text.substr(0, first / 2));
}

TEST_F(Constraint, AMaskThatBansNothingGeneratedChangesNothing) {
  Error e1, e2;
  const std::string a = Generate(nullptr, nullptr, nullptr, &e1);
  const std::string b = Generate("banned-strings", "\x01never\x02\n", nullptr, &e2);
  ASSERT_EQ(e1.e, nullptr) << e1.message();
  ASSERT_EQ(e2.e, nullptr) << e2.message();
  EXPECT_EQ(a, b);
}

TEST_F(Constraint, UnknownPluginAndBadConfigAreErrorsBeforeAnythingRuns) {
  Error e1;
  Generate("no-such-plugin", "x", nullptr, &e1);
  ASSERT_NE(e1.e, nullptr);
  EXPECT_EQ(hearth_error_code(e1.e), HEARTH_NOT_FOUND);
  EXPECT_NE(e1.message().find("no-such-plugin"), std::string::npos) << e1.message();
  EXPECT_NE(e1.message().find("banned-strings"), std::string::npos)
      << "lists what is there: " << e1.message();
  Error e2;
  Generate("banned-strings", "\n\n", nullptr, &e2);
  ASSERT_NE(e2.e, nullptr);
  EXPECT_EQ(hearth_error_code(e2.e), HEARTH_INVALID_ARGUMENT);
  EXPECT_NE(e2.message().find("no string to ban"), std::string::npos) << e2.message();
  Error e3;
  Generate(nullptr, "abc", nullptr, &e3);
  ASSERT_NE(e3.e, nullptr);
  EXPECT_NE(e3.message().find("constraint_config is set"), std::string::npos) << e3.message();
}

}  // namespace
