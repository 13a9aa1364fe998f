// fault_score_test.cc — device errors injected while a session scores
// tokens (hearth_session_score: logits at every position): its steps'
// uploads, compute and downloads, and the larger activations arena that
// scoring may need, which is the one allocation a session can make after it
// was created. The session must keep its context and its arena, and compute
// afterwards exactly what a session that never failed computes.
#include <string>
#include <vector>

#include "tests/fault/fault_fixture.h"

namespace hearth_fault_test {
namespace {

// A one-layer llama whose 512-token vocabulary is wide next to its
// activations (n_embd 8): the logits of all positions need a larger arena
// than a decoding step. See make_wide_vocab_model.py.
const std::string kWideVocab = std::string(HEARTH_FAULT_DATA) + "/tiny-llama-wide-vocab.gguf";

constexpr uint32_t kBatch = 4;

class ScoreFault : public FaultTest {
 protected:
  void SetUpModel(const std::string& path) {
    ASSERT_EQ(Take(LoadModel(&model_, path)).code, HEARTH_OK);
    // The clean run: the prompt, then kBatch greedy tokens scored at once.
    sequence_ = kPrompt;
    sequence_.insert(sequence_.end(), kGreedy.begin(), kGreedy.begin() + kBatch);
    hearth_session* s = nullptr;
    ASSERT_EQ(Take(CreateSession(model_, kBatch, &s)).code, HEARTH_OK);
    want_.assign(sequence_.size() + 1, {});
    ASSERT_EQ(Take(hearth_session_feed(s, kPrompt.data(), kPrompt.size())).code, HEARTH_OK);
    want_[kPrompt.size()] = Logits(s);
    want_logprobs_.resize(kBatch);
    ASSERT_EQ(Score(s).code, HEARTH_OK);
    want_logprobs_ = logprobs_;
    want_[sequence_.size()] = Logits(s);
    FreeSession(s);
  }

  Err Score(hearth_session* s) {
    logprobs_.assign(kBatch, 0.0f);
    return Take(hearth_session_score(s, &sequence_[kPrompt.size()], kBatch, logprobs_.data()));
  }

  // Scores after the prompt under `plan`: fails with `code`, keeps the
  // context; then scores cleanly and matches the clean run.
  void FailScore(const std::string& plan, hearth_status_code code, const char* names) {
    SCOPED_TRACE(plan);
    const size_t p = kPrompt.size();
    hearth_session* s = nullptr;
    ASSERT_EQ(Take(CreateSession(model_, kBatch, &s)).code, HEARTH_OK);
    ASSERT_EQ(Take(hearth_session_feed(s, kPrompt.data(), p)).code, HEARTH_OK);
    Plan(plan);
    Err e = Score(s);
    EXPECT_EQ(Injected(), 1);
    EXPECT_EQ(e.code, code) << e.message;
    EXPECT_TRUE(Contains(e.message, names));
    ExpectHolds(s, p, want_);
    Plan("");
    Err again = Score(s);
    ASSERT_EQ(again.code, HEARTH_OK) << again.message;
    EXPECT_EQ(logprobs_, want_logprobs_);
    ExpectHolds(s, sequence_.size(), want_);
    FreeSession(s);
  }

  hearth_model* model_ = nullptr;
  std::vector<int32_t> sequence_;
  std::vector<std::vector<float>> want_;
  std::vector<float> logprobs_, want_logprobs_;
};

TEST_F(ScoreFault, AFailedScoringStepChangesNothing) {
  ASSERT_NO_FATAL_FAILURE(SetUpModel(kModel));
  const Counts c = Count(
      model_, kBatch,
      [&](hearth_session* s) {
        ASSERT_EQ(Take(hearth_session_feed(s, kPrompt.data(), kPrompt.size())).code, HEARTH_OK);
      },
      [&](hearth_session* s) { ASSERT_EQ(Score(s).code, HEARTH_OK); });
  ASSERT_EQ(c.compute, 1);  // kBatch tokens: one step
  EXPECT_EQ(c.alloc, 0);    // this model's logits fit the decoding arena
  for (int64_t n = 1; n <= c.upload; ++n) {
    FailScore("upload=" + std::to_string(n), HEARTH_INTERNAL, "buffer_upload");
  }
  FailScore("compute=1", HEARTH_INTERNAL, "graph_compute");
  FailScore("compute=1:unavailable", HEARTH_UNAVAILABLE, "graph_compute");
}

// Fixed bug: Session::Score counts the step's tokens before downloading logits.
TEST_F(ScoreFault, AFailedLogitsDownloadChangesNothing) {
  ASSERT_NO_FATAL_FAILURE(SetUpModel(kModel));
  FailScore("download=1", HEARTH_INTERNAL, "buffer_download");
}

// The arena must grow to score; when the device cannot provide the larger
// one, scoring fails with RESOURCE_EXHAUSTED and the session must keep
// decoding with what it had. Fixed bug: Session::StepFor frees the old arena
// before allocating the new one and leaves the cached step graphs bound to
// the freed buffer.
TEST_F(ScoreFault, AFailedArenaGrowthLeavesTheSessionUsable) {
  ASSERT_NO_FATAL_FAILURE(SetUpModel(kWideVocab));
  const size_t p = kPrompt.size();
  const Counts c = Count(
      model_, kBatch,
      [&](hearth_session* s) {
        ASSERT_EQ(Take(hearth_session_feed(s, kPrompt.data(), p)).code, HEARTH_OK);
      },
      [&](hearth_session* s) { ASSERT_EQ(Score(s).code, HEARTH_OK); });
  ASSERT_EQ(c.alloc, 1) << "scoring no longer grows the arena of " << kWideVocab;
  // What decoding one token after the prompt gives, never failed.
  std::vector<int32_t> decode = kPrompt;
  decode.push_back(sequence_[p]);
  const std::vector<std::vector<float>> want_decode = CleanLogits(model_, kBatch, decode, p);

  hearth_session* s = nullptr;
  ASSERT_EQ(Take(CreateSession(model_, kBatch, &s)).code, HEARTH_OK);
  const int64_t buffers = LiveBuffers();
  ASSERT_EQ(Take(hearth_session_feed(s, kPrompt.data(), p)).code, HEARTH_OK);
  Plan("alloc=1");
  Err e = Score(s);
  EXPECT_EQ(e.code, HEARTH_RESOURCE_EXHAUSTED) << e.message;
  EXPECT_TRUE(Contains(e.message, "bytes of activations for a step of 4 tokens"));
  EXPECT_TRUE(Contains(e.message, "injected: out of device memory"));
  ExpectHolds(s, p, want_);
  EXPECT_LE(LiveBuffers(), buffers);
  Plan("");
  // Decoding goes on with the arena the session had.
  Err next = Take(hearth_session_feed(s, &sequence_[p], 1));
  EXPECT_EQ(next.code, HEARTH_OK) << next.message;
  ExpectHolds(s, p + 1, want_decode);
  // And scoring works once the memory is there.
  hearth_session_reset(s);
  ASSERT_EQ(Take(hearth_session_feed(s, kPrompt.data(), p)).code, HEARTH_OK);
  ASSERT_EQ(Score(s).code, HEARTH_OK);
  EXPECT_EQ(logprobs_, want_logprobs_);
  ExpectHolds(s, sequence_.size(), want_);
}

}  // namespace
}  // namespace hearth_fault_test
