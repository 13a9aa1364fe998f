// The LoRA trainer on the tiny F32 llama and qwen2 fixtures: autograd's
// gradients of every A and B against central finite differences of the
// loss, AdamW lowering the loss, the saved PEFT adapter giving the same
// loss through the inference path, and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "sdk/src/lora/adapter.h"
#include "sdk/src/runtime/model.h"
#include "sdk/src/runtime/session.h"
#include "sdk/src/train/trainer.h"

namespace hearth::train {
namespace {

const std::string kModels = std::string(HEARTH_TEST_DATA) + "/models/";

std::shared_ptr<const Model> LoadModel(const std::string& name) {
  PluginHostOptions o;
  o.explicit_paths = {std::string(HEARTH_PLUGIN_DIR) + "/libhearth-backend-cpu.so"};
  o.explicit_only = true;
  auto host = PluginHost::Create(o);
  EXPECT_TRUE(host.ok()) << host.status();
  ModelLoadOptions mo;
  mo.n_threads = 2;
  auto model = Model::Load(std::shared_ptr<PluginHost>(std::move(host).value()),
                           kModels + name + ".gguf", mo);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::shared_ptr<const Model>(*model) : nullptr;
}

// Random token sequences; the first `prompt` tokens untrained (as a
// prompt/completion record would be).
std::vector<Example> Examples(int64_t n_vocab, std::vector<int> lengths, int prompt,
                              uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<Example> out;
  for (int len : lengths) {
    Example e;
    for (int i = 0; i < len; ++i) {
      e.tokens.push_back(static_cast<int32_t>(rng() % static_cast<uint32_t>(n_vocab)));
      e.trained.push_back(i >= prompt ? 1 : 0);
    }
    e.trained[0] = 0;
    e.line = static_cast<int64_t>(out.size()) + 1;
    out.push_back(e);
  }
  return out;
}

class TrainerTest : public ::testing::TestWithParam<std::string> {};

// d(mean loss)/d(every A and B) from the backward graph, against central
// differences (step 1e-2, float64 arithmetic on the F32 forward's summed
// loss) at the largest-gradient entry of each tensor. B starts non-zero so
// that dA is not zero. Tolerance: 2e-2 relative to the entry, plus 2e-4
// absolute (the F32 forward's loss carries ~1e-6 of rounding, which the
// difference quotient amplifies by 1/(2 step) = 50).
TEST_P(TrainerTest, GradientsMatchFiniteDifferences) {
  auto model = LoadModel(GetParam());
  ASSERT_NE(model, nullptr);
  const std::vector<Example> ex = Examples(model->config().n_vocab, {9, 21}, 3, 7);
  TrainerOptions o;
  o.rank = 4;
  o.alpha = 8;
  o.targets = "all";
  auto tr = Trainer::Create(model, ex, o);
  ASSERT_TRUE(tr.ok()) << tr.status();
  Trainer& t = **tr;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-0.2f, 0.2f);
  for (size_t i = 0; i < t.targets().size(); ++i) {
    std::vector<float> a, b;
    ASSERT_TRUE(t.GetValues(i, &a, &b).ok());
    for (float& v : b) v = u(rng);
    ASSERT_TRUE(t.SetValues(i, a, b).ok());
  }
  auto grads = t.Gradients(ex);
  ASSERT_TRUE(grads.ok()) << grads.status();
  ASSERT_EQ(grads->size(), t.targets().size());
  const double step = 1e-2;
  double worst = 0;
  for (size_t i = 0; i < t.targets().size(); ++i) {
    for (int which = 0; which < 2; ++which) {
      const std::vector<float>& g = which == 0 ? (*grads)[i].first : (*grads)[i].second;
      size_t at = 0;
      for (size_t k = 0; k < g.size(); ++k) {
        if (std::fabs(g[k]) > std::fabs(g[at])) at = k;
      }
      std::vector<float> a, b;
      ASSERT_TRUE(t.GetValues(i, &a, &b).ok());
      std::vector<float>& p = which == 0 ? a : b;
      const float saved = p[at];
      double loss[2];
      for (int s = 0; s < 2; ++s) {
        p[at] = static_cast<float>(saved + (s == 0 ? step : -step));
        ASSERT_TRUE(t.SetValues(i, a, b).ok());
        auto l = t.Loss(ex);
        ASSERT_TRUE(l.ok()) << l.status();
        loss[s] = *l;
      }
      p[at] = saved;
      ASSERT_TRUE(t.SetValues(i, a, b).ok());
      const double fd = (loss[0] - loss[1]) / (2 * step);
      const double err = std::fabs(fd - g[at]);
      worst = std::max(worst, err / (std::fabs(g[at]) + 1e-2));
      EXPECT_LE(err, 2e-2 * std::fabs(g[at]) + 2e-4)
          << t.targets()[i].weight << (which == 0 ? " A" : " B^T") << "[" << at << "]: backward "
          << g[at] << ", finite difference " << fd;
    }
  }
  std::printf("%s: worst |fd - grad| / (|grad| + 1e-2) = %.3g over %zu tensors\n",
              GetParam().c_str(), worst, 2 * t.targets().size());
}

TEST_P(TrainerTest, TenAdamWStepsLowerTheLoss) {
  auto model = LoadModel(GetParam());
  ASSERT_NE(model, nullptr);
  const std::vector<Example> ex = Examples(model->config().n_vocab, {12, 16, 10, 14}, 2, 3);
  TrainerOptions o;
  o.rank = 8;
  o.alpha = 16;
  o.lr = 1e-2f;
  o.batch = 1;
  o.grad_accum = 2;
  o.epochs = 5;
  o.schedule = Schedule::kConstant;
  auto tr = Trainer::Create(model, ex, o);
  ASSERT_TRUE(tr.ok()) << tr.status();
  Trainer& t = **tr;
  EXPECT_EQ(t.total_steps(), 10);
  auto before = t.Loss(ex);
  ASSERT_TRUE(before.ok()) << before.status();
  while (!t.done()) {
    auto m = t.Step();
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_TRUE(std::isfinite(m->loss) && std::isfinite(m->grad_norm));
  }
  EXPECT_EQ(t.Step().status().code(), absl::StatusCode::kOutOfRange);
  auto after = t.Loss(ex);
  ASSERT_TRUE(after.ok());
  std::printf("%s: training loss %.4f -> %.4f after 10 AdamW steps\n", GetParam().c_str(), *before,
              *after);
  EXPECT_LT(*after, *before - 0.1);
}

// The saved PEFT directory, loaded by the ordinary adapter loader and run
// through a Session, scores the data exactly as the trainer's own graphs do
// (this checks lora_B's transpose and the q/k row permutation of the writer).
// On a block-quantized base the two differ by what inference's Q8-rounded
// activations cost (the trainer computes with float activations): there the
// loaded and the in-memory adapter must score bit-identically, and both
// within 2% of the trainer's loss.
TEST_P(TrainerTest, SavedAdapterGivesTheSameLoss) {
  auto model = LoadModel(GetParam());
  ASSERT_NE(model, nullptr);
  const std::vector<Example> ex = Examples(model->config().n_vocab, {12, 16, 10}, 2, 5);
  TrainerOptions o;
  o.rank = 4;
  o.alpha = 8;
  o.lr = 1e-2f;
  o.epochs = 2;
  auto tr = Trainer::Create(model, ex, o);
  ASSERT_TRUE(tr.ok()) << tr.status();
  Trainer& t = **tr;
  while (!t.done()) ASSERT_TRUE(t.Step().ok());
  auto want = t.Loss(ex);
  ASSERT_TRUE(want.ok());
  const std::string dir = ::testing::TempDir() + "/trained-" + GetParam();
  ASSERT_TRUE(t.SavePeft(dir).ok());
  auto loaded = Adapter::Load(model, dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  auto in_memory = t.MakeAdapter();
  ASSERT_TRUE(in_memory.ok()) << in_memory.status();
  const bool quantized_base = GetParam().find("q4_k") != std::string::npos;
  std::vector<double> losses;
  for (const auto& adapter : {*loaded, *in_memory}) {
    auto s = Session::Create(model, {});
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE((*s)->SetAdapters({{adapter, 1.0f}}).ok());
    double sum = 0;
    int64_t n = 0;
    for (const Example& e : ex) {
      (*s)->Reset();
      std::vector<float> lp(e.tokens.size() - 1);
      ASSERT_TRUE((*s)->Score(e.tokens, lp.data()).ok());
      for (size_t i = 1; i < e.tokens.size(); ++i) {
        if (e.trained[i]) {
          sum -= lp[i - 1];
          ++n;
        }
      }
    }
    losses.push_back(sum / n);
    EXPECT_NEAR(sum / n, *want, (quantized_base ? 2e-2 : 1e-4) * *want) << adapter->file().path;
  }
  EXPECT_EQ(losses[0], losses[1]) << "the saved and the in-memory adapter score alike";
  std::filesystem::remove_all(dir);
}

// tiny-llama256-q4_k_m: a quantized base (Q4_K/Q6_K) read through MUL_MAT_T,
// never converted; tiny-llama256-f16 the same shapes in F16.
INSTANTIATE_TEST_SUITE_P(Tiny, TrainerTest,
                         ::testing::Values("tiny-llama-f32", "tiny-qwen2-f32",
                                           "tiny-llama256-q4_k_m", "tiny-llama256-f16"));

// LoRA dropout: the gradients are those of the loss under the same masks
// (central differences of Gradients' own loss, which runs the training
// graphs: same example visits, same masks), and the masks are the same from
// run to run, differ from no dropout, and leave evaluation alone.
TEST(TrainerDropout, GradientsMatchFiniteDifferencesUnderTheMasks) {
  auto model = LoadModel("tiny-llama-f32");
  ASSERT_NE(model, nullptr);
  const std::vector<Example> ex = Examples(model->config().n_vocab, {9, 21}, 3, 7);
  TrainerOptions o;
  o.rank = 4;
  o.alpha = 8;
  o.targets = "all";
  o.lora_dropout = 0.3f;
  auto tr = Trainer::Create(model, ex, o);
  ASSERT_TRUE(tr.ok()) << tr.status();
  Trainer& t = **tr;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-0.2f, 0.2f);
  for (size_t i = 0; i < t.targets().size(); ++i) {
    std::vector<float> a, b;
    ASSERT_TRUE(t.GetValues(i, &a, &b).ok());
    for (float& v : b) v = u(rng);
    ASSERT_TRUE(t.SetValues(i, a, b).ok());
  }
  double with_masks = 0;
  auto grads = t.Gradients(ex, &with_masks);
  ASSERT_TRUE(grads.ok()) << grads.status();
  auto plain = t.Loss(ex);  // evaluation: no dropout
  ASSERT_TRUE(plain.ok());
  EXPECT_GT(std::fabs(with_masks - *plain), 1e-6) << "the masks change the training loss";
  double again = 0;
  ASSERT_TRUE(t.Gradients(ex, &again).ok());
  EXPECT_EQ(again, with_masks) << "the same masks on every call";
  const double step = 1e-2;
  for (size_t i = 0; i < t.targets().size(); i += 3) {
    for (int which = 0; which < 2; ++which) {
      const std::vector<float>& g = which == 0 ? (*grads)[i].first : (*grads)[i].second;
      size_t at = 0;
      for (size_t k = 0; k < g.size(); ++k) {
        if (std::fabs(g[k]) > std::fabs(g[at])) at = k;
      }
      std::vector<float> a, b;
      ASSERT_TRUE(t.GetValues(i, &a, &b).ok());
      std::vector<float>& p = which == 0 ? a : b;
      const float saved = p[at];
      double loss[2];
      for (int s = 0; s < 2; ++s) {
        p[at] = static_cast<float>(saved + (s == 0 ? step : -step));
        ASSERT_TRUE(t.SetValues(i, a, b).ok());
        ASSERT_TRUE(t.Gradients(ex, &loss[s]).ok());
      }
      p[at] = saved;
      ASSERT_TRUE(t.SetValues(i, a, b).ok());
      const double fd = (loss[0] - loss[1]) / (2 * step);
      EXPECT_LE(std::fabs(fd - g[at]), 2e-2 * std::fabs(g[at]) + 2e-4)
          << t.targets()[i].weight << (which == 0 ? " A" : " B^T") << "[" << at << "]: backward "
          << g[at] << ", finite difference " << fd;
    }
  }
}

TEST(TrainerDropout, SameSeedSameAdapterAndDifferentFromNoDropout) {
  auto model = LoadModel("tiny-qwen2-f32");
  ASSERT_NE(model, nullptr);
  const std::vector<Example> ex = Examples(model->config().n_vocab, {12, 16, 10}, 2, 5);
  auto train = [&](float p) {
    TrainerOptions o;
    o.rank = 4;
    o.alpha = 8;
    o.lr = 1e-2f;
    o.epochs = 2;
    o.lora_dropout = p;
    auto tr = Trainer::Create(model, ex, o);
    EXPECT_TRUE(tr.ok()) << tr.status();
    std::vector<float> all;
    while (!(*tr)->done()) EXPECT_TRUE((*tr)->Step().ok());
    for (size_t i = 0; i < (*tr)->targets().size(); ++i) {
      std::vector<float> a, b;
      EXPECT_TRUE((*tr)->GetValues(i, &a, &b).ok());
      all.insert(all.end(), a.begin(), a.end());
      all.insert(all.end(), b.begin(), b.end());
    }
    return all;
  };
  const std::vector<float> d1 = train(0.25f), d2 = train(0.25f), none = train(0.0f);
  EXPECT_EQ(d1, d2);
  EXPECT_NE(d1, none);
  TrainerOptions o;
  o.lora_dropout = 1.0f;
  auto bad = Trainer::Create(model, ex, o);
  EXPECT_NE(bad.status().message().find("LoRA dropout 1"), std::string::npos) << bad.status();
}

// The GGUF LoRA writer: the same adapter as the PEFT directory (bit-identical
// scores in F32, within F16's rounding in F16), with its provenance, and
// refused on another base.
TEST(TrainerGguf, GgufLoraScoresAsThePeftDirectory) {
  auto model = LoadModel("tiny-llama-f32");
  ASSERT_NE(model, nullptr);
  const std::vector<Example> ex = Examples(model->config().n_vocab, {12, 16}, 2, 9);
  TrainerOptions o;
  o.rank = 4;
  o.alpha = 8;
  o.use_rslora = true;  // written as the alpha that gives alpha / sqrt(r)
  o.lr = 1e-2f;
  o.epochs = 2;
  auto tr = Trainer::Create(model, ex, o);
  ASSERT_TRUE(tr.ok()) << tr.status();
  while (!(*tr)->done()) ASSERT_TRUE((*tr)->Step().ok());
  const std::string dir = ::testing::TempDir() + "/gguf-peft";
  const std::string f32 = ::testing::TempDir() + "/gguf-lora-f32.gguf";
  const std::string f16 = ::testing::TempDir() + "/gguf-lora-f16.gguf";
  ASSERT_TRUE((*tr)->SavePeft(dir).ok());
  ASSERT_TRUE((*tr)->SaveGguf(f32, "f32").ok());
  ASSERT_TRUE((*tr)->SaveGguf(f16, "f16").ok());
  EXPECT_FALSE((*tr)->SaveGguf(f16, "q8_0").ok());
  auto score = [&](const std::string& path) {
    auto adapter = Adapter::Load(model, path);
    EXPECT_TRUE(adapter.ok()) << adapter.status();
    if (!adapter.ok()) return 0.0;
    EXPECT_EQ((*adapter)->file().base_fingerprint, model->fingerprint());
    EXPECT_NE((*adapter)->file().provenance.find("\"data_hash\""), std::string::npos);
    auto s = Session::Create(model, {});
    EXPECT_TRUE((*s)->SetAdapters({{*adapter, 1.0f}}).ok());
    double sum = 0;
    for (const Example& e : ex) {
      (*s)->Reset();
      std::vector<float> lp(e.tokens.size() - 1);
      EXPECT_TRUE((*s)->Score(e.tokens, lp.data()).ok());
      for (float v : lp) sum -= v;
    }
    return sum;
  };
  const double peft = score(dir), gguf32 = score(f32), gguf16 = score(f16);
  EXPECT_NEAR(gguf32, peft, 1e-6 * std::fabs(peft));
  EXPECT_NEAR(gguf16, peft, 1e-3 * std::fabs(peft));
  auto other = LoadModel("tiny-qwen2-f32");
  ASSERT_NE(other, nullptr);
  auto refused = Adapter::Load(other, f32);
  EXPECT_FALSE(refused.ok());
  std::filesystem::remove_all(dir);
  std::remove(f32.c_str());
  std::remove(f16.c_str());
}

TEST(TrainerErrors, BadInputIsAClearError) {
  auto model = LoadModel("tiny-llama-f32");
  ASSERT_NE(model, nullptr);
  const std::vector<Example> ex = Examples(model->config().n_vocab, {8}, 1, 1);
  TrainerOptions o;
  auto empty = Trainer::Create(model, {}, o);
  EXPECT_NE(empty.status().message().find("no examples"), std::string::npos) << empty.status();
  o.rank = 0;
  auto rank0 = Trainer::Create(model, ex, o);
  EXPECT_NE(rank0.status().message().find("rank 0"), std::string::npos) << rank0.status();
  o.rank = 4;
  o.targets = "q,wq";
  auto bad = Trainer::Create(model, ex, o);
  EXPECT_NE(bad.status().message().find("'wq'"), std::string::npos) << bad.status();
  o.targets = "q";
  std::vector<Example> untrained = ex;
  for (auto& e : untrained) std::fill(e.trained.begin(), e.trained.end(), 0);
  auto none = Trainer::Create(model, untrained, o);
  EXPECT_NE(none.status().message().find("no example has a trained token"), std::string::npos)
      << none.status();
}

}  // namespace
}  // namespace hearth::train
