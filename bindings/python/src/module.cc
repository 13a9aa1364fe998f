// module.cc — the hearth._hearth extension: error translation, constants,
// runtimes, models (tokens, info, metadata) and samplers. Sessions and
// streaming live in session.cc, LoRA adapters in adapter.cc, the batching
// engine in engine.cc.
//
// Every C call that can take long (plugin discovery, model load,
// tokenization of a long text) runs with the GIL released; calls that only
// read a few fields keep it.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bindings/python/src/binding.h"

namespace hearth_py {
namespace {

// Raises the hearth.errors class for `code` (hearth.errors picks it). If that
// module cannot be imported, the import error is what the caller sees.
void SetPythonError(hearth_status_code code, const char* message) {
  try {
    py::object make = py::module_::import("hearth.errors").attr("_from_status");
    py::object exc = make(static_cast<int>(code), ToStr(message));
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc.ptr())), exc.ptr());
  } catch (py::error_already_set& e) {
    e.restore();
  }
}

py::tuple DeviceTuple(const hearth_device_info& d) {
  return py::make_tuple(ToStr(d.name), ToStr(d.plugin), ToStr(d.vendor), ToStr(d.description),
                        d.memory_total, d.memory_free, ToStr(d.arch), d.simd_width,
                        d.compute_units);
}

py::tuple PluginTuple(const hearth_plugin_info& p) {
  py::object load_error = py::none();
  if (p.load_error != nullptr) load_error = ToStr(p.load_error);
  py::object probe_reason = py::none();
  if (p.probe_reason != nullptr) probe_reason = ToStr(p.probe_reason);
  return py::make_tuple(ToStr(p.name), ToStr(p.path), ToStr(p.version), p.abi_major, p.abi_minor,
                        p.probe_score, load_error, probe_reason);
}

std::shared_ptr<RuntimeHandle> MakeRuntime(std::optional<std::string> plugin_path,
                                           bool explicit_only, int log_level) {
  hearth_runtime_params params = HEARTH_RUNTIME_PARAMS_INIT;
  params.plugin_path = plugin_path ? plugin_path->c_str() : nullptr;
  params.explicit_only = explicit_only ? 1 : 0;
  params.log_level = log_level;
  py::gil_scoped_release release;
  return std::make_shared<RuntimeHandle>(params);
}

py::list Devices(const RuntimeHandle& rt) {
  py::list out;
  for (const hearth_device_info& d : rt.runtime.Devices()) out.append(DeviceTuple(d));
  return out;
}

py::list Plugins(const RuntimeHandle& rt) {
  py::list out;
  for (const hearth_plugin_info& p : rt.runtime.Plugins()) out.append(PluginTuple(p));
  return out;
}

std::shared_ptr<ModelHandle> LoadModel(std::shared_ptr<RuntimeHandle> rt, const std::string& path,
                                       std::optional<std::string> device, uint32_t n_threads) {
  hearth_model_params params = HEARTH_MODEL_PARAMS_INIT;
  params.device = device ? device->c_str() : nullptr;
  params.n_threads = n_threads;
  py::gil_scoped_release release;
  return std::make_shared<ModelHandle>(std::move(rt), path, params);
}

py::dict ModelInfo(const ModelHandle& m) {
  const hearth_model_info i = m.model.Info();
  py::dict d;
  d["architecture"] = ToStr(i.architecture);
  d["name"] = ToStr(i.name);
  d["quantization"] = ToStr(i.quantization);
  d["tokenizer"] = ToStr(i.tokenizer);
  d["device"] = ToStr(i.device);
  d["n_params"] = i.n_params;
  d["file_size"] = i.file_size;
  d["n_vocab"] = i.n_vocab;
  d["n_ctx_train"] = i.n_ctx_train;
  d["n_embd"] = i.n_embd;
  d["n_layer"] = i.n_layer;
  d["n_head"] = i.n_head;
  d["n_head_kv"] = i.n_head_kv;
  d["token_bos"] = i.token_bos;
  d["token_eos"] = i.token_eos;
  d["tokenizer_kind"] = i.tokenizer_kind;
  return d;
}

py::object ModelMeta(const ModelHandle& m, const std::string& key) {
  std::optional<std::string> v = m.model.Meta(key);
  if (!v) return py::none();
  return ToStr(*v);
}

