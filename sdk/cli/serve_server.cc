// serve_server.cc — the endpoints of `hearth serve` (serve_server.h).
//
// Threads: cpp-httplib's pool runs one handler per connection; the engine's
// own thread (hearth_engine_start) steps every request and calls back with
// its events, which go through a Channel (mutex + condition variable) to the
// handler that waits for them. A callback only copies and signals, so a slow
// client never stalls the batch. Each submitted request owns a Ticket that
// keeps its Channel alive until the engine's DONE event, so a handler may
// leave (client gone, timeout) without waiting for the engine.
#include "serve_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "serve_response.h"

namespace hearth::cli {
namespace {

using Clock = std::chrono::steady_clock;

// One engine event, copied out of the callback.
struct Event {
  hearth_event_kind kind = HEARTH_EVENT_TOKEN;
  size_t choice = 0;
  std::string text;
  bool has_token = false;
  int32_t token = -1;
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;
  hearth_stop_reason finish = HEARTH_STOP_MAX_TOKENS;
  hearth_status_code status = HEARTH_OK;
  std::string message;
  uint32_t n_prompt = 0, n_cached = 0, n_generated = 0;
};

// The events of one HTTP request's engine requests, in order.
class Channel {
 public:
  void Push(Event e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(std::move(e));
    }
    cv_.notify_one();
  }
  // The next event, or false when none came before `until`.
  bool Pop(Event* out, Clock::time_point until) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_until(lock, until, [&] { return !events_.empty(); })) return false;
    *out = std::move(events_.front());
    events_.pop_front();
    return true;
  }
  // Set when the handler has left: the callback then asks the engine to stop.
  std::atomic<bool> abandoned{false};

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
};

struct Ticket {
  std::shared_ptr<Channel> channel;
  size_t choice;
};

// The engine's thread: copy, signal, return. No exception may cross into C.
int OnEngineEvent(const hearth_request_event* ev, void* user_data) {
  auto* ticket = static_cast<Ticket*>(user_data);
  const bool done = ev->kind == HEARTH_EVENT_DONE;
  int stop = 1;
  try {
    Event e;
    e.kind = ev->kind;
    e.choice = ticket->choice;
    if (ev->text_len > 0) e.text.assign(ev->text, ev->text_len);
    if (ev->kind == HEARTH_EVENT_TOKEN) {
      e.has_token = true;
      e.token = ev->token;
      e.logprob = ev->logprob;
      for (size_t i = 0; i < ev->n_top; ++i)
        e.top.emplace_back(ev->top_tokens[i], ev->top_logprobs[i]);
    }
    e.finish = ev->finish_reason;
    e.status = ev->status;
    if (done && ev->message != nullptr) e.message = ev->message;
    e.n_prompt = ev->n_prompt_tokens;
    e.n_cached = ev->n_cached_tokens;
    e.n_generated = ev->n_generated_tokens;
    stop = ticket->channel->abandoned.load() ? 1 : 0;
    ticket->channel->Push(std::move(e));
  } catch (...) {
  }
  if (done) delete ticket;
  return stop;
}

// The socket of the connection `req` came on, or -1. cpp-httplib 0.11 does
// not expose it to a handler; a TCP connection is the one descriptor of this
// process whose peer is req's remote address and port. It stays open while
// the handler runs.
int FindConnection(const httplib::Request& req) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  int found = -1;
  while (dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0' || fd == dirfd(dir)) continue;
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    if (getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &len) != 0) continue;
    char host[INET6_ADDRSTRLEN] = {};
    int port = -1;
    if (peer.ss_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&peer);
      inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
      port = ntohs(in->sin_port);
    } else if (peer.ss_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&peer);
      inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
      port = ntohs(in6->sin6_port);
    }
    if (port == req.remote_port && req.remote_addr == host) {
      found = static_cast<int>(fd);
      break;
    }
  }
  closedir(dir);
  return found;
}

