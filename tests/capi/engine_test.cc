// engine_test.cc — hearth_engine_* of the C ABI: a request given as text,
// as tokens and as a conversation generates what hearth_session_generate(_chat)
// generates greedily; events arrive in order with exactly one DONE; per-request
// adapters; a callback that returns non-zero ends its request; the engine's
// own thread; stats; and bad arguments are errors naming the argument.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "capi_test_util.h"
#include "hearth/hearth.h"

namespace {

const std::string kData = HEARTH_TEST_DATA;
const std::string kLlama = kData + "/models/tiny-llama-f32.gguf";
const std::string kQwen = kData + "/models/tiny-qwen2-f32.gguf";
const std::string kLora = kData + "/lora/";

using hearth_test::Error;

struct Events {
  std::mutex mu;
  std::condition_variable cv;
  std::string text;
  std::vector<int32_t> tokens;
  int done = 0;
  int after_done = 0;  // events after DONE: must stay 0
  hearth_stop_reason reason = HEARTH_STOP_MAX_TOKENS;
  hearth_status_code status = HEARTH_OK;
  int stop_after = 0;  // return non-zero after this many tokens (0: never)
  uint64_t id = 0;
  bool id_matches = true;
};

int OnEvent(const hearth_request_event* ev, void* user_data) {
  auto* e = static_cast<Events*>(user_data);
  std::lock_guard<std::mutex> lock(e->mu);
  if (e->done) ++e->after_done;
  if (e->id != 0 && ev->request != e->id) e->id_matches = false;
  e->text.append(ev->text, ev->text_len);
  if (ev->kind == HEARTH_EVENT_TOKEN) {
    e->tokens.push_back(ev->token);
    return e->stop_after > 0 && static_cast<int>(e->tokens.size()) >= e->stop_after;
  }
  ++e->done;
  e->reason = ev->finish_reason;
  e->status = ev->status;
  e->cv.notify_all();
  return 0;
}

class CapiEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    Error rt_err;
    rt_ = hearth_test::TestRuntime(&rt_err);
    ASSERT_NE(rt_, nullptr) << rt_err.message();
  }
  void TearDown() override {
    for (hearth_engine* e : engines_) hearth_engine_free(e);
    for (hearth_adapter* a : adapters_) hearth_adapter_free(a);
    for (hearth_model* m : models_) hearth_model_free(m);
    hearth_runtime_free(rt_);
  }
  hearth_model* Load(const std::string& path) {
    hearth_model* m = nullptr;
    Error err{hearth_model_load(rt_, path.c_str(), nullptr, &m)};
    EXPECT_EQ(err.e, nullptr) << err.message();
    if (m) models_.push_back(m);
    return m;
  }
  hearth_adapter* Adapter(hearth_model* model, const std::string& name) {
    hearth_adapter* a = nullptr;
    Error err{hearth_adapter_load(model, (kLora + name).c_str(), nullptr, &a)};
    EXPECT_EQ(err.e, nullptr) << err.message();
    if (a) adapters_.push_back(a);
    return a;
  }
  hearth_engine* Engine(hearth_model* model, hearth_engine_params p) {
    hearth_engine* e = nullptr;
    Error err{hearth_engine_create(model, &p, &e)};
    EXPECT_EQ(err.e, nullptr) << err.message();
    if (e) engines_.push_back(e);
    return e;
  }
  static void Run(hearth_engine* e) {
    size_t active = 1;
    for (int guard = 0; active > 0 && guard < 10000; ++guard) {
      Error err{hearth_engine_step(e, &active)};
      ASSERT_EQ(err.e, nullptr) << err.message();
    }
    EXPECT_EQ(active, 0u);
  }
  // Greedy text of hearth_session_generate(_chat) with these adapters.
  std::string Alone(hearth_model* model, const char* text, const hearth_chat_message* messages,
                    size_t n_messages, hearth_adapter* adapter, float scale, int32_t max_tokens) {
    hearth_session* s = nullptr;
    Error err{hearth_session_create(model, nullptr, &s)};
    EXPECT_EQ(err.e, nullptr) << err.message();
    if (adapter) {
      Error set{hearth_session_set_adapters(s, &adapter, &scale, 1)};
      EXPECT_EQ(set.e, nullptr) << set.message();
    }
    hearth_generate_params g = HEARTH_GENERATE_PARAMS_INIT;
    g.max_tokens = max_tokens;
    g.sampling.temperature = 0.0f;
    std::string out;
    auto sink = [](const char* piece, size_t len, void* user) {
      static_cast<std::string*>(user)->append(piece, len);
      return 0;
    };
    Error gen{messages
                  ? hearth_session_generate_chat(s, messages, n_messages, &g, sink, &out, nullptr)
                  : hearth_session_generate(s, text, std::strlen(text), &g, sink, &out, nullptr)};
    EXPECT_EQ(gen.e, nullptr) << gen.message();
    hearth_session_free(s);
    return out;
  }

  hearth_runtime* rt_ = nullptr;
  std::vector<hearth_model*> models_;
  std::vector<hearth_adapter*> adapters_;
  std::vector<hearth_engine*> engines_;
};

