// cli_common.cc — runtime/model opening and error reporting for the subcommands.
#include "cli_common.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>

#include "sdk/src/format/regular_file.h"
#include "terminal_text.h"

namespace hearth::cli {

void AddRuntimeFlags(ArgParser& parser, ModelFlags* flags) {
  parser.AddString("--plugin-path", "PATHS", &flags->plugin_path,
                   "plugin files or folders to load first, ':'-separated");
  parser.AddSwitch("-v,--verbose", &flags->verbose, "log library information to stderr");
}

void AddModelFlags(ArgParser& parser, ModelFlags* flags, const char* model_help) {
  parser.AddString("-m,--model", "FILE", &flags->model, model_help);
  parser.AddString("--device", "NAME", &flags->device,
                   "device to run on, e.g. cpu (default: the best one; see 'hearth info')");
  parser.AddInt("-t,--threads", "N", &flags->threads, 0, 4096,
                "CPU threads for compute (default 0: all cores)");
  AddRuntimeFlags(parser, flags);
}

void AddKvTypeFlag(ArgParser& p, std::string* flag) {
  p.AddString("--kv-type", "TYPE", flag,
              "KV cache element type: f32 (default) or f16 (half the memory; k and v rounded)");
}

int ParseKvTypeFlag(const ArgParser& p, const std::string& flag, uint32_t* kv_type) {
  if (flag.empty() || flag == "f32" || flag == "F32") {
    *kv_type = HEARTH_KV_F32;
  } else if (flag == "f16" || flag == "F16") {
    *kv_type = HEARTH_KV_F16;
  } else {
    return p.UsageError("--kv-type: '" + flag + "' is not a KV cache type (f32 or f16)");
  }
  return kExitOk;
}

void AddSamplingFlags(ArgParser& p, SamplingFlags* f) {
  hearth_sampling_params& sp = f->params;
  p.AddFloat("--temp", "T", &sp.temperature,
             "temperature (default 0.8; <= 0: greedy, deterministic)");
  p.AddInt("--top-k", "K", &f->top_k, INT32_MIN, INT32_MAX,
           "keep the K most likely (default 40; 0: off)");
  p.AddFloat("--top-p", "P", &sp.top_p, "nucleus sampling, in (0, 1] (default 0.95; 1: off)");
  p.AddFloat("--min-p", "P", &sp.min_p,
             "drop tokens below P x the best one's probability (default 0.05)");
  p.AddFloat("--repeat-penalty", "X", &sp.repeat_penalty,
             "penalise repeated tokens, > 0 (default 1: off)");
  p.AddInt("--repeat-last-n", "N", &f->last_n, -1, INT32_MAX,
           "how many recent tokens the penalties see (default 64; -1: all)");
  p.AddFloat("--presence-penalty", "X", &sp.presence_penalty,
             "subtract X from seen tokens (default 0)");
  p.AddFloat("--frequency-penalty", "X", &sp.frequency_penalty,
             "subtract X per occurrence of seen tokens (default 0)");
  p.AddUint64("-s,--seed", "N", &sp.seed, "random seed (default 0xC0FFEE); same seed, same text");
}

int CheckSamplingFlags(const ArgParser& parser, SamplingFlags* f) {
  f->params.top_k = static_cast<int32_t>(f->top_k);
  f->params.penalty_last_n = static_cast<int32_t>(f->last_n);
  hearth_sampler* probe = nullptr;
  hearth_error* err = hearth_sampler_create(&f->params, &probe);
  if (err == nullptr) {
    hearth_sampler_free(probe);
    return kExitOk;
  }
  std::string message = hearth_error_message(err);
  hearth_error_free(err);
  // The library names the params field ("top_p = 1.5 is outside ..."); the
  // user typed a flag, so name that instead of the library's prefix.
  const std::string kPrefix = "sampling params: ";
  if (size_t at = message.find(kPrefix); at != std::string::npos) {
    message = message.substr(at + kPrefix.size());
  }
  static const char* const kFlagOf[][2] = {
      {"temperature", "--temp"},
      {"top_k", "--top-k"},
      {"top_p", "--top-p"},
      {"min_p", "--min-p"},
      {"repeat_penalty", "--repeat-penalty"},
      {"presence_penalty", "--presence-penalty"},
      {"frequency_penalty", "--frequency-penalty"},
      {"penalty_last_n", "--repeat-last-n"},
  };
  std::string flag = "sampling flags";
  for (const auto& m : kFlagOf) {
    if (message.find(std::string(m[0]) + " ") != std::string::npos) {
      flag = m[1];
      break;
    }
  }
  return parser.UsageError(flag + ": " + message);
}

int ReportError(hearth_error* err, const std::string& context) {
  std::string message = hearth_error_message(err);
  if (message.empty())
    message = "unknown error (code " + std::to_string(hearth_error_code(err)) + ")";
  if (!context.empty() && message.find(context) == std::string::npos) {
    message = context + ": " + message;
  }
  // Messages quote file contents (escaped by the library, but a path or a
  // plugin's own words may hold anything): escaped again for the terminal.
  std::fprintf(stderr, "hearth: %s\n", PrintableText(message).c_str());
  hearth_error_free(err);
  return kExitRuntimeError;
}

int OpenRuntime(const ModelFlags& flags, Runtime* out) {
  hearth_runtime_params params = HEARTH_RUNTIME_PARAMS_INIT;
  params.plugin_path = flags.plugin_path.empty() ? nullptr : flags.plugin_path.c_str();
  if (flags.verbose) params.log_level = 2;
  hearth_runtime* rt = nullptr;
  if (hearth_error* err = hearth_runtime_create(&params, &rt)) return ReportError(err);
  out->reset(rt);
  return kExitOk;
}

int OpenModel(hearth_runtime* rt, const ModelFlags& flags, Model* out) {
  hearth_model_params params = HEARTH_MODEL_PARAMS_INIT;
  params.device = flags.device.empty() ? nullptr : flags.device.c_str();
  params.n_threads = static_cast<uint32_t>(flags.threads);
  hearth_model* model = nullptr;
  if (hearth_error* err = hearth_model_load(rt, flags.model.c_str(), &params, &model)) {
    return ReportError(err, flags.model);
  }
  out->reset(model);
  return kExitOk;
}

int Tokenize(const hearth_model* model, const std::string& text, uint32_t flags,
             std::vector<int32_t>* out) {
  size_t n = 0;
  if (hearth_error* err = hearth_tokenize(model, text.data(), text.size(), flags, nullptr, 0, &n)) {
    return ReportError(err);
  }
  out->assign(n, 0);
  if (n == 0) return kExitOk;
  if (hearth_error* err =
          hearth_tokenize(model, text.data(), text.size(), flags, out->data(), out->size(), &n)) {
    return ReportError(err);
  }
  out->resize(n);
  return kExitOk;
}

bool ReadFile(const std::string& path, std::string* out, std::string* error) {
  int err_no = 0;
  return format::ReadRegularFile(path, std::numeric_limits<uint64_t>::max(), out, error, &err_no);
}

std::string HumanBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

const char* StopReasonName(hearth_stop_reason r) {
  switch (r) {
    case HEARTH_STOP_MAX_TOKENS:
      return "max tokens";
    case HEARTH_STOP_EOG:
      return "end of generation";
    case HEARTH_STOP_STRING:
      return "stop string";
    case HEARTH_STOP_CALLBACK:
      return "interrupted";
    case HEARTH_STOP_CONTEXT_FULL:
      return "context full";
    case HEARTH_STOP_CONSTRAINT:
      return "constraint allows no token";
    default:
      return "unknown";
  }
}

int OpenSession(hearth_model* model, const hearth_session_params& params, Session* out,
                const std::string& context, const Adapters* adapters) {
  hearth_session* raw = nullptr;
  if (hearth_error* err = hearth_session_create(model, &params, &raw)) {
    return ReportError(err, context);
  }
  Session session(raw);
  if (adapters != nullptr && !adapters->handles.empty()) {
    std::vector<const hearth_adapter*> list;
    for (const Adapter& a : adapters->handles) list.push_back(a.get());
    if (hearth_error* err = hearth_session_set_adapters(raw, list.data(), adapters->scales.data(),
                                                        list.size())) {
      return ReportError(err, "--lora");
    }
  }
  *out = std::move(session);
  return 0;
}

int OpenModelWithAdapters(const ModelFlags& flags, Runtime* rt, Model* model,
                          Adapters* adapters) {
  if (int rc = OpenRuntime(flags, rt)) return rc;
  if (int rc = OpenModel(rt->get(), flags, model)) return rc;
  return LoadAdapters(model->get(), flags.lora, adapters, flags.lora_ignore_base);
}

void AddLoraFlag(ArgParser& parser, ModelFlags* flags) {
  parser.AddStringList("--lora", "PATH[:SCALE]", &flags->lora,
                       "apply a LoRA adapter (PEFT folder or GGUF LoRA file) at SCALE "
                       "(default 1); repeatable, the adapters add up");
  parser.AddSwitch("--lora-ignore-base", &flags->lora_ignore_base,
                   "load adapters whose provenance names another base model's weights");
}

void ParseLoraSpec(const std::string& spec, std::string* path, float* scale) {
  *path = spec;
  *scale = 1.0f;
  const size_t colon = spec.rfind(':');
  float v = 0;
  // No finite number after the last ':' means the colon belongs to the
  // path (which then fails to open, naming it).
  if (colon == std::string::npos || !ParseFloat(spec.substr(colon + 1), &v)) return;
  *path = spec.substr(0, colon);
  *scale = v;
}

int LoadAdapters(hearth_model* model, const std::vector<std::string>& specs, Adapters* out,
                 bool ignore_base) {
  hearth_adapter_params params = HEARTH_ADAPTER_PARAMS_INIT;
  params.ignore_base_fingerprint = ignore_base ? 1 : 0;
  for (const std::string& spec : specs) {
    std::string path;
    float scale = 1.0f;
    ParseLoraSpec(spec, &path, &scale);
    hearth_adapter* raw = nullptr;
    if (hearth_error* err = hearth_adapter_load(model, path.c_str(), &params, &raw)) {
      return ReportError(err, path);
    }
    out->handles.emplace_back(raw);
    out->scales.push_back(scale);
  }
  return kExitOk;
}

}  // namespace hearth::cli
