// cli_chat.cc — `hearth chat`: a conversation in the model's chat format,
// one question (-p) or interactive turns read from stdin.
//
// Each turn hands the whole history to hearth_session_generate_chat with
// reuse_prefix, so the session computes only what is new since the last
// reply (its KV cache holds the rest). The library renders it in the model's
// chat format and parses control tokens in the format's markup only: what
// the user types stays text, even "<|im_end|>".
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "cli_commands.h"
#include "cli_common.h"
#include "terminal_text.h"

namespace hearth::cli {
namespace {

// Ctrl-C: the first stops the reply being generated (or, at the prompt,
// ends the chat); a second within kQuitWindowMs of the first ends the chat.
// The handler only records; the loops below act on it.
constexpr int64_t kQuitWindowMs = 1000;
volatile std::sig_atomic_t g_interrupted = 0;
volatile std::sig_atomic_t g_quit = 0;
std::atomic<int64_t> g_last_interrupt_ms{-1};
static_assert(std::atomic<int64_t>::is_always_lock_free, "used from a signal handler");

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // async-signal-safe (POSIX)
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void OnInterrupt(int) {
  const int64_t now = NowMs();
  const int64_t last = g_last_interrupt_ms.exchange(now);
  if (last >= 0 && now - last < kQuitWindowMs) g_quit = 1;
  g_interrupted = 1;
}

// Installs OnInterrupt without SA_RESTART, so a read() blocked at the prompt
// returns EINTR; restores the previous action when it goes out of scope.
class InterruptScope {
 public:
  InterruptScope() {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof(sa));
    sa.sa_handler = OnInterrupt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    installed_ = sigaction(SIGINT, &sa, &previous_) == 0;
  }
  ~InterruptScope() {
    if (installed_) sigaction(SIGINT, &previous_, nullptr);
  }
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

 private:
  struct sigaction previous_;
  bool installed_ = false;
};

// Reads stdin line by line with read(2), so that Ctrl-C at the prompt is
// seen at once (stdio would retry or hide the EINTR).
class LineReader {
 public:
  enum class Result { kLine, kEof, kInterrupted, kError };

  // One logical line: a line ending in '\' continues on the next one (the
  // backslash becomes a newline). `continuation` is printed before each
  // continued line when it is not null.
  Result Read(std::string* line, const char* continuation) {
    line->clear();
    for (;;) {
      std::string part;
      const Result r = ReadPhysical(&part);
      if (r != Result::kLine) {
        // A continued line cut short by EOF is still the user's message.
        return (r == Result::kEof && !line->empty()) ? Result::kLine : r;
      }
      if (!part.empty() && part.back() == '\\') {
        part.back() = '\n';
        *line += part;
        if (continuation) std::fputs(continuation, stderr);
        continue;
      }
      *line += part;
      return Result::kLine;
    }
  }

  int error() const { return error_; }

 private:
  Result ReadPhysical(std::string* out) {
    for (;;) {
      const size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        *out = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        if (!out->empty() && out->back() == '\r') out->pop_back();
        return Result::kLine;
      }
      if (eof_) {
        if (buffer_.empty()) return Result::kEof;
        *out = std::move(buffer_);  // last line without a newline
        buffer_.clear();
        return Result::kLine;
      }
      char chunk[4096];
      const ssize_t n = ::read(STDIN_FILENO, chunk, sizeof(chunk));
      if (n > 0) {
        buffer_.append(chunk, static_cast<size_t>(n));
      } else if (n == 0) {
        eof_ = true;
      } else if (errno == EINTR) {
        if (g_interrupted) return Result::kInterrupted;
      } else {
        error_ = errno;
        return Result::kError;
      }
    }
  }

  std::string buffer_;
  bool eof_ = false;
  int error_ = 0;
};

struct Turn {
  std::string role;
  std::string content;
};

struct ChatOptions {
  bool interactive = false;  // a conversation on stdin, not one -p question
  int64_t n_predict = 512;
  bool timings = false;
  hearth_sampling_params sampling = HEARTH_SAMPLING_PARAMS_INIT;
};

// The reply being streamed: kept whole for the history, written to stdout
// piece by piece.
struct ReplyState {
  std::string text;
  int write_errno = 0;
};

int OnReplyText(const char* piece, size_t len, void* user_data) {
  auto* state = static_cast<ReplyState*>(user_data);
  if (g_interrupted) return 1;
  if (len == 0) return 0;
  state->text.append(piece, len);
  if (std::fwrite(piece, 1, len, stdout) != len || std::fflush(stdout) != 0) {
    state->write_errno = errno ? errno : EIO;
    return 1;
  }
  return 0;
}


// The history as the C ABI takes it (borrowing the strings).
std::vector<hearth_chat_message> Messages(const std::vector<Turn>& history) {
  std::vector<hearth_chat_message> messages;
  for (const Turn& t : history) messages.push_back({t.role.c_str(), t.content.c_str()});
  return messages;
}

