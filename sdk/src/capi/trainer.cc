// trainer.cc — hearth_trainer_* of the C ABI: LoRA fine-tuning
// (sdk/src/train/trainer.h) on a model and a hearth_dataset.
#include "sdk/src/train/trainer.h"

#include <unistd.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "hearth/hearth.h"
#include "sdk/src/capi/capi_internal.h"
#include "sdk/src/capi/handles.h"

struct hearth_trainer {
  std::unique_ptr<hearth::train::Trainer> trainer;
  std::shared_ptr<hearth::Model> model;
  pid_t owner_pid = ::getpid();
};

namespace {

void FillProgress(const hearth::train::StepMetrics& m, int64_t total, hearth_train_progress* p) {
  p->step = static_cast<uint64_t>(m.step);
  p->total_steps = static_cast<uint64_t>(total);
  p->epoch = static_cast<uint64_t>(m.epoch);
  p->loss = m.loss;
  p->grad_norm = m.grad_norm;
  p->lr = m.lr;
  p->n_tokens = static_cast<uint64_t>(m.n_tokens);
  p->n_trained = static_cast<uint64_t>(m.n_trained);
}

}  // namespace

extern "C" {

hearth_error* hearth_trainer_create(hearth_model* model, const hearth_dataset* dataset,
                                    const hearth_trainer_params* params, hearth_trainer** out) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(model);
  HEARTH_CAPI_CHECK_NOT_NULL(dataset);
  HEARTH_CAPI_CHECK_NOT_NULL(out);
  HEARTH_CAPI_CHECK_OWNER(model);
  hearth_trainer_params p;
  const hearth_trainer_params defaults = HEARTH_TRAINER_PARAMS_INIT;
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::ReadParams(__func__, "params", params, defaults, &p));
  // The examples, through the dataset's own C accessors.
  hearth_dataset_info info = HEARTH_DATASET_INFO_INIT;
  if (hearth_error* e = hearth_dataset_get_info(dataset, &info)) return e;
  std::vector<hearth::train::Example> examples(static_cast<size_t>(info.n_examples));
  for (size_t i = 0; i < examples.size(); ++i) {
    hearth::train::Example& ex = examples[i];
    ex.tokens.resize(static_cast<size_t>(info.longest));
    ex.trained.resize(ex.tokens.size());
    size_t n = 0;
    uint64_t line = 0;
    if (hearth_error* e = hearth_dataset_get_example(
            dataset, i, ex.tokens.data(), ex.trained.data(), ex.tokens.size(), &n, &line)) {
      return e;
    }
    ex.tokens.resize(n);
    ex.trained.resize(n);
    ex.line = static_cast<int64_t>(line);
  }
  hearth::train::TrainerOptions o;
  o.rank = p.rank;
  o.alpha = p.alpha;
  o.use_rslora = p.use_rslora != 0;
  o.targets = p.targets != nullptr ? p.targets : "";
  o.lr = p.lr;
  o.beta1 = p.beta1;
  o.beta2 = p.beta2;
  o.eps = p.eps;
  o.weight_decay = p.weight_decay;
  if (p.schedule > HEARTH_SCHEDULE_COSINE) {
    return hearth::capi::MakeError(HEARTH_INVALID_ARGUMENT,
                                   std::string(__func__) + ": schedule " +
                                       std::to_string(p.schedule) +
                                       " is not one of HEARTH_SCHEDULE_CONSTANT/LINEAR/COSINE");
  }
  o.schedule = static_cast<hearth::train::Schedule>(p.schedule);
  o.warmup_steps = p.warmup_steps;
  o.max_grad_norm = p.max_grad_norm;
  o.batch = p.batch;
  o.grad_accum = p.grad_accum;
  o.epochs = p.epochs;
  o.eval_split = p.eval_split;
  o.seed = p.seed;
  o.n_threads = p.n_threads;
  o.hearth_version = hearth_version_string();
  if (p.init_adapter != nullptr) o.init_adapter = p.init_adapter;
  o.bf16_products = p.bf16_products != 0;
  o.lora_dropout = p.lora_dropout;
  auto t = hearth::train::Trainer::Create(model->model, std::move(examples), o);
  if (!t.ok()) return hearth::capi::ToError(t.status());
  auto handle = std::make_unique<hearth_trainer>();
  handle->trainer = std::move(t).value();
  handle->model = model->model;
  *out = handle.release();
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

void hearth_trainer_free(hearth_trainer* trainer) { hearth::capi::FreeHandle(trainer); }

