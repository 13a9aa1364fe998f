// fault_fixture.h — what the fault tests share: a runtime whose only device
// is the fault plugin's ("fault", wrapping the real CPU plugin), handles on
// the plugin's control symbols (fault_control.h), error and logits helpers,
// and the tiny model's reference prompt and greedy tokens. Everything about
// hearth itself goes through the public C ABI (hearth.h).
#ifndef HEARTH_TESTS_FAULT_FAULT_FIXTURE_H_
#define HEARTH_TESTS_FAULT_FAULT_FIXTURE_H_

#include <dlfcn.h>
#include <stdlib.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "hearth/hearth.h"
#include "tests/fault/fault_control.h"

namespace hearth_fault_test {

// The fault plugin reads this at its first init, before any thread of ours
// or of oneDNN exists.
inline const bool kInnerSet =
    setenv("HEARTH_FAULT_INNER", HEARTH_FAULT_INNER_PLUGIN, /*overwrite=*/1) == 0;

inline const std::string kModel = std::string(HEARTH_TEST_DATA) + "/models/tiny-llama-f32.gguf";

// tests/data/models/tiny-llama-f32.ref.json, prompt 2 ("Café: naïve users
// copy"): its token ids (BOS first) and the 8 greedy tokens transformers
// (float64) picks after it, with a top-2 margin (0.06) far above our error.
inline const std::vector<int32_t> kPrompt = {1,   355, 464, 472, 198, 172, 61,  301, 464,
                                             198, 178, 311, 305, 465, 262, 465, 349};
inline const char kPromptText[] = "Caf\xc3\xa9: na\xc3\xafve users copy";
inline const std::vector<int32_t> kGreedy = {310, 272, 471, 68, 471, 334, 270, 185};

struct Err {
  hearth_status_code code = HEARTH_OK;
  std::string message;
};

// Takes an error apart and frees it; code HEARTH_OK for success.
inline Err Take(hearth_error* e) {
  Err r{hearth_error_code(e), hearth_error_message(e)};
  hearth_error_free(e);
  return r;
}

inline ::testing::AssertionResult Contains(const std::string& text, const std::string& needle) {
  if (text.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << text << "\" does not contain \"" << needle << "\"";
}

// The session's current logits, or empty when it has none.
inline std::vector<float> Logits(const hearth_session* s) {
  const float* p = nullptr;
  size_t n = 0;
  hearth_error* e = hearth_session_logits(s, &p, &n);
  if (e != nullptr) {
    hearth_error_free(e);
    return {};
  }
  return std::vector<float>(p, p + n);
}

inline int32_t Argmax(const std::vector<float>& v) {
  size_t best = 0;
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i] > v[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(kInnerSet);
    hearth_runtime_params rp = HEARTH_RUNTIME_PARAMS_INIT;
    rp.plugin_path = HEARTH_FAULT_PLUGIN;
    rp.explicit_only = 1;
    Err e = Take(hearth_runtime_create(&rp, &rt_));
    ASSERT_EQ(e.code, HEARTH_OK) << e.message;
    hearth_plugin_info pi = HEARTH_PLUGIN_INFO_INIT;
    ASSERT_EQ(hearth_runtime_plugin_count(rt_), 1u);
    ASSERT_EQ(hearth_runtime_plugin_info(rt_, 0, &pi), nullptr);
    ASSERT_EQ(pi.load_error, nullptr) << pi.load_error;
    // The runtime has the file mapped already; this only takes a reference.
    void* h = dlopen(HEARTH_FAULT_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(h, nullptr) << dlerror();
    set_plan_ = reinterpret_cast<hearth_fault_set_plan_fn>(dlsym(h, HEARTH_FAULT_SET_PLAN_SYMBOL));
    calls_ = reinterpret_cast<hearth_fault_calls_fn>(dlsym(h, HEARTH_FAULT_CALLS_SYMBOL));
    injected_ = reinterpret_cast<hearth_fault_injected_fn>(dlsym(h, HEARTH_FAULT_INJECTED_SYMBOL));
    live_ = reinterpret_cast<hearth_fault_live_fn>(dlsym(h, HEARTH_FAULT_LIVE_SYMBOL));
    ASSERT_TRUE(set_plan_ && calls_ && injected_ && live_);
    Plan("");
  }

  void TearDown() override {
    if (set_plan_) set_plan_("");
    for (hearth_session* s : sessions_) hearth_session_free(s);
    for (hearth_model* m : models_) hearth_model_free(m);
    hearth_runtime_free(rt_);
    if (live_) {
      // Every buffer and context the plugin handed out came back.
      EXPECT_EQ(live_("buffers"), 0);
      EXPECT_EQ(live_("contexts"), 0);
    }
  }

  void Plan(const std::string& plan) {
    const char* why = set_plan_(plan.c_str());
    ASSERT_EQ(why, nullptr) << why;
  }
  int64_t Calls(const char* call) const { return calls_(call); }
  int64_t Injected() const { return injected_(); }
  int64_t LiveBuffers() const { return live_("buffers"); }
  int64_t LiveContexts() const { return live_("contexts"); }

  // Loads the tiny model on the fault device; the model is freed at teardown
  // unless the caller frees it first with FreeModel.
  hearth_error* LoadModel(hearth_model** out, const std::string& path = kModel) {
    hearth_model_params mp = HEARTH_MODEL_PARAMS_INIT;
    mp.device = "fault";
    mp.n_threads = 2;
    hearth_error* e = hearth_model_load(rt_, path.c_str(), &mp, out);
    if (e == nullptr) models_.push_back(*out);
    return e;
  }
  void FreeModel(hearth_model* m) {
    for (size_t i = 0; i < models_.size(); ++i) {
      if (models_[i] == m) models_.erase(models_.begin() + static_cast<long>(i));
    }
    hearth_model_free(m);
  }

  hearth_error* CreateSession(hearth_model* m, uint32_t n_batch, hearth_session** out) {
    hearth_session_params sp = HEARTH_SESSION_PARAMS_INIT;
    sp.n_ctx = 64;
    sp.n_batch = n_batch;
    hearth_error* e = hearth_session_create(m, &sp, out);
    if (e == nullptr) sessions_.push_back(*out);
    return e;
  }
  void FreeSession(hearth_session* s) {
    for (size_t i = 0; i < sessions_.size(); ++i) {
      if (sessions_[i] == s) sessions_.erase(sessions_.begin() + static_cast<long>(i));
    }
    hearth_session_free(s);
  }

  // Feeds the reference prompt, then 8 greedy tokens one at a time; returns
  // the tokens picked. Any error fails the test.
  std::vector<int32_t> GreedyTokens(hearth_session* s) {
    std::vector<int32_t> out;
    Err e = Take(hearth_session_feed(s, kPrompt.data(), kPrompt.size()));
    EXPECT_EQ(e.code, HEARTH_OK) << e.message;
    for (size_t i = 0; i < kGreedy.size() && e.code == HEARTH_OK; ++i) {
      out.push_back(Argmax(Logits(s)));
      e = Take(hearth_session_feed(s, &out.back(), 1));
      EXPECT_EQ(e.code, HEARTH_OK) << e.message;
    }
    return out;
  }

  // Logits a session that never failed (n_batch as given) has after each
  // prefix of `seq`, fed as its first `first` tokens in one call, then one
  // token per call: want[n] follows the first n tokens; want[n] for n <
  // `first` (but 0) is not computed. Identical numbers need identical steps:
  // the batch a token is computed in changes the order of float sums.
  std::vector<std::vector<float>> CleanLogits(hearth_model* m, uint32_t n_batch,
                                              const std::vector<int32_t>& seq, size_t first) {
    std::vector<std::vector<float>> want(seq.size() + 1);
    hearth_session* s = nullptr;
    Err e = Take(CreateSession(m, n_batch, &s));
    EXPECT_EQ(e.code, HEARTH_OK) << e.message;
    if (e.code != HEARTH_OK) return want;
    EXPECT_EQ(Take(hearth_session_feed(s, seq.data(), first)).code, HEARTH_OK);
    want[first] = Logits(s);
    for (size_t n = first; n < seq.size(); ++n) {
      EXPECT_EQ(Take(hearth_session_feed(s, &seq[n], 1)).code, HEARTH_OK);
      want[n + 1] = Logits(s);
    }
    FreeSession(s);
    return want;
  }

  // The session holds exactly the first `n` tokens of the sequence `want`
  // was made from, with the logits a clean session has there (none for 0).
  void ExpectHolds(hearth_session* s, size_t n, const std::vector<std::vector<float>>& want) {
    EXPECT_EQ(hearth_session_n_past(s), n);
    if (n == 0) {
      EXPECT_TRUE(Logits(s).empty());
    } else {
      ASSERT_LT(n, want.size());
      ASSERT_FALSE(want[n].empty());
      EXPECT_EQ(Logits(s), want[n]) << "logits after " << n << " tokens";
    }
  }

  // Calls of each device operation that `run` makes on a fresh session
  // prepared by `prepare`, nothing injected.
  struct Counts {
    int64_t upload, compute, download, host_alloc, alloc;
  };
  template <typename Prepare, typename Run>
  Counts Count(hearth_model* m, uint32_t n_batch, Prepare prepare, Run run) {
    hearth_session* s = nullptr;
    EXPECT_EQ(Take(CreateSession(m, n_batch, &s)).code, HEARTH_OK);
    prepare(s);
    Plan("");
    run(s);
    Counts c{Calls("upload"), Calls("compute"), Calls("download"), Calls("host_alloc"),
             Calls("alloc")};
    FreeSession(s);
    return c;
  }

  hearth_runtime* rt_ = nullptr;
  std::vector<hearth_model*> models_;
  std::vector<hearth_session*> sessions_;
  hearth_fault_set_plan_fn set_plan_ = nullptr;
  hearth_fault_calls_fn calls_ = nullptr;
  hearth_fault_injected_fn injected_ = nullptr;
  hearth_fault_live_fn live_ = nullptr;
};

}  // namespace hearth_fault_test

#endif  // HEARTH_TESTS_FAULT_FAULT_FIXTURE_H_