TEST_F(CapiEngine, TextTokensAndChatEqualSessions) {
  hearth_model* llama = Load(kLlama);
  hearth_model* qwen = Load(kQwen);
  ASSERT_TRUE(llama && qwen);
  hearth_adapter* lora = Adapter(llama, "llama-all");
  ASSERT_NE(lora, nullptr);
  hearth_engine_params p = HEARTH_ENGINE_PARAMS_INIT;
  p.n_seq = 2;
  p.adapters = &lora;
  p.n_adapters = 1;
  hearth_engine* e = Engine(llama, p);
  hearth_engine_params pq = HEARTH_ENGINE_PARAMS_INIT;  // a paged cache
  pq.kv_block_size = 16;
  pq.kv_pages = 8;
  hearth_engine* eq = Engine(qwen, pq);
  ASSERT_TRUE(e && eq);

  const char* prompt = "the quick brown fox";
  Events by_text, by_tokens, with_lora, chat;
  hearth_request_params r = HEARTH_REQUEST_PARAMS_INIT;
  r.text = prompt;
  r.text_len = std::strlen(prompt);
  r.max_tokens = 10;
  r.sampling.temperature = 0.0f;
  r.on_event = OnEvent;
  r.user_data = &by_text;
  uint64_t id_text = 0;
  {
    Error err{hearth_engine_submit(e, &r, &id_text)};
    ASSERT_EQ(err.e, nullptr) << err.message();
  }
  EXPECT_NE(id_text, 0u);
  by_text.id = id_text;
  // The same prompt as ids.
  std::vector<int32_t> ids(64);
  size_t n_ids = 0;
  {
    Error err{hearth_tokenize(llama, prompt, std::strlen(prompt), HEARTH_TOKENIZE_ADD_SPECIAL,
                              ids.data(), ids.size(), &n_ids)};
    ASSERT_EQ(err.e, nullptr) << err.message();
  }
  hearth_request_params rt = r;
  rt.text = nullptr;
  rt.text_len = 0;
  rt.tokens = ids.data();
  rt.n_tokens = n_ids;
  rt.user_data = &by_tokens;
  uint64_t id = 0;
  {
    Error err{hearth_engine_submit(e, &rt, &id)};
    ASSERT_EQ(err.e, nullptr) << err.message();
  }
  // With the adapter at 0.5.
  hearth_request_params ra = r;
  hearth_engine_adapter use = {0, 0.5f};
  ra.adapters = &use;
  ra.n_adapters = 1;
  ra.user_data = &with_lora;
  {
    Error err{hearth_engine_submit(e, &ra, &id)};
    ASSERT_EQ(err.e, nullptr) << err.message();
  }
  // A conversation on qwen2.
  const hearth_chat_message messages[] = {{"system", "be brief"}, {"user", "hello there"}};
  hearth_request_params rc = HEARTH_REQUEST_PARAMS_INIT;
  rc.messages = messages;
  rc.n_messages = 2;
  rc.max_tokens = 8;
  rc.sampling.temperature = 0.0f;
  rc.on_event = OnEvent;
  rc.user_data = &chat;
  {
    Error err{hearth_engine_submit(eq, &rc, &id)};
    ASSERT_EQ(err.e, nullptr) << err.message();
  }
  Run(e);
  Run(eq);
  for (Events* ev : {&by_text, &by_tokens, &with_lora, &chat}) {
    EXPECT_EQ(ev->done, 1);
    EXPECT_EQ(ev->after_done, 0);
    EXPECT_EQ(ev->status, HEARTH_OK);
  }
  EXPECT_TRUE(by_text.id_matches);
  const std::string ref = Alone(llama, prompt, nullptr, 0, nullptr, 1.0f, 10);
  EXPECT_EQ(by_text.text, ref);
  EXPECT_EQ(by_tokens.text, ref);
  EXPECT_EQ(with_lora.text, Alone(llama, prompt, nullptr, 0, lora, 0.5f, 10));
  EXPECT_EQ(chat.text, Alone(qwen, nullptr, messages, 2, nullptr, 1.0f, 8));

  hearth_engine_stats st = HEARTH_ENGINE_STATS_INIT;
  {
    Error err{hearth_engine_get_stats(e, &st)};
    ASSERT_EQ(err.e, nullptr) << err.message();
  }
  EXPECT_EQ(st.requests_submitted, 3u);
  EXPECT_EQ(st.requests_finished, 3u);
  EXPECT_EQ(st.n_seq, 2u);
  EXPECT_EQ(st.n_running + st.n_waiting, 0u);
  EXPECT_GT(st.generated_tokens, 0u);
  EXPECT_GT(st.steps, 0u);
  {
    Error err{hearth_engine_get_stats(eq, &st)};
    ASSERT_EQ(err.e, nullptr) << err.message();
  }
  EXPECT_EQ(st.kv_tokens_capacity, 16u * 8u);
}

