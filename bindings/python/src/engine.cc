// engine.cc — the batching engine for hearth._hearth (hearth_engine_*): an
// engine over one model running on its own thread, requests submitted to
// it, and each request's events as a queue that Python reads.
//
// The engine calls a request's callback on its own thread (or, when the
// engine is freed, on the freeing thread) while it may hold its own locks.
// That callback never touches Python: it copies the event into the
// request's queue under the request's mutex, wakes a blocked reader through
// a condition variable and an asyncio reader through a pipe, and returns.
// Python threads, for their part, release the GIL around every engine call
// (submit, cancel, free) and every wait. So no thread ever holds an engine
// lock while waiting for the GIL, and no thread holding the GIL waits for an
// engine lock: the two cannot deadlock.
//
// Lifetimes: a request's state is shared by its Python handle and the
// callback's user_data; the callback drops its share on the DONE event,
// which the engine delivers exactly once for every accepted request (also
// when the engine is freed). Requests keep the engine's core alive, and the
// core keeps the model and the adapters alive; after close() the C engine is
// gone and cancelling a request is a no-op.
#include <fcntl.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "bindings/python/src/binding.h"

namespace hearth_py {
namespace {

// How often a blocked reader comes back to let Python handle signals.
constexpr auto kSignalPoll = std::chrono::milliseconds(100);

// One event, copied out of the callback's borrowed pointers.
struct Event {
  hearth_event_kind kind = HEARTH_EVENT_TOKEN;
  std::string text;
  int32_t token = -1;
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;
  hearth_stop_reason finish_reason = HEARTH_STOP_MAX_TOKENS;
  hearth_status_code status = HEARTH_OK;
  std::string message;
  uint32_t n_prompt_tokens = 0, n_cached_tokens = 0, n_generated_tokens = 0;
  double first_token_seconds = 0.0;
};

// A request as both sides see it.
class RequestState {
 public:
  RequestState() = default;
  RequestState(const RequestState&) = delete;
  RequestState& operator=(const RequestState&) = delete;
  ~RequestState() { ClosePipeLocked(); }

  // The callback's side: never blocks for long, never throws.
  void Push(Event&& ev) noexcept {
    const bool done = ev.kind == HEARTH_EVENT_DONE;
    std::lock_guard<std::mutex> lock(mu_);
    try {
      events_.push_back(std::move(ev));
      done_pushed_ = done_pushed_ || done;
    } catch (...) {
      // Out of memory queueing an event: the reader must still see the end,
      // so a TOKEN is dropped and a DONE becomes a bare failure.
      if (!done) return;
      lost_done_ = true;
    }
    cv_.notify_all();
    if (pipe_w_ >= 0 && !signalled_) {
      const char byte = 1;
      // A full pipe cannot happen (one byte until the reader drains it);
      // any failure only delays an asyncio reader to its next poll.
      if (write(pipe_w_, &byte, 1) == 1) signalled_ = true;
    }
  }

  // The next event, waiting at most `timeout` (the GIL must be released).
  // False when none came in time or all have been read.
  bool Wait(std::chrono::milliseconds timeout, Event* out) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, timeout, [this] { return HasEventLocked() || all_read_; });
    return PopLocked(out);
  }

