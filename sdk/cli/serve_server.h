// serve_server.h — the HTTP endpoints of `hearth serve` (docs/serve.md):
// OpenAI's chat and completions API, /v1/models, /health and /metrics, with
// the key check, limits, timeouts and disconnect handling, over a started
// hearth engine. cli_serve.cc owns the flags, the model, the engine and the
// listening socket.
#ifndef HEARTH_SDK_CLI_SERVE_SERVER_H_
#define HEARTH_SDK_CLI_SERVE_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "hearth/hearth.h"
#include "serve_request.h"

namespace httplib {
class Server;
}

namespace hearth::cli {

// `hearth serve`'s flags.
struct ServeOptions {
  std::string host = "127.0.0.1";
  int64_t port = 8080;
  std::string name;  // the base model's id; default: the file's name without .gguf
  std::string api_key;
  int64_t n_seq = 8;
  int64_t n_ctx = 0;
  int64_t kv_block = 16;  // paged KV cache: positions per page (0: n_seq fixed slots)
  int64_t kv_pages = 0;  // pages in the pool (0: as many as n_seq full contexts need)
  int64_t max_body = 1 << 20;
  int64_t max_tokens_limit = 4096;
  int64_t max_queue = 64;
  int64_t timeout_s = 600;
  int64_t http_threads = 0;
};

class ServeEndpoints {
 public:
  // `engine` must be started and outlive the HTTP server's handlers.
  ServeEndpoints(const ServeOptions& options, hearth_model* model, hearth_engine* engine,
                 ServeCatalog catalog);
  ~ServeEndpoints();
  ServeEndpoints(const ServeEndpoints&) = delete;
  ServeEndpoints& operator=(const ServeEndpoints&) = delete;

  // Registers the routes and handlers on `http`.
  void Install(httplib::Server& http);
  // Handlers still waiting end their requests within a quarter second (503,
  // or an error event in a stream), so the HTTP server can stop.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hearth::cli

#endif  // HEARTH_SDK_CLI_SERVE_SERVER_H_
