// binding.h — what the translation units of hearth._hearth share: the
// shared-ownership handles that keep C objects alive in the order hearth.h
// needs (runtime > model > session, model > adapter), the per-session "in
// use" guard, and the helpers that turn C results into Python objects.
//
// This extension is a client of hearth.h (through hearth.hpp) and nothing
// else. Argument checking that is about Python types lives in the pure-Python
// layer (bindings/python/hearth/*.py); the functions here take already-typed
// values (bytes, int32 arrays, plain ints).
#ifndef HEARTH_BINDINGS_PYTHON_SRC_BINDING_H_
#define HEARTH_BINDINGS_PYTHON_SRC_BINDING_H_

#include <pybind11/pybind11.h>

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hearth/hearth.h"
#include "hearth/hearth.hpp"

namespace hearth_py {

namespace py = pybind11;

// A runtime shared by every model made from it (hearth.h: the runtime must
// outlive its models).
struct RuntimeHandle {
  explicit RuntimeHandle(const hearth_runtime_params& params) : runtime(params) {}
  hearth::Runtime runtime;
};

// A model keeps its runtime alive; sessions keep the model alive.
struct ModelHandle {
  ModelHandle(std::shared_ptr<RuntimeHandle> rt, const std::string& path,
              const hearth_model_params& params)
      : runtime(std::move(rt)), model(runtime->runtime, path, params) {}
  std::shared_ptr<RuntimeHandle> runtime;
  hearth::Model model;
};

// A LoRA adapter. The C adapter holds its own reference to the C model, but
// the model's runtime must outlive it too, so the whole ModelHandle is kept.
// `model` is null for an adapter loaded for inspection only.
struct AdapterHandle {
  AdapterHandle(std::shared_ptr<ModelHandle> m, const std::string& path,
                const hearth_adapter_params* params = nullptr)
      : model(std::move(m)), adapter(model ? &model->model : nullptr, path, params) {}
  AdapterHandle(std::shared_ptr<ModelHandle> m, hearth::Adapter&& trained)
      : model(std::move(m)), adapter(std::move(trained)) {}
  std::shared_ptr<ModelHandle> model;
  hearth::Adapter adapter;
};

// Training data; keeps the model (and its runtime) alive as long as the dataset.
struct DatasetHandle {
  DatasetHandle(std::shared_ptr<ModelHandle> m, const std::string& path,
                const hearth_dataset_params& params)
      : model(std::move(m)), dataset(model->model, path, &params) {}
  std::shared_ptr<ModelHandle> model;
  hearth::Dataset dataset;
};

// (role, content) pairs as the Python layer passes a conversation (checked:
// no NUL bytes), and its C view, which borrows the strings.
using Conversation = std::vector<std::pair<std::string, std::string>>;
std::vector<hearth_chat_message> ChatMessages(const Conversation& conversation);

// Adapters with their scales, as the Python layer passes them (already
// checked: no None, finite scales).
using AdapterList = std::vector<std::pair<std::shared_ptr<AdapterHandle>, float>>;

// The C arrays of hearth_session_set_adapters / hearth_model_export_merged;
// borrows the handles of `list`, which must outlive it.
struct AdapterArrays {
  explicit AdapterArrays(const AdapterList& list);
  std::vector<const hearth_adapter*> handles;
  std::vector<float> scales;
};

// A session and the flag that enforces hearth.h's "one thread at a time":
// every call that touches the C session takes `busy` first, and a second
// caller gets FAILED_PRECONDITION instead of a data race.
struct SessionCore {
  SessionCore(std::shared_ptr<ModelHandle> m, const hearth_session_params& params)
      : model(std::move(m)), session(model->model, params) {}
  std::shared_ptr<ModelHandle> model;
  hearth::Session session;
  std::atomic<bool> busy{false};
};

// Takes SessionCore::busy for its lifetime; throws hearth::Error
// (FAILED_PRECONDITION) when another call or an unfinished stream holds it.
class BusyGuard {
 public:
  explicit BusyGuard(SessionCore& core);
  ~BusyGuard();
  BusyGuard(const BusyGuard&) = delete;
  BusyGuard& operator=(const BusyGuard&) = delete;
  // Hands the flag to someone else (the stream's worker thread), who clears it.
  void Release() { core_ = nullptr; }

 private:
  SessionCore* core_;
};

// UTF-8 → str, replacing invalid sequences (text from a model file is data,
// and a UnicodeDecodeError from a metadata string would be a poor error).
py::str ToStr(std::string_view text);
py::str ToStr(const char* text);  // NULL → ""

// Arrays cross as Python buffers (PEP 3118), not through numpy's C API: the
// module then works with any numpy (pybind11 < 2.12 misreads numpy 2's dtype
// struct), and the Python layer makes the numpy arrays.
//
// A copy of a 1-D int32 buffer, taken with the GIL held: another thread could
// write to the buffer once the GIL is released.
std::vector<int32_t> CopyIds(const py::buffer& ids);
// A 1-D float32 buffer of exactly `n` elements to write to (a contiguous one,
// which is what numpy.empty gives); `what` names it in errors.
float* FloatOut(const py::buffer_info& info, size_t n, const char* what);
// The elements of a 1-D contiguous float32 buffer.
std::vector<float> CopyFloats(const py::buffer& values, const char* what);

// Reads the fields of a hearth.SamplingParams (or anything with the same
// attributes) into the C struct.
hearth_sampling_params SamplingFromPy(const py::handle& params);

// True while the interpreter shuts down (the GIL must not be released then).
bool InterpreterFinalizing();

// Registration of the classes of each translation unit.
void RegisterSession(py::module_& m);
void RegisterAdapter(py::module_& m);
void RegisterDataset(py::module_& m);
void RegisterTrainer(py::module_& m);
void RegisterEngine(py::module_& m);

}  // namespace hearth_py

#endif  // HEARTH_BINDINGS_PYTHON_SRC_BINDING_H_