// How many ids the history takes in the model's chat format, with the
// assistant's turn opened. kExitOk or an error already reported.
int CountChatTokens(const hearth_model* model, const std::vector<Turn>& history, size_t* n) {
  const std::vector<hearth_chat_message> messages = Messages(history);
  if (hearth_error* err =
          hearth_chat_tokenize(model, messages.data(), messages.size(), 1, nullptr, 0, n)) {
    return ReportError(err, "chat format");
  }
  return kExitOk;
}

const char* Remedy(const ChatOptions& options) {
  return options.interactive ? "/reset to start over, or use a larger --ctx" : "use a larger --ctx";
}

// kRefused: the last message could not be taken (the conversation no longer
// fits in the context, or the text is not valid UTF-8); why is printed and
// nothing was generated, so a conversation can drop it and go on.
// kFailed: the run cannot go on.
enum class TurnOutcome { kReplied, kRefused, kFailed };

// Generates the assistant's reply to `history` (which ends with the user's
// message), streams it to stdout and appends it to `history`.
TurnOutcome Reply(hearth_model* model, hearth_session* session, const ChatOptions& options,
                  std::vector<Turn>* history, int* exit_code) {
  // Checked alone first, so an error's byte offset is one in the message.
  const std::string& message = history->back().content;
  size_t n_message = 0;
  if (hearth_error* err =
          hearth_tokenize(model, message.data(), message.size(), 0, nullptr, 0, &n_message)) {
    *exit_code = ReportError(err, "your message");
    return TurnOutcome::kRefused;
  }
  // The prompt must leave room for at least one reply token; asking first
  // gives the user a clear message instead of the library's length error.
  size_t n_prompt = 0;
  if ((*exit_code = CountChatTokens(model, *history, &n_prompt)) != kExitOk) {
    return TurnOutcome::kRefused;
  }
  const size_t n_ctx = hearth_session_n_ctx(session);
  if (n_prompt >= n_ctx) {
    std::fprintf(stderr, "hearth: the conversation is %zu tokens and the context holds %zu: %s\n",
                 n_prompt, n_ctx, Remedy(options));
    *exit_code = kExitRuntimeError;
    return TurnOutcome::kRefused;
  }

  hearth_generate_params gp = HEARTH_GENERATE_PARAMS_INIT;
  gp.max_tokens = static_cast<int32_t>(options.n_predict);
  gp.sampling = options.sampling;
  gp.reuse_prefix = 1;
  ReplyState state;
  hearth_generate_result result = HEARTH_GENERATE_RESULT_INIT;
  g_interrupted = 0;
  const std::vector<hearth_chat_message> messages = Messages(*history);
  hearth_error* err = hearth_session_generate_chat(session, messages.data(), messages.size(), &gp,
                                                   OnReplyText, &state, &result);
  // Each reply ends its line, so the next prompt (or reply) starts clean.
  if (state.write_errno == 0 && (state.text.empty() || state.text.back() != '\n')) {
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }
  if (err != nullptr) {
    *exit_code = ReportError(err);
    return TurnOutcome::kFailed;
  }
  if (state.write_errno != 0) {
    if (state.write_errno != EPIPE) {
      std::fprintf(stderr, "hearth: writing to stdout failed: %s\n",
                   std::strerror(state.write_errno));
    }
    *exit_code = kExitRuntimeError;
    return TurnOutcome::kFailed;
  }
  // An interrupted reply stays in the history as far as it got: that is
  // what the user saw, and the next turn builds on it.
  history->push_back({"assistant", state.text});
  if (options.timings) {
    const double tps =
        result.generate_seconds > 0 ? result.n_generated_tokens / result.generate_seconds : 0.0;
    std::fprintf(stderr, "[prompt %u tokens, %.3f s | reply %u tokens, %.2f tok/s | stop: %s]\n",
                 result.n_prompt_tokens, result.prompt_seconds, result.n_generated_tokens, tps,
                 StopReasonName(result.stop_reason));
  }
  if (result.stop_reason == HEARTH_STOP_CONTEXT_FULL) {
    std::fprintf(stderr, "hearth: the reply stopped because the context is full (%zu tokens): %s\n",
                 n_ctx, Remedy(options));
  }
  *exit_code = kExitOk;
  return TurnOutcome::kReplied;
}

void ResetHistory(std::vector<Turn>* history, const std::string& system) {
  history->clear();
  if (!system.empty()) history->push_back({"system", system});
}

constexpr char kInteractiveHelp[] =
    "commands: /reset (forget the conversation), /exit (or Ctrl-D) to quit.\n"
    "End a line with \\ to continue it. Ctrl-C stops a reply; at the prompt, or twice, it "
    "quits.\n";

