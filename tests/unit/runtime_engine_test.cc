// runtime_engine_test.cc — Engine (sdk/src/runtime/engine.h): many requests
// scheduled onto a BatchRunner give what one session per request gives
// (greedy text and finish reason, with and without adapters, whatever else
// shares the batch, long prompts split into chunks, more requests than
// slots); prefix reuse computes only what is new and changes no output;
// cancellation, stop strings, logprobs, context limits, bad requests, the
// engine's own thread and destruction with requests in flight.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "sdk/src/lora/adapter.h"
#include "sdk/src/runtime/engine.h"
#include "sdk/src/runtime/generate.h"
#include "sdk/src/runtime/model.h"
#include "sdk/src/runtime/session.h"
#include "tests/unit/cpu_host.h"

namespace hearth {
namespace {

const std::string kModels = std::string(HEARTH_TEST_DATA) + "/models/";
const std::string kLora = std::string(HEARTH_TEST_DATA) + "/lora/";
constexpr uint32_t kCtx = 96;

using ::hearth::testing::CpuHost;

std::shared_ptr<const Model> LoadModel(const std::string& name) {
  auto m = Model::Load(CpuHost(), kModels + name + ".gguf", {});
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::shared_ptr<const Model>(*m) : nullptr;
}

std::shared_ptr<const Adapter> LoadAdapter(std::shared_ptr<const Model> model,
                                           const std::string& name) {
  auto a = Adapter::Load(std::move(model), kLora + name);
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? std::shared_ptr<const Adapter>(*a) : nullptr;
}

// `n` token ids in [3, n_vocab), different per seed.
std::vector<int32_t> Prompt(int64_t n_vocab, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> u(3, static_cast<int32_t>(n_vocab) - 1);
  std::vector<int32_t> p(n);
  for (int32_t& t : p) t = u(rng);
  return p;
}

// What the events of one request said.
struct Outcome {
  std::string text;
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  std::vector<std::vector<std::pair<int32_t, float>>> top;
  int done = 0;
  StopReason reason = StopReason::kMaxTokens;
  absl::Status status;
  uint32_t n_cached = 0, n_generated = 0;
};

// Collects events; thread-safe so the engine's own thread may call it.
class Collector {
 public:
  RequestCallback Sink(int key) {
    return [this, key](const RequestEvent& e) {
      std::lock_guard<std::mutex> lock(mu_);
      Outcome& o = out_[key];
      o.text.append(e.text.data(), e.text.size());
      if (e.kind == EventKind::kToken) {
        o.tokens.push_back(e.token);
        o.logprobs.push_back(e.logprob);
        std::vector<std::pair<int32_t, float>> top;
        for (size_t i = 0; i < e.top_tokens.size(); ++i) {
          top.emplace_back(e.top_tokens[i], e.top_logprobs[i]);
        }
        o.top.push_back(std::move(top));
        return stop_after_ == 0 || static_cast<int>(o.tokens.size()) < stop_after_;
      }
      ++o.done;
      o.reason = e.finish_reason;
      o.status = e.status;
      o.n_cached = e.n_cached_tokens;
      o.n_generated = e.n_generated_tokens;
      cv_.notify_all();
      return true;
    };
  }
  Outcome Get(int key) {
    std::lock_guard<std::mutex> lock(mu_);
    return out_[key];
  }
  void WaitDone(int key) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(60), [&] { return out_[key].done > 0; });
  }
  void set_stop_after(int n) { stop_after_ = n; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<int, Outcome> out_;
  int stop_after_ = 0;
};

std::unique_ptr<Engine> MakeEngine(std::shared_ptr<const Model> model, EngineOptions o) {
  if (o.n_ctx == 0) o.n_ctx = kCtx;
  auto e = Engine::Create(std::move(model), o);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(e).value() : nullptr;
}

void RunToEnd(Engine& e) {
  for (int guard = 0; guard < 10000; ++guard) {
    auto n = e.Step();
    ASSERT_TRUE(n.ok()) << n.status();
    if (*n == 0) return;
  }
  FAIL() << "the engine did not finish";
}

// The same request on its own session: greedy text and reason.
struct Reference {
  std::string text;
  StopReason reason;
};
Reference Alone(std::shared_ptr<const Model> model, const std::vector<int32_t>& prompt,
                int32_t max_tokens, Session::AdapterSet adapters,
                std::vector<std::string> stop = {}) {
  SessionOptions so;
  so.n_ctx = kCtx;
  auto s = Session::Create(std::move(model), so);
  EXPECT_TRUE(s.ok()) << s.status();
  if (!adapters.empty()) {
    EXPECT_TRUE((*s)->SetAdapters(std::move(adapters)).ok());
  }
  GenerateOptions g;
  g.max_tokens = max_tokens;
  g.sampling.temperature = 0.0f;
  g.stop = std::move(stop);
  Reference ref;
  GenerateStats stats;
  absl::Status st = GenerateFromIds(
      **s, prompt, g,
      [&](std::string_view piece) {
        ref.text.append(piece);
        return true;
      },
      &stats);
  EXPECT_TRUE(st.ok()) << st;
  ref.reason = stats.stop_reason;
  return ref;
}

RequestOptions Greedy(std::vector<int32_t> prompt, int32_t max_tokens) {
  RequestOptions r;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.sampling.temperature = 0.0f;
  return r;
}

// More requests than slots, prompts from 2 to 70 tokens (longer than a
// step's 24-token budget, so chunked, alongside others decoding), rows with
// no adapter, one adapter at 1.0 or 0.5, or two: every request's greedy
// text and finish reason equal a session's alone.
TEST(Engine, GreedyOutputEqualsOneSessionPerRequest) {
  auto model = LoadModel("tiny-llama-f32");
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().n_vocab;
  std::vector<std::shared_ptr<const Adapter>> adapters = {LoadAdapter(model, "llama-all"),
                                                          LoadAdapter(model, "llama-qv-rs")};
  ASSERT_NE(adapters[0], nullptr);
  ASSERT_NE(adapters[1], nullptr);
  EngineOptions o;
  o.n_seq = 3;
  o.max_step_tokens = 24;
  o.adapters = adapters;
  auto engine = MakeEngine(model, o);
  ASSERT_NE(engine, nullptr);
  const std::vector<size_t> lengths = {5, 70, 2, 33, 9, 17, 48};
  const std::vector<std::vector<BatchAdapter>> sets = {
      {}, {{0, 1.0f}}, {{0, 0.5f}}, {{0, 1.0f}, {1, 0.7f}}, {{1, 1.0f}}, {}, {{0, 1.0f}}};
  Collector c;
  std::vector<RequestOptions> reqs;
  for (size_t i = 0; i < lengths.size(); ++i) {
    RequestOptions r =
        Greedy(Prompt(V, lengths[i], 100 + static_cast<uint32_t>(i)), 8 + static_cast<int32_t>(i));
    r.adapters = sets[i];
    reqs.push_back(r);
    r.on_event = c.Sink(static_cast<int>(i));
    ASSERT_TRUE(engine->Submit(std::move(r)).ok());
  }
  RunToEnd(*engine);
  for (size_t i = 0; i < reqs.size(); ++i) {
    Session::AdapterSet set;
    for (const BatchAdapter& a : reqs[i].adapters) set.emplace_back(adapters[a.index], a.scale);
    const Reference ref = Alone(model, reqs[i].prompt, reqs[i].max_tokens, set);
    const Outcome got = c.Get(static_cast<int>(i));
    EXPECT_EQ(got.done, 1) << "request " << i;
    EXPECT_TRUE(got.status.ok()) << got.status;
    EXPECT_EQ(got.text, ref.text) << "request " << i;
    EXPECT_EQ(got.reason, ref.reason) << "request " << i;
  }
  const EngineStats s = engine->stats();
  EXPECT_EQ(s.requests_submitted, reqs.size());
  EXPECT_EQ(s.requests_finished, reqs.size());
  EXPECT_EQ(s.n_running + s.n_waiting, 0u);
  EXPECT_EQ(s.kv_tokens_used, 0u);
}

// A paged cache smaller than n_seq full contexts: requests are admitted as
// their prompt plus reply fits in the pool (the others wait), finished
// requests' pages stay as prefix cache until a new request needs them, and
// every request's text is still a session's alone.
TEST(Engine, PagedCacheSharesOneBudget) {
  auto model = LoadModel("tiny-llama-f32");
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().n_vocab;
  auto adapter = LoadAdapter(model, "llama-all");
  EngineOptions o;
  o.n_seq = 4;
  o.max_step_tokens = 16;
  o.kv_block_size = 8;
  o.kv_pages = 10;  // 80 positions; 4 slots of 96 would be 384
  o.adapters = {adapter};
  auto engine = MakeEngine(model, o);
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->stats().kv_tokens_capacity, 80u);
  // 20-35 prompt tokens + 10 generated: 4-6 pages each, so two or three run
  // at a time.
  const std::vector<size_t> lengths = {20, 35, 22, 27, 30, 21};
  Collector c;
  std::vector<RequestOptions> reqs;
  for (size_t i = 0; i < lengths.size(); ++i) {
    RequestOptions r = Greedy(Prompt(V, lengths[i], 200 + static_cast<uint32_t>(i)), 10);
    if (i % 2 == 1) r.adapters = {{0, 1.0f}};
    reqs.push_back(r);
    r.on_event = c.Sink(static_cast<int>(i));
    ASSERT_TRUE(engine->Submit(std::move(r)).ok());
  }
  size_t most_running = 0;
  for (int guard = 0; guard < 10000; ++guard) {
    auto n = engine->Step();
    ASSERT_TRUE(n.ok()) << n.status();
    most_running = std::max<size_t>(most_running, engine->stats().n_running);
    if (*n == 0) break;
  }
  EXPECT_LE(most_running, 3u);
  EXPECT_GE(most_running, 2u);
  for (size_t i = 0; i < reqs.size(); ++i) {
    Session::AdapterSet set;
    if (i % 2 == 1) set.emplace_back(adapter, 1.0f);
    EXPECT_EQ(c.Get(static_cast<int>(i)).text, Alone(model, reqs[i].prompt, 10, set).text)
        << "request " << i;
    EXPECT_TRUE(c.Get(static_cast<int>(i)).status.ok()) << c.Get(static_cast<int>(i)).status;
  }
  // The last request's prefix is still cached: the same prompt again
  // reuses it.
  RequestOptions again = reqs.back();
  again.on_event = c.Sink(100);
  ASSERT_TRUE(engine->Submit(again).ok());
  RunToEnd(*engine);
  EXPECT_EQ(c.Get(100).n_cached, lengths.back() - 1);
  EXPECT_EQ(c.Get(100).text, c.Get(static_cast<int>(lengths.size() - 1)).text);
  // A request that could never fit the pool is refused at submit.
  auto huge = engine->Submit(Greedy(Prompt(V, 60, 9), 30));
  EXPECT_EQ(huge.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(huge.status().message().find("KV pages"), std::string::npos) << huge.status();
}

// A request alone and the same request among others give the same tokens.
TEST(Engine, OutputDoesNotDependOnTheBatch) {
  auto model = LoadModel("tiny-qwen2-f32");
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().n_vocab;
  const std::vector<int32_t> prompt = Prompt(V, 11, 7);
  std::vector<std::vector<int32_t>> runs;
  for (int others : {0, 5}) {
    EngineOptions o;
    o.n_seq = 4;
    o.max_step_tokens = 16;
    auto engine = MakeEngine(model, o);
    ASSERT_NE(engine, nullptr);
    Collector c;
    for (int k = 0; k < others; ++k) {
      RequestOptions r = Greedy(Prompt(V, 3 + 7 * static_cast<size_t>(k), 30 + k), 5 + k);
      r.on_event = c.Sink(k + 1);
      ASSERT_TRUE(engine->Submit(std::move(r)).ok());
    }
    RequestOptions r = Greedy(prompt, 12);
    r.on_event = c.Sink(0);
    ASSERT_TRUE(engine->Submit(std::move(r)).ok());
    RunToEnd(*engine);
    runs.push_back(c.Get(0).tokens);
  }
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_FALSE(runs[0].empty());
}

// A second request that starts like a finished one reuses its slot's KV
// rows: only the new tokens are computed, and the text is what a session
// computes from scratch. A different adapter set gets no reuse.
TEST(Engine, PrefixReuseComputesOnlyTheNewTokens) {
  auto model = LoadModel("tiny-llama-f32");
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().n_vocab;
  auto adapter = LoadAdapter(model, "llama-all");
  EngineOptions o;
  o.n_seq = 2;
  o.adapters = {adapter};
  auto engine = MakeEngine(model, o);
  ASSERT_NE(engine, nullptr);
  const std::vector<int32_t> system = Prompt(V, 30, 5);
  auto with = [&](uint32_t seed) {
    std::vector<int32_t> p = system;
    for (int32_t t : Prompt(V, 6, seed)) p.push_back(t);
    return p;
  };
  Collector c;
  RequestOptions first = Greedy(with(1), 6);
  first.on_event = c.Sink(0);
  ASSERT_TRUE(engine->Submit(first).ok());
  RunToEnd(*engine);
  RequestOptions second = Greedy(with(2), 6);
  second.on_event = c.Sink(1);
  ASSERT_TRUE(engine->Submit(second).ok());
  RunToEnd(*engine);
  EXPECT_EQ(c.Get(0).n_cached, 0u);
  EXPECT_GE(c.Get(1).n_cached, system.size());
  EXPECT_EQ(c.Get(1).text, Alone(model, second.prompt, 6, {}).text);
  EXPECT_EQ(engine->stats().cached_prompt_tokens, c.Get(1).n_cached);
  // The same prompt again with an adapter: nothing cached, adapter output.
  RequestOptions third = Greedy(second.prompt, 6);
  third.adapters = {{0, 1.0f}};
  third.on_event = c.Sink(2);
  ASSERT_TRUE(engine->Submit(third).ok());
  RunToEnd(*engine);
  EXPECT_EQ(c.Get(2).n_cached, 0u);
  EXPECT_EQ(c.Get(2).text, Alone(model, second.prompt, 6, {{adapter, 1.0f}}).text);
  // And the very same prompt twice: all but the last token reused.
  RequestOptions fourth = Greedy(second.prompt, 6);
  fourth.on_event = c.Sink(3);
  ASSERT_TRUE(engine->Submit(fourth).ok());
  RunToEnd(*engine);
  EXPECT_EQ(c.Get(3).n_cached, second.prompt.size() - 1);
  EXPECT_EQ(c.Get(3).text, c.Get(1).text);
}

// With a paged cache, requests running at the same time share their
// prompt start: three requests with one 30-token system prompt submitted
// together compute its 7 whole pages (28 tokens) once, the later two
// waiting a step for the first's pages though the step had room for them;
// a fourth with an adapter shares nothing. Texts equal sessions' alone. Then a request that
// matches the cached prompts only up to the middle of a shared page starts
// at that page (the shared rows are never rewritten): the first prompts
// run again still reuse their slots and give their first texts.
TEST(Engine, RunningRequestsSharePromptPages) {
  auto model = LoadModel("tiny-llama-f32");
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().n_vocab;
  auto adapter = LoadAdapter(model, "llama-all");
  EngineOptions o;
  o.n_seq = 4;
  o.max_step_tokens = 64;  // room for the first prompt and more in one step
  o.kv_block_size = 4;
  o.adapters = {adapter};
  auto engine = MakeEngine(model, o);
  ASSERT_NE(engine, nullptr);
  const std::vector<int32_t> system = Prompt(V, 30, 5);
  auto with = [&](size_t n_system, uint32_t seed) {
    std::vector<int32_t> p(system.begin(), system.begin() + static_cast<ptrdiff_t>(n_system));
    for (int32_t t : Prompt(V, 6, seed)) p.push_back(t);
    return p;
  };
  Collector c;
  std::vector<RequestOptions> reqs;
  for (uint32_t i = 0; i < 4; ++i) {
    RequestOptions r = Greedy(with(30, 10 + i), 6);
    if (i == 3) r.adapters = {{0, 1.0f}};
    reqs.push_back(r);
    r.on_event = c.Sink(static_cast<int>(i));
    ASSERT_TRUE(engine->Submit(std::move(r)).ok());
  }
  // KV use counts the shared pages once: at most 36 + 8 + 8 + 36 prompt
  // positions and 4 x 6 generated (each request's own would be 144 + 24).
  uint64_t most_used = 0;
  for (int guard = 0; guard < 1000; ++guard) {
    auto n = engine->Step();
    ASSERT_TRUE(n.ok()) << n.status();
    most_used = std::max(most_used, engine->stats().kv_tokens_used);
    if (*n == 0) break;
  }
  EXPECT_LE(most_used, 88u + 24u);
  EXPECT_GE(most_used, 88u);
  for (size_t i = 0; i < reqs.size(); ++i) {
    Session::AdapterSet set;
    if (i == 3) set.emplace_back(adapter, 1.0f);
    const Outcome got = c.Get(static_cast<int>(i));
    EXPECT_TRUE(got.status.ok()) << got.status;
    EXPECT_EQ(got.text, Alone(model, reqs[i].prompt, 6, set).text) << "request " << i;
  }
  EXPECT_EQ(c.Get(0).n_cached, 0u);
  EXPECT_EQ(c.Get(1).n_cached, 28u);
  EXPECT_EQ(c.Get(2).n_cached, 28u);
  EXPECT_EQ(c.Get(3).n_cached, 0u);
  EngineStats st = engine->stats();
  EXPECT_EQ(st.cached_prompt_tokens, 56u);
  EXPECT_EQ(st.prompt_tokens, 4u * 36u - 56u);

  // 26 tokens of the system prompt: the cached slots match to position 26,
  // inside page 6 that all three share, so the request computes from 24.
  RequestOptions part = Greedy(with(26, 20), 6);
  part.on_event = c.Sink(4);
  ASSERT_TRUE(engine->Submit(part).ok());
  RunToEnd(*engine);
  EXPECT_EQ(c.Get(4).n_cached, 24u);
  EXPECT_EQ(c.Get(4).text, Alone(model, part.prompt, 6, {}).text);
  for (int i = 0; i < 3; ++i) {
    RequestOptions again = reqs[static_cast<size_t>(i)];
    again.on_event = c.Sink(10 + i);
    ASSERT_TRUE(engine->Submit(again).ok());
  }
  RunToEnd(*engine);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.Get(10 + i).text, c.Get(i).text) << "request " << i << " again";
    EXPECT_GE(c.Get(10 + i).n_cached, 28u) << "request " << i << " again";
  }
  st = engine->stats();
  EXPECT_EQ(st.kv_tokens_used, 0u);
  EXPECT_EQ(st.requests_finished, 8u);
}

