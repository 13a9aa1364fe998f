// cli_generate.cc — `hearth generate`: stream a completion of a prompt to stdout.
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cli_commands.h"
#include "cli_common.h"

namespace hearth::cli {
namespace {

volatile std::sig_atomic_t g_interrupted = 0;
void OnInterrupt(int) { g_interrupted = 1; }

struct StreamState {
  bool wrote_any = false;
  bool ends_with_newline = false;
  int write_errno = 0;
};

// Each piece is flushed at once so a reader sees tokens as they come.
int OnText(const char* piece, size_t len, void* user_data) {
  auto* state = static_cast<StreamState*>(user_data);
  if (g_interrupted) return 1;
  if (len == 0) return 0;
  if (std::fwrite(piece, 1, len, stdout) != len || std::fflush(stdout) != 0) {
    state->write_errno = errno ? errno : EIO;
    return 1;
  }
  state->wrote_any = true;
  state->ends_with_newline = piece[len - 1] == '\n';
  return 0;
}

double PerSecond(uint32_t n, double seconds) { return seconds > 0 ? n / seconds : 0.0; }

}  // namespace

int RunGenerate(int argc, char** argv) {
  ModelFlags mf;
  std::string prompt, prompt_file;
  std::vector<std::string> stops, bans;
  std::string constraint, constraint_config;
  int64_t n_predict = 64, n_ctx = 0, n_batch = 0;
  bool quiet = false, parse_special = false;
  SamplingFlags sf;

  ArgParser p("generate", "generate -m MODEL (-p PROMPT | -f FILE) [flags]",
              "Generates a completion of the prompt and streams it to stdout as it is made.\n"
              "A timing line goes to stderr unless --quiet. Ctrl-C stops generation cleanly.");
  AddModelFlags(p, &mf);
  AddLoraFlag(p, &mf);
  p.AddString("-p,--prompt", "TEXT", &prompt, "the prompt");
  p.AddString("-f,--file", "FILE", &prompt_file, "read the prompt from a file");
  p.AddInt("-n,--n-predict", "N", &n_predict, -1, INT32_MAX,
           "tokens to generate (default 64; -1: until the context is full)");
  AddSamplingFlags(p, &sf);
  p.AddStringList("--stop", "STR", &stops, "stop when STR appears (not printed); repeatable");
  p.AddStringList("--ban", "STR", &bans,
                  "never generate STR (the banned-strings extension plugin); repeatable");
  p.AddString("--constraint", "PLUGIN", &constraint,
              "constrain decoding with this extension plugin's logits mask");
  p.AddString("--constraint-config", "TEXT", &constraint_config,
              "the constraint plugin's configuration (its own format)");
  p.AddInt("-c,--ctx", "N", &n_ctx, 0, INT32_MAX, "context length (default 0: min(model's, 4096))");
  p.AddInt("-b,--batch", "N", &n_batch, 0, INT32_MAX,
           "prompt tokens per step (default 0: the library's, 256)");
  p.AddSwitch("--parse-special", &parse_special,
              "turn special-token texts in the prompt (e.g. <|im_start|>) into their tokens");
  p.AddSwitch("-q,--quiet", &quiet, "no timing line on stderr");
  std::string kv_flag;
  AddKvTypeFlag(p, &kv_flag);
  if (int rc = p.Finish(p.Parse(argc, argv, 1)); rc >= 0) return rc;
  uint32_t kv_type = HEARTH_KV_F32;
  if (int rc = ParseKvTypeFlag(p, kv_flag, &kv_type); rc != kExitOk) return rc;

  if (!p.positional().empty()) {
    return p.UsageError("unexpected argument '" + p.positional()[0] +
                        "' (the prompt goes after -p)");
  }
  if (mf.model.empty()) return p.UsageError("-m MODEL is required");
  if (p.Seen("-p") == p.Seen("-f")) return p.UsageError("give exactly one of -p PROMPT or -f FILE");
  if (!bans.empty()) {
    if (p.Seen("--constraint") && constraint != "banned-strings") {
      return p.UsageError("--ban uses the banned-strings plugin; it cannot go with --constraint " +
                          constraint);
    }
    constraint = "banned-strings";
    for (const std::string& b : bans) {
      if (b.empty() || b.find('\n') != std::string::npos) {
        return p.UsageError("--ban takes a non-empty string without newlines");
      }
      constraint_config += b + "\n";
    }
  }
  if (p.Seen("--constraint-config") && constraint.empty()) {
    return p.UsageError("--constraint-config needs --constraint PLUGIN");
  }
  if (p.Seen("-f")) {
    std::string error;
    if (!ReadFile(prompt_file, &prompt, &error)) {
      std::fprintf(stderr, "hearth: %s\n", error.c_str());
      return kExitRuntimeError;
    }
  }

  // Bad sampling values are the user's flags: catch them before the model loads.
  if (int rc = CheckSamplingFlags(p, &sf)) return rc;

  Runtime rt;
  Model model;
  Adapters adapters;
  if (int rc = OpenModelWithAdapters(mf, &rt, &model, &adapters)) return rc;
  hearth_session_params sparams = HEARTH_SESSION_PARAMS_INIT;
  sparams.kv_type = kv_type;
  sparams.n_ctx = static_cast<uint32_t>(n_ctx);
  sparams.n_batch = static_cast<uint32_t>(n_batch);
  Session session;
  if (int rc = OpenSession(model.get(), sparams, &session, "", &adapters)) return rc;

  std::vector<const char*> stop_ptrs;
  for (const std::string& s : stops) stop_ptrs.push_back(s.c_str());
  hearth_generate_params gp = HEARTH_GENERATE_PARAMS_INIT;
  gp.max_tokens = static_cast<int32_t>(n_predict);
  gp.sampling = sf.params;
  gp.stop = stop_ptrs.empty() ? nullptr : stop_ptrs.data();
  gp.n_stop = stop_ptrs.size();
  if (!constraint.empty()) {
    gp.constraint = constraint.c_str();
    gp.constraint_config = constraint_config.c_str();
  }
  if (parse_special) {
    gp.use_default_flags = 0;
    gp.tokenize_flags = HEARTH_TOKENIZE_ADD_SPECIAL | HEARTH_TOKENIZE_PARSE_SPECIAL;
  }

  StreamState state;
  hearth_generate_result result = HEARTH_GENERATE_RESULT_INIT;
  g_interrupted = 0;
  auto previous = std::signal(SIGINT, OnInterrupt);
  hearth_error* err = hearth_session_generate(session.get(), prompt.data(), prompt.size(), &gp,
                                              OnText, &state, &result);
  std::signal(SIGINT, previous);
  if (state.wrote_any && !state.ends_with_newline && isatty(fileno(stdout)))
    std::fputc('\n', stdout);
  std::fflush(stdout);
  if (err != nullptr) return ReportError(err);
  if (state.write_errno != 0) {
    // `hearth generate ... | head` closing the pipe is not worth a message.
    if (state.write_errno != EPIPE) {
      std::fprintf(stderr, "hearth: writing to stdout failed: %s\n",
                   std::strerror(state.write_errno));
    }
    return kExitRuntimeError;
  }
  if (!quiet) {
    std::fprintf(stderr,
                 "prompt: %u tokens, %.3f s, %.2f tok/s | generated: %u tokens, %.3f s, "
                 "%.2f tok/s | stop: %s\n",
                 result.n_prompt_tokens, result.prompt_seconds,
                 PerSecond(result.n_prompt_tokens, result.prompt_seconds),
                 result.n_generated_tokens, result.generate_seconds,
                 PerSecond(result.n_generated_tokens, result.generate_seconds),
                 StopReasonName(result.stop_reason));
  }
  return kExitOk;
}

}  // namespace hearth::cli
