// adapter.cc — LoRA adapters for hearth._hearth: loading (bound to a model,
// or for inspection only), what an adapter is (info and targets), and the
// merged-model export. Attaching adapters to a session lives in session.cc.
//
// Loading validates and uploads the adapter's weights and the export
// computes and writes a whole model, so both run with the GIL released.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "bindings/python/src/binding.h"

namespace hearth_py {
namespace {

// `model` is None for an adapter that is only parsed and checked.
std::shared_ptr<AdapterHandle> LoadAdapter(std::shared_ptr<ModelHandle> model,
                                           const std::string& path, bool ignore_base) {
  hearth_adapter_params params = HEARTH_ADAPTER_PARAMS_INIT;
  params.ignore_base_fingerprint = ignore_base ? 1 : 0;
  py::gil_scoped_release release;
  return std::make_shared<AdapterHandle>(std::move(model), path, &params);
}

const char* FormatName(uint32_t format) {
  switch (format) {
    case HEARTH_ADAPTER_PEFT:
      return "peft";
    case HEARTH_ADAPTER_GGUF:
      return "gguf";
    default:
      return "unknown";  // a format added by a newer libhearth
  }
}

py::dict AdapterInfo(const AdapterHandle& a) {
  const hearth_adapter_info i = a.adapter.Info();
  py::dict d;
  d["format"] = FormatName(i.format);
  d["path"] = ToStr(i.path);
  d["base_architecture"] = ToStr(i.base_architecture);
  d["base_model"] = ToStr(i.base_model);
  d["rank"] = i.rank;
  d["alpha"] = i.alpha;
  d["use_rslora"] = i.use_rslora != 0;
  d["n_targets"] = i.n_targets;
  d["n_params"] = i.n_params;
  d["bound"] = i.bound != 0;
  d["provenance"] = ToStr(i.provenance);
  return d;
}

// (weight, source, rank, scale, n_in, n_out) per target, in file order.
py::list AdapterTargets(const AdapterHandle& a) {
  py::list out;
  for (const hearth_adapter_target& t : a.adapter.Targets()) {
    out.append(py::make_tuple(ToStr(t.weight), ToStr(t.source), t.rank, t.scale, t.n_in, t.n_out));
  }
  return out;
}

// `merged_type` None or "" is hearth.h's default.
void ExportMerged(const ModelHandle& model, const AdapterList& adapters, const std::string& path,
                  std::optional<std::string> merged_type) {
  AdapterArrays arrays(adapters);
  hearth_export_params params = HEARTH_EXPORT_PARAMS_INIT;
  params.merged_type = merged_type ? merged_type->c_str() : nullptr;
  py::gil_scoped_release release;
  hearth::Check(hearth_model_export_merged(model.model.get(), arrays.handles.data(),
                                           arrays.scales.data(), arrays.handles.size(),
                                           path.c_str(), &params));
}

}  // namespace

AdapterArrays::AdapterArrays(const AdapterList& list) {
  handles.reserve(list.size());
  scales.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i].first == nullptr) {
      throw hearth::Error(HEARTH_INVALID_ARGUMENT,
                          "adapters[" + std::to_string(i) + "] is None, not an adapter");
    }
    handles.push_back(list[i].first->adapter.get());
    scales.push_back(list[i].second);
  }
}

void RegisterAdapter(py::module_& m) {
  py::class_<AdapterHandle, std::shared_ptr<AdapterHandle>>(m, "Adapter")
      .def(py::init(&LoadAdapter), py::arg("model").none(true), py::arg("path"),
           py::arg("ignore_base") = false)
      .def("info", &AdapterInfo)
      .def("targets", &AdapterTargets);
  m.def("export_merged", &ExportMerged, py::arg("model"), py::arg("adapters"), py::arg("path"),
        py::arg("merged_type").none(true));
}

}  // namespace hearth_py