  // True when an event is queued (or all were read), waiting at most
  // `timeout` (the GIL must be released); takes nothing.
  bool WaitReady(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return HasEventLocked() || all_read_; });
  }

  // The next event if one is queued. When none is, the pipe is drained so
  // that the next Push makes it readable again (asyncio's add_reader is
  // level-triggered).
  bool Poll(Event* out) {
    std::lock_guard<std::mutex> lock(mu_);
    if (PopLocked(out)) return true;
    if (pipe_r_ >= 0 && signalled_) {
      char buf[16];
      while (read(pipe_r_, buf, sizeof(buf)) > 0) {
      }
      signalled_ = false;
    }
    return false;
  }

  // The read end of a pipe that becomes readable when an event is queued
  // (made on first use; readable at once if one already is).
  // RESOURCE_EXHAUSTED when the process is out of file descriptors.
  int Fileno() {
    std::lock_guard<std::mutex> lock(mu_);
    if (all_read_) {
      throw hearth::Error(HEARTH_FAILED_PRECONDITION, "every event of the request was read");
    }
    if (pipe_r_ < 0) {
      int fds[2];
      if (pipe(fds) != 0) {
        throw hearth::Error(
            HEARTH_RESOURCE_EXHAUSTED,
            "cannot make a pipe for an asyncio reader (errno " + std::to_string(errno) + ")");
      }
      for (int fd : fds) {
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
      }
      pipe_r_ = fds[0];
      pipe_w_ = fds[1];
      if (HasEventLocked() || all_read_) {
        const char byte = 1;
        if (write(pipe_w_, &byte, 1) == 1) signalled_ = true;
      }
    }
    return pipe_r_;
  }

  // The engine has delivered DONE.
  bool Finished() {
    std::lock_guard<std::mutex> lock(mu_);
    return done_pushed_ || lost_done_;
  }

  // The reader has taken DONE: no event will ever come again.
  bool AllRead() {
    std::lock_guard<std::mutex> lock(mu_);
    return all_read_;
  }

  uint64_t id = 0;  // set once hearth_engine_submit returns

 private:
  bool HasEventLocked() const { return !events_.empty() || lost_done_; }

  bool PopLocked(Event* out) {
    if (!events_.empty()) {
      *out = std::move(events_.front());
      events_.pop_front();
      if (out->kind == HEARTH_EVENT_DONE) AllReadLocked();
      return true;
    }
    if (lost_done_ && !all_read_) {
      *out = Event();
      out->kind = HEARTH_EVENT_DONE;
      out->finish_reason = HEARTH_STOP_ERROR;
      out->status = HEARTH_RESOURCE_EXHAUSTED;
      out->message = "out of memory while queueing the request's last event";
      AllReadLocked();
      return true;
    }
    return false;
  }

  // DONE is read: nothing will come, so the pipe's descriptors go back now
  // rather than when Python collects the request (an asyncio reader has
  // removed its watch before it reads the next event).
  void AllReadLocked() {
    all_read_ = true;
    ClosePipeLocked();
  }

  void ClosePipeLocked() {
    if (pipe_r_ >= 0) ::close(pipe_r_);
    if (pipe_w_ >= 0) ::close(pipe_w_);
    pipe_r_ = pipe_w_ = -1;
    signalled_ = false;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
  bool done_pushed_ = false;
  bool lost_done_ = false;
  bool all_read_ = false;  // DONE was handed to the reader
  int pipe_r_ = -1, pipe_w_ = -1;
  bool signalled_ = false;  // a byte is in the pipe
};

// The callback of every request; user_data is a heap-allocated
// shared_ptr<RequestState>, released with the DONE event.
int OnRequestEvent(const hearth_request_event* e, void* user_data) {
  auto* holder = static_cast<std::shared_ptr<RequestState>*>(user_data);
  Event ev;
  try {
    ev.kind = e->kind;
    if (e->text != nullptr && e->text_len > 0) ev.text.assign(e->text, e->text_len);
    ev.token = e->token;
    ev.logprob = e->logprob;
    if (e->top_tokens != nullptr && e->top_logprobs != nullptr) {
      ev.top.reserve(e->n_top);
      for (size_t i = 0; i < e->n_top; ++i)
        ev.top.emplace_back(e->top_tokens[i], e->top_logprobs[i]);
    }
    ev.finish_reason = e->finish_reason;
    ev.status = e->status;
    if (e->message != nullptr) ev.message = e->message;
    ev.n_prompt_tokens = e->n_prompt_tokens;
    ev.n_cached_tokens = e->n_cached_tokens;
    ev.n_generated_tokens = e->n_generated_tokens;
    ev.first_token_seconds = e->first_token_seconds;
  } catch (...) {
    // Out of memory: a TOKEN event is lost; a DONE one still ends the
    // request (Push turns an unqueueable DONE into a failure).
    ev.text.clear();
    ev.top.clear();
    ev.message.clear();
  }
  const bool done = e->kind == HEARTH_EVENT_DONE;
  (*holder)->Push(std::move(ev));
  if (done) delete holder;
  return 0;
}

