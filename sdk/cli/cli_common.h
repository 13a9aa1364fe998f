// cli_common.h — what the `hearth` subcommands share: owning handles over
// the C ABI, the flags that open a runtime and a model, and error reporting
// ("hearth: <message>" on stderr, exit code 1).
#ifndef HEARTH_SDK_CLI_CLI_COMMON_H_
#define HEARTH_SDK_CLI_CLI_COMMON_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "hearth/hearth.h"

namespace hearth::cli {

template <auto kFree>
struct HandleDeleter {
  template <class T>
  void operator()(T* p) const {
    kFree(p);
  }
};
using Runtime = std::unique_ptr<hearth_runtime, HandleDeleter<hearth_runtime_free>>;
using Model = std::unique_ptr<hearth_model, HandleDeleter<hearth_model_free>>;
using Session = std::unique_ptr<hearth_session, HandleDeleter<hearth_session_free>>;
using Sampler = std::unique_ptr<hearth_sampler, HandleDeleter<hearth_sampler_free>>;
using Adapter = std::unique_ptr<hearth_adapter, HandleDeleter<hearth_adapter_free>>;

// Flags every command that loads a model takes.
struct ModelFlags {
  std::string model;        // -m
  std::string device;       // --device
  std::string plugin_path;  // --plugin-path
  int64_t threads = 0;      // --threads; 0 = all cores
  bool verbose = false;     // -v: library log level info
  std::vector<std::string> lora;  // --lora PATH[:SCALE], repeatable
  bool lora_ignore_base = false;  // --lora-ignore-base
};
void AddRuntimeFlags(ArgParser& parser, ModelFlags* flags);
void AddModelFlags(ArgParser& parser, ModelFlags* flags,
                   const char* model_help = "the model, a GGUF file (required)");

// --lora PATH[:SCALE] (repeatable) and --lora-ignore-base, for commands that
// run a session.
void AddLoraFlag(ArgParser& parser, ModelFlags* flags);

// Adapters loaded for one model, with the scales the user gave.
struct Adapters {
  std::vector<Adapter> handles;
  std::vector<float> scales;
};
// Splits "PATH[:SCALE]": a suffix after the last ':' that parses as a
// finite number is the scale (default 1); anything else is part of PATH.
void ParseLoraSpec(const std::string& spec, std::string* path, float* scale);
// Loads every --lora for `model` (model may be NULL: inspection only).
// kExitOk or an exit code after printing why.
// `ignore_base`: load adapters trained on another base (provenance check off).
int LoadAdapters(hearth_model* model, const std::vector<std::string>& specs, Adapters* out,
                 bool ignore_base = false);
// OpenRuntime, OpenModel and LoadAdapters(flags.lora), for the commands that
// run a session.
int OpenModelWithAdapters(const ModelFlags& flags, Runtime* rt, Model* model, Adapters* adapters);

// The sampling flags of commands that generate (--temp, --top-k, ...), with
// the library's defaults in place.
struct SamplingFlags {
  hearth_sampling_params params = HEARTH_SAMPLING_PARAMS_INIT;
  int64_t top_k = params.top_k;
  int64_t last_n = params.penalty_last_n;
};
void AddSamplingFlags(ArgParser& parser, SamplingFlags* flags);

// --kv-type f32|f16: what the KV cache stores (hearth_kv_type).
void AddKvTypeFlag(ArgParser& parser, std::string* flag);
// The flag's hearth_kv_type in *kv_type; else a usage error printed naming
// the flag (the return value), kExitOk when it parsed.
int ParseKvTypeFlag(const ArgParser& parser, const std::string& flag, uint32_t* kv_type);
// Copies the parsed flags into flags->params and asks the library whether
// they are valid, before any model loads. kExitOk, or a usage error printed
// naming the flag.
int CheckSamplingFlags(const ArgParser& parser, SamplingFlags* flags);

// Prints "hearth: <message>" to stderr, frees `err`, returns kExitRuntimeError.
// `context` (may be empty) is put before the message unless the message
// already names it (e.g. the model path).
int ReportError(hearth_error* err, const std::string& context = "");

// Both return kExitOk or an exit code after printing why.
int OpenRuntime(const ModelFlags& flags, Runtime* out);
int OpenModel(hearth_runtime* rt, const ModelFlags& flags, Model* out);
// A session with `params`; on failure reports the error (prefixed by
// `context` when given) and returns the exit code.
// `adapters` (may be NULL or empty) are attached to it.
int OpenSession(hearth_model* model, const hearth_session_params& params, Session* out,
                const std::string& context = "", const Adapters* adapters = nullptr);

// Tokenizes `text`; kExitOk or an error already reported.
int Tokenize(const hearth_model* model, const std::string& text, uint32_t flags,
             std::vector<int32_t>* out);

// Reads a whole regular file; false with `error` ("<path>: …") set when it
// cannot. A directory, a FIFO or a device such as /dev/zero is refused by
// name without blocking (format::RegularFile, the core's own check).
bool ReadFile(const std::string& path, std::string* out, std::string* error);

// "1.23 GiB" style.
std::string HumanBytes(double bytes);
// "max tokens", "end of generation", … for timing lines.
const char* StopReasonName(hearth_stop_reason reason);

}  // namespace hearth::cli

#endif  // HEARTH_SDK_CLI_CLI_COMMON_H_
