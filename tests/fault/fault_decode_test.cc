// fault_decode_test.cc — device errors injected while a session feeds and
// generates: the uploads of token ids and positions, graph_compute, the
// download of logits, and the CPU plugin's own scratch allocations. A failed
// call must return the device's error and leave the session as it was before
// the call (n_past, logits); the same session, continuing or after
// hearth_session_reset, must then compute logits identical to a session that
// never failed.
#include <string>
#include <vector>

#include "tests/fault/fault_fixture.h"

namespace hearth_fault_test {
namespace {

// Recovery after a failure: go on with the same context, or start over.
enum class Recover { kContinue, kReset };
const char* Name(Recover how) {
  return how == Recover::kReset ? ", then reset" : ", then continue";
}

struct Case {
  std::string plan;
  hearth_status_code code;
  const char* names;  // what the error message must contain
};

class DecodeFault : public FaultTest {
 protected:
  void SetUp() override {
    FaultTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_EQ(Take(LoadModel(&model_)).code, HEARTH_OK);
    sequence_ = kPrompt;
    sequence_.insert(sequence_.end(), kGreedy.begin(), kGreedy.end());
    want_ = CleanLogits(model_, 0, sequence_, kPrompt.size());
    for (size_t n = kPrompt.size(); n < sequence_.size(); ++n) {
      ASSERT_EQ(Argmax(want_[n]), sequence_[n]) << "greedy token " << n - kPrompt.size();
    }
  }

  void ExpectHolds(hearth_session* s, size_t n) { FaultTest::ExpectHolds(s, n, want_); }

  // With the prompt fed, the next token's feed fails under each case's plan;
  // then the session recovers both ways.
  void FailTheNextToken(const std::vector<Case>& cases) {
    const size_t p = kPrompt.size();
    hearth_session* s = nullptr;
    ASSERT_EQ(Take(CreateSession(model_, 0, &s)).code, HEARTH_OK);
    for (const Case& k : cases) {
      for (Recover how : {Recover::kContinue, Recover::kReset}) {
        SCOPED_TRACE(k.plan + Name(how));
        hearth_session_reset(s);
        Plan("");
        ASSERT_EQ(Take(hearth_session_feed(s, kPrompt.data(), p)).code, HEARTH_OK);
        Plan(k.plan);
        Err e = Take(hearth_session_feed(s, &sequence_[p], 1));
        EXPECT_EQ(Injected(), 1);
        EXPECT_EQ(e.code, k.code) << e.message;
        EXPECT_TRUE(Contains(e.message, k.names));
        ExpectHolds(s, p);
        Plan("");
        if (how == Recover::kReset) {
          hearth_session_reset(s);
          ExpectHolds(s, 0);
          ASSERT_EQ(Take(hearth_session_feed(s, kPrompt.data(), p)).code, HEARTH_OK);
        }
        ASSERT_EQ(Take(hearth_session_feed(s, &sequence_[p], 1)).code, HEARTH_OK);
        ExpectHolds(s, p + 1);
      }
    }
  }

  // Generation of 8 greedy tokens runs 8 steps (the prompt, then 7 tokens;
  // the 8th is left pending). Call n of `call` fails, for every n. The
  // session must then hold the prompt and the tokens whose step finished,
  // and reach the clean run's context by continuing or after a reset.
  void FailEachStepOfGeneration(const char* call) {
    const size_t p = kPrompt.size(), n_gen = kGreedy.size();
    const int32_t max_tokens = static_cast<int32_t>(n_gen);
    Text clean;
    const Counts c = Count(
        model_, 0, [](hearth_session*) {},
        [&](hearth_session* s) {
          ASSERT_EQ(Generate(s, kPromptText, max_tokens, &clean).code, HEARTH_OK);
          ASSERT_EQ(hearth_session_n_past(s), p + n_gen);
        });
    ASSERT_EQ(c.compute, static_cast<int64_t>(n_gen));
    ASSERT_EQ(c.upload, 2 * c.compute);  // token ids, positions
    ASSERT_EQ(c.download, c.compute);
    const std::string name = call;
    const int64_t total = name == "upload" ? c.upload : name == "compute" ? c.compute : c.download;
    const int64_t per_step = name == "upload" ? 2 : 1;

    hearth_session* s = nullptr;
    ASSERT_EQ(Take(CreateSession(model_, 0, &s)).code, HEARTH_OK);
    for (int64_t n = 1; n <= total; ++n) {
      for (Recover how : {Recover::kContinue, Recover::kReset}) {
        const std::string plan = name + "=" + std::to_string(n);
        SCOPED_TRACE(plan + Name(how));
        hearth_session_reset(s);
        Plan(plan);
        Text partial;
        Err e = Generate(s, kPromptText, max_tokens, &partial);
        EXPECT_EQ(e.code, HEARTH_INTERNAL) << e.message;
        EXPECT_TRUE(Contains(e.message, "injected"));
        // Step 1 is the prompt; step j > 1 feeds generated token j - 1.
        const int64_t step = (n - 1) / per_step + 1;
        const size_t held = step == 1 ? 0 : p + static_cast<size_t>(step) - 2;
        ExpectHolds(s, held);
        Plan("");
        Text rest;
        if (how == Recover::kReset || held == 0) {
          hearth_session_reset(s);
          ASSERT_EQ(Generate(s, kPromptText, max_tokens, &rest).code, HEARTH_OK);
          EXPECT_EQ(rest.text, clean.text);
        } else {
          // Picks up after the last token that made it: the same greedy tokens.
          const int32_t left = static_cast<int32_t>(p + n_gen - held);
          ASSERT_EQ(Generate(s, "", left, &rest).code, HEARTH_OK);
        }
        EXPECT_EQ(hearth_session_n_past(s), p + n_gen);
        // Run the pending last token: the context is the clean one.
        ASSERT_EQ(Take(hearth_session_feed(s, nullptr, 0)).code, HEARTH_OK);
        ExpectHolds(s, p + n_gen);
      }
    }
  }

