// runtime_batch_test.cc — BatchRunner (sdk/src/runtime/batch.h): several
// sequences in one step graph give what one session per sequence gives:
// the same logits (1e-4 relative), the same greedy continuations whatever
// else shares the batch, the same results with a LoRA adapter on some rows
// and none on others; and bad steps are refused without changing anything.
// Llama and Qwen2 use the committed tiny fixtures; Gemma 3 (sliding-window
// layers) a small random model written here.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "sdk/src/lora/adapter.h"
#include "sdk/src/runtime/batch.h"
#include "sdk/src/runtime/model.h"
#include "sdk/src/runtime/session.h"
#include "tests/unit/cpu_host.h"
#include "tests/unit/gguf_builder.h"

namespace hearth {
namespace {

const std::string kModels = std::string(HEARTH_TEST_DATA) + "/models/";
const std::string kLora = std::string(HEARTH_TEST_DATA) + "/lora/";
constexpr double kTolerance = 1e-4;
constexpr uint32_t kCtx = 64;

using ::hearth::testing::CpuHost;

// A Gemma 3 of 3 layers (the middle one global, the others a 4-position
// sliding window) with seeded random weights, written once per process.
// The model file TinyGemma3Path() wrote, removed when the tests end.
std::string* g_tiny_gemma3_file = nullptr;

class RemoveTinyGemma3 : public ::testing::Environment {
 public:
  void TearDown() override {
    if (g_tiny_gemma3_file != nullptr) std::remove(g_tiny_gemma3_file->c_str());
  }
};
[[maybe_unused]] ::testing::Environment* const kRemoveTinyGemma3 =
    ::testing::AddGlobalTestEnvironment(new RemoveTinyGemma3);

std::string TinyGemma3Path() {
  static const std::string path = [] {
    const uint64_t E = 32, F = 64, H = 2, D = 16, V = 24, L = 3;
    testing::GgufBuilder b;
    std::vector<std::string> vocab = {"<unk>", "<s>", "</s>", "\xe2\x96\x81"};
    std::vector<float> scores = {0, 0, 0, -1};
    for (uint64_t i = vocab.size(); i < V; ++i) {
      vocab.push_back(std::string(1, static_cast<char>('a' + i - 4)));
      scores.push_back(-static_cast<float>(i));
    }
    b.AddString("general.architecture", "gemma3")
        .AddU32("gemma3.embedding_length", E)
        .AddU32("gemma3.block_count", L)
        .AddU32("gemma3.feed_forward_length", F)
        .AddU32("gemma3.attention.head_count", H)
        .AddU32("gemma3.attention.head_count_kv", 1)
        .AddU32("gemma3.context_length", 128)
        .AddU32("gemma3.attention.sliding_window", 4)
        .AddU32("gemma3.attention.sliding_window_pattern", 2)
        .AddString("tokenizer.ggml.model", "llama")
        .AddStringArray("tokenizer.ggml.tokens", vocab)
        .AddArray<float>("tokenizer.ggml.scores", testing::GgufBuilder::kF32, scores)
        .AddI32("tokenizer.ggml.bos_token_id", 1)
        .AddI32("tokenizer.ggml.eos_token_id", 2);
    std::mt19937 rng(1234);
    auto t = [&](const std::string& name, std::vector<uint64_t> dims, float center, float spread) {
      uint64_t n = 1;
      for (uint64_t d : dims) n *= d;
      std::uniform_real_distribution<float> u(center - spread, center + spread);
      std::vector<uint8_t> bytes(n * 4);
      for (uint64_t i = 0; i < n; ++i) {
        const float v = u(rng);
        std::memcpy(bytes.data() + i * 4, &v, 4);
      }
      b.AddTensor(name, testing::GgufBuilder::kTF32, std::move(dims), std::move(bytes));
    };
    t("token_embd.weight", {E, V}, 0, 0.5f);
    t("output_norm.weight", {E}, 1, 0.2f);
    for (uint64_t l = 0; l < L; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      for (const char* norm : {"attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm"}) {
        t(p + norm + ".weight", {E}, 1, 0.2f);
      }
      t(p + "attn_q_norm.weight", {D}, 1, 0.2f);
      t(p + "attn_k_norm.weight", {D}, 1, 0.2f);
      t(p + "attn_q.weight", {E, H * D}, 0, 0.3f);
      t(p + "attn_k.weight", {E, D}, 0, 0.3f);
      t(p + "attn_v.weight", {E, D}, 0, 0.3f);
      t(p + "attn_output.weight", {H * D, E}, 0, 0.3f);
      t(p + "ffn_gate.weight", {E, F}, 0, 0.3f);
      t(p + "ffn_up.weight", {E, F}, 0, 0.3f);
      t(p + "ffn_down.weight", {F, E}, 0, 0.3f);
    }
    const std::vector<uint8_t> image = b.Build();
    const std::string out =
        ::testing::TempDir() + "/batch_tiny_gemma3_" + std::to_string(::getpid()) + ".gguf";
    std::ofstream f(out, std::ios::binary);
    f.write(reinterpret_cast<const char*>(image.data()),
            static_cast<std::streamsize>(image.size()));
    g_tiny_gemma3_file = new std::string(out);
    return out;
  }();
  return path;
}

std::string ModelPath(const std::string& name) {
  return name == "tiny-gemma3" ? TinyGemma3Path() : kModels + name + ".gguf";
}

std::shared_ptr<const Model> LoadModel(const std::string& name) {
  auto m = Model::Load(CpuHost(), ModelPath(name), {});
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::shared_ptr<const Model>(*m) : nullptr;
}

// max |a - b| / max |b|.
double RelErr(absl::Span<const float> a, absl::Span<const float> b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    num = std::max(num, std::fabs(static_cast<double>(a[i]) - b[i]));
    den = std::max(den, std::fabs(static_cast<double>(b[i])));
  }
  return num / std::max(den, 1e-30);
}

int32_t ArgMax(absl::Span<const float> v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// `n` token ids in [3, n_vocab), different per seed.
std::vector<int32_t> Prompt(int64_t n_vocab, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> u(3, static_cast<int32_t>(n_vocab) - 1);
  std::vector<int32_t> p(n);
  for (int32_t& t : p) t = u(rng);
  return p;
}

std::unique_ptr<BatchRunner> MakeRunner(std::shared_ptr<const Model> model, uint32_t n_seq,
                                        std::vector<std::shared_ptr<const Adapter>> adapters = {},
                                        uint32_t block_size = 0, uint32_t n_pages = 0) {
  BatchRunnerOptions o;
  o.n_seq = n_seq;
  o.n_ctx = kCtx;
  o.max_tokens = 64;
  o.block_size = block_size;
  o.n_pages = n_pages;
  o.adapters = std::move(adapters);
  auto r = BatchRunner::Create(std::move(model), o);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(r).value() : nullptr;
}

std::unique_ptr<Session> MakeSession(std::shared_ptr<const Model> model,
                                     Session::AdapterSet adapters = {}) {
  SessionOptions o;
  o.n_ctx = kCtx;
  auto s = Session::Create(std::move(model), o);
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return nullptr;
  if (!adapters.empty()) {
    absl::Status set = (*s)->SetAdapters(std::move(adapters));
    EXPECT_TRUE(set.ok()) << set;
  }
  return std::move(s).value();
}

// One sequence of a test: its slot, prompt, adapters, and the session that
// computes the same thing alone.
struct Seq {
  int32_t slot;
  std::vector<int32_t> tokens;  // what the next step feeds
  std::vector<BatchAdapter> adapters;
  std::unique_ptr<Session> session;
  int64_t n_past = 0;
};

// One prefill step with all of `seqs`, then `decode_steps` steps where each
// feeds its session's greedy token; every logits row is compared.
void ExpectBatchMatchesSessions(BatchRunner& runner, std::vector<Seq>& seqs, int decode_steps,
                                const std::string& what) {
  for (int step = 0; step <= decode_steps; ++step) {
    std::vector<BatchEntry> entries;
    for (Seq& s : seqs) {
      BatchEntry e;
      e.slot = s.slot;
      e.tokens = s.tokens;
      e.start = s.n_past;
      e.want_logits = true;
      e.adapters = s.adapters;
      entries.push_back(e);
    }
    absl::Status st = runner.Step(entries);
    ASSERT_TRUE(st.ok()) << what << " step " << step << ": " << st;
    for (size_t i = 0; i < seqs.size(); ++i) {
      Seq& s = seqs[i];
      ASSERT_TRUE(s.session->Feed(s.tokens).ok());
      s.n_past += static_cast<int64_t>(s.tokens.size());
      ASSERT_EQ(runner.n_past(s.slot), s.n_past);
      ASSERT_EQ(runner.logits(i).size(), s.session->logits().size());
      EXPECT_LE(RelErr(runner.logits(i), s.session->logits()), kTolerance)
          << what << " step " << step << ", slot " << s.slot;
      s.tokens = {ArgMax(s.session->logits())};
    }
  }
}

class BatchModels : public ::testing::TestWithParam<std::string> {};

// (a) Three sequences of different lengths in slots out of order (one slot
// left empty), one prefill step then decode steps advancing all of them.
TEST_P(BatchModels, LogitsEqualOneSessionPerSequence) {
  auto model = LoadModel(GetParam());
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().n_vocab;
  auto runner = MakeRunner(model, 4);
  ASSERT_NE(runner, nullptr);
  std::vector<Seq> seqs;
  const std::vector<std::pair<int32_t, size_t>> shape = {{2, 3}, {0, 11}, {3, 6}};
  for (size_t i = 0; i < shape.size(); ++i) {
    seqs.push_back({shape[i].first,
                    Prompt(V, shape[i].second, 7 + static_cast<uint32_t>(i)),
                    {},
                    MakeSession(model)});
  }
  ExpectBatchMatchesSessions(*runner, seqs, 6, GetParam());
}

// (a') The same with a paged cache: pages of 4 positions from a pool
// smaller than 4 full slots, handed out as the sequences grow (11 prompt
// tokens + 6 decode steps span 5 pages), so sequences' rows interleave in
// the pool; then slots are reset and reused, their pages coming back.
TEST_P(BatchModels, PagedCacheLogitsEqualOneSessionPerSequence) {
  auto model = LoadModel(GetParam());
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().n_vocab;
  auto runner = MakeRunner(model, 4, {}, 4, 20);
  ASSERT_NE(runner, nullptr);
  EXPECT_EQ(runner->n_pages(), 20);
  EXPECT_EQ(runner->free_pages(), 20);
  std::vector<Seq> seqs;
  const std::vector<std::pair<int32_t, size_t>> shape = {{2, 3}, {0, 11}, {3, 6}};
  for (size_t i = 0; i < shape.size(); ++i) {
    seqs.push_back({shape[i].first,
                    Prompt(V, shape[i].second, 7 + static_cast<uint32_t>(i)),
                    {},
                    MakeSession(model)});
  }
  ExpectBatchMatchesSessions(*runner, seqs, 6, GetParam() + " paged");
  // 9, 17 and 12 positions: 3 + 5 + 3 pages.
  EXPECT_EQ(runner->slot_pages(2), 3);
  EXPECT_EQ(runner->slot_pages(0), 5);
  EXPECT_EQ(runner->free_pages(), 20 - 11);
  for (Seq& s : seqs) {
    runner->ResetSlot(s.slot);
    s.session = MakeSession(model);
    s.tokens = Prompt(V, 5 + static_cast<size_t>(s.slot), 90 + static_cast<uint32_t>(s.slot));
    s.n_past = 0;
  }
  EXPECT_EQ(runner->free_pages(), 20);
  ExpectBatchMatchesSessions(*runner, seqs, 3, GetParam() + " paged, reused");
}

// A step that needs more pages than are free is refused and changes
// nothing; a rewind gives back the pages past its start.
TEST(BatchPaged, TooFewPagesIsRefusedAndRewindGivesPagesBack) {
  auto model = LoadModel("tiny-llama-f32");
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().n_vocab;
  auto runner = MakeRunner(model, 2, {}, 4, 5);
  ASSERT_NE(runner, nullptr);
  const std::vector<int32_t> a = Prompt(V, 14, 1), b = Prompt(V, 9, 2), c = Prompt(V, 3, 3);
  BatchEntry ea;
  ea.slot = 0;
  ea.tokens = a;
  ea.want_logits = true;
  ASSERT_TRUE(runner->Step({ea}).ok());
  EXPECT_EQ(runner->free_pages(), 1);
  BatchEntry eb = ea;
  eb.slot = 1;
  eb.tokens = b;
  absl::Status st = runner->Step({eb});
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
  EXPECT_NE(std::string(st.message()).find("needs 3"), std::string::npos) << st;
  EXPECT_EQ(runner->n_past(1), 0);
  EXPECT_EQ(runner->free_pages(), 1);
  // Slot 0 rewound to 5 positions keeps 2 pages: room for b.
  BatchEntry rewind = ea;
  rewind.tokens = c;
  rewind.start = 5;
  ASSERT_TRUE(runner->Step({rewind, eb}).ok());
  EXPECT_EQ(runner->slot_pages(0), 2);
  EXPECT_EQ(runner->slot_pages(1), 3);
  EXPECT_EQ(runner->free_pages(), 0);
  // The rewound sequence equals a session fed a[0..5) then c.
  auto s = MakeSession(model);
  ASSERT_TRUE(s->Feed(absl::MakeConstSpan(a.data(), 5)).ok());
  ASSERT_TRUE(s->Feed(c).ok());
  EXPECT_LE(RelErr(runner->logits(0), s->logits()), kTolerance);
  // A page size above n_ctx is refused.
  BatchRunnerOptions o;
  o.n_seq = 1;
  o.n_ctx = 8;
  o.block_size = 16;
  EXPECT_EQ(BatchRunner::Create(model, o).status().code(), absl::StatusCode::kInvalidArgument);
}

// Greedy tokens of `prompt` in `slot` of a fresh runner, alone.
std::vector<int32_t> GreedyAlone(std::shared_ptr<const Model> model, int32_t slot,
                                 const std::vector<int32_t>& prompt, int n) {
  auto runner = MakeRunner(model, 4);
  std::vector<int32_t> out, next = prompt;
  int64_t past = 0;
  for (int i = 0; i < n; ++i) {
    BatchEntry e;
    e.slot = slot;
    e.tokens = next;
    e.start = past;
    e.want_logits = true;
    EXPECT_TRUE(runner->Step({e}).ok());
    past += static_cast<int64_t>(next.size());
    next = {ArgMax(runner->logits(0))};
    out.push_back(next[0]);
  }
  return out;
}

// (b) Continuous batching: sequences join at different steps (one prompt in
// two chunks while others decode), and each one's greedy continuation is
// what it gets alone, and what a session gets.
TEST_P(BatchModels, GreedyOutputDoesNotDependOnTheBatch) {
  auto model = LoadModel(GetParam());
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().n_vocab;
  constexpr int kNew = 10;
  struct Plan {
    int32_t slot;
    std::vector<int32_t> prompt;
    int join;      // step at which its prompt is fed
    size_t chunk;  // prompt tokens per step
  };
  std::vector<Plan> plans = {
      {1, Prompt(V, 5, 21), 0, 5}, {0, Prompt(V, 13, 22), 1, 7}, {3, Prompt(V, 2, 23), 3, 2}};
  auto runner = MakeRunner(model, 4);
  ASSERT_NE(runner, nullptr);
  std::vector<std::vector<int32_t>> got(plans.size());
  std::vector<size_t> fed(plans.size(), 0);
  std::vector<int32_t> next(plans.size(), -1);
  std::vector<std::vector<int32_t>> feed(plans.size());
  for (int step = 0; step < 40; ++step) {
    std::vector<BatchEntry> entries;
    std::vector<size_t> who;
    for (size_t i = 0; i < plans.size(); ++i) {
      const Plan& p = plans[i];
      if (step < p.join || got[i].size() >= kNew) continue;
      BatchEntry e;
      e.slot = p.slot;
      e.start = runner->n_past(p.slot);
      if (fed[i] < p.prompt.size()) {
        const size_t n = std::min(p.chunk, p.prompt.size() - fed[i]);
        feed[i].assign(p.prompt.begin() + fed[i], p.prompt.begin() + fed[i] + n);
        fed[i] += n;
        e.want_logits = fed[i] == p.prompt.size();
      } else {
        feed[i] = {next[i]};
        e.want_logits = true;
      }
      e.tokens = feed[i];
      entries.push_back(e);
      who.push_back(i);
    }
    if (entries.empty()) break;
    absl::Status st = runner->Step(entries);
    ASSERT_TRUE(st.ok()) << st;
    for (size_t k = 0; k < who.size(); ++k) {
      if (!entries[k].want_logits) {
        EXPECT_TRUE(runner->logits(k).empty());
        continue;
      }
      next[who[k]] = ArgMax(runner->logits(k));
      got[who[k]].push_back(next[who[k]]);
    }
  }
  for (size_t i = 0; i < plans.size(); ++i) {
    ASSERT_EQ(got[i].size(), static_cast<size_t>(kNew));
    EXPECT_EQ(got[i], GreedyAlone(model, plans[i].slot, plans[i].prompt, kNew))
        << GetParam() << " sequence " << i << " batched vs alone";
    auto s = MakeSession(model);
    ASSERT_TRUE(s->Feed(plans[i].prompt).ok());
    std::vector<int32_t> want;
    for (int n = 0; n < kNew; ++n) {
      want.push_back(ArgMax(s->logits()));
      ASSERT_TRUE(s->Feed({want.back()}).ok());
    }
    EXPECT_EQ(got[i], want) << GetParam() << " sequence " << i << " batched vs a session";
  }
}

// A rewind: a slot restarted at an earlier position computes what a
// session truncated there computes; a reset slot starts over.
TEST_P(BatchModels, RewindAndResetSlots) {
  auto model = LoadModel(GetParam());
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().n_vocab;
  auto runner = MakeRunner(model, 2);
  const std::vector<int32_t> a = Prompt(V, 9, 31), b = Prompt(V, 4, 32);
  BatchEntry e;
  e.slot = 1;
  e.tokens = a;
  ASSERT_TRUE(runner->Step({e}).ok());
  e.tokens = b;
  e.start = 5;
  e.want_logits = true;
  ASSERT_TRUE(runner->Step({e}).ok());
  EXPECT_EQ(runner->n_past(1), 9);
  auto s = MakeSession(model);
  std::vector<int32_t> ab(a.begin(), a.begin() + 5);
  ab.insert(ab.end(), b.begin(), b.end());
  ASSERT_TRUE(s->Feed(ab).ok());
  EXPECT_LE(RelErr(runner->logits(0), s->logits()), kTolerance);

  runner->ResetSlot(1);
  EXPECT_EQ(runner->n_past(1), 0);
  e.tokens = b;
  e.start = 0;
  ASSERT_TRUE(runner->Step({e}).ok());
  auto fresh = MakeSession(model);
  ASSERT_TRUE(fresh->Feed(b).ok());
  EXPECT_LE(RelErr(runner->logits(0), fresh->logits()), kTolerance);
}

// Prefix sharing: slot 1 takes slot 0's first 3 pages (12 positions)
// instead of computing them, and both go on in one step; each equals a
// session fed its own tokens. A shared page is never written: slot 0's
// rewind into one is refused, a rewind to its boundary moves slot 0 to new
// pages while slot 1 keeps reading the old ones, and the pages reach the
// pool only when no slot holds them.
TEST_P(BatchModels, SharedPrefixPagesAreReadByBothAndWrittenByNone) {
  auto model = LoadModel(GetParam());
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().n_vocab;
  auto runner = MakeRunner(model, 3, {}, 4, 30);
  ASSERT_NE(runner, nullptr);
  const std::vector<int32_t> a = Prompt(V, 14, 41), b = Prompt(V, 5, 42), c = Prompt(V, 3, 43);
  BatchEntry e0;
  e0.slot = 0;
  e0.tokens = a;
  e0.want_logits = true;
  ASSERT_TRUE(runner->Step({e0}).ok());
  EXPECT_EQ(runner->free_pages(), 26);
  // 14 positions are 3 full pages and a part: 4 pages are not there to share.
  EXPECT_EQ(runner->SharePrefix(1, 0, 4).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(runner->SharePrefix(0, 0, 1).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(runner->SharePrefix(1, 0, 3).ok());
  EXPECT_EQ(runner->n_past(1), 12);
  EXPECT_EQ(runner->slot_pages(1), 3);
  EXPECT_EQ(runner->free_pages(), 26);  // nothing new taken
  EXPECT_EQ(runner->ReleasablePages(0), 1);
  EXPECT_EQ(runner->ReleasablePages(1), 0);

  auto s0 = MakeSession(model);
  auto s1 = MakeSession(model);
  ASSERT_TRUE(s0->Feed(a).ok());
  ASSERT_TRUE(s1->Feed(absl::MakeConstSpan(a.data(), 12)).ok());
  ASSERT_TRUE(s1->Feed(b).ok());
  const std::vector<int32_t> next0 = {ArgMax(s0->logits())};
  BatchEntry d0 = e0;
  d0.tokens = next0;
  d0.start = 14;
  BatchEntry e1;
  e1.slot = 1;
  e1.tokens = b;
  e1.start = 12;
  e1.want_logits = true;
  ASSERT_TRUE(runner->Step({d0, e1}).ok());
  // 15 and 17 positions, 12 of them on the pages both read.
  EXPECT_EQ(runner->HeldPositions({0, 1}), 15 + 17 - 12);
  EXPECT_EQ(runner->HeldPositions({1}), 17);
  ASSERT_TRUE(s0->Feed(next0).ok());
  EXPECT_LE(RelErr(runner->logits(0), s0->logits()), kTolerance);
  EXPECT_LE(RelErr(runner->logits(1), s1->logits()), kTolerance);

  // Slot 0 rewound into page 1, which slot 1 shares: refused, nothing moves.
  BatchEntry rewind = e0;
  rewind.tokens = c;
  rewind.start = 6;
  const int64_t free_before = runner->free_pages();
  absl::Status st = runner->Step({rewind});
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_NE(st.message().find("shares"), std::string_view::npos) << st;
  EXPECT_EQ(runner->n_past(0), 15);
  EXPECT_EQ(runner->free_pages(), free_before);
  EXPECT_TRUE(runner->WritesSharedPage(0, 6));
  EXPECT_FALSE(runner->WritesSharedPage(0, 8));
  EXPECT_FALSE(runner->WritesSharedPage(0, 13));  // page 3 is slot 0's alone
  // Rewound to the page boundary 8: slot 0 writes positions 8.. on a new
  // page; slot 1 still reads a's rows there.
  rewind.start = 8;
  ASSERT_TRUE(runner->Step({rewind}).ok());
  auto r0 = MakeSession(model);
  ASSERT_TRUE(r0->Feed(absl::MakeConstSpan(a.data(), 8)).ok());
  ASSERT_TRUE(r0->Feed(c).ok());
  EXPECT_LE(RelErr(runner->logits(0), r0->logits()), kTolerance);
  const std::vector<int32_t> next1 = {ArgMax(s1->logits())};
  e1.tokens = next1;
  e1.start = 17;
  ASSERT_TRUE(runner->Step({e1}).ok());
  ASSERT_TRUE(s1->Feed(next1).ok());
  EXPECT_LE(RelErr(runner->logits(0), s1->logits()), kTolerance);

  // Slot 0 now holds pages 0 and 1 shared, and one page of its own; slot 1
  // the shared 0, 1, 2 and two of its own.
  EXPECT_EQ(runner->slot_pages(0), 3);
  EXPECT_EQ(runner->ReleasablePages(0), 1);
  EXPECT_EQ(runner->ReleasablePages(1), 3);
  EXPECT_EQ(runner->free_pages(), 30 - 6);
  runner->ResetSlot(1);
  EXPECT_EQ(runner->free_pages(), 30 - 3);
  EXPECT_EQ(runner->ReleasablePages(0), 3);
  runner->ResetSlot(0);
  EXPECT_EQ(runner->free_pages(), 30);
  // Sharing needs a paged cache.
  auto fixed = MakeRunner(model, 2);
  ASSERT_TRUE(fixed->Step({e0}).ok());
  EXPECT_EQ(fixed->SharePrefix(1, 0, 1).code(), absl::StatusCode::kFailedPrecondition);
}

// A page two slots share and both drop in one step (both rewind past it)
// counts as freed for that step: here the step fits only with it.
TEST(BatchPaged, ASharedPageBothSlotsDropIsFreeForTheStep) {
  auto model = LoadModel("tiny-llama-f32");
  ASSERT_NE(model, nullptr);
  const int64_t V = model->config().n_vocab;
  auto runner = MakeRunner(model, 2, {}, 4, 5);
  ASSERT_NE(runner, nullptr);
  const std::vector<int32_t> a = Prompt(V, 8, 51), b = Prompt(V, 4, 52), c0 = Prompt(V, 8, 53),
                             c1 = Prompt(V, 8, 54);
  BatchEntry e0;
  e0.slot = 0;
  e0.tokens = a;
  ASSERT_TRUE(runner->Step({e0}).ok());
  ASSERT_TRUE(runner->SharePrefix(1, 0, 2).ok());
  BatchEntry e1 = e0;
  e1.slot = 1;
  e1.tokens = b;
  e1.start = 8;
  e0.tokens = b;
  e0.start = 8;
  ASSERT_TRUE(runner->Step({e0, e1}).ok());
  EXPECT_EQ(runner->free_pages(), 1);
  // Both back to position 4 with 8 new tokens each: 2 pages each. Free for
  // the step: the pool's 1, each slot's own third page, and page 1 of both.
  e0.tokens = c0;
  e0.start = 4;
  e0.want_logits = true;
  e1.tokens = c1;
  e1.start = 4;
  e1.want_logits = true;
  int64_t need = 0, available = 0;
  runner->StepPages({e0, e1}, &need, &available);
  EXPECT_EQ(need, 4);
  EXPECT_EQ(available, 4);
  ASSERT_TRUE(runner->Step({e0, e1}).ok());
  EXPECT_EQ(runner->free_pages(), 0);
  for (int i = 0; i < 2; ++i) {
    auto s = MakeSession(model);
    ASSERT_TRUE(s->Feed(absl::MakeConstSpan(a.data(), 4)).ok());
    ASSERT_TRUE(s->Feed(i == 0 ? c0 : c1).ok());
    EXPECT_LE(RelErr(runner->logits(static_cast<size_t>(i)), s->logits()), kTolerance) << i;
  }
  runner->ResetSlot(0);
  runner->ResetSlot(1);
  EXPECT_EQ(runner->free_pages(), 5);
}

INSTANTIATE_TEST_SUITE_P(Models, BatchModels,
                         ::testing::Values("tiny-llama-f32", "tiny-qwen2-f32", "tiny-gemma3"),
                         [](const auto& info) {
                           std::string n = info.param;
                           std::replace(n.begin(), n.end(), '-', '_');
                           return n;
                         });

std::shared_ptr<const Adapter> LoadAdapter(std::shared_ptr<const Model> model,
                                           const std::string& name) {
  auto a = Adapter::Load(std::move(model), kLora + name);
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? std::shared_ptr<const Adapter>(*a) : nullptr;
}

// (c) Rows with and without adapters, at different scales and with two
// adapters at once, in one graph: each equals a session with that set.
TEST(BatchAdapters, MixedAdaptersEqualSessionsWithThoseAdapters) {
  struct Case {
    std::string model;
    std::vector<std::string> adapters;
    // per sequence: (adapter index, scale) list
    std::vector<std::vector<BatchAdapter>> rows;
  };
  const std::vector<Case> cases = {
      {"tiny-llama-f32",
       {"llama-all", "llama-qv-rs"},
       {{}, {{0, 1.0f}}, {{0, 0.5f}}, {{0, 1.0f}, {1, 0.7f}}, {{1, 1.0f}}}},
      {"tiny-qwen2-f32", {"qwen2-all"}, {{{0, 1.0f}}, {}, {{0, 0.5f}}}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.model);
    auto model = LoadModel(c.model);
    ASSERT_NE(model, nullptr);
    const int64_t V = model->config().n_vocab;
    std::vector<std::shared_ptr<const Adapter>> adapters;
    for (const std::string& a : c.adapters) {
      adapters.push_back(LoadAdapter(model, a));
      ASSERT_NE(adapters.back(), nullptr);
    }
    auto runner = MakeRunner(model, static_cast<uint32_t>(c.rows.size()), adapters);
    ASSERT_NE(runner, nullptr);
    std::vector<Seq> seqs;
    for (size_t i = 0; i < c.rows.size(); ++i) {
      Session::AdapterSet set;
      for (const BatchAdapter& a : c.rows[i]) set.emplace_back(adapters[a.index], a.scale);
      seqs.push_back({static_cast<int32_t>(i), Prompt(V, 3 + 2 * i, 40 + static_cast<uint32_t>(i)),
                      c.rows[i], MakeSession(model, set)});
    }
    ExpectBatchMatchesSessions(*runner, seqs, 3, c.model);
    // The same rows, now all without adapters: the base model's logits
    // (a graph that carries no adapter at all).
    for (Seq& s : seqs) {
      s.adapters.clear();
      s.session = MakeSession(model);
      s.tokens = Prompt(V, 4, 50 + static_cast<uint32_t>(s.slot));
      s.n_past = 0;
    }
    ExpectBatchMatchesSessions(*runner, seqs, 1, c.model + " without adapters");
  }
}

// The single-sequence graph sessions run is the one they always ran: no seq
// input on ATTENTION, a 3-D cache, logits of the last token taken as a view
// (no gather); a batch graph adds seq, the 4-D cache and logit_rows.
TEST(BatchGraph, SingleSequenceGraphHasNoBatchInputs) {
  auto model = LoadModel("tiny-llama-f32");
  ASSERT_NE(model, nullptr);
  const ModelConfig& c = model->config();
  auto cache = [&](int64_t n_seq) {
    KvCacheRefs kv;
    kv.n_ctx = 8;
    kv.n_seq = n_seq;
    for (int64_t l = 0; l < c.n_layer; ++l) {
      const Shape k = n_seq == 1 ? Shape::Of({c.head_dim, c.n_head_kv, 8})
                                 : Shape::Of({c.head_dim, c.n_head_kv, 8, n_seq});
      kv.k.push_back(ContiguousDesc(HEARTH_DTYPE_F32, k));
      kv.v.push_back(ContiguousDesc(HEARTH_DTYPE_F32, k));
    }
    return kv;
  };
  auto count = [](const Graph& g, hearth_op op, uint32_t n_inputs) {
    const hearth_graph v = g.view();
    int n = 0;
    for (uint32_t i = 0; i < v.n_nodes; ++i) {
      n += v.nodes[i].op == op && v.nodes[i].n_inputs == n_inputs;
    }
    return n;
  };
  const Architecture& arch = model->architecture();
  Graph one;
  auto io = arch.Build(c, model->weights(), cache(1), 5, false, nullptr, &one);
  ASSERT_TRUE(io.ok()) << io.status();
  EXPECT_EQ(io->seq, -1);
  EXPECT_EQ(io->logit_rows, -1);
  EXPECT_EQ(count(one, HEARTH_OP_ATTENTION, 6), c.n_layer);
  EXPECT_EQ(count(one, HEARTH_OP_GET_ROWS, 2), 1);  // the embedding only
  EXPECT_EQ(one.tensor(io->logits).ne[1], 1);

  StepBatch batch;
  batch.n_tokens = 5;
  batch.multi_seq = true;
  batch.logits = StepBatch::Logits::kRows;
  batch.n_out = 3;
  Graph many;
  io = arch.BuildStep(c, model->weights(), cache(3), batch, nullptr, &many);
  ASSERT_TRUE(io.ok()) << io.status();
  EXPECT_GE(io->seq, 0);
  EXPECT_GE(io->logit_rows, 0);
  EXPECT_EQ(count(many, HEARTH_OP_ATTENTION, 7), c.n_layer);
  EXPECT_EQ(count(many, HEARTH_OP_GET_ROWS, 2), 2);
  EXPECT_EQ(many.tensor(io->logits).ne[1], 3);

  // Shapes that make no sense are errors, not graphs.
  Graph bad;
  batch.n_out = 0;
  EXPECT_FALSE(arch.BuildStep(c, model->weights(), cache(3), batch, nullptr, &bad).ok());
  batch.n_out = 1;
  batch.multi_seq = false;
  EXPECT_FALSE(arch.BuildStep(c, model->weights(), cache(3), batch, nullptr, &bad).ok());
  batch.n_tokens = 0;
  batch.multi_seq = true;
  EXPECT_FALSE(arch.BuildStep(c, model->weights(), cache(3), batch, nullptr, &bad).ok());
}

// (d) Bad steps: a clear error naming the problem, nothing changed, and the
// runner still works afterwards.
TEST(BatchInput, BadStepsAreRefusedAndChangeNothing) {
  auto model = LoadModel("tiny-llama-f32");
  ASSERT_NE(model, nullptr);
  auto adapter = LoadAdapter(model, "llama-all");
  auto runner = MakeRunner(model, 2, {adapter});
  ASSERT_NE(runner, nullptr);
  const std::vector<int32_t> p = Prompt(model->config().n_vocab, 5, 60);
  BatchEntry ok;
  ok.slot = 0;
  ok.tokens = p;
  ok.want_logits = true;
  ASSERT_TRUE(runner->Step({ok}).ok());
  const std::vector<float> before(runner->logits(0).begin(), runner->logits(0).end());

  const std::vector<int32_t> long_prompt(kCtx - 2, 5), bad_id = {3, 1 << 20}, many0(40, 4),
                                                       many1(30, 4);
  const std::vector<BatchAdapter> no_such = {{7, 1.0f}}, nan_scale = {{0, NAN}};
  struct Bad {
    std::string what;
    std::vector<BatchEntry> entries;
    std::string message;
  };
  auto entry = [](int32_t slot, const std::vector<int32_t>& t, int64_t start,
                  absl::Span<const BatchAdapter> a = {}) {
    BatchEntry e;
    e.slot = slot;
    e.tokens = t;
    e.start = start;
    e.want_logits = true;
    e.adapters = a;
    return e;
  };
  const std::vector<Bad> bad = {
      {"no entries", {}, "no entries"},
      {"slot -1", {entry(-1, p, 0)}, "slot -1 is outside [0, 2)"},
      {"slot n_seq", {entry(2, p, 0)}, "slot 2 is outside [0, 2)"},
      {"slot twice", {entry(1, p, 0), entry(1, p, 0)}, "slot 1 appears twice"},
      {"past n_ctx",
       {entry(0, long_prompt, 5)},
       "context overflow: positions 5..66 are past n_ctx 64"},
      {"start past the slot's tokens", {entry(1, p, 3)}, "start position 3 is outside [0, 0]"},
      {"negative start", {entry(0, p, -1)}, "start position -1 is outside [0, 5]"},
      {"no tokens", {entry(1, {}, 0)}, "no tokens"},
      {"token id", {entry(1, bad_id, 0)}, "token id 1048576 at 1 is out of range"},
      {"too many tokens", {entry(0, many0, 5), entry(1, many1, 0)}, "more than max_tokens 64"},
      {"unknown adapter", {entry(1, p, 0, no_such)}, "adapter 7 is not one of the runner's 1"},
      {"NaN scale", {entry(1, p, 0, nan_scale)}, "scale nan is not finite"},
  };
  for (const Bad& b : bad) {
    absl::Status st = runner->Step(b.entries);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << b.what << ": " << st;
    EXPECT_NE(std::string(st.message()).find(b.message), std::string::npos) << b.what << ": " << st;
    EXPECT_EQ(runner->n_past(0), 5) << b.what;
    EXPECT_EQ(runner->n_past(1), 0) << b.what;
    EXPECT_TRUE(runner->logits(0).empty()) << b.what;
  }
  // Still works: the same prompt in the other slot gives the same logits.
  BatchEntry again = ok;
  again.slot = 1;
  ASSERT_TRUE(runner->Step({again}).ok());
  EXPECT_EQ(std::vector<float>(runner->logits(0).begin(), runner->logits(0).end()), before);

  // Options that cannot work are refused at Create.
  BatchRunnerOptions o;
  o.n_seq = 0;
  EXPECT_EQ(BatchRunner::Create(model, o).status().code(), absl::StatusCode::kInvalidArgument);
  o.n_seq = 2;
  o.n_ctx = static_cast<uint32_t>(model->config().n_ctx_train + 1);
  EXPECT_EQ(BatchRunner::Create(model, o).status().code(), absl::StatusCode::kInvalidArgument);
  o.n_ctx = kCtx;
  o.adapters = {nullptr};
  EXPECT_EQ(BatchRunner::Create(model, o).status().code(), absl::StatusCode::kInvalidArgument);
  auto other = LoadModel("tiny-qwen2-f32");
  o.adapters = {LoadAdapter(other, "qwen2-all")};
  absl::Status foreign = BatchRunner::Create(model, o).status();
  EXPECT_NE(std::string(foreign.message()).find("loaded for another model"), std::string::npos)
      << foreign;
}

}  // namespace
}  // namespace hearth
