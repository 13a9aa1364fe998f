// The model / token / session part of the public C ABI, through hearth.h
// only: loading, tokenizing, feeding, logits, generation, and the errors a
// caller gets for bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "hearth/hearth.h"

namespace {

const std::string kTinyLlama = std::string(HEARTH_TEST_DATA) + "/models/tiny-llama-f32.gguf";
const std::string kTinyQwen = std::string(HEARTH_TEST_DATA) + "/models/tiny-qwen2-f32.gguf";

struct ErrorGuard {
  hearth_error* e = nullptr;
  ~ErrorGuard() { hearth_error_free(e); }
};

class CapiSession : public ::testing::Test {
 protected:
  void SetUp() override {
    hearth_runtime_params rp = HEARTH_RUNTIME_PARAMS_INIT;
    std::string path = std::string(HEARTH_PLUGIN_DIR);
    rp.plugin_path = path.c_str();
    rp.explicit_only = 1;
    ASSERT_EQ(hearth_runtime_create(&rp, &rt_), nullptr);
    hearth_error* e = hearth_model_load(rt_, kTinyLlama.c_str(), nullptr, &model_);
    ASSERT_EQ(e, nullptr) << hearth_error_message(e);
  }
  void TearDown() override {
    hearth_model_free(model_);
    hearth_runtime_free(rt_);
  }
  std::vector<int32_t> Tokenize(const std::string& text, uint32_t flags) {
    size_t n = 0;
    EXPECT_EQ(hearth_tokenize(model_, text.data(), text.size(), flags, nullptr, 0, &n), nullptr);
    std::vector<int32_t> ids(n);
    EXPECT_EQ(hearth_tokenize(model_, text.data(), text.size(), flags, ids.data(), ids.size(), &n),
              nullptr);
    return ids;
  }
  hearth_runtime* rt_ = nullptr;
  hearth_model* model_ = nullptr;
};

TEST_F(CapiSession, ModelInfo) {
  hearth_model_info info = HEARTH_MODEL_INFO_INIT;
  ASSERT_EQ(hearth_model_get_info(model_, &info), nullptr);
  EXPECT_STREQ(info.architecture, "llama");
  EXPECT_EQ(info.n_layer, 2u);
  EXPECT_GT(info.n_vocab, 0u);
  EXPECT_EQ(info.tokenizer_kind, static_cast<uint32_t>(HEARTH_TOKENIZER_SPM));
  EXPECT_STREQ(hearth_model_meta(model_, "general.architecture"), "llama");
  EXPECT_EQ(hearth_model_meta(model_, "no.such.key"), nullptr);
}

TEST_F(CapiSession, TokenizeRoundTripAndCapacity) {
  const std::string text = "The capital of France is Paris.";
  std::vector<int32_t> ids = Tokenize(text, 0);
  ASSERT_FALSE(ids.empty());
  size_t len = 0;
  ASSERT_EQ(hearth_detokenize(model_, ids.data(), ids.size(), 0, nullptr, 0, &len), nullptr);
  std::string back(len, '\0');
  ASSERT_EQ(hearth_detokenize(model_, ids.data(), ids.size(), 0, back.data(), back.size(), &len),
            nullptr);
  EXPECT_EQ(back, text);
  // Too small a buffer: RESOURCE_EXHAUSTED, out-parameter untouched.
  int32_t one[1];
  size_t n = 12345;
  ErrorGuard g{hearth_tokenize(model_, text.data(), text.size(), 0, one, 1, &n)};
  ASSERT_NE(g.e, nullptr);
  EXPECT_EQ(hearth_error_code(g.e), HEARTH_RESOURCE_EXHAUSTED);
  EXPECT_EQ(n, 12345u);
  // A bad id names itself.
  int32_t bad[] = {1, -5};
  ErrorGuard g2{hearth_detokenize(model_, bad, 2, 0, nullptr, 0, &len)};
  ASSERT_NE(g2.e, nullptr);
  EXPECT_NE(std::string(hearth_error_message(g2.e)).find("-5"), std::string::npos);
  // Invalid UTF-8 is an error, not a crash.
  const char invalid[] = {'a', static_cast<char>(0xC3), static_cast<char>(0x28), 0};
  ErrorGuard g3{hearth_tokenize(model_, invalid, 3, 0, nullptr, 0, &n)};
  EXPECT_NE(g3.e, nullptr);
}

TEST_F(CapiSession, FeedLogitsAndErrors) {
  hearth_session* s = nullptr;
  ASSERT_EQ(hearth_session_create(model_, nullptr, &s), nullptr);
  const float* logits = nullptr;
  size_t n_vocab = 0;
  {
    ErrorGuard g{hearth_session_logits(s, &logits, &n_vocab)};
    ASSERT_NE(g.e, nullptr);
    EXPECT_EQ(hearth_error_code(g.e), HEARTH_FAILED_PRECONDITION);
  }
  std::vector<int32_t> ids = Tokenize("hello world", HEARTH_TOKENIZE_ADD_SPECIAL);
  ASSERT_EQ(hearth_session_feed(s, ids.data(), ids.size()), nullptr);
  ASSERT_EQ(hearth_session_logits(s, &logits, &n_vocab), nullptr);
  hearth_model_info info = HEARTH_MODEL_INFO_INIT;
  ASSERT_EQ(hearth_model_get_info(model_, &info), nullptr);
  EXPECT_EQ(n_vocab, info.n_vocab);
  EXPECT_EQ(hearth_session_n_past(s), ids.size());
  int32_t bad = static_cast<int32_t>(info.n_vocab);
  {
    ErrorGuard g{hearth_session_feed(s, &bad, 1)};
    ASSERT_NE(g.e, nullptr);
    EXPECT_EQ(hearth_error_code(g.e), HEARTH_INVALID_ARGUMENT);
  }
  EXPECT_EQ(hearth_session_n_past(s), ids.size());
  {
    ErrorGuard g{hearth_session_feed(nullptr, ids.data(), 1)};
    ASSERT_NE(g.e, nullptr);
    EXPECT_NE(std::string(hearth_error_message(g.e)).find("session"), std::string::npos);
  }
  hearth_session_free(s);
}

struct Collected {
  std::string text;
  int calls = 0;
  int stop_after = -1;
};

int Collect(const char* piece, size_t len, void* user) {
  auto* c = static_cast<Collected*>(user);
  c->text.append(piece, len);
  ++c->calls;
  return c->stop_after >= 0 && c->calls >= c->stop_after;
}

std::string GreedyGenerate(hearth_model* model, const char* prompt, int n,
                           hearth_generate_result* result) {
  hearth_session* s = nullptr;
  EXPECT_EQ(hearth_session_create(model, nullptr, &s), nullptr);
  hearth_generate_params gp = HEARTH_GENERATE_PARAMS_INIT;
  gp.max_tokens = n;
  gp.sampling.temperature = 0;
  Collected c;
  hearth_error* e = hearth_session_generate(s, prompt, std::strlen(prompt), &gp, Collect, &c, result);
  EXPECT_EQ(e, nullptr) << hearth_error_message(e);
  hearth_error_free(e);
  hearth_session_free(s);
  return c.text;
}

// HEARTH_KV_F16: the cache holds k and v rounded to F16, so logits stay
// within F16 rounding of the F32 cache's (the tiny model's logits are O(1):
// 2e-2 absolute); an unknown kv_type is an error naming the field.
TEST_F(CapiSession, F16KvCacheIsCloseToF32) {
  std::vector<int32_t> ids = Tokenize("The capital of France is Paris, and the capital of Italy",
                                      HEARTH_TOKENIZE_ADD_SPECIAL);
  std::vector<std::vector<float>> out;
  for (uint32_t kv : {HEARTH_KV_F32, HEARTH_KV_F16}) {
    hearth_session_params sp = HEARTH_SESSION_PARAMS_INIT;
    sp.kv_type = kv;
    sp.n_batch = 4;  // later chunks read what earlier ones stored
    hearth_session* s = nullptr;
    ASSERT_EQ(hearth_session_create(model_, &sp, &s), nullptr);
    ASSERT_EQ(hearth_session_feed(s, ids.data(), ids.size()), nullptr);
    const float* logits = nullptr;
    size_t n = 0;
    ASSERT_EQ(hearth_session_logits(s, &logits, &n), nullptr);
    out.emplace_back(logits, logits + n);
    hearth_session_free(s);
  }
  float worst = 0, scale = 0;
  bool any_differs = false;
  for (size_t i = 0; i < out[0].size(); ++i) {
    worst = std::max(worst, std::fabs(out[0][i] - out[1][i]));
    scale = std::max(scale, std::fabs(out[0][i]));
    any_differs |= out[0][i] != out[1][i];
  }
  EXPECT_LT(worst, 2e-2f * std::max(scale, 1.0f));
  EXPECT_TRUE(any_differs) << "the F16 cache changed nothing: was it used?";

  hearth_session_params sp = HEARTH_SESSION_PARAMS_INIT;
  sp.kv_type = 7;
  hearth_session* s = nullptr;
  ErrorGuard g{hearth_session_create(model_, &sp, &s)};
  ASSERT_NE(g.e, nullptr);
  EXPECT_EQ(hearth_error_code(g.e), HEARTH_INVALID_ARGUMENT);
  EXPECT_NE(std::string(hearth_error_message(g.e)).find("kv_type 7"), std::string::npos)
      << hearth_error_message(g.e);
  EXPECT_EQ(s, nullptr);
}

// Truncating and feeding the dropped tokens again gives the same logits as
// the first time; past the context is OUT_OF_RANGE and changes nothing.
TEST_F(CapiSession, TruncateRewinds) {
  std::vector<int32_t> ids = Tokenize("one two three four five six", HEARTH_TOKENIZE_ADD_SPECIAL);
  ASSERT_GE(ids.size(), 4u);
  hearth_session* s = nullptr;
  ASSERT_EQ(hearth_session_create(model_, nullptr, &s), nullptr);
  ASSERT_EQ(hearth_session_feed(s, ids.data(), ids.size()), nullptr);
  const float* logits = nullptr;
  size_t n = 0;
  ASSERT_EQ(hearth_session_logits(s, &logits, &n), nullptr);
  const std::vector<float> first(logits, logits + n);
  {
    ErrorGuard g{hearth_session_truncate(s, ids.size() + 1)};
    ASSERT_NE(g.e, nullptr);
    EXPECT_EQ(hearth_error_code(g.e), HEARTH_OUT_OF_RANGE);
    EXPECT_EQ(hearth_session_n_past(s), ids.size());
  }
  ASSERT_EQ(hearth_session_truncate(s, 2), nullptr);
  EXPECT_EQ(hearth_session_n_past(s), 2u);
  {
    ErrorGuard g{hearth_session_logits(s, &logits, &n)};
    EXPECT_NE(g.e, nullptr);  // they belonged to a dropped token
  }
  ASSERT_EQ(hearth_session_feed(s, ids.data() + 2, ids.size() - 2), nullptr);
  ASSERT_EQ(hearth_session_logits(s, &logits, &n), nullptr);
  EXPECT_EQ(std::vector<float>(logits, logits + n), first);
  ErrorGuard g{hearth_session_truncate(nullptr, 0)};
  EXPECT_NE(g.e, nullptr);
  hearth_session_free(s);
}

TEST_F(CapiSession, GreedyGenerationIsDeterministic) {
  hearth_generate_result r1 = HEARTH_GENERATE_RESULT_INIT, r2 = HEARTH_GENERATE_RESULT_INIT;
  std::string a = GreedyGenerate(model_, "The capital of France is", 16, &r1);
  std::string b = GreedyGenerate(model_, "The capital of France is", 16, &r2);
  EXPECT_EQ(a, b);
  EXPECT_GT(r1.n_prompt_tokens, 0u);
  EXPECT_EQ(r1.n_generated_tokens, r2.n_generated_tokens);
}

TEST_F(CapiSession, GenerateEdgeCases) {
  hearth_session* s = nullptr;
  hearth_session_params sp = HEARTH_SESSION_PARAMS_INIT;
  sp.n_ctx = 16;
  ASSERT_EQ(hearth_session_create(model_, &sp, &s), nullptr);
  hearth_generate_params gp = HEARTH_GENERATE_PARAMS_INIT;
  gp.sampling.temperature = 0;
  // max_tokens 0 generates nothing.
  gp.max_tokens = 0;
  Collected c;
  hearth_generate_result r = HEARTH_GENERATE_RESULT_INIT;
  ASSERT_EQ(hearth_session_generate(s, "hi", 2, &gp, Collect, &c, &r), nullptr);
  EXPECT_EQ(r.n_generated_tokens, 0u);
  EXPECT_TRUE(c.text.empty());
  // A prompt longer than the context: a clear error naming both lengths.
  std::string long_prompt(400, 'x');
  for (size_t i = 0; i < long_prompt.size(); i += 2) long_prompt[i] = ' ';
  {
    ErrorGuard g{hearth_session_generate(s, long_prompt.data(), long_prompt.size(), &gp, nullptr,
                                         nullptr, nullptr)};
    ASSERT_NE(g.e, nullptr);
    EXPECT_EQ(hearth_error_code(g.e), HEARTH_INVALID_ARGUMENT);
    EXPECT_NE(std::string(hearth_error_message(g.e)).find("context"), std::string::npos)
        << hearth_error_message(g.e);
  }
  // Huge max_tokens stops at the full context.
  hearth_session_reset(s);
  gp.max_tokens = 1 << 30;
  ASSERT_EQ(hearth_session_generate(s, "hi", 2, &gp, nullptr, nullptr, &r), nullptr);
  EXPECT_TRUE(r.stop_reason == HEARTH_STOP_CONTEXT_FULL || r.stop_reason == HEARTH_STOP_EOG);
  EXPECT_LE(hearth_session_n_past(s), 16u);
  // The callback can stop generation.
  hearth_session_reset(s);
  gp.max_tokens = 8;
  Collected once;
  once.stop_after = 1;
  ASSERT_EQ(hearth_session_generate(s, "hi", 2, &gp, Collect, &once, &r), nullptr);
  EXPECT_EQ(once.calls, 1);
  EXPECT_TRUE(r.stop_reason == HEARTH_STOP_CALLBACK || r.stop_reason == HEARTH_STOP_EOG);
  // Bad sampling params are refused by name.
  gp.sampling.top_p = 2.0f;
  {
    ErrorGuard g{hearth_session_generate(s, "hi", 2, &gp, nullptr, nullptr, nullptr)};
    ASSERT_NE(g.e, nullptr);
    EXPECT_NE(std::string(hearth_error_message(g.e)).find("top_p"), std::string::npos);
  }
  hearth_session_free(s);
}

TEST_F(CapiSession, StopStringIsNotEmitted) {
  // Learn what greedy decoding produces, then stop on a piece of it.
  std::string full = GreedyGenerate(model_, "The", 12, nullptr);
  if (full.size() < 4) GTEST_SKIP() << "model produced too little text to cut";
  std::string stop = full.substr(full.size() / 2, 2);
  hearth_session* s = nullptr;
  ASSERT_EQ(hearth_session_create(model_, nullptr, &s), nullptr);
  hearth_generate_params gp = HEARTH_GENERATE_PARAMS_INIT;
  gp.max_tokens = 12;
  gp.sampling.temperature = 0;
  const char* stops[] = {stop.c_str()};
  gp.stop = stops;
  gp.n_stop = 1;
  Collected c;
  hearth_generate_result r = HEARTH_GENERATE_RESULT_INIT;
  ASSERT_EQ(hearth_session_generate(s, "The", 3, &gp, Collect, &c, &r), nullptr);
  EXPECT_EQ(r.stop_reason, HEARTH_STOP_STRING);
  EXPECT_EQ(c.text, full.substr(0, full.find(stop)));
  hearth_session_free(s);
}

TEST_F(CapiSession, ModelFreedWhileSessionLives) {
  hearth_model* m = nullptr;
  ASSERT_EQ(hearth_model_load(rt_, kTinyQwen.c_str(), nullptr, &m), nullptr);
  hearth_session* s = nullptr;
  ASSERT_EQ(hearth_session_create(m, nullptr, &s), nullptr);
  hearth_model_free(m);  // the session keeps the model alive
  int32_t ids[] = {1, 2, 3};
  ASSERT_EQ(hearth_session_feed(s, ids, 3), nullptr);
  hearth_session_free(s);
}

TEST_F(CapiSession, ThreadsWithOwnSessionsAgree) {
  std::vector<int32_t> ids = Tokenize("one two three four five", HEARTH_TOKENIZE_ADD_SPECIAL);
  auto run = [&](std::vector<float>* out) {
    hearth_session* s = nullptr;
    hearth_session_params sp = HEARTH_SESSION_PARAMS_INIT;
    sp.n_threads = 1;
    ASSERT_EQ(hearth_session_create(model_, &sp, &s), nullptr);
    for (int rep = 0; rep < 5; ++rep) {
      hearth_session_reset(s);
      ASSERT_EQ(hearth_session_feed(s, ids.data(), ids.size()), nullptr);
    }
    const float* l = nullptr;
    size_t n = 0;
    ASSERT_EQ(hearth_session_logits(s, &l, &n), nullptr);
    out->assign(l, l + n);
    hearth_session_free(s);
  };
  std::vector<std::vector<float>> results(4);
  std::vector<std::thread> threads;
  for (auto& r : results) threads.emplace_back(run, &r);
  for (auto& t : threads) t.join();
  for (size_t i = 1; i < results.size(); ++i) EXPECT_EQ(results[i], results[0]);
}

TEST_F(CapiSession, SessionsComeAndGoWhileOthersDecode) {
  std::vector<int32_t> ids = Tokenize("a steady stream of tokens", HEARTH_TOKENIZE_ADD_SPECIAL);
  std::atomic<bool> done{false};
  std::vector<float> churned_logits;
  auto decode = [&](std::vector<float>* out) {
    hearth_session* s = nullptr;
    ASSERT_EQ(hearth_session_create(model_, nullptr, &s), nullptr);
    ASSERT_EQ(hearth_session_feed(s, ids.data(), ids.size()), nullptr);
    for (int step = 0; step < 24; ++step) {
      int32_t next = static_cast<int32_t>(3 + step);
      ASSERT_EQ(hearth_session_feed(s, &next, 1), nullptr);
    }
    const float* l = nullptr;
    size_t n = 0;
    ASSERT_EQ(hearth_session_logits(s, &l, &n), nullptr);
    out->assign(l, l + n);
    hearth_session_free(s);
  };
  auto churn = [&] {
    while (!done.load()) {
      hearth_session* s = nullptr;
      hearth_session_params sp = HEARTH_SESSION_PARAMS_INIT;
      sp.n_ctx = 32;
      sp.n_threads = 1;
      ASSERT_EQ(hearth_session_create(model_, &sp, &s), nullptr);
      ASSERT_EQ(hearth_session_feed(s, ids.data(), ids.size()), nullptr);
      hearth_session_free(s);
    }
  };
  std::vector<float> alone, with_churn;
  decode(&alone);
  std::thread a(churn), b(churn);
  decode(&with_churn);
  done = true;
  a.join();
  b.join();
  EXPECT_EQ(with_churn, alone);  // other sessions never disturb this one
}

TEST_F(CapiSession, LoadErrorsNameThePath) {
  hearth_model* m = nullptr;
  ErrorGuard g{hearth_model_load(rt_, "/no/such/model.gguf", nullptr, &m)};
  ASSERT_NE(g.e, nullptr);
  EXPECT_NE(std::string(hearth_error_message(g.e)).find("/no/such/model.gguf"), std::string::npos);
  EXPECT_EQ(m, nullptr);
  hearth_model_params mp = HEARTH_MODEL_PARAMS_INIT;
  mp.device = "no-such-device";
  ErrorGuard g2{hearth_model_load(rt_, kTinyLlama.c_str(), &mp, &m)};
  ASSERT_NE(g2.e, nullptr);
  EXPECT_NE(std::string(hearth_error_message(g2.e)).find("no-such-device"), std::string::npos);
}

}  // namespace