TEST(Engine, StopStringsMatchGenerate) {
  auto model = LoadModel("tiny-llama-f32");
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().n_vocab;
  const std::vector<int32_t> prompt = Prompt(V, 9, 3);
  const Reference full = Alone(model, prompt, 24, {});
  ASSERT_GE(full.text.size(), 6u) << "the tiny model's greedy text is too short for this test";
  // A stop string from the middle of the greedy text.
  const std::string stop = full.text.substr(full.text.size() / 2, 3);
  const Reference ref = Alone(model, prompt, 24, {}, {stop});
  auto engine = MakeEngine(model, {});
  ASSERT_NE(engine, nullptr);
  Collector c;
  RequestOptions r = Greedy(prompt, 24);
  r.stop = {stop};
  r.on_event = c.Sink(0);
  ASSERT_TRUE(engine->Submit(r).ok());
  RunToEnd(*engine);
  EXPECT_EQ(c.Get(0).text, ref.text);
  EXPECT_EQ(c.Get(0).reason, StopReason::kStopString);
  EXPECT_EQ(ref.reason, StopReason::kStopString);
  EXPECT_EQ(c.Get(0).text.find(stop), std::string::npos);
}

// logprob = log softmax of the session's logits at that point; the top list
// is sorted, starts with the greedy token, and holds the asked number.
TEST(Engine, LogprobsAreTheModelsLogSoftmax) {
  auto model = LoadModel("tiny-llama-f32");
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().n_vocab;
  const std::vector<int32_t> prompt = Prompt(V, 7, 11);
  auto engine = MakeEngine(model, {});
  ASSERT_NE(engine, nullptr);
  Collector c;
  RequestOptions r = Greedy(prompt, 4);
  r.logprobs = true;
  r.top_logprobs = 5;
  r.on_event = c.Sink(0);
  ASSERT_TRUE(engine->Submit(r).ok());
  RunToEnd(*engine);
  const Outcome got = c.Get(0);
  ASSERT_FALSE(got.tokens.empty());
  SessionOptions so;
  so.n_ctx = kCtx;
  auto s = Session::Create(model, so);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE((*s)->Feed(prompt).ok());
  for (size_t i = 0; i < got.tokens.size(); ++i) {
    absl::Span<const float> logits = (*s)->logits();
    double mx = -INFINITY, sum = 0;
    for (float x : logits) mx = std::max(mx, static_cast<double>(x));
    for (float x : logits) sum += std::exp(x - mx);
    const double lse = mx + std::log(sum);
    EXPECT_NEAR(got.logprobs[i], logits[static_cast<size_t>(got.tokens[i])] - lse, 1e-4);
    ASSERT_EQ(got.top[i].size(), 5u);
    EXPECT_EQ(got.top[i][0].first, got.tokens[i]);
    EXPECT_NEAR(got.top[i][0].second, got.logprobs[i], 1e-6);
    for (size_t k = 1; k < 5; ++k) EXPECT_LE(got.top[i][k].second, got.top[i][k - 1].second);
    ASSERT_TRUE((*s)->Feed({got.tokens[i]}).ok());
  }
}