std::vector<int32_t> Tokenize(const ModelHandle& m, const std::string& text, uint32_t flags) {
  py::gil_scoped_release release;
  return m.model.Tokenize(text, flags);
}

py::bytes Detokenize(const ModelHandle& m, const py::buffer& ids, uint32_t flags) {
  std::vector<int32_t> copy = CopyIds(ids);
  std::string text;
  {
    py::gil_scoped_release release;
    text = m.model.Detokenize(copy, flags);
  }
  return py::bytes(text);
}

py::bytes ChatFormat(const ModelHandle& m, const Conversation& messages,
                     bool add_generation_prompt) {
  const std::vector<hearth_chat_message> list = ChatMessages(messages);
  std::string text;
  {
    py::gil_scoped_release release;
    size_t len = 0;
    hearth::Check(hearth_chat_format(m.model.get(), list.data(), list.size(),
                                     add_generation_prompt ? 1 : 0, nullptr, 0, &len));
    text.resize(len);
    if (len > 0) {
      hearth::Check(hearth_chat_format(m.model.get(), list.data(), list.size(),
                                       add_generation_prompt ? 1 : 0, &text[0], text.size(), &len));
      text.resize(len);
    }
  }
  return py::bytes(text);
}

// The ids of a conversation, markup parsed, contents plain (hearth_chat_tokenize).
std::vector<int32_t> ChatTokenize(const ModelHandle& m, const Conversation& messages,
                                  bool add_generation_prompt) {
  const std::vector<hearth_chat_message> list = ChatMessages(messages);
  std::vector<int32_t> ids;
  py::gil_scoped_release release;
  size_t n = 0;
  hearth::Check(hearth_chat_tokenize(m.model.get(), list.data(), list.size(),
                                     add_generation_prompt ? 1 : 0, nullptr, 0, &n));
  ids.resize(n);
  hearth::Check(hearth_chat_tokenize(m.model.get(), list.data(), list.size(),
                                     add_generation_prompt ? 1 : 0, ids.data(), ids.size(), &n));
  ids.resize(n);
  return ids;
}

py::object TokenBytes(const ModelHandle& m, int32_t token) {
  size_t len = 0;
  const char* p = hearth_token_text(m.model.get(), token, &len);
  if (p == nullptr) return py::none();
  return py::bytes(p, len);
}

// The sampling chain for hand-written decode loops. Calls keep the GIL: they
// are short, and holding it serializes threads that share one sampler.
class PySampler {
 public:
  explicit PySampler(const py::handle& params) : sampler_(SamplingFromPy(params)) {}

  int32_t Sample(const py::buffer& logits) {
    const std::vector<float> copy = CopyFloats(logits, "logits");
    return sampler_.Sample(copy.data(), copy.size());
  }
  void Accept(int32_t token) { sampler_.Accept(token); }
  void Reset() { sampler_.Reset(); }

 private:
  hearth::Sampler sampler_;
};

py::dict SamplingDefaults() {
  const hearth_sampling_params p = HEARTH_SAMPLING_PARAMS_INIT;
  py::dict d;
  d["temperature"] = p.temperature;
  d["top_k"] = p.top_k;
  d["top_p"] = p.top_p;
  d["min_p"] = p.min_p;
  d["repeat_penalty"] = p.repeat_penalty;
  d["presence_penalty"] = p.presence_penalty;
  d["frequency_penalty"] = p.frequency_penalty;
  d["penalty_last_n"] = p.penalty_last_n;
  d["seed"] = p.seed;
  return d;
}

// hearth.convert / hearth.quantize: the C call runs without the GIL; a
// Python progress callback takes it back for each tensor, and an exception
// it raises stops the job and is re-raised here.
struct ConvertProgress {
  py::object fn;
  std::optional<py::error_already_set> error;
};

int CallConvertProgress(size_t index, size_t count, const char* tensor, void* user) {
  auto* p = static_cast<ConvertProgress*>(user);
  py::gil_scoped_acquire gil;
  try {
    py::object r = p->fn(index, count, tensor);
    return r.is_none() || r.cast<bool>() ? 0 : 1;  // False stops
  } catch (py::error_already_set& e) {
    p->error.emplace(std::move(e));
    return 1;
  }
}

