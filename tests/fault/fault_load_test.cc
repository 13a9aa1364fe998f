// fault_load_test.cc — out-of-memory and device errors injected while a
// model is placed on its device (hearth_model_load) and while a session
// plans its KV cache and activations (hearth_session_create). Every failing
// call must give an error that names it, free whatever was made before it,
// and leave the runtime able to load the model and generate exactly what a
// run that never failed generates. Also checks that the fault device is a
// faithful stand-in for the CPU when nothing is injected.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/fault/fault_fixture.h"

namespace hearth_fault_test {
namespace {

// Last row of the reference logits of kPrompt (tiny-llama-f32.p2.f32: 17 rows
// of 512 floats, little-endian).
std::vector<float> ReferenceLastLogits() {
  const std::string path = std::string(HEARTH_TEST_DATA) + "/models/tiny-llama-f32.p2.f32";
  std::vector<float> all(kPrompt.size() * 512);
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return {};
  const size_t got = std::fread(all.data(), sizeof(float), all.size(), f);
  std::fclose(f);
  if (got != all.size()) return {};
  return std::vector<float>(all.end() - 512, all.end());
}

struct Case {
  const char* call;   // fault_control.h name
  int64_t min_calls;  // how many of them a clean load makes at least
  const char* names;  // what the error message must contain
  hearth_status_code code;
};

TEST_F(FaultTest, FaultDeviceIsTheCpuWhenNothingIsInjected) {
  ASSERT_EQ(hearth_runtime_device_count(rt_), 1u);
  hearth_device_info di = HEARTH_DEVICE_INFO_INIT;
  ASSERT_EQ(hearth_runtime_device_info(rt_, 0, &di), nullptr);
  EXPECT_STREQ(di.name, "fault");
  EXPECT_STREQ(di.plugin, "fault");
  EXPECT_TRUE(Contains(di.description, "fault injection over cpu device 'cpu'"));

  hearth_model* m = nullptr;
  Err e = Take(LoadModel(&m));
  ASSERT_EQ(e.code, HEARTH_OK) << e.message;
  // The CPU maps the file in place: one wrapped buffer, nothing copied.
  EXPECT_EQ(Calls("wrap"), 1);
  EXPECT_EQ(Calls("alloc"), 0);
  EXPECT_EQ(Calls("upload"), 0);
  hearth_model_info info = HEARTH_MODEL_INFO_INIT;
  ASSERT_EQ(hearth_model_get_info(m, &info), nullptr);
  EXPECT_STREQ(info.device, "fault");

  hearth_session* s = nullptr;
  e = Take(CreateSession(m, 0, &s));
  ASSERT_EQ(e.code, HEARTH_OK) << e.message;
  ASSERT_EQ(Take(hearth_session_feed(s, kPrompt.data(), kPrompt.size())).code, HEARTH_OK);
  const std::vector<float> got = Logits(s), want = ReferenceLastLogits();
  ASSERT_EQ(want.size(), 512u) << "cannot read tiny-llama-f32.p2.f32";
  ASSERT_EQ(got.size(), want.size());
  float scale = 0, err = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::fabs(want[i]));
    err = std::max(err, std::fabs(got[i] - want[i]));
  }
  EXPECT_LE(err, 1e-4f * scale);  // the fixture's stated tolerance (rel 1e-4)
  hearth_session_reset(s);
  EXPECT_EQ(GreedyTokens(s), kGreedy);
  EXPECT_EQ(Injected(), 0);
}

TEST_F(FaultTest, PlansThatDoNotParseAreRefusedByRule) {
  EXPECT_TRUE(Contains(set_plan_("alloc=0"), "'alloc=0': N must be a whole number >= 1"));
  EXPECT_TRUE(Contains(set_plan_("alloc=1,gpu=2"), "'gpu=2': unknown call 'gpu'"));
  EXPECT_TRUE(Contains(set_plan_("compute=1:oops"), "unknown status code 'oops'"));
  EXPECT_TRUE(Contains(set_plan_("upload"), "expected <call>=N"));
  EXPECT_EQ(set_plan_("alloc>=2,upload=1:unavailable,compute=3:14"), nullptr);
  EXPECT_EQ(Calls("nonsense"), -1);
}

