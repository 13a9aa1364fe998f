// The LoRA trainer against PEFT+torch (issue 12, "Proof"): the same base
// weights, the same LoRA init, the same four sequences and ten AdamW steps
// in tests/data/finetune (scripts/fixtures/make_finetune_fixtures.py, float64
// torch), three times: constant lr; warmup + linear with gradient clipping;
// warmup + cosine. The issue asks for 1e-3 relative on every step's loss and
// on the trained adapter's logits (through an ordinary Session); measured is
// ~1e-6, so the test holds them, and each step's gradient norm, to kTol =
// 1e-4, which also catches what 1e-3 lets through (weight decay left out
// moves the llama loss by 5e-4; docs/finetune.md has the table). On the Q8_0
// base PEFT runs on the dequantized weights; the trainer computes with float
// activations and matches it, but an inference Session rounds activations to
// Q8 blocks, so there the logits get the base model's own Q8 tolerance
// (runtime_logits_test's 0.08) and the trainer's own loss after the last step
// carries the kTol check.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sdk/src/lora/adapter.h"
#include "sdk/src/runtime/model.h"
#include "sdk/src/runtime/session.h"
#include "sdk/src/train/trainer.h"

namespace hearth::train {
namespace {

const std::string kData = std::string(HEARTH_TEST_DATA) + "/finetune/";
const std::string kModels = std::string(HEARTH_TEST_DATA) + "/models/";
constexpr double kTol = 1e-4;

nlohmann::json Manifest() {
  std::ifstream in(kData + "manifest.json");
  if (!in.good()) return nlohmann::json();
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

std::vector<float> ReadF32(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in.good()) return {};
  const std::streamsize n = in.tellg();
  std::vector<float> v(static_cast<size_t>(n) / sizeof(float));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
  return v;
}

std::shared_ptr<const Model> LoadModel(const std::string& file) {
  PluginHostOptions o;
  o.explicit_paths = {std::string(HEARTH_PLUGIN_DIR) + "/libhearth-backend-cpu.so"};
  o.explicit_only = true;
  auto host = PluginHost::Create(o);
  EXPECT_TRUE(host.ok()) << host.status();
  if (!host.ok()) return nullptr;
  ModelLoadOptions mo;
  mo.n_threads = 2;
  auto model =
      Model::Load(std::shared_ptr<PluginHost>(std::move(host).value()), kModels + file, mo);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::shared_ptr<const Model>(*model) : nullptr;
}

// max |a - ref| / max |ref|, the fixtures' measure (reference.py rel_err).
double RelErr(const float* a, const float* ref, size_t n) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - ref[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(ref[i])));
  }
  return diff / scale;
}

class PeftParityTest : public ::testing::TestWithParam<std::string> {};