TEST_F(CapiEngine, OwnThreadCallbackStopAndCancel) {
  hearth_model* llama = Load(kLlama);
  ASSERT_NE(llama, nullptr);
  hearth_engine* e = Engine(llama, HEARTH_ENGINE_PARAMS_INIT);
  ASSERT_NE(e, nullptr);
  {
    Error err{hearth_engine_start(e)};
    ASSERT_EQ(err.e, nullptr) << err.message();
  }
  {
    Error err{hearth_engine_step(e, nullptr)};
    EXPECT_EQ(hearth_error_code(err.e), HEARTH_FAILED_PRECONDITION);
  }
  Events stopped, endless;
  stopped.stop_after = 3;
  hearth_request_params r = HEARTH_REQUEST_PARAMS_INIT;
  r.text = "once upon a time";
  r.text_len = std::strlen(r.text);
  r.max_tokens = -1;
  r.on_event = OnEvent;
  r.user_data = &stopped;
  uint64_t id = 0;
  {
    Error err{hearth_engine_submit(e, &r, &id)};
    ASSERT_EQ(err.e, nullptr) << err.message();
  }
  r.user_data = &endless;
  uint64_t id_endless = 0;
  {
    Error err{hearth_engine_submit(e, &r, &id_endless)};
    ASSERT_EQ(err.e, nullptr) << err.message();
  }
  {
    std::unique_lock<std::mutex> lock(stopped.mu);
    stopped.cv.wait_for(lock, std::chrono::seconds(60), [&] { return stopped.done > 0; });
  }
  EXPECT_EQ(stopped.reason, HEARTH_STOP_CALLBACK);
  EXPECT_EQ(stopped.tokens.size(), 3u);
  {
    Error err{hearth_engine_cancel(e, id_endless)};
    // It may have filled its context already: then it is no longer known.
    if (err.e != nullptr) {
      EXPECT_EQ(hearth_error_code(err.e), HEARTH_NOT_FOUND);
    }
  }
  {
    std::unique_lock<std::mutex> lock(endless.mu);
    endless.cv.wait_for(lock, std::chrono::seconds(60), [&] { return endless.done > 0; });
  }
  EXPECT_EQ(endless.done, 1);
  EXPECT_TRUE(endless.reason == HEARTH_STOP_CANCELLED ||
              endless.reason == HEARTH_STOP_CONTEXT_FULL || endless.reason == HEARTH_STOP_EOG);
  hearth_engine_stop(e);
  hearth_engine_stop(e);  // twice is fine
  {
    Error err{hearth_engine_cancel(e, id)};
    EXPECT_EQ(hearth_error_code(err.e), HEARTH_NOT_FOUND);
  }
}

// An engine over an F16 paged KV cache gives what sessions with an F16
// cache give; kv_type outside hearth_kv_type is refused at create.
TEST_F(CapiEngine, F16KvCacheEqualsF16Sessions) {
  hearth_model* llama = Load(kLlama);
  ASSERT_NE(llama, nullptr);
  hearth_engine_params p = HEARTH_ENGINE_PARAMS_INIT;
  p.n_seq = 3;
  p.kv_block_size = 16;
  p.kv_type = HEARTH_KV_F16;
  hearth_engine* e = Engine(llama, p);
  ASSERT_NE(e, nullptr);
  const char* prompts[] = {"The capital of France is", "Once upon a time", "hello world"};
  std::string got[3];
  uint64_t ids[3];
  for (int i = 0; i < 3; ++i) {
    hearth_request_params r = HEARTH_REQUEST_PARAMS_INIT;
    r.text = prompts[i];
    r.text_len = std::strlen(prompts[i]);
    r.max_tokens = 12;
    r.sampling.temperature = 0.0f;
    r.on_event = [](const hearth_request_event* ev, void* user) {
      static_cast<std::string*>(user)->append(ev->text, ev->text_len);
      return 0;
    };
    r.user_data = &got[i];
    Error err{hearth_engine_submit(e, &r, &ids[i])};
    ASSERT_EQ(err.e, nullptr) << err.message();
  }
  Run(e);
  for (int i = 0; i < 3; ++i) {
    hearth_session_params sp = HEARTH_SESSION_PARAMS_INIT;
    sp.kv_type = HEARTH_KV_F16;
    hearth_session* s = nullptr;
    Error err{hearth_session_create(llama, &sp, &s)};
    ASSERT_EQ(err.e, nullptr) << err.message();
    hearth_generate_params g = HEARTH_GENERATE_PARAMS_INIT;
    g.max_tokens = 12;
    g.sampling.temperature = 0.0f;
    std::string want;
    auto sink = [](const char* piece, size_t len, void* user) {
      static_cast<std::string*>(user)->append(piece, len);
      return 0;
    };
    Error gen{
        hearth_session_generate(s, prompts[i], std::strlen(prompts[i]), &g, sink, &want, nullptr)};
    hearth_session_free(s);
    ASSERT_EQ(gen.e, nullptr) << gen.message();
    EXPECT_EQ(got[i], want) << prompts[i];
  }
  p.kv_type = 2;
  hearth_engine* bad = nullptr;
  Error err{hearth_engine_create(llama, &p, &bad)};
  ASSERT_NE(err.e, nullptr);
  EXPECT_NE(err.message().find("kv_type 2"), std::string::npos) << err.message();
  EXPECT_EQ(bad, nullptr);
}

