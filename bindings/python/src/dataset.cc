// dataset.cc — training data for hearth._hearth: a JSONL file read and
// tokenized for a model (hearth_dataset_*). Loading tokenizes every record,
// so it runs with the GIL released. Examples come out as raw bytes (int32
// ids, uint8 flags) that the Python layer views as numpy arrays.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bindings/python/src/binding.h"

namespace hearth_py {
namespace {

std::shared_ptr<DatasetHandle> LoadDataset(std::shared_ptr<ModelHandle> model,
                                           const std::string& path, uint32_t max_tokens,
                                           bool truncate) {
  if (model == nullptr) throw hearth::Error(HEARTH_INVALID_ARGUMENT, "model is None");
  hearth_dataset_params params = HEARTH_DATASET_PARAMS_INIT;
  params.max_tokens = max_tokens;
  params.truncate = truncate ? 1 : 0;
  py::gil_scoped_release release;
  return std::make_shared<DatasetHandle>(std::move(model), path, params);
}

py::dict DatasetInfo(const DatasetHandle& d) {
  const hearth_dataset_info i = d.dataset.Info();
  py::dict out;
  out["max_tokens"] = i.max_tokens;
  out["n_examples"] = i.n_examples;
  out["n_tokens"] = i.n_tokens;
  out["n_trained_tokens"] = i.n_trained_tokens;
  out["longest"] = i.longest;
  out["n_truncated"] = i.n_truncated;
  out["n_text"] = i.n_text;
  out["n_prompt_completion"] = i.n_prompt_completion;
  out["n_messages"] = i.n_messages;
  return out;
}

// (ids as int32 bytes, trained flags as uint8 bytes, line)
py::tuple DatasetExample(const DatasetHandle& d, size_t index) {
  std::vector<int32_t> tokens;
  std::vector<uint8_t> trained;
  uint64_t line = 0;
  d.dataset.Example(index, &tokens, &trained, &line);
  return py::make_tuple(
      py::bytes(reinterpret_cast<const char*>(tokens.data()), tokens.size() * sizeof(int32_t)),
      py::bytes(reinterpret_cast<const char*>(trained.data()), trained.size()), line);
}

}  // namespace

void RegisterDataset(py::module_& m) {
  py::class_<DatasetHandle, std::shared_ptr<DatasetHandle>>(m, "Dataset")
      .def(py::init(&LoadDataset), py::arg("model"), py::arg("path"), py::arg("max_tokens"),
           py::arg("truncate"))
      .def("info", &DatasetInfo)
      .def("example", &DatasetExample, py::arg("index"));
}

}  // namespace hearth_py