void ConvertFile(bool quantize, const std::string& in, const std::string& out,
                 const std::string& type, const py::object& progress) {
  ConvertProgress cp{progress, std::nullopt};
  hearth_convert_params params = HEARTH_CONVERT_PARAMS_INIT;
  params.type = type.empty() ? nullptr : type.c_str();
  if (!progress.is_none()) {
    params.progress = CallConvertProgress;
    params.user_data = &cp;
  }
  hearth_error* err = nullptr;
  {
    py::gil_scoped_release release;
    err = quantize ? hearth_quantize(in.c_str(), out.c_str(), &params)
                   : hearth_convert(in.c_str(), out.c_str(), &params);
  }
  if (cp.error) {
    hearth_error_free(err);
    throw std::move(*cp.error);
  }
  hearth::Check(err);
}

}  // namespace

std::vector<hearth_chat_message> ChatMessages(const Conversation& conversation) {
  std::vector<hearth_chat_message> list;
  list.reserve(conversation.size());
  for (const auto& [role, content] : conversation) list.push_back({role.c_str(), content.c_str()});
  return list;
}

BusyGuard::BusyGuard(SessionCore& core) : core_(&core) {
  bool expected = false;
  if (!core.busy.compare_exchange_strong(expected, true)) {
    core_ = nullptr;
    throw hearth::Error(HEARTH_FAILED_PRECONDITION,
                        "the session is in use: another thread is calling it, or a stream() "
                        "over it is still open (finish it or call .close() on it)");
  }
}

BusyGuard::~BusyGuard() {
  if (core_ != nullptr) core_->busy.store(false);
}

std::vector<int32_t> CopyIds(const py::buffer& ids) {
  const py::buffer_info info = ids.request();
  if (info.ndim != 1 || info.itemsize != 4 ||
      info.format != py::format_descriptor<int32_t>::format()) {
    throw hearth::Error(HEARTH_INVALID_ARGUMENT, "token ids must be a 1-D int32 buffer");
  }
  std::vector<int32_t> out(static_cast<size_t>(info.shape[0]));
  const char* base = static_cast<const char*>(info.ptr);
  for (size_t i = 0; i < out.size(); ++i) {
    std::memcpy(&out[i], base + static_cast<py::ssize_t>(i) * info.strides[0], sizeof(int32_t));
  }
  return out;
}

float* FloatOut(const py::buffer_info& info, size_t n, const char* what) {
  if (info.readonly || info.ndim != 1 || info.itemsize != 4 ||
      info.format != py::format_descriptor<float>::format() ||
      static_cast<size_t>(info.shape[0]) != n || (n > 1 && info.strides[0] != 4)) {
    throw hearth::Error(HEARTH_INVALID_ARGUMENT,
                        std::string(what) + " must be a writable contiguous float32 buffer of " +
                            std::to_string(n) + " elements");
  }
  return static_cast<float*>(info.ptr);
}

std::vector<float> CopyFloats(const py::buffer& values, const char* what) {
  const py::buffer_info info = values.request();
  if (info.ndim != 1 || info.itemsize != 4 ||
      info.format != py::format_descriptor<float>::format()) {
    throw hearth::Error(HEARTH_INVALID_ARGUMENT,
                        std::string(what) + " must be a 1-D float32 buffer");
  }
  std::vector<float> out(static_cast<size_t>(info.shape[0]));
  const char* base = static_cast<const char*>(info.ptr);
  for (size_t i = 0; i < out.size(); ++i) {
    std::memcpy(&out[i], base + static_cast<py::ssize_t>(i) * info.strides[0], sizeof(float));
  }
  return out;
}

py::str ToStr(std::string_view text) {
  PyObject* s = PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "replace");
  if (s == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(s);
}

py::str ToStr(const char* text) { return ToStr(std::string_view(text ? text : "")); }

bool InterpreterFinalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing() != 0;
#else
  return _Py_IsFinalizing() != 0;
#endif
}

hearth_sampling_params SamplingFromPy(const py::handle& params) {
  hearth_sampling_params p = HEARTH_SAMPLING_PARAMS_INIT;
  p.temperature = params.attr("temperature").cast<float>();
  p.top_k = params.attr("top_k").cast<int32_t>();
  p.top_p = params.attr("top_p").cast<float>();
  p.min_p = params.attr("min_p").cast<float>();
  p.repeat_penalty = params.attr("repeat_penalty").cast<float>();
  p.presence_penalty = params.attr("presence_penalty").cast<float>();
  p.frequency_penalty = params.attr("frequency_penalty").cast<float>();
  p.penalty_last_n = params.attr("penalty_last_n").cast<int32_t>();
  p.seed = params.attr("seed").cast<uint64_t>();
  return p;
}

}  // namespace hearth_py

