// session.cc — sessions, their LoRA adapters, and streaming for
// hearth._hearth.
//
// hearth_session_generate blocks and reports text through a callback. The
// non-streaming path runs it on the calling thread with the GIL released.
// The streaming path runs it on a worker std::thread that never touches
// Python: its callback hands each piece to a small bounded queue and waits
// while the queue is full, so generation stays at most a piece or two ahead
// of the reader. Stream.next() waits on the queue with the GIL released;
// Stream.close() (also run by the destructor) makes the callback return
// "stop" and joins the worker. Because the worker never needs the GIL, close()
// cannot deadlock even when it runs from a garbage-collector pass.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "bindings/python/src/binding.h"

namespace hearth_py {
namespace {

// How often a wait with the GIL released comes back to let Python handle
// signals (Ctrl-C) on the main thread.
constexpr auto kSignalPoll = std::chrono::milliseconds(100);
// Pieces the worker may produce ahead of the reader.
constexpr size_t kMaxQueued = 2;

// What hearth_session_generate needs, owned in one place so that the stop
// string pointers stay valid for the whole call.
struct GenerateArgs {
  // The prompt: text, or a conversation of (role, content) pairs (`chat`).
  std::string prompt;
  bool chat = false;
  Conversation conversation;
  std::vector<hearth_chat_message> messages;  // borrows `conversation`
  std::vector<std::string> stop;
  std::vector<const char*> stop_ptrs;
  std::string constraint, constraint_config;  // params points into them
  hearth_generate_params params = HEARTH_GENERATE_PARAMS_INIT;

  GenerateArgs(const GenerateArgs&) = delete;  // `messages` and `params.stop` point inside
  GenerateArgs& operator=(const GenerateArgs&) = delete;