py::tuple EventTuple(const Event& ev) {
  py::list top;
  for (const auto& [token, logprob] : ev.top) top.append(py::make_tuple(token, logprob));
  return py::make_tuple(static_cast<int>(ev.kind), ToStr(ev.text), ev.token, ev.logprob, top,
                        static_cast<int>(ev.finish_reason), static_cast<int>(ev.status),
                        ToStr(ev.message), ev.n_prompt_tokens, ev.n_cached_tokens,
                        ev.n_generated_tokens, ev.first_token_seconds);
}

// The C engine and what it needs alive. `mu` orders engine calls (shared)
// against hearth_engine_free (exclusive); request callbacks never take it.
struct EngineCore {
  std::shared_ptr<ModelHandle> model;
  std::vector<std::shared_ptr<AdapterHandle>> adapters;
  std::shared_mutex mu;
  hearth_engine* engine = nullptr;

  ~EngineCore() { Free(); }

  // Every unfinished request gets its DONE (CANCELLED) here, on this thread.
  void Free() noexcept {
    std::unique_lock<std::shared_mutex> lock(mu);
    if (engine != nullptr) {
      hearth_engine_free(engine);
      engine = nullptr;
    }
  }
};

class PyRequest {
 public:
  PyRequest(std::shared_ptr<EngineCore> core, std::shared_ptr<RequestState> state)
      : core_(std::move(core)), state_(std::move(state)) {}
  // A request nobody can read any more is not worth computing.
  ~PyRequest() {
    if (state_->Finished()) return;
    try {
      if (PyGILState_Check() && !InterpreterFinalizing()) {
        py::gil_scoped_release release;
        CancelReleased();
      } else {
        CancelReleased();
      }
    } catch (...) {
      // Nothing to report to: the reader is gone.
    }
  }
  PyRequest(const PyRequest&) = delete;
  PyRequest& operator=(const PyRequest&) = delete;

  uint64_t id() const { return state_->id; }

  // The next event, blocking with the GIL released; None once DONE was read.
  py::object Next() {
    Event ev;
    for (;;) {
      bool got = false;
      {
        py::gil_scoped_release release;
        got = state_->Wait(kSignalPoll, &ev);
      }
      if (got) return EventTuple(ev);
      if (state_->AllRead()) return py::none();
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    }
  }

  // The next event if one is queued, else None (see RequestState::Poll).
  py::object Poll() {
    Event ev;
    if (state_->Poll(&ev)) return EventTuple(ev);
    return py::none();
  }

  int Fileno() { return state_->Fileno(); }

  // Waits up to `seconds` (GIL released) until an event is queued; takes
  // nothing. For event loops that cannot watch a file descriptor.
  bool Wait(double seconds) {
    py::gil_scoped_release release;
    const auto ms =
        std::chrono::milliseconds(static_cast<int64_t>(seconds <= 0        ? 0.0
                                                       : seconds >= 3600.0 ? 3600e3
                                                                           : seconds * 1e3));
    return state_->WaitReady(ms);
  }

  // True when the engine ended it now; False when it had already ended (or
  // the engine is closed, which ended it).
  bool Cancel() {
    py::gil_scoped_release release;
    return CancelReleased();
  }

 private:
  bool CancelReleased() {
    // Its DONE is queued: ended, whatever the engine would say in the moment
    // before it forgets the id.
    if (state_->Finished()) return false;
    std::shared_lock<std::shared_mutex> lock(core_->mu);
    if (core_->engine == nullptr) return false;
    hearth_error* err = hearth_engine_cancel(core_->engine, state_->id);
    if (err != nullptr && hearth_error_code(err) == HEARTH_NOT_FOUND) {
      hearth_error_free(err);
      return false;
    }
    hearth::Check(err);
    return true;
  }

  std::shared_ptr<EngineCore> core_;
  std::shared_ptr<RequestState> state_;
};

// What hearth_engine_submit reads, owned here until it returns.
struct SubmitArgs {
  std::string text;
  std::vector<int32_t> tokens;
  Conversation conversation;
  std::vector<hearth_chat_message> messages;  // borrows `conversation`
  std::vector<std::string> stop;
  std::vector<const char*> stop_ptrs;  // borrows `stop`
  std::vector<hearth_engine_adapter> adapters;
};