PYBIND11_MODULE(_hearth, m) {
  using namespace hearth_py;
  m.doc() = "Low-level binding of hearth.h; use the `hearth` package instead.";

  const uint32_t abi = hearth_abi_version();
  if ((abi >> 16) != HEARTH_ABI_VERSION_MAJOR) {
    throw py::import_error("hearth: libhearth ABI major " + std::to_string(abi >> 16) +
                           " does not match the " + std::to_string(HEARTH_ABI_VERSION_MAJOR) +
                           " this module was built for");
  }

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const hearth::Error& e) {
      SetPythonError(e.code(), e.what());
    }
  });

  m.attr("ABI_VERSION_MAJOR") = HEARTH_ABI_VERSION_MAJOR;
  m.attr("ABI_VERSION_MINOR") = HEARTH_ABI_VERSION_MINOR;
  m.attr("TOKENIZE_ADD_SPECIAL") = HEARTH_TOKENIZE_ADD_SPECIAL;
  m.attr("TOKENIZE_PARSE_SPECIAL") = HEARTH_TOKENIZE_PARSE_SPECIAL;
  m.attr("DETOKENIZE_RENDER_SPECIAL") = HEARTH_DETOKENIZE_RENDER_SPECIAL;
  m.def("abi_version", [] {
    const uint32_t v = hearth_abi_version();
    return py::make_tuple(v >> 16, v & 0xffffu);
  });
  m.def("version_string", [] { return ToStr(hearth_version_string()); });
  m.def("sampling_defaults", &SamplingDefaults);
  m.def(
      "convert",
      [](const std::string& dir, const std::string& out, const std::string& type,
         const py::object& progress) { ConvertFile(false, dir, out, type, progress); },
      py::arg("hf_dir"), py::arg("out"), py::arg("type"), py::arg("progress"));
  m.def(
      "quantize",
      [](const std::string& in, const std::string& out, const std::string& type,
         const py::object& progress) { ConvertFile(true, in, out, type, progress); },
      py::arg("src"), py::arg("out"), py::arg("type"), py::arg("progress"));
  m.def(
      "check_sampling",
      [](const py::handle& params) { hearth::Sampler check(SamplingFromPy(params)); },
      "Raises the C library's error when the sampling parameters are invalid.");

  py::class_<RuntimeHandle, std::shared_ptr<RuntimeHandle>>(m, "Runtime")
      .def(py::init(&MakeRuntime), py::arg("plugin_path"), py::arg("explicit_only"),
           py::arg("log_level"))
      .def("devices", &Devices)
      .def("plugins", &Plugins);

  py::class_<ModelHandle, std::shared_ptr<ModelHandle>>(m, "Model")
      .def(py::init(&LoadModel), py::arg("runtime"), py::arg("path"), py::arg("device"),
           py::arg("n_threads"))
      .def("info", &ModelInfo)
      .def("meta", &ModelMeta, py::arg("key"))
      .def("tokenize", &Tokenize, py::arg("text"), py::arg("flags"))
      .def("detokenize", &Detokenize, py::arg("ids"), py::arg("flags"))
      .def("token_bytes", &TokenBytes, py::arg("token"))
      .def("chat_format", &ChatFormat, py::arg("messages"), py::arg("add_generation_prompt"))
      .def("chat_tokenize", &ChatTokenize, py::arg("messages"),
           py::arg("add_generation_prompt"))
      .def(
          "is_eog",
          [](const ModelHandle& m, int32_t token) {
            return hearth_token_is_eog(m.model.get(), token) != 0;
          },
          py::arg("token"));

  py::class_<PySampler>(m, "Sampler")
      .def(py::init<const py::handle&>(), py::arg("params"))
      .def("sample", &PySampler::Sample, py::arg("logits"))
      .def("accept", &PySampler::Accept, py::arg("token"))
      .def("reset", &PySampler::Reset);

  RegisterAdapter(m);  // first: Session.set_adapters takes adapters
  RegisterSession(m);
  RegisterDataset(m);
  RegisterTrainer(m);
  RegisterEngine(m);  // after Adapter: engines take adapters
}
