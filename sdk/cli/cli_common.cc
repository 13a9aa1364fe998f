// cli_common.cc — runtime/model opening and error reporting for the subcommands.
#include "cli_common.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

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

int ReportError(hearth_error* err, const std::string& context) {
  std::string message = hearth_error_message(err);
  if (message.empty())
    message = "unknown error (code " + std::to_string(hearth_error_code(err)) + ")";
  if (!context.empty() && message.find(context) == std::string::npos) {
    message = context + ": " + message;
  }
  std::fprintf(stderr, "hearth: %s\n", message.c_str());
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
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = path + ": cannot open (" + std::strerror(errno) + ")";
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    *error = path + ": read failed";
    return false;
  }
  *out = ss.str();
  return true;
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

}  // namespace hearth::cli