class ModelLoadFault : public FaultTest {
 protected:
  // Runs load under every plan "<base>,<call>=N" for N = 1..(calls a clean
  // load makes) and checks the error, the cleanup and the recovery.
  void FailEveryCall(const std::string& base, const std::vector<Case>& cases) {
    Plan(base);
    hearth_model* m = nullptr;
    Err e = Take(LoadModel(&m));
    ASSERT_EQ(e.code, HEARTH_OK) << e.message;
    std::vector<int64_t> counts;
    for (const Case& c : cases) {
      counts.push_back(Calls(c.call));
      EXPECT_GE(counts.back(), c.min_calls) << c.call;
    }
    FreeModel(m);
    const int64_t buffers = LiveBuffers(), contexts = LiveContexts();
    for (size_t k = 0; k < cases.size(); ++k) {
      const Case& c = cases[k];
      for (int64_t n = 1; n <= counts[k]; ++n) {
        const std::string plan =
            (base.empty() ? "" : base + ",") + c.call + "=" + std::to_string(n);
        SCOPED_TRACE(plan);
        Plan(plan);
        hearth_model* untouched = reinterpret_cast<hearth_model*>(0x1234);
        hearth_model* out = untouched;
        e = Take(LoadModel(&out));
        EXPECT_EQ(Calls(c.call), n);  // the load stopped at the failed call
        EXPECT_EQ(e.code, c.code) << e.message;
        EXPECT_TRUE(Contains(e.message, c.names));
        EXPECT_EQ(out, untouched);
        EXPECT_EQ(LiveBuffers(), buffers);
        EXPECT_EQ(LiveContexts(), contexts);
      }
    }
    // The runtime is as good as new: a load succeeds and generates what a
    // run that never failed generates.
    Plan(base);
    e = Take(LoadModel(&m));
    ASSERT_EQ(e.code, HEARTH_OK) << e.message;
    hearth_session* s = nullptr;
    ASSERT_EQ(Take(CreateSession(m, 0, &s)).code, HEARTH_OK);
    EXPECT_EQ(GreedyTokens(s), kGreedy);
  }
};

// The CPU wraps the mapped file, so a load makes a context and wraps once.
TEST_F(ModelLoadFault, EveryCallOfAWrappingLoadFailsCleanly) {
  hearth_model* m = nullptr;
  ASSERT_EQ(Take(LoadModel(&m)).code, HEARTH_OK);
  EXPECT_EQ(Calls("host_alloc"), 0);  // nothing else that such a load does can fail
  FreeModel(m);
  FailEveryCall("", {{"context", 1,
                      "fault: context_create: fault context_create: injected: cannot create a "
                      "device context",
                      HEARTH_RESOURCE_EXHAUSTED}});
}

// A device that cannot read host memory: wrapping is refused, so the host
// copies the weights (one alloc, one upload), and those are what fail, as
// does the CPU plugin's own allocation inside buffer_alloc.
TEST_F(ModelLoadFault, EveryCallOfACopyingLoadFailsCleanly) {
  FailEveryCall(
      "wrap>=1",
      {{"context", 1, "injected: cannot create a device context", HEARTH_RESOURCE_EXHAUSTED},
       {"alloc", 1,
        "fault: buffer_alloc: fault buffer_alloc: injected: out of device memory "
        "(620384 bytes requested)",
        HEARTH_RESOURCE_EXHAUSTED},
       {"upload", 1,
        "fault: buffer_upload: fault buffer_upload: injected: device error copying "
        "620384 bytes to offset 0",
        HEARTH_INTERNAL},
       {"host_alloc", 1, "fault: buffer_alloc: cpu buffer_alloc: cannot allocate 620384 bytes",
        HEARTH_RESOURCE_EXHAUSTED}});
}

TEST_F(ModelLoadFault, ARefusedWrapFallsBackToCopyingAndGeneratesTheSame) {
  Plan("wrap=1");
  hearth_model* m = nullptr;
  Err e = Take(LoadModel(&m));
  ASSERT_EQ(e.code, HEARTH_OK) << e.message;
  EXPECT_EQ(Injected(), 1);
  EXPECT_EQ(Calls("alloc"), 1);
  EXPECT_EQ(Calls("upload"), 1);
  hearth_session* s = nullptr;
  ASSERT_EQ(Take(CreateSession(m, 0, &s)).code, HEARTH_OK);
  EXPECT_EQ(GreedyTokens(s), kGreedy);
}

