// trainer.cc — LoRA fine-tuning for hearth._hearth (hearth_trainer_*): a
// trainer made from a model, a dataset and the options the Python layer has
// already checked; steps, evaluation, saving (with or without a checkpoint),
// resuming, and the trained adapter.
//
// Creating a trainer uploads its tensors, and steps and evaluations run
// whole forward/backward graphs, so every call but info() releases the GIL.
#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <utility>

#include "bindings/python/src/binding.h"

namespace hearth_py {
namespace {

// Keeps the model (and its runtime) alive as long as the trainer. The Python
// layer serializes calls (hearth.h: one thread at a time).
struct TrainerHandle {
  TrainerHandle(std::shared_ptr<ModelHandle> m, const DatasetHandle& data,
                const hearth_trainer_params& params)
      : model(std::move(m)), trainer(model->model, data.dataset, &params) {}
  std::shared_ptr<ModelHandle> model;
  hearth::Trainer trainer;
};

// The options as keyword arguments, in hearth_trainer_params' terms.
std::shared_ptr<TrainerHandle> MakeTrainer(
    std::shared_ptr<ModelHandle> model, std::shared_ptr<DatasetHandle> data, uint32_t rank,
    float alpha, bool use_rslora, const std::string& targets, float lr, float beta1, float beta2,
    float eps, float weight_decay, uint32_t schedule, uint32_t warmup_steps, float max_grad_norm,
    uint32_t batch, uint32_t grad_accum, uint32_t epochs, float eval_split, uint64_t seed,
    uint32_t n_threads, const std::string& init_adapter, float lora_dropout, bool bf16) {
  if (model == nullptr) throw hearth::Error(HEARTH_INVALID_ARGUMENT, "model is None");
  if (data == nullptr) throw hearth::Error(HEARTH_INVALID_ARGUMENT, "data is None");
  hearth_trainer_params p = HEARTH_TRAINER_PARAMS_INIT;
  p.rank = rank;
  p.alpha = alpha;
  p.use_rslora = use_rslora ? 1 : 0;
  p.targets = targets.c_str();
  p.lr = lr;
  p.beta1 = beta1;
  p.beta2 = beta2;
  p.eps = eps;
  p.weight_decay = weight_decay;
  p.schedule = schedule;
  p.warmup_steps = warmup_steps;
  p.max_grad_norm = max_grad_norm;
  p.batch = batch;
  p.grad_accum = grad_accum;
  p.epochs = epochs;
  p.eval_split = eval_split;
  p.seed = seed;
  p.n_threads = n_threads;
  p.init_adapter = init_adapter.empty() ? nullptr : init_adapter.c_str();
  p.lora_dropout = lora_dropout;
  p.bf16_products = bf16 ? 1 : 0;
  py::gil_scoped_release release;
  return std::make_shared<TrainerHandle>(std::move(model), *data, p);
}

py::dict TrainerInfo(const TrainerHandle& t) {
  const hearth_trainer_info i = t.trainer.Info();
  py::dict d;
  d["step"] = i.step;
  d["total_steps"] = i.total_steps;
  d["n_train"] = i.n_train;
  d["n_eval"] = i.n_eval;
  return d;
}

py::dict TrainerStep(TrainerHandle& t) {
  hearth_train_progress p;
  {
    py::gil_scoped_release release;
    p = t.trainer.Step();
  }
  py::dict d;
  d["step"] = p.step;
  d["total_steps"] = p.total_steps;
  d["epoch"] = p.epoch;
  d["loss"] = p.loss;
  d["grad_norm"] = p.grad_norm;
  d["lr"] = p.lr;
  d["n_tokens"] = p.n_tokens;
  d["n_trained"] = p.n_trained;
  return d;
}

double TrainerEvaluate(TrainerHandle& t) {
  py::gil_scoped_release release;
  return t.trainer.Evaluate();
}

void TrainerSave(TrainerHandle& t, const std::string& dir) {
  py::gil_scoped_release release;
  t.trainer.Save(dir);
}

void TrainerSaveGguf(TrainerHandle& t, const std::string& path, const std::string& dtype) {
  py::gil_scoped_release release;
  t.trainer.SaveGguf(path, dtype);
}

void TrainerSaveCheckpoint(TrainerHandle& t, const std::string& dir) {
  py::gil_scoped_release release;
  t.trainer.SaveCheckpoint(dir);
}

void TrainerResume(TrainerHandle& t, const std::string& dir) {
  py::gil_scoped_release release;
  t.trainer.Resume(dir);
}

std::shared_ptr<AdapterHandle> TrainerAdapter(TrainerHandle& t) {
  py::gil_scoped_release release;
  return std::make_shared<AdapterHandle>(t.model, t.trainer.GetAdapter());
}

}  // namespace

void RegisterTrainer(py::module_& m) {
  py::class_<TrainerHandle, std::shared_ptr<TrainerHandle>>(m, "Trainer")
      .def(py::init(&MakeTrainer), py::arg("model"), py::arg("data"), py::arg("rank"),
           py::arg("alpha"), py::arg("use_rslora"), py::arg("targets"), py::arg("lr"),
           py::arg("beta1"), py::arg("beta2"), py::arg("eps"), py::arg("weight_decay"),
           py::arg("schedule"), py::arg("warmup_steps"), py::arg("max_grad_norm"), py::arg("batch"),
           py::arg("grad_accum"), py::arg("epochs"), py::arg("eval_split"), py::arg("seed"),
           py::arg("n_threads"), py::arg("init_adapter"), py::arg("lora_dropout"), py::arg("bf16"))
      .def("info", &TrainerInfo)
      .def("step", &TrainerStep)
      .def("evaluate", &TrainerEvaluate)
      .def("save", &TrainerSave, py::arg("dir"))
      .def("save_gguf", &TrainerSaveGguf, py::arg("path"), py::arg("dtype"))
      .def("save_checkpoint", &TrainerSaveCheckpoint, py::arg("dir"))
      .def("resume", &TrainerResume, py::arg("dir"))
      .def("adapter", &TrainerAdapter);
}

}  // namespace hearth_py