TEST_F(CapiEngine, BadArgumentsAreErrors) {
  hearth_model* llama = Load(kLlama);
  ASSERT_NE(llama, nullptr);
  hearth_engine* e = Engine(llama, HEARTH_ENGINE_PARAMS_INIT);
  ASSERT_NE(e, nullptr);
  uint64_t id = 0;
  auto code = [&](const hearth_request_params& r, const char* words) {
    Error err{hearth_engine_submit(e, &r, &id)};
    EXPECT_NE(err.e, nullptr) << words;
    EXPECT_NE(err.message().find(words), std::string::npos) << err.message();
    return hearth_error_code(err.e);
  };
  hearth_request_params r = HEARTH_REQUEST_PARAMS_INIT;
  EXPECT_EQ(code(r, "exactly one of"), HEARTH_INVALID_ARGUMENT);
  const int32_t toks[] = {1, 2};
  r.tokens = toks;
  r.n_tokens = 2;
  r.text = "x";
  r.text_len = 1;
  EXPECT_EQ(code(r, "2 given"), HEARTH_INVALID_ARGUMENT);
  r = HEARTH_REQUEST_PARAMS_INIT;
  r.n_tokens = 3;
  EXPECT_EQ(code(r, "params->tokens"), HEARTH_INVALID_ARGUMENT);
  r = HEARTH_REQUEST_PARAMS_INIT;
  r.text = "x";
  r.text_len = 1;
  r.n_stop = 1;
  EXPECT_EQ(code(r, "params->stop"), HEARTH_INVALID_ARGUMENT);
  r.n_stop = 0;
  r.n_adapters = 1;
  EXPECT_EQ(code(r, "params->adapters"), HEARTH_INVALID_ARGUMENT);
  r.n_adapters = 0;
  hearth_engine_adapter none = {3, 1.0f};
  r.adapters = &none;
  r.n_adapters = 1;
  EXPECT_EQ(code(r, "adapter index 3"), HEARTH_INVALID_ARGUMENT);
  r.adapters = nullptr;
  r.n_adapters = 0;
  r.struct_size = 12;  // ends inside `tokens`
  EXPECT_EQ(code(r, "struct_size"), HEARTH_INVALID_ARGUMENT);
  r.struct_size = sizeof(r);
  r.tokenize_flags = 8;
  EXPECT_EQ(code(r, "tokenize_flags"), HEARTH_INVALID_ARGUMENT);
  {
    Error err{hearth_engine_submit(e, nullptr, &id)};
    EXPECT_EQ(hearth_error_code(err.e), HEARTH_INVALID_ARGUMENT);
  }
  {
    Error err{hearth_engine_create(nullptr, nullptr, nullptr)};
    EXPECT_EQ(hearth_error_code(err.e), HEARTH_INVALID_ARGUMENT);
  }
  hearth_engine_params p = HEARTH_ENGINE_PARAMS_INIT;
  p.n_adapters = 2;
  hearth_engine* bad = nullptr;
  {
    Error err{hearth_engine_create(llama, &p, &bad)};
    EXPECT_EQ(hearth_error_code(err.e), HEARTH_INVALID_ARGUMENT);
    EXPECT_EQ(bad, nullptr);
  }
  hearth_engine_stats st = HEARTH_ENGINE_STATS_INIT;
  st.struct_size = 3;
  {
    Error err{hearth_engine_get_stats(e, &st)};
    EXPECT_EQ(hearth_error_code(err.e), HEARTH_INVALID_ARGUMENT);
  }
  hearth_engine_free(nullptr);
  hearth_engine_stop(nullptr);
}

}  // namespace