  // `prompt_in` is bytes, or a list of (bytes, bytes) pairs (checked by the
  // Python layer: no NUL bytes).
  GenerateArgs(const py::object& prompt_in, int32_t max_tokens, const py::handle& sampling,
               std::vector<std::string> stop_in, uint32_t tokenize_flags, bool use_default_flags,
               bool reuse_prefix, std::string constraint_in, std::string constraint_config_in)
      : stop(std::move(stop_in)),
        constraint(std::move(constraint_in)),
        constraint_config(std::move(constraint_config_in)) {
    if (py::isinstance<py::bytes>(prompt_in)) {
      prompt = prompt_in.cast<std::string>();
    } else {
      chat = true;
      conversation = prompt_in.cast<Conversation>();
      messages = ChatMessages(conversation);
    }
    params.max_tokens = max_tokens;
    params.reuse_prefix = reuse_prefix ? 1 : 0;
    params.sampling = SamplingFromPy(sampling);
    params.tokenize_flags = tokenize_flags;
    params.use_default_flags = use_default_flags ? 1 : 0;
    for (const std::string& s : stop) {
      if (s.find('\0') != std::string::npos) {
        throw hearth::Error(HEARTH_INVALID_ARGUMENT, "a stop string contains a NUL character");
      }
      stop_ptrs.push_back(s.c_str());
    }
    params.stop = stop_ptrs.empty() ? nullptr : stop_ptrs.data();
    params.n_stop = stop_ptrs.size();
    if (!constraint.empty()) {
      params.constraint = constraint.c_str();
      params.constraint_config = constraint_config.c_str();
    }
  }
};

py::tuple ResultTuple(const hearth_generate_result& r) {
  return py::make_tuple(r.n_prompt_tokens, r.n_generated_tokens, static_cast<int>(r.stop_reason),
                        r.prompt_seconds, r.generate_seconds);
}

bool OnMainThread() {
  static const unsigned long main_ident =
      py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
  return PyThread_get_thread_ident() == main_ident;
}

// State shared by a stream's reader and its worker thread.
struct StreamState {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> pieces;
  bool cancel = false;    // the reader is gone: stop at the next piece
  bool finished = false;  // the worker's C call returned
  bool failed = false;
  hearth_status_code code = HEARTH_OK;
  std::string message;
  hearth_generate_result result = HEARTH_GENERATE_RESULT_INIT;
};

// The worker: runs the C call, then reports how it ended. Never throws and
// never touches Python.
void RunStream(std::shared_ptr<SessionCore> core, std::shared_ptr<GenerateArgs> args,
               std::shared_ptr<StreamState> st) noexcept {
  hearth_generate_result result = HEARTH_GENERATE_RESULT_INIT;
  bool failed = false;
  hearth_status_code code = HEARTH_OK;
  std::string message;
  try {
    const hearth::Session::TextCallback push = [&st](std::string_view piece) {
      std::unique_lock<std::mutex> lock(st->mu);
      st->cv.wait(lock, [&st] { return st->cancel || st->pieces.size() < kMaxQueued; });
      if (st->cancel) return false;
      st->pieces.emplace_back(piece);
      st->cv.notify_all();
      return true;
    };
    result = args->chat ? core->session.GenerateChat(args->messages, &args->params, push)
                        : core->session.Generate(args->prompt, &args->params, push);
  } catch (const hearth::Error& e) {
    failed = true, code = e.code(), message = e.what();
  } catch (const std::bad_alloc&) {
    failed = true, code = HEARTH_RESOURCE_EXHAUSTED, message = "out of memory while streaming";
  } catch (const std::exception& e) {
    failed = true, code = HEARTH_INTERNAL, message = e.what();
  }
  // The session is free again before the reader can see the end, so a
  // caller that finished iterating may use it at once.
  core->busy.store(false);
  std::lock_guard<std::mutex> lock(st->mu);
  st->result = result;
  st->failed = failed;
  st->code = code;
  st->message = std::move(message);
  st->finished = true;
  st->cv.notify_all();
}

class PyStream {
 public:
  PyStream(std::shared_ptr<SessionCore> core, std::shared_ptr<GenerateArgs> args)
      : state_(std::make_shared<StreamState>()) {
    BusyGuard guard(*core);
    worker_ = std::thread(RunStream, std::move(core), std::move(args), state_);
    guard.Release();  // the worker clears the flag when the C call returns
  }
  ~PyStream() { Close(); }
  PyStream(const PyStream&) = delete;
  PyStream& operator=(const PyStream&) = delete;

  // The next piece of text, or None once generation has ended; raises the
  // C error if it failed.
  py::object Next() {
    for (;;) {
      std::string piece;
      bool got_piece = false, finished = false;
      {
        py::gil_scoped_release release;
        std::unique_lock<std::mutex> lock(state_->mu);
        if (state_->cv.wait_for(lock, kSignalPoll,
                                [this] { return !state_->pieces.empty() || state_->finished; })) {
          if (!state_->pieces.empty()) {
            piece = std::move(state_->pieces.front());
            state_->pieces.pop_front();
            got_piece = true;
            state_->cv.notify_all();
          } else {
            finished = true;
          }
        }
      }
      if (got_piece) return ToStr(piece);
      if (finished) break;
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    }
    Join();
    if (state_->failed) throw hearth::Error(state_->code, state_->message);
    return py::none();
  }

  // Stops generation (the callback returns non-zero at its next piece) and
  // waits for the worker. Idempotent.
  void Close() {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->cancel = true;
      state_->pieces.clear();
    }
    state_->cv.notify_all();
    Join();
  }

  py::object Result() const {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (!state_->finished || state_->failed) return py::none();
    return ResultTuple(state_->result);
  }

 private:
  void Join() {
    // The worker never takes the GIL, so joining while holding it is safe;
    // releasing it just lets other threads run during the last token.
    if (PyGILState_Check() && !InterpreterFinalizing()) {
      py::gil_scoped_release release;
      JoinLocked();
    } else {
      JoinLocked();
    }
  }
  // join_mu_ serializes joins from threads that share this object (only
  // possible through the raw _hearth.Stream; the generator serializes itself).
  void JoinLocked() {
    std::lock_guard<std::mutex> lock(join_mu_);
    if (worker_.joinable()) worker_.join();
  }