class PyEngine {
 public:
  PyEngine(std::shared_ptr<ModelHandle> model, uint32_t n_seq, uint32_t n_ctx,
           uint32_t max_step_tokens, uint32_t n_threads, uint32_t max_waiting,
           const std::vector<std::shared_ptr<AdapterHandle>>& adapters, uint32_t kv_block_size,
           uint32_t kv_pages, uint32_t kv_type)
      : core_(std::make_shared<EngineCore>()) {
    if (model == nullptr) throw hearth::Error(HEARTH_INVALID_ARGUMENT, "model is None");
    core_->model = std::move(model);
    core_->adapters = adapters;
    std::vector<const hearth_adapter*> handles;
    for (size_t i = 0; i < adapters.size(); ++i) {
      if (adapters[i] == nullptr) {
        throw hearth::Error(HEARTH_INVALID_ARGUMENT,
                            "adapters[" + std::to_string(i) + "] is None, not an adapter");
      }
      handles.push_back(adapters[i]->adapter.get());
    }
    hearth_engine_params params = HEARTH_ENGINE_PARAMS_INIT;
    params.n_seq = n_seq;
    params.n_ctx = n_ctx;
    params.max_step_tokens = max_step_tokens;
    params.n_threads = n_threads;
    params.max_waiting = max_waiting;
    params.adapters = handles.empty() ? nullptr : handles.data();
    params.n_adapters = handles.size();
    params.kv_block_size = kv_block_size;
    params.kv_pages = kv_pages;
    params.kv_type = kv_type;
    py::gil_scoped_release release;
    hearth::Check(hearth_engine_create(core_->model->model.get(), &params, &core_->engine));
    hearth_error* err = hearth_engine_start(core_->engine);
    if (err != nullptr) core_->Free();
    hearth::Check(err);
  }

  ~PyEngine() {
    // Freeing joins the engine's thread, which never takes the GIL; release
    // it anyway so other Python threads run meanwhile.
    if (core_ == nullptr) return;
    if (PyGILState_Check() && !InterpreterFinalizing()) {
      py::gil_scoped_release release;
      core_.reset();
    } else {
      core_.reset();
    }
  }
  PyEngine(const PyEngine&) = delete;
  PyEngine& operator=(const PyEngine&) = delete;

  // `kind`: 0 text (bytes), 1 token ids (int32 buffer), 2 conversation (list
  // of (bytes, bytes)). Everything else is already checked by the Python
  // layer except what only the engine can judge.
  std::unique_ptr<PyRequest> Submit(int kind, const py::object& prompt, uint32_t tokenize_flags,
                                    int32_t max_tokens, const py::handle& sampling,
                                    std::vector<std::string> stop,
                                    const std::vector<std::pair<uint32_t, float>>& adapters,
                                    bool logprobs, uint32_t top_logprobs) {
    SubmitArgs args;
    hearth_request_params params = HEARTH_REQUEST_PARAMS_INIT;
    switch (kind) {
      case 0:
        args.text = prompt.cast<std::string>();
        params.text = args.text.data();
        params.text_len = args.text.size();
        params.tokenize_flags = tokenize_flags;
        break;
      case 1:
        args.tokens = CopyIds(prompt.cast<py::buffer>());
        params.tokens = args.tokens.data();
        params.n_tokens = args.tokens.size();
        break;
      case 2:
        args.conversation = prompt.cast<Conversation>();
        args.messages = ChatMessages(args.conversation);
        params.messages = args.messages.data();
        params.n_messages = args.messages.size();
        break;
      default:
        throw hearth::Error(HEARTH_INVALID_ARGUMENT, "unknown prompt kind");
    }
    params.max_tokens = max_tokens;
    params.sampling = SamplingFromPy(sampling);
    args.stop = std::move(stop);
    for (const std::string& s : args.stop) {
      if (s.find('\0') != std::string::npos) {
        throw hearth::Error(HEARTH_INVALID_ARGUMENT, "a stop string contains a NUL character");
      }
      args.stop_ptrs.push_back(s.c_str());
    }
    params.stop = args.stop_ptrs.empty() ? nullptr : args.stop_ptrs.data();
    params.n_stop = args.stop_ptrs.size();
    for (const auto& [index, scale] : adapters) args.adapters.push_back({index, scale});
    params.adapters = args.adapters.empty() ? nullptr : args.adapters.data();
    params.n_adapters = args.adapters.size();
    params.logprobs = logprobs ? 1 : 0;
    params.top_logprobs = top_logprobs;
    params.on_event = OnRequestEvent;

    auto state = std::make_shared<RequestState>();
    auto holder = std::make_unique<std::shared_ptr<RequestState>>(state);
    params.user_data = holder.get();
    std::shared_ptr<EngineCore> core = Core();
    {
      py::gil_scoped_release release;
      std::shared_lock<std::shared_mutex> lock(core->mu);
      if (core->engine == nullptr) {
        throw hearth::Error(HEARTH_FAILED_PRECONDITION, "the engine is closed");
      }
      uint64_t id = 0;
      hearth::Check(hearth_engine_submit(core->engine, &params, &id));
      // Accepted: the callback owns `holder` now and may already have run.
      holder.release();
      state->id = id;
    }
    return std::make_unique<PyRequest>(std::move(core), std::move(state));
  }