TEST(Engine, CancelEndsARequestWithinOneStep) {
  auto model = LoadModel("tiny-llama-f32");
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().n_vocab;
  EngineOptions o;
  o.n_seq = 1;
  auto engine = MakeEngine(model, o);
  ASSERT_NE(engine, nullptr);
  Collector c;
  RequestOptions a = Greedy(Prompt(V, 4, 1), -1);
  a.on_event = c.Sink(0);
  auto ida = engine->Submit(a);
  RequestOptions b = Greedy(Prompt(V, 4, 2), -1);
  b.on_event = c.Sink(1);
  auto idb = engine->Submit(b);  // waits: one slot
  ASSERT_TRUE(ida.ok() && idb.ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(engine->Step().ok());
  EXPECT_EQ(engine->stats().n_waiting, 1u);
  ASSERT_TRUE(engine->Cancel(*idb).ok());  // waiting
  ASSERT_TRUE(engine->Cancel(*ida).ok());  // running
  auto n = engine->Step();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(c.Get(0).done, 1);
  EXPECT_EQ(c.Get(0).reason, StopReason::kCancelled);
  EXPECT_EQ(c.Get(1).done, 1);
  EXPECT_EQ(c.Get(1).reason, StopReason::kCancelled);
  EXPECT_EQ(c.Get(1).n_generated, 0u);
  EXPECT_EQ(engine->Cancel(*ida).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine->Cancel(12345).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(engine->stats().requests_cancelled, 2u);
  // Once its DONE event is out, a request is unknown to Cancel, even from
  // inside that callback.
  absl::StatusCode cancel_in_done = absl::StatusCode::kOk;
  uint64_t self = 0;
  RequestOptions e = Greedy(Prompt(V, 4, 5), 2);
  e.on_event = [&](const RequestEvent& ev) {
    if (ev.kind == EventKind::kDone) cancel_in_done = engine->Cancel(self).code();
    return true;
  };
  auto ide = engine->Submit(e);
  ASSERT_TRUE(ide.ok());
  self = *ide;
  RunToEnd(*engine);
  EXPECT_EQ(cancel_in_done, absl::StatusCode::kNotFound);
  // A callback that says stop ends its request too.
  c.set_stop_after(2);
  RequestOptions d = Greedy(Prompt(V, 4, 3), -1);
  d.on_event = c.Sink(2);
  ASSERT_TRUE(engine->Submit(d).ok());
  RunToEnd(*engine);
  EXPECT_EQ(c.Get(2).reason, StopReason::kCallback);
  EXPECT_EQ(c.Get(2).tokens.size(), 2u);
}

TEST(Engine, ContextFullEndsTheRequest) {
  auto model = LoadModel("tiny-llama-f32");
  ASSERT_NE(model, nullptr);
  EngineOptions o;
  o.n_ctx = 16;
  o.n_seq = 2;
  auto engine = Engine::Create(model, o);
  ASSERT_TRUE(engine.ok());
  Collector c;
  RequestOptions r = Greedy(Prompt(model->config().n_vocab, 10, 4), -1);
  r.on_event = c.Sink(0);
  ASSERT_TRUE((*engine)->Submit(r).ok());
  RunToEnd(**engine);
  const Outcome got = c.Get(0);
  if (got.reason != StopReason::kEog) {
    EXPECT_EQ(got.reason, StopReason::kContextFull);
    EXPECT_EQ(got.tokens.size(), 16u - 10u + 1u);  // the last one is never fed
  }
}

TEST(Engine, BadRequestsAreRefusedAtSubmit) {
  auto model = LoadModel("tiny-llama-f32");
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().n_vocab;
  auto adapter = LoadAdapter(model, "llama-all");
  EngineOptions o;
  o.max_waiting = 2;
  o.adapters = {adapter};
  auto engine = MakeEngine(model, o);
  ASSERT_NE(engine, nullptr);
  auto refused = [&](RequestOptions r, const std::string& words) {
    auto id = engine->Submit(std::move(r));
    ASSERT_FALSE(id.ok()) << words;
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(id.status().message().find(words), std::string::npos) << id.status();
  };
  refused(Greedy({}, 4), "no tokens");
  refused(Greedy({1, static_cast<int32_t>(V)}, 4), "outside the vocabulary");
  refused(Greedy({1, -3}, 4), "outside the vocabulary");
  refused(Greedy(Prompt(V, kCtx + 1, 1), 4), "context");
  refused(Greedy({1, 2}, 0), "max_tokens");
  RequestOptions r = Greedy({1, 2}, 4);
  r.logprobs = true;
  r.top_logprobs = 21;
  refused(r, "top_logprobs");
  r = Greedy({1, 2}, 4);
  r.adapters = {{1, 1.0f}};
  refused(r, "adapter index 1");
  r.adapters = {{0, NAN}};
  refused(r, "not finite");
  r.adapters = {{0, 1.0f}, {0, 0.5f}};
  refused(r, "twice");
  r = Greedy({1, 2}, 4);
  r.sampling.top_p = 2.0f;
  refused(r, "top_p");
  EXPECT_EQ(engine->stats().requests_submitted, 0u);
  ASSERT_TRUE(engine->Submit(Greedy({1, 2}, 4)).ok());
  ASSERT_TRUE(engine->Submit(Greedy({1, 2}, 4)).ok());
  auto full = engine->Submit(Greedy({1, 2}, 4));
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  // An engine that cannot carry every slot's next token is refused.
  EngineOptions tight;
  tight.n_seq = 8;
  tight.max_step_tokens = 4;
  EXPECT_EQ(Engine::Create(model, tight).status().code(), absl::StatusCode::kInvalidArgument);
}

// The engine's own thread: requests from several threads at once all end
// with the text they have alone; a step from outside is refused while it
// runs; destroying the engine ends what is left as cancelled.
TEST(Engine, OwnThreadAndDestructionInFlight) {
  auto model = LoadModel("tiny-llama-f32");
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().n_vocab;
  EngineOptions o;
  o.n_seq = 3;
  auto engine = MakeEngine(model, o);
  ASSERT_NE(engine, nullptr);
  ASSERT_TRUE(engine->Start().ok());
  EXPECT_EQ(engine->Start().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine->Step().status().code(), absl::StatusCode::kFailedPrecondition);
  Collector c;
  std::vector<std::thread> clients;
  for (int k = 0; k < 6; ++k) {
    clients.emplace_back([&, k] {
      RequestOptions r = Greedy(Prompt(V, 4 + 3 * static_cast<size_t>(k), 60 + k), 6);
      r.on_event = c.Sink(k);
      EXPECT_TRUE(engine->Submit(std::move(r)).ok());
    });
  }
  for (std::thread& t : clients) t.join();
  for (int k = 0; k < 6; ++k) {
    c.WaitDone(k);
    EXPECT_EQ(c.Get(k).done, 1);
    EXPECT_EQ(c.Get(k).text,
              Alone(model, Prompt(V, 4 + 3 * static_cast<size_t>(k), 60 + k), 6, {}).text);
  }
  engine->Stop();
  // Requests left when the engine goes: DONE, cancelled, exactly once.
  for (int k = 10; k < 14; ++k) {
    RequestOptions r = Greedy(Prompt(V, 5, static_cast<uint32_t>(k)), -1);
    r.on_event = c.Sink(k);
    ASSERT_TRUE(engine->Submit(std::move(r)).ok());
  }
  ASSERT_TRUE(engine->Step().ok());
  engine.reset();
  for (int k = 10; k < 14; ++k) {
    EXPECT_EQ(c.Get(k).done, 1);
    EXPECT_EQ(c.Get(k).reason, StopReason::kCancelled);
  }
}

}  // namespace
}  // namespace hearth
