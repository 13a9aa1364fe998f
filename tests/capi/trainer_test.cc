// hearth_trainer_* through libhearth only: train on a small JSONL file,
// stop from the callback, evaluate, save, attach the trained adapter to a
// session without reloading, and the errors of bad input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "capi_test_util.h"
#include "hearth/hearth.h"

namespace {

const std::string kQwen = std::string(HEARTH_TEST_DATA) + "/models/tiny-qwen2-f32.gguf";

using hearth_test::Error;

class CapiTrainer : public ::testing::Test {
 protected:
  void SetUp() override {
    Error rt_err;
    rt_ = hearth_test::TestRuntime(&rt_err);
    ASSERT_NE(rt_, nullptr) << rt_err.message();
    Error err{hearth_model_load(rt_, kQwen.c_str(), nullptr, &model_)};
    ASSERT_EQ(err.e, nullptr) << err.message();
    char tmpl[] = "/tmp/hearth_trainer_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    hearth_dataset_free(data_);
    hearth_model_free(model_);
    hearth_runtime_free(rt_);
    std::filesystem::remove_all(dir_);
  }
  hearth_dataset* Load(const std::string& jsonl) {
    const std::string path = dir_ + "/data.jsonl";
    std::ofstream(path, std::ios::binary) << jsonl;
    hearth_dataset_free(data_);
    data_ = nullptr;
    Error err{hearth_dataset_load(model_, path.c_str(), nullptr, &data_)};
    EXPECT_EQ(err.e, nullptr) << err.message();
    return data_;
  }
  hearth_runtime* rt_ = nullptr;
  hearth_model* model_ = nullptr;
  hearth_dataset* data_ = nullptr;
  std::string dir_;
};

constexpr const char* kData =
    "{\"prompt\": \"Ward 3, bed 2:\", \"completion\": \" stable, BP 120/80.\"}\n"
    "{\"prompt\": \"Ward 1, bed 4:\", \"completion\": \" febrile, 38.5 C.\"}\n"
    "{\"text\": \"Handover at 7: two admissions, no incidents.\"}\n"
    "{\"prompt\": \"Ward 2, bed 1:\", \"completion\": \" discharged home.\"}\n";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A safetensors file's data section (what follows the 8-byte length and the
// JSON header); empty when the file is too short.
std::string TensorBytes(const std::string& path) {
  const std::string all = ReadAll(path);
  if (all.size() < 8) return {};
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(all[i]);
  return n > all.size() - 8 ? std::string() : all.substr(8 + n);
}

struct Seen {
  int calls = 0;
  double first_loss = 0, last_loss = 0;
  int stop_after = 0;
};

int OnStep(const hearth_train_progress* p, void* user) {
  Seen* s = static_cast<Seen*>(user);
  if (s->calls++ == 0) s->first_loss = p->loss;
  s->last_loss = p->loss;
  return s->stop_after > 0 && s->calls >= s->stop_after;
}

TEST_F(CapiTrainer, TrainsSavesAndServes) {
  ASSERT_NE(Load(kData), nullptr);
  hearth_trainer_params p = HEARTH_TRAINER_PARAMS_INIT;
  p.rank = 4;
  p.alpha = 8;
  p.lr = 1e-2f;
  p.epochs = 6;
  p.eval_split = 0.25f;
  p.schedule = HEARTH_SCHEDULE_COSINE;
  p.warmup_steps = 1;
  hearth_trainer* t = nullptr;
  Error err{hearth_trainer_create(model_, data_, &p, &t)};
  ASSERT_EQ(err.e, nullptr) << err.message();

  hearth_trainer_info info = HEARTH_TRAINER_INFO_INIT;
  Error gi{hearth_trainer_get_info(t, &info)};
  ASSERT_EQ(gi.e, nullptr) << gi.message();
  EXPECT_EQ(info.step, 0u);
  EXPECT_EQ(info.total_steps, 18u);  // known before the first step
  EXPECT_EQ(info.n_train, 3u);
  EXPECT_EQ(info.n_eval, 1u);

  hearth_train_progress first = HEARTH_TRAIN_PROGRESS_INIT;
  Error step{hearth_trainer_step(t, &first)};
  ASSERT_EQ(step.e, nullptr) << step.message();
  EXPECT_EQ(first.step, 1u);
  EXPECT_EQ(first.total_steps, 18u);  // 3 training examples x 6 epochs
  EXPECT_EQ(first.lr, 0.0);           // warmup step 0, as Hugging Face schedules it
  EXPECT_GT(first.n_trained, 0u);

  Seen seen;
  seen.stop_after = 5;
  Error run{hearth_trainer_run(t, OnStep, &seen)};
  ASSERT_EQ(run.e, nullptr) << run.message();
  EXPECT_EQ(seen.calls, 5);  // the callback stopped it
  seen.stop_after = 0;
  Error rest{hearth_trainer_run(t, OnStep, &seen)};
  ASSERT_EQ(rest.e, nullptr) << rest.message();
  EXPECT_EQ(seen.calls, 17);
  EXPECT_LT(seen.last_loss, seen.first_loss);
  hearth_train_progress done = HEARTH_TRAIN_PROGRESS_INIT;
  Error over{hearth_trainer_step(t, &done)};
  EXPECT_EQ(hearth_error_code(over.e), HEARTH_OUT_OF_RANGE);
  ASSERT_EQ(hearth_trainer_get_info(t, &info), nullptr);
  EXPECT_EQ(info.step, 18u);

  double eval = 0;
  Error ev{hearth_trainer_evaluate(t, &eval)};
  ASSERT_EQ(ev.e, nullptr) << ev.message();
  EXPECT_TRUE(std::isfinite(eval));

  const std::string out = dir_ + "/adapter";
  Error save{hearth_trainer_save(t, out.c_str())};
  ASSERT_EQ(save.e, nullptr) << save.message();
  EXPECT_TRUE(std::filesystem::exists(out + "/adapter_config.json"));
  EXPECT_TRUE(std::filesystem::exists(out + "/adapter_model.safetensors"));

  // In memory and from disk: both attach and give the same logits.
  hearth_adapter* mem = nullptr;
  hearth_adapter* disk = nullptr;
  Error ga{hearth_trainer_get_adapter(t, &mem)};
  ASSERT_EQ(ga.e, nullptr) << ga.message();
  Error ld{hearth_adapter_load(model_, out.c_str(), nullptr, &disk)};
  ASSERT_EQ(ld.e, nullptr) << ld.message();
  hearth_trainer_free(t);  // the adapter outlives the trainer
  float logits[2][8];
  const int32_t prompt[] = {1, 2, 3, 4};
  int i = 0;
  for (const hearth_adapter* a :
       {static_cast<const hearth_adapter*>(mem), static_cast<const hearth_adapter*>(disk)}) {
    hearth_session* s = nullptr;
    ASSERT_EQ(hearth_session_create(model_, nullptr, &s), nullptr);
    ASSERT_EQ(hearth_session_set_adapters(s, &a, nullptr, 1), nullptr);
    ASSERT_EQ(hearth_session_feed(s, prompt, 4), nullptr);
    const float* l = nullptr;
    size_t n = 0;
    ASSERT_EQ(hearth_session_logits(s, &l, &n), nullptr);
    for (int k = 0; k < 8; ++k) logits[i][k] = l[k];
    hearth_session_free(s);
    ++i;
  }
  for (int k = 0; k < 8; ++k) EXPECT_FLOAT_EQ(logits[0][k], logits[1][k]);
  // Provenance: the base fingerprint, the data hash and hearth's version.
  hearth_adapter_info ai = HEARTH_ADAPTER_INFO_INIT;
  ASSERT_EQ(hearth_adapter_get_info(disk, &ai), nullptr);
  const std::string prov = ai.provenance;
  EXPECT_NE(prov.find("\"base_fingerprint\":\"xxh64:"), std::string::npos) << prov;
  EXPECT_NE(prov.find("\"data_hash\":\"xxh64:"), std::string::npos) << prov;
  EXPECT_NE(prov.find(std::string("\"hearth_version\":\"") + hearth_version_string() + "\""),
            std::string::npos)
      << prov;
  hearth_adapter_info mi = HEARTH_ADAPTER_INFO_INIT;
  ASSERT_EQ(hearth_adapter_get_info(mem, &mi), nullptr);
  EXPECT_EQ(prov, std::string(mi.provenance));
  // Onto another base: refused naming both fingerprints, unless overridden.
  const std::string llama = std::string(HEARTH_TEST_DATA) + "/models/tiny-llama-f32.gguf";
  hearth_model* other = nullptr;
  ASSERT_EQ(hearth_model_load(rt_, llama.c_str(), nullptr, &other), nullptr);
  hearth_adapter* wrong = nullptr;
  Error refused{hearth_adapter_load(other, out.c_str(), nullptr, &wrong)};
  EXPECT_EQ(hearth_error_code(refused.e), HEARTH_INVALID_ARGUMENT);
  const size_t fp = prov.find("xxh64:");
  EXPECT_NE(refused.message().find(prov.substr(fp, 22)), std::string::npos) << refused.message();
  EXPECT_NE(refused.message().rfind("xxh64:"), refused.message().find("xxh64:"))
      << refused.message();  // both fingerprints named
  hearth_adapter_params ap = HEARTH_ADAPTER_PARAMS_INIT;
  ap.ignore_base_fingerprint = 1;
  Error forced{hearth_adapter_load(other, out.c_str(), &ap, &wrong)};
  EXPECT_EQ(forced.message().find("fingerprint"), std::string::npos) << forced.message();
  hearth_adapter_free(wrong);
  hearth_model_free(other);
  hearth_adapter_free(mem);

  // Continue training from the saved adapter: before any step it is the
  // same adapter, byte for byte; another rank is refused, naming it.
  hearth_trainer_params cont = p;
  cont.init_adapter = out.c_str();
  hearth_trainer* t2 = nullptr;
  Error c_err{hearth_trainer_create(model_, data_, &cont, &t2)};
  ASSERT_EQ(c_err.e, nullptr) << c_err.message();
  const std::string again = dir_ + "/again";
  ASSERT_EQ(hearth_trainer_save(t2, again.c_str()), nullptr);
  // The tensors, byte for byte (the header's provenance record differs: it
  // counts the steps trained).
  EXPECT_FALSE(TensorBytes(out + "/adapter_model.safetensors").empty());
  EXPECT_TRUE(TensorBytes(again + "/adapter_model.safetensors") ==
              TensorBytes(out + "/adapter_model.safetensors"));
  ASSERT_EQ(hearth_trainer_step(t2, nullptr), nullptr);
  hearth_trainer_free(t2);
  cont.rank = 8;
  Error bad_rank{hearth_trainer_create(model_, data_, &cont, &t2)};
  EXPECT_EQ(hearth_error_code(bad_rank.e), HEARTH_INVALID_ARGUMENT);
  EXPECT_NE(bad_rank.message().find("rank 4"), std::string::npos) << bad_rank.message();
  cont.rank = 4;
  cont.targets = "q,v";
  Error extra{hearth_trainer_create(model_, data_, &cont, &t2)};
  EXPECT_NE(extra.message().find("also adapts"), std::string::npos) << extra.message();
  hearth_adapter_free(disk);
}

// 12 steps in one go, or 5, a checkpoint, a fresh trainer resumed from it
// and 7 more: the same adapter, byte for byte (one thread count on both).
TEST_F(CapiTrainer, AResumedRunGivesTheSameAdapter) {
  ASSERT_NE(Load(kData), nullptr);
  hearth_trainer_params p = HEARTH_TRAINER_PARAMS_INIT;
  p.rank = 4;
  p.alpha = 8;
  p.lr = 1e-2f;
  p.epochs = 4;  // 3 training examples: 12 steps, a checkpoint in the second epoch
  p.eval_split = 0.25f;
  p.schedule = HEARTH_SCHEDULE_COSINE;
  p.warmup_steps = 2;
  p.weight_decay = 0.01f;
  auto make = [&](const hearth_trainer_params& params) {
    hearth_trainer* t = nullptr;
    Error err{hearth_trainer_create(model_, data_, &params, &t)};
    EXPECT_EQ(err.e, nullptr) << err.message();
    return t;
  };
  const std::string whole = dir_ + "/whole", part = dir_ + "/part";
  hearth_trainer* t = make(p);
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(hearth_trainer_run(t, nullptr, nullptr), nullptr);
  ASSERT_EQ(hearth_trainer_save(t, whole.c_str()), nullptr);
  hearth_trainer_free(t);

  t = make(p);
  Seen seen;
  seen.stop_after = 5;
  ASSERT_EQ(hearth_trainer_run(t, OnStep, &seen), nullptr);
  Error ck{hearth_trainer_save_checkpoint(t, part.c_str())};
  ASSERT_EQ(ck.e, nullptr) << ck.message();
  hearth_trainer_free(t);
  EXPECT_TRUE(std::filesystem::exists(part + "/hearth-checkpoint.bin"));
  EXPECT_TRUE(std::filesystem::exists(part + "/adapter_model.safetensors"));

  t = make(p);
  Error rs{hearth_trainer_resume(t, part.c_str())};
  ASSERT_EQ(rs.e, nullptr) << rs.message();
  hearth_trainer_info info = HEARTH_TRAINER_INFO_INIT;
  ASSERT_EQ(hearth_trainer_get_info(t, &info), nullptr);
  EXPECT_EQ(info.step, 5u);
  ASSERT_EQ(hearth_trainer_run(t, nullptr, nullptr), nullptr);
  ASSERT_EQ(hearth_trainer_save(t, part.c_str()), nullptr);
  hearth_trainer_free(t);
  const std::string a = ReadAll(whole + "/adapter_model.safetensors");
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == ReadAll(part + "/adapter_model.safetensors"));