TEST_F(ModelLoadFault, TheDevicesOwnStatusCodeComesThrough) {
  const struct {
    const char* plan;
    hearth_status_code code;
    bool for_good;  // every later call fails too, so the plan is set once
  } kCases[] = {{"wrap>=1,upload=1:unavailable", HEARTH_UNAVAILABLE, false},
                {"wrap>=1,alloc=1:internal", HEARTH_INTERNAL, false},
                {"context=1:unavailable", HEARTH_UNAVAILABLE, false},
                // Not a status code hearth knows: reported as INTERNAL.
                {"wrap>=1,alloc=1:99", HEARTH_INTERNAL, false},
                // A device that is gone for good.
                {"context>=1", HEARTH_RESOURCE_EXHAUSTED, true},
                {"wrap>=1,alloc>=1", HEARTH_RESOURCE_EXHAUSTED, true}};
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.plan);
    Plan(c.plan);
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!c.for_good) Plan(c.plan);
      hearth_model* m = nullptr;
      Err e = Take(LoadModel(&m));
      EXPECT_EQ(e.code, c.code) << e.message;
      EXPECT_TRUE(Contains(e.message, "injected"));
      EXPECT_EQ(LiveBuffers(), 0);
      EXPECT_EQ(LiveContexts(), 0);
    }
  }
  Plan("");
  hearth_model* m = nullptr;
  ASSERT_EQ(Take(LoadModel(&m)).code, HEARTH_OK);
}

// hearth_session_create makes a context, allocates the KV cache and one
// arena for activations; each of those, and every host allocation the
// wrapped plugin makes meanwhile, fails in turn.
TEST_F(FaultTest, EveryCallOfSessionCreateFailsCleanly) {
  hearth_model* m = nullptr;
  ASSERT_EQ(Take(LoadModel(&m)).code, HEARTH_OK);
  const int64_t buffers = LiveBuffers(), contexts = LiveContexts();
  hearth_session* clean = nullptr;
  Plan("");
  ASSERT_EQ(Take(CreateSession(m, 0, &clean)).code, HEARTH_OK);
  const int64_t n_context = Calls("context"), n_alloc = Calls("alloc"),
                n_host_alloc = Calls("host_alloc");
  EXPECT_EQ(n_context, 1);
  EXPECT_GE(n_alloc, 2);  // the KV cache, then the activations
  ASSERT_EQ(Take(hearth_session_feed(clean, kPrompt.data(), kPrompt.size())).code, HEARTH_OK);
  const std::vector<float> want = Logits(clean);
  FreeSession(clean);

  struct Expect {
    std::string plan;
    hearth_status_code code;
    std::vector<std::string> names;
  };
  std::vector<Expect> cases;
  cases.push_back({"context=1", HEARTH_RESOURCE_EXHAUSTED, {"context_create", "injected"}});
  cases.push_back(
      {"alloc=1",
       HEARTH_RESOURCE_EXHAUSTED,
       {"cannot allocate the KV cache", "for n_ctx 64", "injected: out of device memory"}});
  for (int64_t n = 2; n <= n_alloc; ++n) {
    cases.push_back({"alloc=" + std::to_string(n),
                     HEARTH_RESOURCE_EXHAUSTED,
                     {"bytes of activations", "injected: out of device memory"}});
  }
  for (int64_t n = 1; n <= n_host_alloc; ++n) {
    cases.push_back(
        {"host_alloc=" + std::to_string(n), HEARTH_RESOURCE_EXHAUSTED, {"cannot allocate"}});
  }
  for (const Expect& c : cases) {
    SCOPED_TRACE(c.plan);
    Plan(c.plan);
    hearth_session* untouched = reinterpret_cast<hearth_session*>(0x1234);
    hearth_session* s = untouched;
    Err e = Take(CreateSession(m, 0, &s));
    EXPECT_EQ(Injected(), 1);
    EXPECT_EQ(e.code, c.code) << e.message;
    for (const std::string& name : c.names) EXPECT_TRUE(Contains(e.message, name));
    EXPECT_EQ(s, untouched);
    EXPECT_EQ(LiveBuffers(), buffers);
    EXPECT_EQ(LiveContexts(), contexts);
  }
  // Afterwards a session is made and computes exactly what the first did.
  Plan("");
  hearth_session* s = nullptr;
  ASSERT_EQ(Take(CreateSession(m, 0, &s)).code, HEARTH_OK);
  ASSERT_EQ(Take(hearth_session_feed(s, kPrompt.data(), kPrompt.size())).code, HEARTH_OK);
  EXPECT_EQ(Logits(s), want);
}

}  // namespace
}  // namespace hearth_fault_test
