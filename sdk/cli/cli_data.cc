// cli_data.cc — `hearth data`: reads a JSONL training file for a model and
// says what a trainer would see: how many examples and tokens, how many of
// them the loss trains on, what is too long, and, with --show, the examples
// themselves with the trained part marked. The first bad record stops it
// with the file, line and field named.
#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "cli_commands.h"
#include "cli_common.h"
#include "terminal_text.h"

namespace hearth::cli {
namespace {

using Dataset = std::unique_ptr<hearth_dataset, HandleDeleter<hearth_dataset_free>>;

// The example as text, trained runs between "[[" and "]]", special tokens written out.
int ShowExample(const hearth_model* model, const hearth_dataset* data, size_t index) {
  size_t n = 0;
  uint64_t line = 0;
  if (hearth_error* err = hearth_dataset_get_example(data, index, nullptr, nullptr, 0, &n, &line)) {
    return ReportError(err);
  }
  std::vector<int32_t> ids(n);
  std::vector<uint8_t> trained(n);
  if (hearth_error* err =
          hearth_dataset_get_example(data, index, ids.data(), trained.data(), n, &n, &line)) {
    return ReportError(err);
  }
  size_t n_trained = 0;
  std::string text;
  for (size_t i = 0; i < n; ++i) {
    const bool starts = trained[i] && (i == 0 || !trained[i - 1]);
    const bool ends = !trained[i] && i > 0 && trained[i - 1];
    if (ends) text += "]]";
    if (starts) text += "[[";
    n_trained += trained[i];
    size_t len = 0;
    const char* piece = hearth_token_text(model, ids[i], &len);
    if (piece != nullptr) text.append(piece, len);
  }
  if (n > 0 && trained[n - 1]) text += "]]";
  std::printf("--- line %" PRIu64 ": %zu tokens, %zu trained\n%s\n", line, n, n_trained,
              PrintableText(text).c_str());
  return kExitOk;
}

}  // namespace

int RunData(int argc, char** argv) {
  ModelFlags mf;
  int64_t ctx = 0, show = 0;
  bool truncate = false;
  ArgParser p("data", "data -m MODEL [flags] FILE.jsonl",
              "Reads training data (JSONL: one {\"text\"}, {\"prompt\", \"completion\"} or\n"
              "{\"messages\"} record per line) for MODEL and prints how many examples and\n"
              "tokens it holds and how many tokens the loss trains on. A bad record stops\n"
              "it, naming the line. docs/training-data.md");
  AddModelFlags(p, &mf);
  p.AddInt("-c,--ctx", "N", &ctx, 1, int64_t{1} << 30,
           "longest example in tokens (default: the model's training context)");
  p.AddSwitch("--truncate", &truncate, "cut longer examples at --ctx instead of failing");
  p.AddInt("--show", "N", &show, 0, int64_t{1} << 40,
           "print the first N examples, trained tokens between [[ and ]]");
  if (int rc = p.Finish(p.Parse(argc, argv, 1)); rc >= 0) return rc;
  if (mf.model.empty()) return p.UsageError("-m MODEL is required");
  if (p.positional().size() != 1) {
    return p.UsageError(p.positional().empty()
                            ? "FILE.jsonl is missing"
                            : "expected one FILE, got " + std::to_string(p.positional().size()));
  }
  const std::string path = p.positional()[0];

  Runtime rt;
  if (int rc = OpenRuntime(mf, &rt)) return rc;
  Model model;
  if (int rc = OpenModel(rt.get(), mf, &model)) return rc;
  hearth_dataset_params params = HEARTH_DATASET_PARAMS_INIT;
  params.max_tokens = static_cast<uint32_t>(ctx);
  params.truncate = truncate ? 1 : 0;
  hearth_dataset* raw = nullptr;
  if (hearth_error* err = hearth_dataset_load(model.get(), path.c_str(), &params, &raw)) {
    return ReportError(err, path);
  }
  Dataset data(raw);
  hearth_dataset_info info = HEARTH_DATASET_INFO_INIT;
  if (hearth_error* err = hearth_dataset_get_info(data.get(), &info)) return ReportError(err);

  for (size_t i = 0; i < info.n_examples && i < static_cast<uint64_t>(show); ++i) {
    if (int rc = ShowExample(model.get(), data.get(), i)) return rc;
  }
  std::printf("%s: %" PRIu64 " examples (%" PRIu64 " messages, %" PRIu64
              " prompt/completion, %" PRIu64 " text)\n",
              Printable(path).c_str(), info.n_examples, info.n_messages, info.n_prompt_completion,
              info.n_text);
  std::printf(
      "tokens: %" PRIu64 ", trained: %" PRIu64 " (%.1f%%)\n", info.n_tokens, info.n_trained_tokens,
      info.n_tokens
          ? 100.0 * static_cast<double>(info.n_trained_tokens) / static_cast<double>(info.n_tokens)
          : 0.0);
  std::printf("longest example: %" PRIu64 " tokens (limit %u), truncated: %" PRIu64 "\n",
              info.longest, info.max_tokens, info.n_truncated);
  return std::fflush(stdout) == 0 ? kExitOk : kExitRuntimeError;
}

}  // namespace hearth::cli