  // Another run's settings, a damaged file, no checkpoint: each named.
  hearth_trainer_params other = p;
  other.lr = 2e-2f;
  t = make(other);
  Error diff{hearth_trainer_resume(t, part.c_str())};
  EXPECT_EQ(hearth_error_code(diff.e), HEARTH_FAILED_PRECONDITION);
  EXPECT_NE(diff.message().find("lr=0.01"), std::string::npos) << diff.message();
  EXPECT_NE(diff.message().find("lr=0.02"), std::string::npos) << diff.message();
  hearth_trainer_free(t);
  t = make(p);
  {
    std::fstream f(part + "/hearth-checkpoint.bin",
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  Error bad{hearth_trainer_resume(t, part.c_str())};
  EXPECT_EQ(hearth_error_code(bad.e), HEARTH_DATA_LOSS) << bad.message();
  Error none{hearth_trainer_resume(t, whole.c_str())};
  EXPECT_EQ(hearth_error_code(none.e), HEARTH_NOT_FOUND) << none.message();
  EXPECT_NE(none.message().find("hearth-checkpoint.bin"), std::string::npos);
  hearth_trainer_free(t);
}

TEST_F(CapiTrainer, BadInputIsAClearError) {
  ASSERT_NE(Load(kData), nullptr);
  hearth_trainer* t = nullptr;
  hearth_trainer_params p = HEARTH_TRAINER_PARAMS_INIT;
  p.rank = 0;
  Error r0{hearth_trainer_create(model_, data_, &p, &t)};
  EXPECT_EQ(hearth_error_code(r0.e), HEARTH_INVALID_ARGUMENT);
  EXPECT_NE(r0.message().find("rank 0"), std::string::npos) << r0.message();
  p = HEARTH_TRAINER_PARAMS_INIT;
  p.targets = "q,lm_head";
  Error bt{hearth_trainer_create(model_, data_, &p, &t)};
  EXPECT_NE(bt.message().find("'lm_head'"), std::string::npos) << bt.message();
  p = HEARTH_TRAINER_PARAMS_INIT;
  p.schedule = 7;
  Error bs{hearth_trainer_create(model_, data_, &p, &t)};
  EXPECT_NE(bs.message().find("schedule 7"), std::string::npos) << bs.message();
  Error nul{hearth_trainer_create(model_, nullptr, nullptr, &t)};
  EXPECT_EQ(hearth_error_code(nul.e), HEARTH_INVALID_ARGUMENT);
  EXPECT_EQ(t, nullptr);
}

}  // namespace