// One run of the manifest (a schedule, warmup and clipping) from the fixed
// init: every step's loss, gradient norm and learning rate, the loss after
// the last step, and the trained adapter's logits through a Session.
void CheckRun(const std::shared_ptr<const Model>& model, const nlohmann::json& h,
              const nlohmann::json& fx, const nlohmann::json& run,
              const std::vector<Example>& examples) {
  SCOPED_TRACE(run["name"].get<std::string>());
  const int64_t steps = h["steps"].get<int64_t>();
  // A step takes every example (PEFT's side sums them all); one epoch per
  // step, so the per-epoch shuffle only reorders a sum.
  TrainerOptions o;
  o.rank = h["rank"].get<int64_t>();
  o.alpha = h["alpha"].get<float>();
  o.targets = h["targets"].get<std::string>();
  o.lr = h["lr"].get<float>();
  o.beta1 = h["beta1"].get<float>();
  o.beta2 = h["beta2"].get<float>();
  o.eps = h["eps"].get<float>();
  o.weight_decay = h["weight_decay"].get<float>();
  const std::string schedule = run["schedule"].get<std::string>();
  o.schedule = schedule == "linear"   ? Schedule::kLinear
               : schedule == "cosine" ? Schedule::kCosine
                                      : Schedule::kConstant;
  o.warmup_steps = run["warmup_steps"].get<int64_t>();
  o.max_grad_norm = run["max_grad_norm"].get<float>();
  o.batch = static_cast<int64_t>(examples.size());
  o.grad_accum = 1;
  o.epochs = steps;
  auto tr = Trainer::Create(model, examples, o);
  ASSERT_TRUE(tr.ok()) << tr.status();
  Trainer& t = **tr;
  ASSERT_EQ(t.total_steps(), steps);

  // The fixed init, in target order: A [r][n_in] then B^T [r][n_out].
  const std::vector<float> init = ReadF32(kData + fx["init"].get<std::string>());
  size_t at = 0;
  for (size_t i = 0; i < t.targets().size(); ++i) {
    const TrainTarget& tt = t.targets()[i];
    const size_t na = static_cast<size_t>(tt.n_in * o.rank);
    const size_t nb = static_cast<size_t>(tt.n_out * o.rank);
    ASSERT_LE(at + na + nb, init.size()) << "init file too short at " << tt.weight;
    const std::vector<float> a(init.begin() + at, init.begin() + at + na);
    const std::vector<float> b(init.begin() + at + na, init.begin() + at + na + nb);
    at += na + nb;
    ASSERT_TRUE(t.SetValues(i, a, b).ok()) << tt.weight;
  }
  ASSERT_EQ(at, init.size()) << "init file holds other targets";

  const std::vector<double> want = run["losses"].get<std::vector<double>>();
  const std::vector<double> want_norm = run["grad_norms"].get<std::vector<double>>();
  const std::vector<double> want_lr = run["lrs"].get<std::vector<double>>();
  ASSERT_EQ(static_cast<int64_t>(want.size()), steps);
  double worst = 0, worst_norm = 0;
  for (int64_t s = 0; s < steps; ++s) {
    auto m = t.Step();
    ASSERT_TRUE(m.ok()) << m.status();
    const double rel = std::fabs(m->loss - want[s]) / std::fabs(want[s]);
    const double rel_norm = std::fabs(m->grad_norm - want_norm[s]) / want_norm[s];
    worst = std::max(worst, rel);
    worst_norm = std::max(worst_norm, rel_norm);
    EXPECT_LE(rel, kTol) << "step " << s + 1 << ": hearth " << m->loss << ", PEFT " << want[s];
    EXPECT_LE(rel_norm, kTol) << "step " << s + 1 << ": gradient norm " << m->grad_norm
                              << ", torch " << want_norm[s];
    EXPECT_NEAR(m->lr, want_lr[s], 1e-6 * o.lr) << "step " << s + 1;
  }
  auto final_loss = t.Loss(examples);
  ASSERT_TRUE(final_loss.ok()) << final_loss.status();
  const double want_final = run["final_loss"].get<double>();
  const double final_rel = std::fabs(*final_loss - want_final) / want_final;
  EXPECT_LE(final_rel, kTol) << "after the last step: hearth " << *final_loss << ", PEFT "
                             << want_final;

  // The trained adapter through the inference path, row by row.
  auto adapter = t.MakeAdapter();
  ASSERT_TRUE(adapter.ok()) << adapter.status();
  SessionOptions one;
  one.n_batch = 1;
  auto session = Session::Create(model, one);
  ASSERT_TRUE(session.ok()) << session.status();
  ASSERT_TRUE((*session)->SetAdapters({{*adapter, 1.0f}}).ok());
  const std::vector<int32_t> probe = fx["probe"].get<std::vector<int32_t>>();
  const std::vector<float> logits = ReadF32(kData + run["logits"].get<std::string>());
  const size_t n_vocab = static_cast<size_t>(model->config().n_vocab);
  ASSERT_EQ(logits.size(), probe.size() * n_vocab);
  // Q8_0: inference rounds activations to Q8 (runtime_logits_test's 0.08).
  const bool q8 = fx["model"].get<std::string>().find("q8_0") != std::string::npos;
  double worst_logits = 0;
  for (size_t i = 0; i < probe.size(); ++i) {
    ASSERT_TRUE((*session)->Feed({probe[i]}).ok());
    const double err = RelErr((*session)->logits().data(), logits.data() + i * n_vocab, n_vocab);
    worst_logits = std::max(worst_logits, err);
    EXPECT_LE(err, q8 ? 0.08 : kTol) << "probe row " << i;
  }
  std::printf(
      "%s %s: worst relative difference over %lld steps: loss %.2e (PEFT %.4f -> %.4f), "
      "gradient norm %.2e; loss after: %.2e; trained adapter's logits: %.2e\n",
      fx["model"].get<std::string>().c_str(), run["name"].get<std::string>().c_str(),
      static_cast<long long>(steps), worst, want.front(), want.back(), worst_norm, final_rel,
      worst_logits);
}

TEST_P(PeftParityTest, TenAdamWStepsMatchPeft) {
  const nlohmann::json manifest = Manifest();
  ASSERT_TRUE(manifest.is_object()) << "tests/data/finetune/manifest.json missing or invalid";
  const nlohmann::json* fx = nullptr;
  for (const auto& m : manifest["models"]) {
    if (m["model"] == GetParam() + ".gguf") fx = &m;
  }
  ASSERT_NE(fx, nullptr) << GetParam() << " is not in the manifest";
  auto model = LoadModel((*fx)["model"].get<std::string>());
  ASSERT_NE(model, nullptr);
  ASSERT_EQ(model->config().n_vocab, (*fx)["n_vocab"].get<int64_t>());

  std::vector<Example> examples;
  for (const auto& e : (*fx)["examples"]) {
    Example ex;
    ex.tokens = e["tokens"].get<std::vector<int32_t>>();
    for (int f : e["trained"].get<std::vector<int>>()) ex.trained.push_back(f ? 1 : 0);
    ex.line = static_cast<int64_t>(examples.size()) + 1;
    examples.push_back(std::move(ex));
  }
  ASSERT_EQ((*fx)["runs"].size(), 3u);
  for (const auto& run : (*fx)["runs"]) {
    CheckRun(model, manifest["hparams"], *fx, run, examples);
  }
}

INSTANTIATE_TEST_SUITE_P(Tiny, PeftParityTest,
                         ::testing::Values("tiny-llama-f32", "tiny-qwen2-f32",
                                           "tiny-llama256-q8_0", "tiny-gemma3-f32"));

}  // namespace
}  // namespace hearth::train
