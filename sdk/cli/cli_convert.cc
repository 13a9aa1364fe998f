// cli_convert.cc — `hearth convert` (a Hugging Face model directory to GGUF)
// and `hearth quantize` (a GGUF model to other weight types): thin clients
// of hearth_convert and hearth_quantize.
#include <cstdio>
#include <string>

#include "cli_commands.h"
#include "cli_common.h"
#include "progress.h"
#include "terminal_text.h"

namespace hearth::cli {
namespace {

constexpr char kTypes[] = "f32, f16, bf16, q8_0, q4_0, q4_k, q6_k or q4_k_m";

// The progress line on a terminal (progress.h) counts the input's bytes,
// which the time goes with (an embedding table against a norm), and shows
// the tensors beside them.
struct Progress {
  ProgressLine line;
  size_t count = 0;  // tensors
};

std::string TensorsDone(size_t done, size_t count) {
  return std::to_string(done) + "/" + std::to_string(count) + " tensors";
}

// Comes before each tensor is encoded: `index` tensors are done.
int ShowProgress(const hearth_convert_progress* p, void* user_data) {
  Progress* pr = static_cast<Progress*>(user_data);
  pr->count = p->count;
  pr->line.set_total(p->bytes_total);
  pr->line.Update(p->bytes_done, TensorsDone(p->index, p->count) + "  " + p->tensor);
  return 0;
}

int Finish(hearth_error* err, const std::string& out, Progress* pr, const char* what) {
  if (err != nullptr) {
    pr->line.Clear();
    return ReportError(err);
  }
  pr->line.Update(pr->line.total(), TensorsDone(pr->count, pr->count));
  pr->line.Finish();
  std::fprintf(stderr, "hearth: wrote %s (%s)\n", Printable(out).c_str(), what);
  return kExitOk;
}

}  // namespace

int RunConvert(int argc, char** argv) {
  std::string out, type;
  bool quiet = false;
  ArgParser p("convert", "convert HF_DIR -o OUT.gguf [--type TYPE]",
              "Converts a Hugging Face model directory (config.json, *.safetensors,\n"
              "tokenizer.json, tokenizer_config.json) of a llama, qwen2 or gemma3 model\n"
              "into one GGUF file that hearth and llama.cpp load. 1-D tensors stay F32;\n"
              "the others get --type (default f16). docs/convert.md.");
  p.AddString("-o,--output", "FILE", &out, "the GGUF file to write (required)");
  p.AddString("--type", "TYPE", &type,
              "weight type: f32, f16 (default), bf16, q8_0, q4_0, q4_k, "
              "q6_k or q4_k_m");
  p.AddSwitch("-q,--quiet", &quiet, "no progress line (drawn only when stderr is a terminal)");
  if (int rc = p.Finish(p.Parse(argc, argv, 1)); rc >= 0) return rc;
  if (p.positional().size() != 1) return p.UsageError("exactly one HF_DIR is required");
  if (out.empty()) return p.UsageError("-o OUT is required");
  hearth_convert_params params = HEARTH_CONVERT_PARAMS_INIT;
  params.type = type.empty() ? nullptr : type.c_str();
  Progress progress{ProgressLine("convert", "bytes", 0, quiet)};
  params.progress_bytes = ShowProgress;
  params.user_data = &progress;
  hearth_error* err = hearth_convert(p.positional()[0].c_str(), out.c_str(), &params);
  return Finish(err, out, &progress, type.empty() ? "f16" : type.c_str());
}

int RunQuantize(int argc, char** argv) {
  std::string type;
  bool quiet = false;
  ArgParser p("quantize", "quantize IN.gguf OUT.gguf --type TYPE",
              "Rewrites a GGUF model with another weight type: 2-D weights are encoded\n"
              "from F32, F16 or BF16; 1-D tensors and all metadata are copied. q4_k_m is\n"
              "llama.cpp's mix (Q6_K for the output and some attn_v / ffn_down).");
  p.AddString("--type", "TYPE", &type, kTypes);
  p.AddSwitch("-q,--quiet", &quiet, "no progress line (drawn only when stderr is a terminal)");
  if (int rc = p.Finish(p.Parse(argc, argv, 1)); rc >= 0) return rc;
  if (p.positional().size() != 2) return p.UsageError("IN.gguf and OUT.gguf are required");
  if (type.empty()) return p.UsageError(std::string("--type is required (") + kTypes + ")");
  hearth_convert_params params = HEARTH_CONVERT_PARAMS_INIT;
  params.type = type.c_str();
  Progress progress{ProgressLine("quantize", "bytes", 0, quiet)};
  params.progress_bytes = ShowProgress;
  params.user_data = &progress;
  hearth_error* err =
      hearth_quantize(p.positional()[0].c_str(), p.positional()[1].c_str(), &params);
  return Finish(err, p.positional()[1], &progress, type.c_str());
}

}  // namespace hearth::cli
