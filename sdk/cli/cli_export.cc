// cli_export.cc — `hearth export --merge`: folds LoRA adapters into a copy
// of the base model, for users who want one standalone GGUF file.
#include <cstdio>
#include <string>
#include <vector>

#include "cli_commands.h"
#include "cli_common.h"

namespace hearth::cli {

int RunExport(int argc, char** argv) {
  ModelFlags mf;
  std::string out, type;
  bool merge = false;
  ArgParser p("export", "export -m MODEL --lora ADAPTER[:SCALE] --merge -o OUT [flags]",
              "Writes a new GGUF model with the adapters merged into the weights they\n"
              "target: W + scale * (alpha/r) * B A for each. Other tensors and all metadata\n"
              "are copied as they are. Merged tensors keep an F32/F16/BF16 base's type;\n"
              "quantized ones become Q8_0 (hearth does not re-quantize to K-quants), or\n"
              "the type given with --type.");
  AddModelFlags(p, &mf);
  AddLoraFlag(p, &mf);
  p.AddSwitch("--merge", &merge, "merge the adapters into the weights (required)");
  p.AddString("-o,--output", "FILE", &out, "the GGUF file to write (required)");
  p.AddString("--type", "TYPE", &type, "type of merged tensors: f32, f16, bf16 or q8_0");
  if (int rc = p.Finish(p.Parse(argc, argv, 1)); rc >= 0) return rc;
  if (!p.positional().empty()) {
    return p.UsageError("unexpected argument '" + p.positional()[0] + "'");
  }
  if (!merge) return p.UsageError("--merge is required (it is the only export there is)");
  if (mf.model.empty()) return p.UsageError("-m MODEL is required");
  if (mf.lora.empty()) return p.UsageError("at least one --lora ADAPTER is required");
  if (out.empty()) return p.UsageError("-o OUT is required");

  Runtime rt;
  Model model;
  Adapters adapters;
  if (int rc = OpenModelWithAdapters(mf, &rt, &model, &adapters)) return rc;
  std::vector<const hearth_adapter*> list;
  for (const Adapter& a : adapters.handles) list.push_back(a.get());
  hearth_export_params params = HEARTH_EXPORT_PARAMS_INIT;
  params.merged_type = type.empty() ? nullptr : type.c_str();
  if (hearth_error* err = hearth_model_export_merged(model.get(), list.data(),
                                                     adapters.scales.data(), list.size(),
                                                     out.c_str(), &params)) {
    return ReportError(err, out);
  }
  std::fprintf(stderr, "hearth: wrote %s (%zu adapter%s merged)\n", out.c_str(), list.size(),
               list.size() == 1 ? "" : "s");
  return kExitOk;
}

}  // namespace hearth::cli