  std::shared_ptr<StreamState> state_;
  std::mutex join_mu_;
  std::thread worker_;
};

class PySession {
 public:
  PySession(std::shared_ptr<ModelHandle> model, uint32_t n_ctx, uint32_t n_batch,
            uint32_t n_threads, uint32_t kv_type) {
    hearth_session_params params = HEARTH_SESSION_PARAMS_INIT;
    params.n_ctx = n_ctx;
    params.n_batch = n_batch;
    params.n_threads = n_threads;
    params.kv_type = kv_type;
    py::gil_scoped_release release;
    core_ = std::make_shared<SessionCore>(std::move(model), params);
  }

  void Feed(const py::buffer& ids) {
    std::shared_ptr<SessionCore> core = Core();
    std::vector<int32_t> copy = CopyIds(ids);
    BusyGuard guard(*core);
    py::gil_scoped_release release;
    core->session.Feed(copy);
  }

  // out[i] = log P(ids[i + 1] | ids[..i]); `out` holds n - 1 floats.
  void Score(const py::buffer& ids, const py::buffer& out) {
    std::shared_ptr<SessionCore> core = Core();
    std::vector<int32_t> copy = CopyIds(ids);
    const py::buffer_info out_info = out.request(true);
    float* logprobs = FloatOut(out_info, copy.size() > 1 ? copy.size() - 1 : 0, "logprobs");
    BusyGuard guard(*core);
    py::gil_scoped_release release;
    hearth::Check(hearth_session_score(core->session.get(), copy.data(), copy.size(),
                                       copy.size() > 1 ? logprobs : nullptr));
  }

  // Copies the logits into `out` (n_vocab floats).
  void Logits(const py::buffer& out) {
    std::shared_ptr<SessionCore> core = Core();
    const py::buffer_info out_info = out.request(true);
    BusyGuard guard(*core);
    const hearth::LogitsView v = core->session.Logits();
    float* dst = FloatOut(out_info, v.size, "logits");
    if (v.size > 0) std::memcpy(dst, v.data, v.size * sizeof(float));
  }

  size_t NPast() {
    std::shared_ptr<SessionCore> core = Core();
    BusyGuard guard(*core);
    return core->session.NPast();
  }

  size_t NCtx() {
    std::shared_ptr<SessionCore> core = Core();
    BusyGuard guard(*core);
    return core->session.NCtx();
  }

  void Reset() {
    std::shared_ptr<SessionCore> core = Core();
    BusyGuard guard(*core);
    core->session.Reset();
  }

  void Truncate(size_t n_past) {
    std::shared_ptr<SessionCore> core = Core();
    BusyGuard guard(*core);
    hearth::Check(hearth_session_truncate(core->session.get(), n_past));
  }

  // Replaces the session's adapters. The C call re-plans the session's
  // graphs when the set changes, so it runs without the GIL.
  void SetAdapters(const AdapterList& adapters) {
    std::shared_ptr<SessionCore> core = Core();
    AdapterArrays arrays(adapters);
    BusyGuard guard(*core);
    py::gil_scoped_release release;
    hearth::Check(hearth_session_set_adapters(core->session.get(), arrays.handles.data(),
                                              arrays.scales.data(), arrays.handles.size()));
  }

