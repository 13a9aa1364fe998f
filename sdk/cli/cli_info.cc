// cli_info.cc — `hearth info`: what the runtime found (plugins, devices) and,
// with -m, what a model is.
#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "cli_commands.h"
#include "cli_common.h"
#include "terminal_text.h"

namespace hearth::cli {
namespace {

std::string HumanCount(uint64_t n) {
  char buf[32];
  if (n >= 1000000000ull) {
    std::snprintf(buf, sizeof(buf), "%.2f B", n / 1e9);
  } else if (n >= 1000000ull) {
    std::snprintf(buf, sizeof(buf), "%.2f M", n / 1e6);
  } else {
    std::snprintf(buf, sizeof(buf), "%" PRIu64, n);
  }
  return buf;
}

int PrintRuntime(const hearth_runtime* rt) {
  const size_t n_plugins = hearth_runtime_plugin_count(rt);
  std::printf("plugins: %zu\n", n_plugins);
  for (size_t i = 0; i < n_plugins; ++i) {
    hearth_plugin_info pi = HEARTH_PLUGIN_INFO_INIT;
    if (hearth_error* err = hearth_runtime_plugin_info(rt, i, &pi)) return ReportError(err);
    std::printf("  %s\n    path: %s\n", PrintableOrDash(pi.name).c_str(),
                PrintableOrDash(pi.path).c_str());
    if (pi.load_error != nullptr) {
      std::printf("    load error: %s\n", Printable(pi.load_error).c_str());
      continue;
    }
    std::printf("    version: %s\n    abi: %u.%u\n    probe score: %d%s\n",
                PrintableOrDash(pi.version).c_str(), pi.abi_major, pi.abi_minor, pi.probe_score,
                pi.probe_score <= 0 ? " (no usable device here)" : "");
    if (pi.probe_score <= 0 && pi.probe_reason != nullptr) {
      std::printf("    why: %s\n", Printable(pi.probe_reason).c_str());
    }
  }
  const size_t n_devices = hearth_runtime_device_count(rt);
  std::printf("devices: %zu\n", n_devices);
  for (size_t i = 0; i < n_devices; ++i) {
    hearth_device_info di = HEARTH_DEVICE_INFO_INIT;
    if (hearth_error* err = hearth_runtime_device_info(rt, i, &di)) return ReportError(err);
    std::printf("  %s\n    plugin: %s\n    vendor: %s\n    description: %s\n",
                PrintableOrDash(di.name).c_str(), PrintableOrDash(di.plugin).c_str(),
                PrintableOrDash(di.vendor).c_str(), PrintableOrDash(di.description).c_str());
    std::printf("    memory: %s total, %s free\n", HumanBytes(double(di.memory_total)).c_str(),
                HumanBytes(double(di.memory_free)).c_str());
    std::printf("    arch: %s, simd width %u, %u compute units\n", PrintableOrDash(di.arch).c_str(),
                di.simd_width, di.compute_units);
  }
  return kExitOk;
}

int PrintModel(const hearth_model* model, const std::string& path) {
  hearth_model_info mi = HEARTH_MODEL_INFO_INIT;
  if (hearth_error* err = hearth_model_get_info(model, &mi)) return ReportError(err);
  std::printf("model: %s\n", Printable(path).c_str());
  std::printf("  architecture: %s\n", PrintableOrDash(mi.architecture).c_str());
  std::printf("  name: %s\n", PrintableOrDash(mi.name).c_str());
  std::printf("  size: %s params, %s (%" PRIu64 " bytes)\n", HumanCount(mi.n_params).c_str(),
              HumanBytes(double(mi.file_size)).c_str(), mi.file_size);
  std::printf("  quantization: %s\n", PrintableOrDash(mi.quantization).c_str());
  std::printf("  tokenizer: %s\n", PrintableOrDash(mi.tokenizer).c_str());
  std::printf("  vocabulary: %u tokens\n", mi.n_vocab);
  std::printf("  context length (trained): %u\n", mi.n_ctx_train);
  std::printf("  embedding size: %u\n", mi.n_embd);
  std::printf("  layers: %u\n", mi.n_layer);
  std::printf("  heads: %u (kv heads: %u)\n", mi.n_head, mi.n_head_kv);
  std::printf("  BOS id: %d\n  EOS id: %d\n", mi.token_bos, mi.token_eos);
  std::printf("  device: %s\n", PrintableOrDash(mi.device).c_str());
  return kExitOk;
}

// The string value of "key" in a flat JSON object as hearth writes it, or "".
std::string JsonString(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\":\"";
  const size_t at = json.find(needle);
  if (at == std::string::npos) return "";
  const size_t start = at + needle.size(), end = json.find('"', start);
  return end == std::string::npos ? "" : json.substr(start, end - start);
}

int PrintAdapter(const hearth_adapter* adapter, const std::string& path) {
  hearth_adapter_info ai = HEARTH_ADAPTER_INFO_INIT;
  if (hearth_error* err = hearth_adapter_get_info(adapter, &ai)) return ReportError(err);
  std::printf("adapter: %s\n", Printable(path).c_str());
  std::printf("  format: %s\n",
              ai.format == HEARTH_ADAPTER_PEFT ? "PEFT (safetensors)" : "GGUF LoRA");
  std::printf("  base architecture: %s\n", PrintableOrDash(ai.base_architecture).c_str());
  std::printf("  base model: %s\n", PrintableOrDash(ai.base_model).c_str());
  std::printf("  rank: %u\n  alpha: %g\n  scaling: alpha / %s\n", ai.rank,
              static_cast<double>(ai.alpha), ai.use_rslora ? "sqrt(rank) (rsLoRA)" : "rank");
  std::printf("  parameters: %s\n", HumanCount(ai.n_params).c_str());
  std::printf("  checked against a model: %s\n", ai.bound ? "yes" : "no (give -m to check)");
  const std::string prov = ai.provenance != nullptr ? ai.provenance : "";
  if (prov.empty()) {
    std::printf("  provenance: none (not trained by hearth)\n");
  } else {
    std::printf("  provenance:\n");
    std::printf("    base model fingerprint: %s\n",
                PrintableOrDash(JsonString(prov, "base_fingerprint").c_str()).c_str());
    std::printf("    training data hash: %s\n",
                PrintableOrDash(JsonString(prov, "data_hash").c_str()).c_str());
    std::printf("    trained by: hearth %s\n",
                PrintableOrDash(JsonString(prov, "hearth_version").c_str()).c_str());
    std::printf("    record: %s\n", Printable(prov).c_str());
  }
  std::printf("  targets: %u\n", ai.n_targets);
  for (uint32_t i = 0; i < ai.n_targets; ++i) {
    hearth_adapter_target t = HEARTH_ADAPTER_TARGET_INIT;
    if (hearth_error* err = hearth_adapter_get_target(adapter, i, &t)) return ReportError(err);
    std::printf("    %-24s rank %-3u scale %-8g %" PRId64 " -> %" PRId64 "  (%s)\n",
                Printable(t.weight ? t.weight : "").c_str(), t.rank, static_cast<double>(t.scale),
                t.n_in, t.n_out, Printable(t.source ? t.source : "").c_str());
  }
  return kExitOk;
}

// Loads each adapter for `model` (NULL: the file on its own) and prints it.
int DescribeAdapters(hearth_model* model, const std::vector<std::string>& paths, bool ignore_base) {
  hearth_adapter_params params = HEARTH_ADAPTER_PARAMS_INIT;
  params.ignore_base_fingerprint = ignore_base ? 1 : 0;
  for (const std::string& path : paths) {
    hearth_adapter* raw = nullptr;
    if (hearth_error* err = hearth_adapter_load(model, path.c_str(), &params, &raw)) {
      return ReportError(err, path);
    }
    Adapter adapter(raw);
    if (int rc = PrintAdapter(adapter.get(), path)) return rc;
  }
  return kExitOk;
}

}  // namespace

int RunInfo(int argc, char** argv) {
  ModelFlags mf;
  ArgParser p("info", "info [-m MODEL] [--lora ADAPTER] [flags]",
              "Lists the plugins the runtime looked at (name, path, version, "
              "ABI, probe\n"
              "score, or why it failed to load) and the devices they offer. "
              "With -m, also\n"
              "describes the model: architecture, size, quantization, "
              "tokenizer, shape.\n"
              "With --lora, describes adapters: targets, rank, alpha, base "
              "architecture,\n"
              "and for adapters hearth trained their provenance (base model fingerprint,\n"
              "data hash, hearth version, hyper-parameters).");
  AddModelFlags(p, &mf, "also describe this GGUF model");
  p.AddStringList("--lora", "PATH", &mf.lora,
                  "describe a LoRA adapter (PEFT folder or GGUF LoRA file) instead of the "
                  "runtime; with -m, also check it against that model; repeatable");
  p.AddSwitch("--lora-ignore-base", &mf.lora_ignore_base,
              "with -m, accept adapters whose provenance names another base model");
  if (int rc = p.Finish(p.Parse(argc, argv, 1)); rc >= 0) return rc;
  if (!p.positional().empty()) {
    return p.UsageError("unexpected argument '" + p.positional()[0] + "'");
  }
  if (!mf.lora.empty() && mf.model.empty()) {
    return DescribeAdapters(nullptr, mf.lora, false);
  }
  const uint32_t abi = hearth_abi_version();
  std::printf("hearth %s (ABI %u.%u)\n", hearth_version_string(), abi >> 16, abi & 0xFFFFu);
  Runtime rt;
  if (int rc = OpenRuntime(mf, &rt)) return rc;
  if (mf.lora.empty()) {
    if (int rc = PrintRuntime(rt.get())) return rc;
  }
  if (mf.model.empty()) return kExitOk;
  Model model;
  if (int rc = OpenModel(rt.get(), mf, &model)) return rc;
  if (int rc = PrintModel(model.get(), mf.model)) return rc;
  return DescribeAdapters(model.get(), mf.lora, mf.lora_ignore_base);
}

}  // namespace hearth::cli
