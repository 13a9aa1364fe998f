// LoRA adapters through hearth.h only: logits against PEFT's (fixtures in
// tests/data/lora, made by scripts/fixtures/make_lora_fixtures.py), the
// GGUF-LoRA path against the PEFT path, stacking, detaching, two sessions
// with different adapters, merged export, and the errors for bad adapters.
// The Python suite (tests/python/test_adapters.py) covers every fixture
// case; this one runs the C paths under the sanitizers too.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "hearth/hearth.h"
#include "capi_test_util.h"

namespace {

const std::string kData = HEARTH_TEST_DATA;
const std::string kLlama = kData + "/models/tiny-llama-f32.gguf";
const std::string kQwen = kData + "/models/tiny-qwen2-f32.gguf";
const std::string kLora = kData + "/lora/";
// Prompt p1 of tiny-llama's fixtures (6 tokens), as ref.json lists it.
const std::vector<int32_t> kPrompt = {1, 457, 501, 458, 382, 459};
constexpr double kTolerance = 1e-4;  // ref.json: max|ours - ref| / max|ref|

using hearth_test::Error;

std::vector<float> ReadF32(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

double RelErr(const float* got, const float* want, size_t n) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    err = std::max(err, std::fabs(double(got[i]) - want[i]));
    scale = std::max(scale, std::fabs(double(want[i])));
  }
  return err / scale;
}