hearth_error* hearth_trainer_step(hearth_trainer* trainer, hearth_train_progress* progress) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(trainer);
  HEARTH_CAPI_CHECK_OWNER(trainer);
  if (progress != nullptr) {
    HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::CheckOutStruct(__func__, "progress", progress));
  }
  auto m = trainer->trainer->Step();
  if (!m.ok()) return hearth::capi::ToError(m.status());
  if (progress != nullptr) {
    hearth_train_progress full = HEARTH_TRAIN_PROGRESS_INIT;
    FillProgress(*m, trainer->trainer->total_steps(), &full);
    hearth::capi::WriteOutStruct(full, progress);
  }
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_trainer_run(hearth_trainer* trainer, hearth_train_callback callback,
                                 void* user_data) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(trainer);
  HEARTH_CAPI_CHECK_OWNER(trainer);
  while (!trainer->trainer->done()) {
    auto m = trainer->trainer->Step();
    if (!m.ok()) return hearth::capi::ToError(m.status());
    if (callback != nullptr) {
      hearth_train_progress p = HEARTH_TRAIN_PROGRESS_INIT;
      FillProgress(*m, trainer->trainer->total_steps(), &p);
      if (callback(&p, user_data) != 0) break;
    }
  }
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_trainer_evaluate(hearth_trainer* trainer, double* loss) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(trainer);
  HEARTH_CAPI_CHECK_OWNER(trainer);
  HEARTH_CAPI_CHECK_NOT_NULL(loss);
  auto l = trainer->trainer->Evaluate();
  if (!l.ok()) return hearth::capi::ToError(l.status());
  *loss = *l;
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_trainer_save(hearth_trainer* trainer, const char* dir) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(trainer);
  HEARTH_CAPI_CHECK_OWNER(trainer);
  HEARTH_CAPI_CHECK_NOT_NULL(dir);
  return hearth::capi::ToError(trainer->trainer->SavePeft(dir));
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_trainer_save_gguf(hearth_trainer* trainer, const char* path,
                                      const char* dtype) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(trainer);
  HEARTH_CAPI_CHECK_OWNER(trainer);
  HEARTH_CAPI_CHECK_NOT_NULL(path);
  return hearth::capi::ToError(trainer->trainer->SaveGguf(path, dtype ? dtype : "f32"));
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_trainer_save_checkpoint(hearth_trainer* trainer, const char* dir) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(trainer);
  HEARTH_CAPI_CHECK_NOT_NULL(dir);
  HEARTH_CAPI_CHECK_OWNER(trainer);
  return hearth::capi::ToError(trainer->trainer->SaveCheckpoint(dir));
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_trainer_resume(hearth_trainer* trainer, const char* dir) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(trainer);
  HEARTH_CAPI_CHECK_NOT_NULL(dir);
  HEARTH_CAPI_CHECK_OWNER(trainer);
  return hearth::capi::ToError(trainer->trainer->Resume(dir));
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_trainer_get_info(const hearth_trainer* trainer, hearth_trainer_info* info) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(trainer);
  HEARTH_CAPI_CHECK_NOT_NULL(info);
  HEARTH_CAPI_RETURN_IF_ERROR(hearth::capi::CheckOutStruct(__func__, "info", info));
  hearth_trainer_info full = HEARTH_TRAINER_INFO_INIT;
  full.step = static_cast<uint64_t>(trainer->trainer->step());
  full.total_steps = static_cast<uint64_t>(trainer->trainer->total_steps());
  full.n_train = static_cast<uint64_t>(trainer->trainer->n_train());
  full.n_eval = static_cast<uint64_t>(trainer->trainer->n_eval());
  hearth::capi::WriteOutStruct(full, info);
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

hearth_error* hearth_trainer_get_adapter(hearth_trainer* trainer, hearth_adapter** out) {
  HEARTH_CAPI_TRY
  HEARTH_CAPI_CHECK_NOT_NULL(trainer);
  HEARTH_CAPI_CHECK_OWNER(trainer);
  HEARTH_CAPI_CHECK_NOT_NULL(out);
  auto a = trainer->trainer->MakeAdapter();
  if (!a.ok()) return hearth::capi::ToError(a.status());
  auto handle = std::make_unique<hearth_adapter>();
  handle->adapter = std::move(a).value();
  handle->base_architecture = trainer->model->config().arch;
  *out = handle.release();
  return nullptr;
  HEARTH_CAPI_CATCH_ERROR
}

}  // extern "C"