// Whether the client closed its side (a non-streamed request's client gone).
bool PeerClosed(int fd) {
  if (fd < 0) return false;
  pollfd p{fd, POLLRDHUP, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

// Where a request ended, as /metrics counts it.
enum Outcome { kStop, kLength, kDisconnected, kTimeout, kError, kShutdown, kNumOutcomes };
constexpr const char* kOutcomeNames[kNumOutcomes] = {"stop",    "length", "disconnected",
                                                     "timeout", "error",  "shutdown"};

}  // namespace

class ServeEndpoints::Impl {
 public:
  Impl(const ServeOptions& opt, hearth_model* model, hearth_engine* engine, ServeCatalog catalog)
      : opt_(opt), model_(model), engine_(engine), catalog_(std::move(catalog)) {
    limits_.max_tokens = opt.max_tokens_limit;
    // A chat format whose replies start with a <think> block (DeepSeek-R1
    // and its distills): chat answers carry it as reasoning_content.
    const char* tmpl = hearth_model_meta(model, "tokenizer.chat_template");
    const std::string t = tmpl != nullptr ? tmpl : "";
    split_reasoning_ = t.find("</think>") != std::string::npos ||
                       t.find("<\uFF5CAssistant\uFF5C>") != std::string::npos;
  }

  void Stop() { stopping_ = true; }

  void Install(httplib::Server& http) {
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      return Authorize(req, res) ? httplib::Server::HandlerResponse::Unhandled
                                 : httplib::Server::HandlerResponse::Handled;
    });
    http.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("{\"status\":\"ok\"}", "application/json");
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(Metrics(), "text/plain; version=0.0.4");
    });
    http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(ModelsJson(catalog_, started_), "application/json");
    });
    http.Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string id = req.matches[1];
      const std::string json = ModelJson(catalog_, id, started_);
      if (json.empty()) {
        ServeError e;
        e.status = 404;
        e.param = "model";
        e.code = "model_not_found";
        e.message = "The model '" + id + "' does not exist; GET /v1/models lists them";
        SetError(res, e);
        return;
      }
      res.set_content(json, "application/json");
    });
    http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      Complete(ServeKind::kChat, req, res);
    });
    http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      Complete(ServeKind::kCompletion, req, res);
    });
    // Statuses that httplib sets itself (no route, body too large) get an
    // OpenAI-shaped body too.
    http.set_error_handler([this](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return;
      ServeError e;
      e.status = res.status;
      if (res.status == 413) {
        e.message = "The request body is larger than this server's limit of " +
                    std::to_string(opt_.max_body) + " bytes";
        e.code = "request_too_large";
      } else if (res.status == 404) {
        e.message = "No such endpoint";
        e.code = "not_found";
      } else {
        e.message = "HTTP status " + std::to_string(res.status);
      }
      SetError(res, e);
    });
    http.set_exception_handler(
        [this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
          ServeError e;
          e.status = 500;
          e.type = "server_error";
          e.message = "internal error";
          try {
            std::rethrow_exception(ep);
          } catch (const std::exception& ex) {
            e.message = std::string("internal error: ") + ex.what();
          } catch (...) {
          }
          SetError(res, e);
        });
    http.set_logger([this](const httplib::Request&, const httplib::Response& res) {
      std::lock_guard<std::mutex> lock(mu_);
      ++http_codes_[res.status];
    });
  }

 private:
  void SetError(httplib::Response& res, const ServeError& e) {
    res.status = e.status;
    res.set_content(ServeErrorJson(e), "application/json");
  }

  // Bearer token, compared in constant time; /health is open.
  bool Authorize(const httplib::Request& req, httplib::Response& res) {
    if (opt_.api_key.empty() || req.path == "/health") return true;
    const std::string header = req.get_header_value("Authorization");
    const std::string kBearer = "Bearer ";
    std::string given =
        header.compare(0, kBearer.size(), kBearer) == 0 ? header.substr(kBearer.size()) : "";
    const std::string& want = opt_.api_key;
    unsigned diff = given.size() == want.size() ? 0u : 1u;
    for (size_t i = 0; i < want.size(); ++i) {
      diff |= static_cast<unsigned char>(want[i]) ^
              static_cast<unsigned char>(i < given.size() ? given[i] : 0);
    }
    if (diff == 0) return true;
    ServeError e;
    e.status = 401;
    e.message = header.empty() ? "No API key was given (Authorization: Bearer KEY)"
                               : "Incorrect API key provided";
    e.code = "invalid_api_key";
    SetError(res, e);
    return false;
  }

  std::string Metrics() {
    hearth_engine_stats st = HEARTH_ENGINE_STATS_INIT;
    hearth_error* err = hearth_engine_get_stats(engine_, &st);
    hearth_error_free(err);
    std::string out;
    auto metric = [&](const char* name, const char* type, const char* help, double value) {
      char line[512];
      std::snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name,
                    type, name, value);
      out += line;
    };
    {
      std::lock_guard<std::mutex> lock(mu_);
      out += "# HELP hearth_serve_completions_total Generations ended, by outcome.\n";
      out += "# TYPE hearth_serve_completions_total counter\n";
      for (int i = 0; i < kNumOutcomes; ++i) {
        out += std::string("hearth_serve_completions_total{outcome=\"") + kOutcomeNames[i] +
               "\"} " + std::to_string(outcomes_[i]) + "\n";
      }
      out += "# HELP hearth_serve_http_requests_total HTTP requests answered, by status.\n";
      out += "# TYPE hearth_serve_http_requests_total counter\n";
      for (const auto& [code, n] : http_codes_) {
        out += "hearth_serve_http_requests_total{code=\"" + std::to_string(code) + "\"} " +
               std::to_string(n) + "\n";
      }
    }
    metric("hearth_serve_rejected_total", "counter", "Requests refused because the queue was full.",
           static_cast<double>(rejected_.load()));
    metric("hearth_engine_queue_depth", "gauge", "Requests waiting for a slot.", st.n_waiting);
    metric("hearth_engine_running_sequences", "gauge", "Requests holding a slot.", st.n_running);
    metric("hearth_engine_sequence_slots", "gauge", "Slots (n_seq).", st.n_seq);
    metric("hearth_engine_requests_submitted_total", "counter", "Requests submitted.",
           static_cast<double>(st.requests_submitted));
    metric("hearth_engine_requests_finished_total", "counter", "Requests ended for any reason.",
           static_cast<double>(st.requests_finished));
    metric("hearth_engine_requests_cancelled_total", "counter", "Requests cancelled.",
           static_cast<double>(st.requests_cancelled));
    metric("hearth_engine_requests_failed_total", "counter", "Requests that failed.",
           static_cast<double>(st.requests_failed));
    metric("hearth_engine_prompt_tokens_total", "counter", "Prompt tokens computed.",
           static_cast<double>(st.prompt_tokens));
    metric("hearth_engine_cached_prompt_tokens_total", "counter",
           "Prompt tokens reused from the KV cache.", static_cast<double>(st.cached_prompt_tokens));
    metric("hearth_engine_generated_tokens_total", "counter", "Tokens generated.",
           static_cast<double>(st.generated_tokens));
    metric("hearth_engine_steps_total", "counter", "Engine steps.", static_cast<double>(st.steps));
    metric("hearth_engine_step_seconds_total", "counter", "Seconds spent computing steps.",
           st.step_seconds);
    metric("hearth_engine_kv_tokens_used", "gauge", "KV cache tokens held by running requests.",
           static_cast<double>(st.kv_tokens_used));
    metric("hearth_engine_kv_tokens_capacity", "gauge",
           "KV cache tokens in all (n_seq x n_ctx, or the paged pool).",
           static_cast<double>(st.kv_tokens_capacity));
    metric("process_resident_memory_bytes", "gauge", "Resident memory of the server.",
           static_cast<double>(ResidentBytes()));
    return out;
  }

  static uint64_t ResidentBytes() {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (f == nullptr) return 0;
    unsigned long long size = 0, resident = 0;
    const int n = std::fscanf(f, "%llu %llu", &size, &resident);
    std::fclose(f);
    return n == 2 ? resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) : 0;
  }

  void Count(Outcome o) {
    std::lock_guard<std::mutex> lock(mu_);
    ++outcomes_[o];
  }

  // A token's own bytes, for logprobs.
  std::string Piece(int32_t token) const {
    std::string piece(64, '\0');
    size_t len = 0;
    hearth_error* err = hearth_detokenize(model_, &token, 1, 0, &piece[0], piece.size(), &len);
    if (err != nullptr) {
      // Too small (a long token): ask for the size, then once more.
      hearth_error_free(err);
      err = hearth_detokenize(model_, &token, 1, 0, nullptr, 0, &len);
      if (err == nullptr) {
        piece.assign(len, '\0');
        err = hearth_detokenize(model_, &token, 1, 0, &piece[0], piece.size(), &len);
      }
      if (err != nullptr) {
        hearth_error_free(err);
        return "";
      }
    }
    piece.resize(std::min(len, piece.size()));
    return piece;
  }

  TokenLogprob LogprobOf(const Event& e) const {
    TokenLogprob lp;
    lp.piece = Piece(e.token);
    lp.logprob = e.logprob;
    for (const auto& [t, l] : e.top) lp.top.emplace_back(Piece(t), l);
    return lp;
  }

  static const char* FinishName(hearth_stop_reason r) {
    return (r == HEARTH_STOP_MAX_TOKENS || r == HEARTH_STOP_CONTEXT_FULL) ? "length" : "stop";
  }

  // The engine requests of one HTTP request, submitted.
  struct Job {
    std::shared_ptr<Channel> channel = std::make_shared<Channel>();
    std::vector<uint64_t> ids;
    std::vector<bool> done;
    std::vector<uint32_t> prompt_of;  // choice -> prompt index
    ResponseMeta meta;
    Usage usage;
    Clock::time_point deadline;
    size_t n_done = 0;
  };

  // Ends every request of `job` not yet done (the callback stops them too).
  // Cancelled first, so the engine counts them as cancelled; the flag is the
  // fallback for a request the engine is calling back at that moment.
  void Abandon(Job& job) {
    for (size_t i = 0; i < job.ids.size(); ++i) {
      if (!job.done[i]) hearth_error_free(hearth_engine_cancel(engine_, job.ids[i]));
    }
    job.channel->abandoned = true;
  }

  // Ends what is left of `job` and counts it as `outcome`.
  void EndRest(Job& job, Outcome outcome) {
    Abandon(job);
    for (size_t i = 0; i < job.ids.size(); ++i) {
      if (!job.done[i]) Count(outcome);
    }
    job.n_done = job.ids.size();
  }

  // Past --timeout, or the server is stopping.
  ServeError Ended(bool timeout) const {
    ServeError e;
    e.status = timeout ? 504 : 503;
    e.type = timeout ? "timeout_error" : "server_error";
    e.code = timeout ? "timeout" : "";
    e.message = timeout ? "The request took longer than this server's limit of " +
                              std::to_string(opt_.timeout_s) + " s"
                        : "The server is stopping";
    return e;
  }

  static ServeError SubmitError(hearth_error* err) {
    ServeError e;
    e.message = hearth_error_message(err);
    switch (hearth_error_code(err)) {
      case HEARTH_RESOURCE_EXHAUSTED:
        e.status = 429;
        e.type = "rate_limit_error";
        e.code = "queue_full";
        e.message = "The server is busy (its queue is full); retry later";
        break;
      case HEARTH_INVALID_ARGUMENT:
      case HEARTH_OUT_OF_RANGE:
        e.status = 400;
        if (e.message.find("n_ctx") != std::string::npos ||
            e.message.find("context") != std::string::npos) {
          e.code = "context_length_exceeded";
        }
        break;
      case HEARTH_NOT_FOUND:
        e.status = 400;
        break;
      default:
        e.status = 500;
        e.type = "server_error";
        break;
    }
    return e;
  }

  // Submits every choice of `req`; false with `error` set (nothing left running).
  bool Submit(const ServeRequest& req, Job* job, ServeError* error) {
    std::vector<hearth_chat_message> messages;
    for (const ServeMessage& m : req.messages) {
      messages.push_back({m.role.c_str(), m.content.c_str()});
    }
    std::vector<const char*> stops;
    for (const std::string& s : req.stop) stops.push_back(s.c_str());
    std::vector<hearth_engine_adapter> adapters;
    for (const auto& [index, scale] : req.adapters) adapters.push_back({index, scale});
    uint64_t seed = req.seed;
    if (!req.has_seed) {
      std::random_device rd;
      seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
    }
    const size_t n_prompts = req.kind == ServeKind::kChat ? 1 : req.prompts.size();
    for (size_t p = 0; p < n_prompts; ++p) {
      for (int64_t j = 0; j < req.n; ++j) {
        hearth_request_params rp = HEARTH_REQUEST_PARAMS_INIT;
        if (req.kind == ServeKind::kChat) {
          rp.messages = messages.data();
          rp.n_messages = messages.size();
        } else if (req.prompts[p].is_tokens) {
          rp.tokens = req.prompts[p].tokens.data();
          rp.n_tokens = req.prompts[p].tokens.size();
        } else {
          rp.text = req.prompts[p].text.data();
          rp.text_len = req.prompts[p].text.size();
        }
        rp.max_tokens =
            static_cast<int32_t>(req.max_tokens > 0 ? req.max_tokens : opt_.max_tokens_limit);
        rp.sampling.temperature = req.temperature;
        rp.sampling.top_p = req.top_p;
        rp.sampling.top_k = 0;  // OpenAI's sampling: temperature and top_p only
        rp.sampling.min_p = 0.0f;
        rp.sampling.presence_penalty = req.presence_penalty;
        rp.sampling.frequency_penalty = req.frequency_penalty;
        rp.sampling.seed = seed + static_cast<uint64_t>(j);
        rp.stop = stops.empty() ? nullptr : stops.data();
        rp.n_stop = stops.size();
        rp.adapters = adapters.empty() ? nullptr : adapters.data();
        rp.n_adapters = adapters.size();
        rp.logprobs = req.logprobs ? 1 : 0;
        rp.top_logprobs = static_cast<uint32_t>(req.top_logprobs);
        auto* ticket = new Ticket{job->channel, job->ids.size()};
        rp.on_event = OnEngineEvent;
        rp.user_data = ticket;
        uint64_t id = 0;
        if (hearth_error* err = hearth_engine_submit(engine_, &rp, &id)) {
          delete ticket;  // no event will ever come for it
          *error = SubmitError(err);
          if (error->status == 429) ++rejected_;
          hearth_error_free(err);
          Abandon(*job);
          return false;
        }
        job->ids.push_back(id);
        job->done.push_back(false);
        job->prompt_of.push_back(static_cast<uint32_t>(p));
      }
    }
    return true;
  }

  // Folds a DONE event into the job; an error or cancellation sets `error`.
  bool Finish(Job& job, const Event& e, std::vector<ChoiceResult>* results, ServeError* error) {
    job.done[e.choice] = true;
    ++job.n_done;
    const bool first_of_prompt =
        e.choice == 0 || job.prompt_of[e.choice - 1] != job.prompt_of[e.choice];
    if (first_of_prompt) {
      job.usage.prompt_tokens += e.n_prompt;
      job.usage.cached_tokens += e.n_cached;
    }
    job.usage.completion_tokens += e.n_generated;
    if (e.finish == HEARTH_STOP_ERROR || e.finish == HEARTH_STOP_CANCELLED ||
        e.finish == HEARTH_STOP_CALLBACK) {
      error->status = e.finish == HEARTH_STOP_ERROR ? 500 : 503;
      error->type = "server_error";
      error->message = e.finish == HEARTH_STOP_ERROR
                           ? "generation failed: " + e.message
                           : std::string("generation was cancelled (the server is stopping)");
      Count(e.finish == HEARTH_STOP_ERROR ? kError : kShutdown);
      return false;
    }
    const char* reason = FinishName(e.finish);
    Count(reason[0] == 'l' ? kLength : kStop);
    if (results != nullptr) (*results)[e.choice].finish_reason = reason;
    return true;
  }

  void Complete(ServeKind kind, const httplib::Request& http_req, httplib::Response& res) {
    auto req = std::make_shared<ServeRequest>();
    ServeError error;
    if (!ParseServeRequest(http_req.body, kind, catalog_, limits_, req.get(), &error)) {
      SetError(res, error);
      return;
    }
    auto job = std::make_shared<Job>();
    job->meta.kind = kind;
    job->meta.id = NewId(kind == ServeKind::kChat ? "chatcmpl-" : "cmpl-");
    job->meta.created = static_cast<int64_t>(std::time(nullptr));
    job->meta.model = req->model;
    job->meta.logprobs = req->logprobs;
    job->deadline = Clock::now() + std::chrono::seconds(opt_.timeout_s);
    if (!Submit(*req, job.get(), &error)) {
      if (error.status == 429) res.set_header("Retry-After", "1");
      SetError(res, error);
      return;
    }
    if (req->stream) {
      Stream(req, job, res);
    } else {
      Wait(http_req, *job, res);
    }
  }

  std::string NewId(const char* prefix) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%016llx",
                  static_cast<unsigned long long>(next_id_.fetch_add(1) * 0x9E3779B97F4A7C15ull));
    return prefix + std::string(buf);
  }

  static constexpr auto kPoll = std::chrono::milliseconds(250);

  enum class Wake { kEvent, kIdle, kEnded };
  // The next event of `job` (kEvent), none within kPoll (kIdle), or kEnded:
  // past the deadline or stopping, its requests are ended and `error` says why.
  Wake Next(Job& job, Event* e, ServeError* error) {
    if (job.channel->Pop(e, std::min(job.deadline, Clock::now() + kPoll))) return Wake::kEvent;
    if (!stopping_ && Clock::now() < job.deadline) return Wake::kIdle;
    const bool timeout = !stopping_;
    EndRest(job, timeout ? kTimeout : kShutdown);
    *error = Ended(timeout);
    return Wake::kEnded;
  }

  // Non-streamed: collect everything, answer once.
  void Wait(const httplib::Request& req, Job& job, httplib::Response& res) {
    std::vector<ChoiceResult> results(job.ids.size());
    std::vector<ReasoningSplitter> splitters(Splits(job) ? job.ids.size() : 0);
    ServeError error;
    // The client's socket, looked up once the request has taken kPoll, then
    // checked every kPoll: a client that went away ends the generation.
    int connection = -2;
    auto next_check = Clock::now() + kPoll;
    while (job.n_done < job.ids.size()) {
      Event e;
      const Wake wake = Next(job, &e, &error);
      if (wake == Wake::kEnded) {
        SetError(res, error);
        return;
      }
      if (Clock::now() >= next_check) {
        if (connection == -2) connection = FindConnection(req);
        if (PeerClosed(connection)) {
          EndRest(job, kDisconnected);
          return;
        }
        next_check = Clock::now() + kPoll;
      }
      if (wake == Wake::kIdle) continue;
      ChoiceResult& r = results[e.choice];
      if (splitters.empty()) {
        r.text += e.text;
      } else {
        splitters[e.choice].Feed(e.text, &r.reasoning, &r.text);
        if (e.kind == HEARTH_EVENT_DONE) splitters[e.choice].Finish(&r.reasoning, &r.text);
      }
      if (e.has_token && job.meta.logprobs) r.logprobs.push_back(LogprobOf(e));
      if (e.kind == HEARTH_EVENT_DONE && !Finish(job, e, &results, &error)) {
        EndRest(job, kError);
        SetError(res, error);
        return;
      }
    }
    res.set_content(ResponseJson(job.meta, results, job.usage), "application/json");
  }

  // Streamed: server-sent events from the handler's thread, as they come.
  void Stream(std::shared_ptr<ServeRequest> req, std::shared_ptr<Job> job, httplib::Response& res) {
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, req, job](size_t, httplib::DataSink& sink) { return StreamAll(*req, *job, sink); },
        [this, job](bool success) {
          // The provider returned false, or the client went before it ran.
          if (job->n_done < job->ids.size()) EndRest(*job, success ? kShutdown : kDisconnected);
        });
  }

  // Writes the whole stream; false when the client is gone.
  bool StreamAll(const ServeRequest& req, Job& job, httplib::DataSink& sink) {
    auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
    if (job.meta.kind == ServeKind::kChat) {
      for (size_t i = 0; i < job.ids.size(); ++i) {
        if (!write(RoleChunk(job.meta, i))) return false;
      }
    }
    std::vector<size_t> offsets(job.ids.size(), 0);
    std::vector<ReasoningSplitter> splitters(Splits(job) ? job.ids.size() : 0);
    auto last_write = Clock::now();
    while (job.n_done < job.ids.size()) {
      Event e;
      ServeError ended;
      const Wake wake = Next(job, &e, &ended);
      if (wake == Wake::kEnded) {
        write(ErrorChunk(ended)) && write(kDoneEvent);
        sink.done();
        return true;
      }
      if (wake == Wake::kIdle) {
        // A comment line now and then: a client that has gone makes the
        // write fail, which cancels its generation even before any token.
        if (Clock::now() - last_write > std::chrono::seconds(1)) {
          if (!write(": keep-alive\n\n")) return false;
          last_write = Clock::now();
        }
        continue;
      }
      const bool wants_lp = job.meta.logprobs && e.has_token;
      std::string reasoning, text;
      if (splitters.empty()) {
        text.swap(e.text);
      } else {
        splitters[e.choice].Feed(e.text, &reasoning, &text);
        if (e.kind == HEARTH_EVENT_DONE) splitters[e.choice].Finish(&reasoning, &text);
      }
      if (!text.empty() || !reasoning.empty() || wants_lp) {
        TokenLogprob lp;
        if (wants_lp) lp = LogprobOf(e);
        if (!write(TextChunk(job.meta, e.choice, text, wants_lp ? &lp : nullptr, offsets[e.choice],
                             reasoning))) {
          return false;
        }
        if (wants_lp) offsets[e.choice] += lp.piece.size();
        last_write = Clock::now();
      }
      if (e.kind == HEARTH_EVENT_DONE) {
        ServeError error;
        if (!Finish(job, e, nullptr, &error)) {
          EndRest(job, kError);
          write(ErrorChunk(error)) && write(kDoneEvent);
          sink.done();
          return true;
        }
        if (!write(FinishChunk(job.meta, e.choice, FinishName(e.finish)))) return false;
      }
    }
    if (req.include_usage && !write(UsageChunk(job.meta, job.usage))) return false;
    if (!write(kDoneEvent)) return false;
    sink.done();
    return true;
  }

  bool Splits(const Job& job) const {
    return split_reasoning_ && job.meta.kind == ServeKind::kChat;
  }

  const ServeOptions opt_;
  bool split_reasoning_ = false;
  std::atomic<bool> stopping_{false};
  hearth_model* model_;
  hearth_engine* engine_;
  ServeCatalog catalog_;
  ServeLimits limits_;
  const int64_t started_ = static_cast<int64_t>(std::time(nullptr));
  std::atomic<uint64_t> next_id_{1};
  std::atomic<uint64_t> rejected_{0};
  std::mutex mu_;
  uint64_t outcomes_[kNumOutcomes] = {};
  std::map<int, uint64_t> http_codes_;
};

ServeEndpoints::ServeEndpoints(const ServeOptions& options, hearth_model* model,
                               hearth_engine* engine, ServeCatalog catalog)
    : impl_(std::make_unique<Impl>(options, model, engine, std::move(catalog))) {}
ServeEndpoints::~ServeEndpoints() = default;
void ServeEndpoints::Install(httplib::Server& http) { impl_->Install(http); }
void ServeEndpoints::Stop() { impl_->Stop(); }

}  // namespace hearth::cli