class CapiAdapter : public ::testing::Test {
 protected:
  void SetUp() override {
    Error rt_err;
    rt_ = hearth_test::TestRuntime(&rt_err);
    ASSERT_NE(rt_, nullptr) << rt_err.message();
    model_ = Load(kLlama);
    ASSERT_NE(model_, nullptr);
  }
  void TearDown() override {
    for (hearth_adapter* a : adapters_) hearth_adapter_free(a);
    for (hearth_session* s : sessions_) hearth_session_free(s);
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
  hearth_adapter* Adapter(hearth_model* model, const std::string& path) {
    hearth_adapter* a = nullptr;
    Error err{hearth_adapter_load(model, path.c_str(), nullptr, &a)};
    EXPECT_EQ(err.e, nullptr) << err.message();
    if (a) adapters_.push_back(a);
    return a;
  }
  hearth_session* NewSession(hearth_model* model) {
    hearth_session* s = nullptr;
    EXPECT_EQ(hearth_session_create(model, nullptr, &s), nullptr);
    if (s) sessions_.push_back(s);
    return s;
  }
  // Logits after feeding `tokens` one at a time: [n_tokens][n_vocab].
  std::vector<float> AllLogits(hearth_session* s, const std::vector<int32_t>& tokens) {
    std::vector<float> out;
    for (int32_t t : tokens) {
      Error err{hearth_session_feed(s, &t, 1)};
      EXPECT_EQ(err.e, nullptr) << err.message();
      const float* l = nullptr;
      size_t n = 0;
      EXPECT_EQ(hearth_session_logits(s, &l, &n), nullptr);
      out.insert(out.end(), l, l + n);
    }
    return out;
  }
  hearth_runtime* rt_ = nullptr;
  hearth_model* model_ = nullptr;
  std::vector<hearth_model*> models_;
  std::vector<hearth_session*> sessions_;
  std::vector<hearth_adapter*> adapters_;
};

TEST_F(CapiAdapter, PeftAndGgufMatchPeftLogitsAtTwoScales) {
  for (const char* file : {"llama-all", "llama-all.gguf"}) {
    SCOPED_TRACE(file);
    hearth_adapter* a = Adapter(model_, kLora + file);
    ASSERT_NE(a, nullptr);
    for (float scale : {1.0f, 0.5f}) {
      hearth_session* s = NewSession(model_);
      ASSERT_EQ(hearth_session_set_adapters(s, &a, &scale, 1), nullptr);
      const std::vector<float> got = AllLogits(s, kPrompt);
      const std::vector<float> want =
          ReadF32(kLora + (scale == 1.0f ? "llama-all-s1.0.p1.f32" : "llama-all-s0.5.p1.f32"));
      ASSERT_EQ(got.size(), want.size());
      EXPECT_LE(RelErr(got.data(), want.data(), got.size()), kTolerance) << "scale " << scale;
    }
  }
}

TEST_F(CapiAdapter, StackedAdaptersAddUp) {
  const hearth_adapter* pair[] = {Adapter(model_, kLora + "llama-all"),
                                  Adapter(model_, kLora + "llama-qv-rs")};
  const float scales[] = {1.0f, 0.7f};
  hearth_session* s = NewSession(model_);
  ASSERT_EQ(hearth_session_set_adapters(s, pair, scales, 2), nullptr);
  const std::vector<float> got = AllLogits(s, kPrompt);
  const std::vector<float> want = ReadF32(kLora + "llama-all-s1.0+llama-qv-rs-s0.7.p1.f32");
  ASSERT_EQ(got.size(), want.size());
  EXPECT_LE(RelErr(got.data(), want.data(), got.size()), kTolerance);
}

TEST_F(CapiAdapter, DetachRestoresBaseAndSessionsAreIndependent) {
  hearth_adapter* a = Adapter(model_, kLora + "llama-all");
  hearth_session* base = NewSession(model_);
  hearth_session* with = NewSession(model_);
  const std::vector<float> base_logits = AllLogits(base, kPrompt);
  ASSERT_EQ(hearth_session_set_adapters(with, &a, nullptr, 1), nullptr);
  const std::vector<float> adapted = AllLogits(with, kPrompt);
  EXPECT_GT(RelErr(adapted.data(), base_logits.data(), adapted.size()), 0.1);
  // The base session was not touched by the other's adapter.
  hearth_session_reset(base);
  EXPECT_EQ(AllLogits(base, kPrompt), base_logits);
  // Changing the set resets the context; detaching gives the base back exactly.
  EXPECT_EQ(hearth_session_n_past(with), kPrompt.size());
  ASSERT_EQ(hearth_session_set_adapters(with, nullptr, nullptr, 0), nullptr);
  EXPECT_EQ(hearth_session_n_past(with), 0u);
  EXPECT_EQ(AllLogits(with, kPrompt), base_logits);
}

TEST_F(CapiAdapter, ThreadsWithTheirOwnAdaptersOnOneModel) {
  // One adapter shared by two sessions, one session with another, one bare:
  // each thread decodes on its own session at once and must get what it
  // gets alone (run under ThreadSanitizer by scripts/test.sh).
  hearth_adapter* all = Adapter(model_, kLora + "llama-all");
  hearth_adapter* qv = Adapter(model_, kLora + "llama-qv-rs");
  const hearth_adapter* sets[][1] = {{all}, {all}, {qv}};
  const size_t counts[] = {1, 1, 1, 0};
  std::vector<hearth_session*> sessions;
  std::vector<std::vector<float>> alone;
  for (size_t i = 0; i < 4; ++i) {
    hearth_session* s = NewSession(model_);
    if (counts[i] > 0) {
      ASSERT_EQ(hearth_session_set_adapters(s, sets[i], nullptr, counts[i]), nullptr);
    }
    alone.push_back(AllLogits(s, kPrompt));
    hearth_session_reset(s);
    sessions.push_back(s);
  }
  std::vector<std::vector<float>> together(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int32_t t : kPrompt) {
        if (hearth_session_feed(sessions[i], &t, 1) != nullptr) return;
        const float* l = nullptr;
        size_t n = 0;
        if (hearth_session_logits(sessions[i], &l, &n) != nullptr) return;
        together[i].insert(together[i].end(), l, l + n);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(together[i], alone[i]) << "session " << i;
}

TEST_F(CapiAdapter, InfoAndTargets) {
  hearth_adapter* a = Adapter(nullptr, kLora + "llama-qv-rs");
  hearth_adapter_info info = HEARTH_ADAPTER_INFO_INIT;
  ASSERT_EQ(hearth_adapter_get_info(a, &info), nullptr);
  EXPECT_EQ(info.format, static_cast<uint32_t>(HEARTH_ADAPTER_PEFT));
  EXPECT_EQ(info.rank, 3u);  // r 2, rank_pattern 3 on one module
  EXPECT_EQ(info.alpha, 4.0f);
  EXPECT_EQ(info.use_rslora, 1u);
  EXPECT_EQ(info.bound, 0u);
  ASSERT_EQ(info.n_targets, 4u);
  hearth_adapter_target t = HEARTH_ADAPTER_TARGET_INIT;
  ASSERT_EQ(hearth_adapter_get_target(a, 3, &t), nullptr);
  EXPECT_STREQ(t.weight, "blk.1.attn_v.weight");
  EXPECT_EQ(t.rank, 3u);
  EXPECT_NEAR(t.scale, 6.0 / std::sqrt(3.0), 1e-6);
  Error past{hearth_adapter_get_target(a, 4, &t)};
  EXPECT_EQ(hearth_error_code(past.e), HEARTH_OUT_OF_RANGE);
  // Inspect-only adapters cannot be attached.
  hearth_session* s = NewSession(model_);
  Error attach{hearth_session_set_adapters(s, &a, nullptr, 1)};
  EXPECT_NE(attach.message().find("without a model"), std::string::npos) << attach.message();
}

TEST_F(CapiAdapter, BadAdaptersAreRefusedByName) {
  struct Case {
    const char* path;
    const char* says;
  } cases[] = {
      {"bad/missing-lora-b", "lora_B"},
      {"bad/rank-mismatch", "rank"},
      {"bad/hidden-32", "32"},
      {"bad/alpha-zero", "alpha"},
      {"bad/missing-lora-b.gguf", "lora_b"},
      {"bad/alpha-zero.gguf", "alpha"},
      {"bad/transposed-lora-a.gguf", "lora_a"},
      {"qwen2-all.gguf", "qwen2"},
      {"no-such-adapter", "no-such-adapter"},
  };
  for (const Case& c : cases) {
    hearth_adapter* a = nullptr;
    Error err{hearth_adapter_load(model_, (kLora + c.path).c_str(), nullptr, &a)};
    EXPECT_NE(err.e, nullptr) << c.path;
    EXPECT_EQ(a, nullptr);
    EXPECT_NE(err.message().find(c.says), std::string::npos) << c.path << ": " << err.message();
  }
  // An adapter of another model is refused by the session.
  hearth_model* qwen = Load(kQwen);
  hearth_adapter* qa = Adapter(qwen, kLora + "qwen2-all");
  hearth_session* s = NewSession(model_);
  const float nan = NAN;
  Error other{hearth_session_set_adapters(s, &qa, nullptr, 1)};
  EXPECT_NE(other.message().find("another model"), std::string::npos) << other.message();
  hearth_adapter* a = Adapter(model_, kLora + "llama-all");
  Error bad_scale{hearth_session_set_adapters(s, &a, &nan, 1)};
  EXPECT_NE(bad_scale.message().find("not finite"), std::string::npos) << bad_scale.message();
}

TEST_F(CapiAdapter, ExportMergedMatchesTheAdapterSession) {
  hearth_adapter* a = Adapter(model_, kLora + "llama-all.gguf");
  const float scale = 0.5f;
  const std::string out =
      ::testing::TempDir() + "/hearth-merged-" + std::to_string(getpid()) + ".gguf";
  hearth_export_params params = HEARTH_EXPORT_PARAMS_INIT;
  params.merged_type = "f32";
  Error err{hearth_model_export_merged(model_, &a, &scale, 1, out.c_str(), &params)};
  ASSERT_EQ(err.e, nullptr) << err.message();
  hearth_model* merged = Load(out);
  std::remove(out.c_str());
  ASSERT_NE(merged, nullptr);
  hearth_session* s = NewSession(model_);
  ASSERT_EQ(hearth_session_set_adapters(s, &a, &scale, 1), nullptr);
  const std::vector<float> want = AllLogits(s, kPrompt);
  const std::vector<float> got = AllLogits(NewSession(merged), kPrompt);
  EXPECT_LE(RelErr(got.data(), want.data(), got.size()), 1e-5);

  params.merged_type = "q4_k";
  Error bad_type{hearth_model_export_merged(model_, &a, &scale, 1, out.c_str(), &params)};
  EXPECT_NE(bad_type.message().find("q4_k"), std::string::npos) << bad_type.message();
}

}  // namespace
