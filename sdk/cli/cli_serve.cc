// cli_serve.cc — `hearth serve`: an OpenAI-compatible HTTP server over one
// model, a thin client of hearth.h's engine (docs/serve.md). This file has
// the flags, the model, adapters and engine, the listening socket and the
// signals; serve_server.cc the endpoints.
#include <httplib.h>
#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli_commands.h"
#include "cli_common.h"
#include "serve_request.h"
#include "serve_server.h"

namespace hearth::cli {
namespace {

using Engine = std::unique_ptr<hearth_engine, HandleDeleter<hearth_engine_free>>;

bool IsLoopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" ||
         host.compare(0, 4, "127.") == 0;
}

// "NAME=PATH[:SCALE]" or "PATH[:SCALE]" (the name is then the folder's or
// file's name without extension).
void SplitLoraFlag(const std::string& flag, std::string* name, std::string* spec) {
  const size_t eq = flag.find('=');
  if (eq != std::string::npos && eq > 0 && flag.find('/') > eq) {
    *name = flag.substr(0, eq);
    *spec = flag.substr(eq + 1);
    return;
  }
  *spec = flag;
  std::string path;
  float scale = 1;
  ParseLoraSpec(flag, &path, &scale);
  while (!path.empty() && path.back() == '/') path.pop_back();
  std::string base = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
  if (const size_t dot = base.rfind('.'); dot != std::string::npos && dot > 0) base.resize(dot);
  *name = base;
}

}  // namespace