  struct Text {
    std::string text;
    static int Add(const char* piece, size_t len, void* self) {
      static_cast<Text*>(self)->text.append(piece, len);
      return 0;
    }
  };
  static Err Generate(hearth_session* s, const char* prompt, int32_t max_tokens, Text* out) {
    hearth_generate_params g = HEARTH_GENERATE_PARAMS_INIT;
    g.sampling.temperature = 0;  // greedy
    g.max_tokens = max_tokens;
    return Take(
        hearth_session_generate(s, prompt, std::strlen(prompt), &g, &Text::Add, out, nullptr));
  }

  hearth_model* model_ = nullptr;
  std::vector<int32_t> sequence_;         // kPrompt then kGreedy
  std::vector<std::vector<float>> want_;  // clean logits by tokens held
};

// One token fed after the prompt: its two uploads (ids, positions) and its
// compute each fail in turn, and every host allocation the CPU plugin makes
// meanwhile (none once the session has computed a step of this size).
TEST_F(DecodeFault, AFailedDecodeStepChangesNothing) {
  const size_t p = kPrompt.size();
  const Counts c = Count(
      model_, 0,
      [&](hearth_session* s) {
        ASSERT_EQ(Take(hearth_session_feed(s, kPrompt.data(), p)).code, HEARTH_OK);
      },
      [&](hearth_session* s) {
        ASSERT_EQ(Take(hearth_session_feed(s, &sequence_[p], 1)).code, HEARTH_OK);
      });
  EXPECT_EQ(c.upload, 2);
  EXPECT_EQ(c.compute, 1);
  EXPECT_EQ(c.download, 1);
  EXPECT_EQ(c.alloc, 0);  // decoding allocates nothing
  std::vector<Case> cases;
  for (int64_t n = 1; n <= c.upload; ++n) {
    cases.push_back({"upload=" + std::to_string(n), HEARTH_INTERNAL,
                     "fault: buffer_upload: fault buffer_upload: injected: device error"});
  }
  cases.push_back({"compute=1", HEARTH_INTERNAL,
                   "fault: graph_compute: fault graph_compute: injected: device lost"});
  cases.push_back({"compute=1:unavailable", HEARTH_UNAVAILABLE, "injected: device lost"});
  cases.push_back({"compute=1:resource_exhausted", HEARTH_RESOURCE_EXHAUSTED, "injected"});
  for (int64_t n = 1; n <= c.host_alloc; ++n) {
    cases.push_back({"host_alloc=" + std::to_string(n), HEARTH_RESOURCE_EXHAUSTED, "cannot"});
  }
  FailTheNextToken(cases);
}

// The first step of a session allocates the CPU plugin's scratch; when that
// host allocation fails, graph_compute reports it and nothing changes.
TEST_F(DecodeFault, AFailedScratchAllocationInTheFirstStepChangesNothing) {
  const size_t p = kPrompt.size();
  const Counts c = Count(
      model_, 0, [](hearth_session*) {},
      [&](hearth_session* s) {
        ASSERT_EQ(Take(hearth_session_feed(s, kPrompt.data(), p)).code, HEARTH_OK);
      });
  ASSERT_GE(c.host_alloc, 1);
  for (int64_t n = 1; n <= c.host_alloc; ++n) {
    SCOPED_TRACE(n);
    hearth_session* s = nullptr;
    ASSERT_EQ(Take(CreateSession(model_, 0, &s)).code, HEARTH_OK);
    Plan("host_alloc=" + std::to_string(n));
    Err e = Take(hearth_session_feed(s, kPrompt.data(), p));
    EXPECT_EQ(e.code, HEARTH_RESOURCE_EXHAUSTED) << e.message;
    EXPECT_TRUE(Contains(e.message, "fault: graph_compute: cpu graph_compute: cannot allocate"));
    ExpectHolds(s, 0);
    Plan("");
    ASSERT_EQ(Take(hearth_session_feed(s, kPrompt.data(), p)).code, HEARTH_OK);
    ExpectHolds(s, p);
    FreeSession(s);
  }
}

// Fixed bug: Feed counted a step before its logits arrived.
TEST_F(DecodeFault, AFailedLogitsDownloadChangesNothing) {
  FailTheNextToken({{"download=1", HEARTH_INTERNAL,
                     "fault: buffer_download: fault buffer_download: injected: device error"}});
}

// A device that is gone for good fails every call; the session keeps what
// it had and works again once the device is back.
TEST_F(DecodeFault, EveryStepFailsWhileTheDeviceIsGone) {
  const size_t p = kPrompt.size();
  hearth_session* s = nullptr;
  ASSERT_EQ(Take(CreateSession(model_, 0, &s)).code, HEARTH_OK);
  ASSERT_EQ(Take(hearth_session_feed(s, kPrompt.data(), p)).code, HEARTH_OK);
  Plan("compute>=1:unavailable");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Take(hearth_session_feed(s, &sequence_[p], 1)).code, HEARTH_UNAVAILABLE);
    Text text;
    EXPECT_EQ(Generate(s, " more", 4, &text).code, HEARTH_UNAVAILABLE);
    EXPECT_EQ(text.text, "");
    ExpectHolds(s, p);
  }
  EXPECT_EQ(Injected(), 6);
  Plan("");
  ASSERT_EQ(Take(hearth_session_feed(s, &sequence_[p], kGreedy.size())).code, HEARTH_OK);
  EXPECT_EQ(hearth_session_n_past(s), sequence_.size());
}