  // (text bytes, result tuple). Ctrl-C on the main thread stops generation
  // at the next piece and raises KeyboardInterrupt here.
  py::tuple Generate(const py::object& prompt, int32_t max_tokens, const py::handle& sampling,
                     std::vector<std::string> stop, uint32_t tokenize_flags, bool use_default_flags,
                     bool reuse_prefix, std::string constraint, std::string constraint_config) {
    std::shared_ptr<SessionCore> core = Core();
    GenerateArgs args(prompt, max_tokens, sampling, std::move(stop), tokenize_flags,
                      use_default_flags, reuse_prefix, std::move(constraint),
                      std::move(constraint_config));
    const bool check_signals = OnMainThread();
    BusyGuard guard(*core);
    std::string text;
    bool interrupted = false;
    hearth_generate_result result;
    {
      py::gil_scoped_release release;
      auto last_check = std::chrono::steady_clock::now();
      const hearth::Session::TextCallback collect = [&](std::string_view piece) {
        text.append(piece.data(), piece.size());
        if (!check_signals) return true;
        const auto now = std::chrono::steady_clock::now();
        if (now - last_check < kSignalPoll) return true;
        last_check = now;
        py::gil_scoped_acquire acquire;
        // The pending exception stays set on this thread for the raise below.
        interrupted = PyErr_CheckSignals() != 0;
        return !interrupted;
      };
      result = args.chat ? core->session.GenerateChat(args.messages, &args.params, collect)
                         : core->session.Generate(args.prompt, &args.params, collect);
    }
    if (interrupted) throw py::error_already_set();
    return py::make_tuple(py::bytes(text), ResultTuple(result));
  }

  std::unique_ptr<PyStream> Stream(const py::object& prompt, int32_t max_tokens,
                                   const py::handle& sampling, std::vector<std::string> stop,
                                   uint32_t tokenize_flags, bool use_default_flags,
                                   bool reuse_prefix, std::string constraint,
                                   std::string constraint_config) {
    auto args = std::make_shared<GenerateArgs>(prompt, max_tokens, sampling, std::move(stop),
                                               tokenize_flags, use_default_flags, reuse_prefix,
                                               std::move(constraint), std::move(constraint_config));
    return std::make_unique<PyStream>(Core(), std::move(args));
  }

  // Drops this object's hold on the C session; it is freed once no stream
  // runs on it any more.
  void Close() { core_.reset(); }
  bool closed() const { return core_ == nullptr; }

 private:
  std::shared_ptr<SessionCore> Core() const {
    if (core_ == nullptr) {
      throw hearth::Error(HEARTH_FAILED_PRECONDITION, "the session is closed");
    }
    return core_;
  }

  std::shared_ptr<SessionCore> core_;
};

}  // namespace

void RegisterSession(py::module_& m) {
  py::class_<PyStream>(m, "Stream")
      .def("next", &PyStream::Next)
      .def("close", &PyStream::Close)
      .def("result", &PyStream::Result);

  py::class_<PySession>(m, "Session")
      .def(py::init<std::shared_ptr<ModelHandle>, uint32_t, uint32_t, uint32_t, uint32_t>(),
           py::arg("model"), py::arg("n_ctx"), py::arg("n_batch"), py::arg("n_threads"),
           py::arg("kv_type") = 0)
      .def("feed", &PySession::Feed, py::arg("ids"))
      .def("score", &PySession::Score, py::arg("ids"), py::arg("out"))
      .def("logits", &PySession::Logits, py::arg("out"))
      .def("n_past", &PySession::NPast)
      .def("n_ctx", &PySession::NCtx)
      .def("reset", &PySession::Reset)
      .def("truncate", &PySession::Truncate, py::arg("n_past"))
      .def("set_adapters", &PySession::SetAdapters, py::arg("adapters"))
      .def("generate", &PySession::Generate, py::arg("prompt"), py::arg("max_tokens"),
           py::arg("sampling"), py::arg("stop"), py::arg("tokenize_flags"),
           py::arg("use_default_flags"), py::arg("reuse_prefix"), py::arg("constraint") = "",
           py::arg("constraint_config") = "")
      .def("stream", &PySession::Stream, py::arg("prompt"), py::arg("max_tokens"),
           py::arg("sampling"), py::arg("stop"), py::arg("tokenize_flags"),
           py::arg("use_default_flags"), py::arg("reuse_prefix"), py::arg("constraint") = "",
           py::arg("constraint_config") = "")
      .def("close", &PySession::Close)
      .def_property_readonly("closed", &PySession::closed);
}

}  // namespace hearth_py
