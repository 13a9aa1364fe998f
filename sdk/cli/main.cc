// main.cc — `hearth`: dispatches to a subcommand. The CLI is one more client
// of hearth.h; it links libhearth and nothing else of the SDK.
//
// Exit codes: 0 ok, 1 runtime error ("hearth: <message>" on stderr),
// 2 usage error, 3 out of memory ("hearth: out of memory ...").
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <string>

#include "args.h"
#include "cli_commands.h"
#include "hearth/hearth.h"

namespace hearth::cli {
namespace {

// Out of memory, the CLI's policy: a failed operator new anywhere in the
// process (libhearth, Abseil, oneDNN's static constructors at plugin load)
// ends it here, with one line and exit code 3, instead of throwing
// std::bad_alloc. Unwinding from an arbitrary allocation is not safe in
// this process: Abseil's hash tables are left half-resized (their
// destructors then free what they never allocated), and a throw inside a
// static constructor or a noexcept function calls std::terminate. Sizes an
// input controls (KV cache, activations, adapter weights, mmaps) do not
// come here: they are allocated with malloc-family calls whose failure the
// library reports as RESOURCE_EXHAUSTED naming what it was for.
// Async-signal-safe calls only: the heap is exhausted.
[[noreturn]] void OutOfMemory(const char* where) {
  static const char kHead[] = "hearth: out of memory (";
  static const char kTail[] = "); stopping\n";
  (void)!write(STDERR_FILENO, kHead, sizeof kHead - 1);
  (void)!write(STDERR_FILENO, where, std::strlen(where));
  (void)!write(STDERR_FILENO, kTail, sizeof kTail - 1);
  _exit(kExitOutOfMemory);
}

void OnNewFailure() { OutOfMemory("an allocation failed"); }

// A std::bad_alloc that some library throws itself (not through operator
// new) and that reaches a noexcept boundary ends the same way; any other
// uncaught exception keeps the default report and abort.
[[noreturn]] void OnTerminate() {
  if (std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::bad_alloc&) {
      OutOfMemory("std::bad_alloc reached std::terminate");
    } catch (...) {
    }
  }
  static const char kMsg[] = "hearth: internal error: std::terminate called\n";
  (void)!write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
  std::abort();
}

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);  // argv[0] is the command name
};

constexpr Command kCommands[] = {
    {"generate", "generate text from a prompt, streamed to stdout", RunGenerate},
    {"chat", "talk with a chat model: one question (-p) or a conversation on stdin", RunChat},
    {"perplexity", "measure how well a model predicts a text file (llama.cpp's method)",
     RunPerplexity},
    {"tokenize", "print the token ids of a text", RunTokenize},
    {"detokenize", "print the text of token ids", RunDetokenize},
    {"info", "list plugins and devices, or describe a model (-m)", RunInfo},
    {"bench", "measure prompt processing and generation speed, and memory bandwidth", RunBench},
    {"export", "write a standalone GGUF with LoRA adapters merged in (--merge)", RunExport},
    {"convert", "convert a Hugging Face model directory (llama, qwen2, gemma3) to GGUF",
     RunConvert},
    {"quantize", "rewrite a GGUF model with other weight types (q8_0, q4_k_m, ...)", RunQuantize},
    {"data", "check a JSONL training file against a model: examples, tokens, trained part",
     RunData},
    {"finetune", "train a LoRA adapter on a JSONL file and save it as a PEFT directory",
     RunFinetune},
    {"conformance", "check a backend plugin's ops against float64 references (--plugin PATH)",
     RunConformance},
    {"serve", "serve the model over HTTP with OpenAI's API (chat, completions, adapters)",
     RunServe},
};

void PrintTopHelp(std::FILE* out) {
  std::fprintf(out,
               "usage: hearth <command> [flags]\n\n"
               "hearth %s runs open language models on this machine.\n\ncommands:\n",
               hearth_version_string());
  for (const Command& c : kCommands) std::fprintf(out, "  %-12s %s\n", c.name, c.summary);
  std::fprintf(out,
               "\nRun 'hearth <command> --help' for a command's flags.\n"
               "Other flags: -h, --help (this text); --version.\n"
               "Exit codes: 0 ok, 1 runtime error, 2 usage error, 3 out of memory.\n");
}

int Main(int argc, char** argv) {
  // A closed pipe (hearth generate ... | head) must end the run with an
  // error from write(), not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  if (argc < 2) {
    PrintTopHelp(stderr);
    return kExitUsage;
  }
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help") {
    PrintTopHelp(stdout);
    return kExitOk;
  }
  if (cmd == "help") {
    if (argc < 3) {
      PrintTopHelp(stdout);
      return kExitOk;
    }
    for (const Command& c : kCommands) {
      if (std::strcmp(argv[2], c.name) == 0) {
        char help_flag[] = "--help";
        char* sub_argv[] = {argv[2], help_flag, nullptr};
        return c.run(2, sub_argv);
      }
    }
    std::fprintf(stderr, "hearth: unknown command '%s'\n", argv[2]);
    return kExitUsage;
  }
  if (cmd == "--version" || cmd == "version") {
    const uint32_t abi = hearth_abi_version();
    std::printf("hearth %s (ABI %u.%u)\n", hearth_version_string(), abi >> 16, abi & 0xFFFFu);
    return kExitOk;
  }
  for (const Command& c : kCommands) {
    if (cmd == c.name) return c.run(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "hearth: unknown command '%s'\n\n", cmd.c_str());
  PrintTopHelp(stderr);
  return kExitUsage;
}

}  // namespace
}  // namespace hearth::cli

int main(int argc, char** argv) {
  // First of all, before any plugin is loaded.
  std::set_new_handler(hearth::cli::OnNewFailure);
  std::set_terminate(hearth::cli::OnTerminate);
  try {
    return hearth::cli::Main(argc, argv);
  } catch (const std::bad_alloc&) {
    hearth::cli::OutOfMemory("std::bad_alloc reached main");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hearth: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "hearth: unexpected error\n");
  }
  return hearth::cli::kExitRuntimeError;
}