  py::dict Stats() {
    std::shared_ptr<EngineCore> core = Core();
    hearth_engine_stats s = HEARTH_ENGINE_STATS_INIT;
    {
      py::gil_scoped_release release;
      std::shared_lock<std::shared_mutex> lock(core->mu);
      if (core->engine == nullptr) {
        throw hearth::Error(HEARTH_FAILED_PRECONDITION, "the engine is closed");
      }
      hearth::Check(hearth_engine_get_stats(core->engine, &s));
    }
    py::dict d;
    d["n_waiting"] = s.n_waiting;
    d["n_running"] = s.n_running;
    d["n_seq"] = s.n_seq;
    d["requests_submitted"] = s.requests_submitted;
    d["requests_finished"] = s.requests_finished;
    d["requests_cancelled"] = s.requests_cancelled;
    d["requests_failed"] = s.requests_failed;
    d["prompt_tokens"] = s.prompt_tokens;
    d["cached_prompt_tokens"] = s.cached_prompt_tokens;
    d["generated_tokens"] = s.generated_tokens;
    d["steps"] = s.steps;
    d["kv_tokens_used"] = s.kv_tokens_used;
    d["kv_tokens_capacity"] = s.kv_tokens_capacity;
    d["step_seconds"] = s.step_seconds;
    return d;
  }

  // Frees the C engine: unfinished requests end with CANCELLED first.
  // Idempotent; requests still referring to the engine keep its model alive.
  void Close() {
    if (core_ == nullptr) return;
    std::shared_ptr<EngineCore> core = std::move(core_);
    py::gil_scoped_release release;
    core->Free();
  }
  bool closed() const { return core_ == nullptr; }

 private:
  std::shared_ptr<EngineCore> Core() const {
    if (core_ == nullptr) throw hearth::Error(HEARTH_FAILED_PRECONDITION, "the engine is closed");
    return core_;
  }

  std::shared_ptr<EngineCore> core_;
};

}  // namespace

void RegisterEngine(py::module_& m) {
  py::class_<PyRequest>(m, "Request")
      .def_property_readonly("id", &PyRequest::id)
      .def("next", &PyRequest::Next)
      .def("poll", &PyRequest::Poll)
      .def("fileno", &PyRequest::Fileno)
      .def("wait", &PyRequest::Wait, py::arg("seconds"))
      .def("cancel", &PyRequest::Cancel);

  py::class_<PyEngine>(m, "Engine")
      .def(py::init<std::shared_ptr<ModelHandle>, uint32_t, uint32_t, uint32_t, uint32_t, uint32_t,
                    const std::vector<std::shared_ptr<AdapterHandle>>&, uint32_t, uint32_t,
                    uint32_t>(),
           py::arg("model"), py::arg("n_seq"), py::arg("n_ctx"), py::arg("max_step_tokens"),
           py::arg("n_threads"), py::arg("max_waiting"), py::arg("adapters"),
           py::arg("kv_block_size") = 0, py::arg("kv_pages") = 0, py::arg("kv_type") = 0)
      .def("submit", &PyEngine::Submit, py::arg("kind"), py::arg("prompt"),
           py::arg("tokenize_flags"), py::arg("max_tokens"), py::arg("sampling"), py::arg("stop"),
           py::arg("adapters"), py::arg("logprobs"), py::arg("top_logprobs"))
      .def("stats", &PyEngine::Stats)
      .def("close", &PyEngine::Close)
      .def_property_readonly("closed", &PyEngine::closed);
}

}  // namespace hearth_py