TEST_F(DecodeFault, EveryComputeOfGenerationFailsCleanly) { FailEachStepOfGeneration("compute"); }

TEST_F(DecodeFault, EveryUploadOfGenerationFailsCleanly) { FailEachStepOfGeneration("upload"); }

// As AFailedLogitsDownloadChangesNothing, inside generation.
TEST_F(DecodeFault, EveryLogitsDownloadOfGenerationFailsCleanly) {
  FailEachStepOfGeneration("download");
}

// A prompt longer than n_batch runs as several steps; a failure in any of
// them must not leave the earlier steps counted. Fixed bug: Session::Feed advances
// n_past step by step and returns on the first failure.
TEST_F(DecodeFault, AFailedPromptChangesNothingWhicheverStepFails) {
  const uint32_t n_batch = 4;  // 17 prompt tokens: 5 steps
  const size_t p = kPrompt.size();
  const std::vector<std::vector<float>> want = CleanLogits(model_, n_batch, sequence_, p);
  const Counts c = Count(
      model_, n_batch, [](hearth_session*) {},
      [&](hearth_session* s) {
        ASSERT_EQ(Take(hearth_session_feed(s, kPrompt.data(), p)).code, HEARTH_OK);
      });
  ASSERT_EQ(c.compute, 5);
  hearth_session* s = nullptr;
  ASSERT_EQ(Take(CreateSession(model_, n_batch, &s)).code, HEARTH_OK);
  for (const char* call : {"compute", "upload", "download"}) {
    const std::string name = call;
    const int64_t total = name == "compute" ? c.compute : name == "upload" ? c.upload : c.download;
    for (int64_t n = 1; n <= total; ++n) {
      const std::string plan = name + "=" + std::to_string(n);
      SCOPED_TRACE(plan);
      hearth_session_reset(s);
      Plan(plan);
      Err e = Take(hearth_session_feed(s, kPrompt.data(), p));
      EXPECT_EQ(e.code, HEARTH_INTERNAL) << e.message;
      FaultTest::ExpectHolds(s, 0, want);
      Plan("");  // continue: the whole prompt again
      ASSERT_EQ(Take(hearth_session_feed(s, kPrompt.data(), p)).code, HEARTH_OK);
      FaultTest::ExpectHolds(s, p, want);
    }
  }
}

// After hearth_session_generate the last sampled token is held but not yet
// run (n_past counts it); the next feed runs it first. If that feed fails,
// the held token must still be there. Fixed bug: Session::Feed forgets it before
// the step runs.
TEST_F(DecodeFault, AFailedFeedKeepsTheTokenGenerationLeftPending) {
  hearth_session* s = nullptr;
  ASSERT_EQ(Take(CreateSession(model_, 0, &s)).code, HEARTH_OK);
  Text text;
  ASSERT_EQ(Generate(s, kPromptText, 2, &text).code, HEARTH_OK);
  const size_t held = kPrompt.size() + 2;  // the second generated token is pending
  ASSERT_EQ(hearth_session_n_past(s), held);
  EXPECT_EQ(Logits(s), want_[held - 1]);
  Plan("compute=1");
  EXPECT_EQ(Take(hearth_session_feed(s, &sequence_[held], 1)).code, HEARTH_INTERNAL);
  EXPECT_EQ(hearth_session_n_past(s), held);
  EXPECT_EQ(Logits(s), want_[held - 1]);
  Plan("");
  ASSERT_EQ(Take(hearth_session_feed(s, &sequence_[held], 1)).code, HEARTH_OK);
  ExpectHolds(s, held + 1);
}

}  // namespace
}  // namespace hearth_fault_test