int Interactive(hearth_model* model, hearth_session* session, const ChatOptions& options,
                const std::string& system) {
  const bool tty = isatty(STDIN_FILENO) != 0;
  if (tty) {
    hearth_model_info info = HEARTH_MODEL_INFO_INIT;
    std::string name = "the model";
    if (hearth_error* err = hearth_model_get_info(model, &info)) {
      hearth_error_free(err);
    } else if (info.name != nullptr && info.name[0] != '\0') {
      name = Printable(info.name);  // from the file: no terminal escapes
    }
    std::fprintf(stderr, "hearth chat with %s (context %zu tokens).\n%s", name.c_str(),
                 hearth_session_n_ctx(session), kInteractiveHelp);
  }
  std::vector<Turn> history;
  ResetHistory(&history, system);
  LineReader reader;
  InterruptScope interrupts;
  for (;;) {
    if (g_quit) break;
    g_interrupted = 0;
    if (tty) std::fputs("> ", stderr);
    std::string line;
    const LineReader::Result r = reader.Read(&line, tty ? "... " : nullptr);
    if (r == LineReader::Result::kEof || r == LineReader::Result::kInterrupted) {
      if (tty) std::fputc('\n', stderr);
      break;
    }
    if (r == LineReader::Result::kError) {
      std::fprintf(stderr, "hearth: reading stdin failed: %s\n", std::strerror(reader.error()));
      return kExitRuntimeError;
    }
    if (line.find_first_not_of(" \t\n") == std::string::npos) continue;
    if (line == "/exit" || line == "/quit") break;
    if (line == "/reset") {
      ResetHistory(&history, system);
      hearth_session_reset(session);
      std::fputs("(conversation cleared)\n", stderr);
      continue;
    }
    if (line == "/help") {
      std::fputs(kInteractiveHelp, stderr);
      continue;
    }
    history.push_back({"user", line});
    int exit_code = kExitOk;
    switch (Reply(model, session, options, &history, &exit_code)) {
      case TurnOutcome::kReplied:
        break;
      case TurnOutcome::kRefused:
        history.pop_back();  // not answered; the user may /reset (or rephrase) and retry
        break;
      case TurnOutcome::kFailed:
        return exit_code;
    }
  }
  return kExitOk;
}

}  // namespace

int RunChat(int argc, char** argv) {
  ModelFlags mf;
  SamplingFlags sf;
  ChatOptions options;
  std::string system, prompt;
  int64_t n_ctx = 0, n_batch = 0;

  ArgParser p("chat", "chat -m MODEL [-p QUESTION] [flags]",
              "Talks with a chat model in its own chat format (Gemma, ChatML, Llama 3, Llama 2,\n"
              "DeepSeek-R1).\n"
              "With -p: prints the reply to one question and exits. Without: reads messages\n"
              "from stdin, one per line (a trailing \\ continues a line), and streams each reply\n"
              "to stdout. In a conversation, /reset forgets it and /exit (or EOF) quits;\n"
              "Ctrl-C stops a reply, and at the prompt (or twice quickly) quits.");
  AddModelFlags(p, &mf);
  AddLoraFlag(p, &mf);
  p.AddString("-p,--prompt", "TEXT", &prompt, "ask one question, print the reply, exit");
  p.AddString("--system", "TEXT", &system, "a system message that opens the conversation");
  p.AddInt("-n,--n-predict", "N", &options.n_predict, -1, INT32_MAX,
           "most tokens per reply (default 512; -1: until the context is full)");
  AddSamplingFlags(p, &sf);
  p.AddInt("-c,--ctx", "N", &n_ctx, 0, INT32_MAX,
           "context length, the whole conversation (default 0: min(model's, 4096))");
  p.AddInt("-b,--batch", "N", &n_batch, 0, INT32_MAX,
           "prompt tokens per step (default 0: the library's, 256)");
  p.AddSwitch("--timings", &options.timings,
              "after each reply, print token counts, speed and why it stopped to stderr");
  std::string kv_flag;
  AddKvTypeFlag(p, &kv_flag);
  if (int rc = p.Finish(p.Parse(argc, argv, 1)); rc >= 0) return rc;
  uint32_t kv_type = HEARTH_KV_F32;
  if (int rc = ParseKvTypeFlag(p, kv_flag, &kv_type); rc != kExitOk) return rc;
  if (!p.positional().empty()) {
    return p.UsageError("unexpected argument '" + p.positional()[0] +
                        "' (a question goes after -p)");
  }
  if (mf.model.empty()) return p.UsageError("-m MODEL is required");
  if (p.Seen("-p") && prompt.find_first_not_of(" \t\n") == std::string::npos) {
    return p.UsageError("-p: the question is empty");
  }
  if (int rc = CheckSamplingFlags(p, &sf)) return rc;
  options.sampling = sf.params;

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

  // Fail before reading any input when the model has no chat format or the
  // system message is not text.
  {
    size_t n = 0;
    if (int rc = CountChatTokens(model.get(), std::vector<Turn>{Turn{"user", "hi"}}, &n)) {
      return rc;
    }
    if (hearth_error* err =
            hearth_tokenize(model.get(), system.data(), system.size(), 0, nullptr, 0, &n)) {
      return ReportError(err, "--system");
    }
  }

  options.interactive = !p.Seen("-p");
  if (options.interactive) return Interactive(model.get(), session.get(), options, system);

  std::vector<Turn> history;
  ResetHistory(&history, system);
  history.push_back({"user", prompt});
  InterruptScope interrupts;
  int exit_code = kExitOk;
  Reply(model.get(), session.get(), options, &history, &exit_code);
  return exit_code;
}

}  // namespace hearth::cli