int RunServe(int argc, char** argv) {
  ModelFlags mf;
  ServeOptions opt;
  std::string api_key_file;
  std::vector<std::string> loras;
  ArgParser p("serve", "serve -m MODEL [--lora NAME=DIR]... [--port 8080] [flags]",
              "Serves the model over HTTP with OpenAI's API: POST /v1/chat/completions and\n"
              "/v1/completions (streamed with \"stream\": true), GET /v1/models, /health and\n"
              "/metrics. Requests are batched by the engine; each may pick its adapter with\n"
              "\"model\": \"BASE+NAME\". Prints \"listening on http://HOST:PORT\" when ready.\n"
              "See docs/serve.md.");
  AddModelFlags(p, &mf);
  p.AddStringList("--lora", "NAME=PATH[:SCALE]", &loras,
                  "offer a LoRA adapter (PEFT folder or GGUF) as model BASE+NAME; repeatable");
  p.AddSwitch("--lora-ignore-base", &mf.lora_ignore_base,
              "load adapters whose provenance names another base model's weights");
  p.AddString("--name", "ID", &opt.name, "the base model's id (default: the file's name)");
  p.AddString("--host", "ADDR", &opt.host, "address to listen on (default 127.0.0.1)");
  p.AddInt("--port", "N", &opt.port, 0, 65535, "port (default 8080; 0: any free port)");
  p.AddString("--api-key", "KEY", &opt.api_key,
              "require 'Authorization: Bearer KEY' (all but /health)");
  p.AddString("--api-key-file", "FILE", &api_key_file, "read the key from FILE (first line)");
  p.AddInt("--n-seq", "N", &opt.n_seq, 1, 256, "requests computed together (default 8)");
  p.AddInt("-c,--ctx", "N", &opt.n_ctx, 0, INT32_MAX,
           "tokens per request, prompt + reply (default 0: min(model's, 4096))");
  p.AddInt("--kv-block", "N", &opt.kv_block, 0, 65536,
           "page the KV cache in pages of N positions from one pool, which requests "
           "running together share for a common prompt start (default 16; --ctx is "
           "rounded down to a multiple; 0: n-seq fixed slots of --ctx, no sharing)");
  p.AddInt("--kv-pages", "N", &opt.kv_pages, 0, INT32_MAX,
           "pages in the pool with --kv-block (default 0: n-seq full contexts)");
  p.AddInt("--max-body", "BYTES", &opt.max_body, 1, INT64_MAX,
           "largest request body (default 1 MiB; larger: 413)");
  p.AddInt("--max-tokens-limit", "N", &opt.max_tokens_limit, 1, INT32_MAX,
           "largest max_tokens a request may ask, and the default (default 4096)");
  p.AddInt("--max-queue", "N", &opt.max_queue, 1, 1 << 20,
           "requests waiting for a slot before 429 (default 64)");
  p.AddInt("--timeout", "SECONDS", &opt.timeout_s, 1, 86400 * 365,
           "a request running longer is cancelled (default 600)");
  p.AddInt("--http-threads", "N", &opt.http_threads, 0, 4096,
           "connections handled at once (default 0: n-seq + max-queue + 8)");
  std::string kv_flag;
  AddKvTypeFlag(p, &kv_flag);
  if (int rc = p.Finish(p.Parse(argc, argv, 1)); rc >= 0) return rc;
  uint32_t kv_type = HEARTH_KV_F32;
  if (int rc = ParseKvTypeFlag(p, kv_flag, &kv_type); rc != kExitOk) return rc;
  if (!p.positional().empty())
    return p.UsageError("unexpected argument '" + p.positional()[0] + "'");
  if (mf.model.empty()) return p.UsageError("-m MODEL is required");
  if (p.Seen("--api-key") && p.Seen("--api-key-file")) {
    return p.UsageError("give --api-key or --api-key-file, not both");
  }
  if (p.Seen("--api-key-file")) {
    std::string text, error;
    if (!ReadFile(api_key_file, &text, &error)) {
      std::fprintf(stderr, "hearth: %s\n", error.c_str());
      return kExitRuntimeError;
    }
    opt.api_key = text.substr(0, text.find_first_of("\r\n"));
    if (opt.api_key.empty()) return p.UsageError("--api-key-file " + api_key_file + " is empty");
  }
  if (p.Seen("--api-key") && opt.api_key.empty()) return p.UsageError("--api-key is empty");

  ServeCatalog catalog;
  std::vector<std::string> specs;
  for (const std::string& flag : loras) {
    std::string name, spec;
    SplitLoraFlag(flag, &name, &spec);
    if (name.empty() || name.find('+') != std::string::npos) {
      return p.UsageError("--lora " + flag + ": the name must be non-empty and without '+'");
    }
    if (std::find(catalog.adapters.begin(), catalog.adapters.end(), name) !=
        catalog.adapters.end()) {
      return p.UsageError("--lora: two adapters are named '" + name + "'");
    }
    catalog.adapters.push_back(name);
    specs.push_back(spec);
  }
  if (opt.name.empty()) {
    std::string base =
        mf.model.substr(mf.model.rfind('/') == std::string::npos ? 0 : mf.model.rfind('/') + 1);
    if (base.size() > 5 && base.compare(base.size() - 5, 5, ".gguf") == 0)
      base.resize(base.size() - 5);
    opt.name = base;
  }
  catalog.base = opt.name;

  // SIGINT/SIGTERM go to one thread (below) that stops the server; every
  // other thread, httplib's and the engine's included, has them blocked.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Runtime rt;
  Model model;
  Adapters adapters;
  if (int rc = OpenRuntime(mf, &rt)) return rc;
  if (int rc = OpenModel(rt.get(), mf, &model)) return rc;
  if (int rc = LoadAdapters(model.get(), specs, &adapters, mf.lora_ignore_base)) return rc;

  std::vector<const hearth_adapter*> adapter_list;
  for (const Adapter& a : adapters.handles) adapter_list.push_back(a.get());
  hearth_engine_params ep = HEARTH_ENGINE_PARAMS_INIT;
  ep.n_seq = static_cast<uint32_t>(opt.n_seq);
  ep.n_ctx = static_cast<uint32_t>(opt.n_ctx);
  ep.kv_block_size = static_cast<uint32_t>(opt.kv_block);
  ep.kv_pages = static_cast<uint32_t>(opt.kv_pages);
  ep.kv_type = kv_type;
  ep.n_threads = static_cast<uint32_t>(mf.threads);
  ep.max_waiting = static_cast<uint32_t>(opt.max_queue);
  ep.adapters = adapter_list.empty() ? nullptr : adapter_list.data();
  ep.n_adapters = adapter_list.size();
  hearth_engine* raw_engine = nullptr;
  if (hearth_error* err = hearth_engine_create(model.get(), &ep, &raw_engine)) {
    return ReportError(err, "engine");
  }
  Engine engine(raw_engine);
  // Scales given on --lora apply when a request names the adapter through
  // "model"; the "adapters" field gives its own.
  catalog.default_scales = adapters.scales;
  if (hearth_error* err = hearth_engine_start(engine.get())) return ReportError(err, "engine");

  ServeEndpoints endpoints(opt, model.get(), engine.get(), catalog);
  httplib::Server http;
  const size_t n_threads = opt.http_threads > 0
                               ? static_cast<size_t>(opt.http_threads)
                               : static_cast<size_t>(opt.n_seq + opt.max_queue + 8);
  http.new_task_queue = [n_threads] { return new httplib::ThreadPool(n_threads); };
  http.set_payload_max_length(static_cast<size_t>(opt.max_body));
  endpoints.Install(http);

  if (!IsLoopback(opt.host) && opt.api_key.empty()) {
    std::fprintf(stderr,
                 "hearth: warning: listening on %s without --api-key: anyone who can reach "
                 "this address can use the model\n",
                 opt.host.c_str());
  }
  int port = static_cast<int>(opt.port);
  if (port == 0) {
    port = http.bind_to_any_port(opt.host);
    if (port <= 0) port = -1;
  } else if (!http.bind_to_port(opt.host, port)) {
    port = -1;
  }
  if (port < 0) {
    std::fprintf(stderr, "hearth: cannot listen on %s:%lld\n", opt.host.c_str(),
                 static_cast<long long>(opt.port));
    return kExitRuntimeError;
  }
  const bool v6 = opt.host.find(':') != std::string::npos;
  std::printf("listening on http://%s%s%s:%d\n", v6 ? "[" : "", opt.host.c_str(), v6 ? "]" : "",
              port);
  std::fflush(stdout);

  std::atomic<bool> signalled{false};
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    signalled = true;
    endpoints.Stop();
    http.stop();
  });
  const bool ok = http.listen_after_bind();
  if (!signalled.load()) {
    // listen ended on its own: wake the signal thread so it can be joined.
    pthread_kill(signal_thread.native_handle(), SIGTERM);
  }
  signal_thread.join();
  hearth_engine_stop(engine.get());
  engine.reset();
  std::fprintf(stderr, "hearth: server stopped\n");
  return ok ? kExitOk : kExitRuntimeError;
}

}  // namespace hearth::cli
