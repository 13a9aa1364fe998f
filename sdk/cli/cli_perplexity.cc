// cli_perplexity.cc — `hearth perplexity`: how well a model predicts a text,
// measured the way llama.cpp's perplexity tool measures it, so figures can
// be compared with the ones published for llama.cpp.
//
// The convention (docs/cli.md): the whole file is tokenized once, BOS added
// as the model asks. It is cut into non-overlapping windows of n_ctx tokens
// (a tail shorter than a window is dropped); each window starts from an
// empty context, its first token replaced by BOS when the model uses one.
// Only the second half of a window is scored, so every scored token sees at
// least n_ctx/2 tokens of context: the logits at positions n_ctx/2 ..
// n_ctx-2 predict the tokens at n_ctx/2+1 .. n_ctx-1, which is
// n_ctx - n_ctx/2 - 1 tokens per window. PPL = exp(mean NLL); its "+/-" is
// the standard error of the mean NLL carried through exp (PPL * SE).
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "cli_commands.h"
#include "cli_common.h"
#include "progress.h"
#include "terminal_text.h"

namespace hearth::cli {
namespace {

// Running sums of the scored tokens' negative log-likelihoods.
struct NllStats {
  double sum = 0, sum_sq = 0;
  int64_t count = 0;

  void Add(double nll) {
    sum += nll;
    sum_sq += nll * nll;
    ++count;
  }
  double Perplexity() const { return count > 0 ? std::exp(sum / count) : 0.0; }
  // Standard error of exp(mean) by the delta method: PPL * sd / sqrt(n - 1)
  // with sd the population deviation of the NLLs (llama.cpp's estimate).
  double PerplexityError() const {
    if (count < 2) return 0.0;
    const double mean = sum / count;
    const double var = sum_sq / count - mean * mean;
    return var > 0 ? Perplexity() * std::sqrt(var / (count - 1)) : 0.0;
  }
};

// Whether tokenizing with ADD_SPECIAL puts a BOS first and an EOS last for
// this model, seen on the empty text. kExitOk or an error already reported.
int SpecialsAdded(const hearth_model* model, const hearth_model_info& info, bool* bos, bool* eos) {
  std::vector<int32_t> ids;
  if (int rc = Tokenize(model, "", HEARTH_TOKENIZE_ADD_SPECIAL, &ids)) return rc;
  *bos = !ids.empty() && info.token_bos >= 0 && ids.front() == info.token_bos;
  *eos = !ids.empty() && info.token_eos >= 0 && ids.back() == info.token_eos &&
         (ids.size() > 1 || !*bos);
  return kExitOk;
}

}  // namespace

int RunPerplexity(int argc, char** argv) {
  ModelFlags mf;
  std::string file;
  int64_t n_ctx = 512, chunks = 0, n_batch = 0;
  bool quiet = false;
  ArgParser p("perplexity", "perplexity -m MODEL -f FILE [flags]",
              "Measures the model's perplexity on a text file, as llama.cpp's perplexity tool\n"
              "does: the tokens are cut into windows of --ctx tokens, each evaluated from an\n"
              "empty context (BOS first when the model uses one), and the second half of each\n"
              "window is scored. The result line goes to stdout:\n"
              "  perplexity: PPL +/- SE over N windows of CTX tokens (M scored tokens)\n"
              "SE is the standard error of the estimate (PPL x the standard error of the mean\n"
              "negative log-likelihood). The text needs at least 2 x --ctx tokens. On a\n"
              "terminal a progress line (windows, rate, ETA, running PPL) and timings go\n"
              "to stderr; piped, only the timings.");
  AddModelFlags(p, &mf);
  AddLoraFlag(p, &mf);
  p.AddString("-f,--file", "FILE", &file, "the text to score (required)");
  p.AddInt("-c,--ctx", "N", &n_ctx, 8, INT32_MAX, "tokens per window (default 512)");
  p.AddInt("--chunks", "N", &chunks, 0, INT32_MAX,
           "score at most the first N windows (default 0: all)");
  p.AddInt("-b,--batch", "N", &n_batch, 0, INT32_MAX,
           "tokens per step (default 0: the library's, 256)");
  p.AddSwitch("-q,--quiet", &quiet, "no progress line and no timings on stderr");
  std::string kv_flag;
  AddKvTypeFlag(p, &kv_flag);
  if (int rc = p.Finish(p.Parse(argc, argv, 1)); rc >= 0) return rc;
  uint32_t kv_type = HEARTH_KV_F32;
  if (int rc = ParseKvTypeFlag(p, kv_flag, &kv_type); rc != kExitOk) return rc;
  if (!p.positional().empty()) {
    return p.UsageError("unexpected argument '" + p.positional()[0] +
                        "' (the text file goes after -f)");
  }
  if (mf.model.empty()) return p.UsageError("-m MODEL is required");
  if (!p.Seen("-f")) return p.UsageError("-f FILE is required");

  std::string text, error;
  if (!ReadFile(file, &text, &error)) {
    std::fprintf(stderr, "hearth: %s\n", error.c_str());
    return kExitRuntimeError;
  }
  if (text.empty()) {
    std::fprintf(stderr, "hearth: %s: the file is empty\n", file.c_str());
    return kExitRuntimeError;
  }

  Runtime rt;
  Model model;
  Adapters adapters;
  if (int rc = OpenModelWithAdapters(mf, &rt, &model, &adapters)) return rc;
  hearth_model_info info = HEARTH_MODEL_INFO_INIT;
  if (hearth_error* err = hearth_model_get_info(model.get(), &info)) return ReportError(err);
  bool add_bos = false, add_eos = false;
  if (int rc = SpecialsAdded(model.get(), info, &add_bos, &add_eos)) return rc;

  const auto t_tok = std::chrono::steady_clock::now();
  std::vector<int32_t> tokens;
  size_t n_tokens = 0;
  if (hearth_error* err = hearth_tokenize(model.get(), text.data(), text.size(),
                                          HEARTH_TOKENIZE_ADD_SPECIAL, nullptr, 0, &n_tokens)) {
    return ReportError(err, file);  // e.g. invalid UTF-8: name the file
  }
  tokens.resize(n_tokens);
  if (hearth_error* err =
          hearth_tokenize(model.get(), text.data(), text.size(), HEARTH_TOKENIZE_ADD_SPECIAL,
                          tokens.data(), tokens.size(), &n_tokens)) {
    return ReportError(err, file);
  }
  tokens.resize(n_tokens);
  // A trailing EOS would be scored as if the text predicted it; the text
  // does not end a document, so it goes.
  if (add_eos && !tokens.empty() && tokens.back() == info.token_eos) tokens.pop_back();
  const double tokenize_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_tok).count();

  const int64_t ctx = n_ctx;
  if (static_cast<int64_t>(tokens.size()) < 2 * ctx) {
    std::fprintf(stderr,
                 "hearth: %s: the text is %zu tokens; perplexity with --ctx %lld needs at least "
                 "%lld tokens (two windows). Use a longer text or a smaller --ctx.\n",
                 file.c_str(), tokens.size(), static_cast<long long>(ctx),
                 static_cast<long long>(2 * ctx));
    return kExitRuntimeError;
  }
  int n_windows = static_cast<int>(static_cast<int64_t>(tokens.size()) / ctx);
  if (chunks > 0 && chunks < n_windows) n_windows = static_cast<int>(chunks);

  hearth_session_params sparams = HEARTH_SESSION_PARAMS_INIT;
  sparams.kv_type = kv_type;
  sparams.n_ctx = static_cast<uint32_t>(ctx);
  sparams.n_batch = static_cast<uint32_t>(n_batch);
  Session session;
  if (int rc = OpenSession(model.get(), sparams, &session, "--ctx " + std::to_string(ctx),
                               &adapters)) return rc;

  const int64_t first = ctx / 2;  // positions before this are context only
  if (!quiet) {
    std::fprintf(stderr,
                 "%s: %zu tokens (tokenized in %.2f s)%s; %d windows of %lld tokens, %lld "
                 "scored in each\n",
                 Printable(file).c_str(), tokens.size(), tokenize_seconds,
                 add_bos ? ", BOS first in every window" : "", n_windows,
                 static_cast<long long>(ctx), static_cast<long long>(ctx - first - 1));
  }

  std::vector<int32_t> window(static_cast<size_t>(ctx));
  std::vector<float> logprobs(static_cast<size_t>(ctx - first));
  NllStats stats;
  const auto t0 = std::chrono::steady_clock::now();
  ProgressLine progress("perplexity", "windows", static_cast<uint64_t>(n_windows), quiet);
  progress.Update(0);
  for (int w = 0; w < n_windows; ++w) {
    const int32_t* src = tokens.data() + static_cast<size_t>(w) * static_cast<size_t>(ctx);
    window.assign(src, src + ctx);
    if (add_bos) window[0] = info.token_bos;
    hearth_session_reset(session.get());
    // The first half is only context: a plain feed, no logits per position.
    if (hearth_error* err =
            hearth_session_feed(session.get(), window.data(), static_cast<size_t>(first))) {
      progress.Clear();
      return ReportError(err, "window " + std::to_string(w + 1));
    }
    if (hearth_error* err =
            hearth_session_score(session.get(), window.data() + first,
                                 static_cast<size_t>(ctx - first), logprobs.data())) {
      progress.Clear();
      return ReportError(err, "window " + std::to_string(w + 1));
    }
    for (int64_t i = 0; i + 1 < ctx - first; ++i) {
      const double lp = logprobs[static_cast<size_t>(i)];
      if (!std::isfinite(lp)) {
        progress.Clear();
        std::fprintf(stderr,
                     "hearth: window %d: the model gave token %lld of the text a log-probability "
                     "of %g; the figure would be meaningless\n",
                     w + 1, static_cast<long long>(w * ctx + first + i + 1), lp);
        return kExitRuntimeError;
      }
      stats.Add(-lp);
    }
    char ppl[48];
    std::snprintf(ppl, sizeof(ppl), "ppl %.4f", stats.Perplexity());
    progress.Update(static_cast<uint64_t>(w) + 1, ppl);
  }
  progress.Finish();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!quiet) {
    std::fprintf(stderr,
                 "scored %lld tokens in %.2f s (%.2f s per window, %.1f tokens/s evaluated)\n",
                 static_cast<long long>(stats.count), seconds, seconds / n_windows,
                 seconds > 0 ? static_cast<double>(n_windows) * ctx / seconds : 0.0);
  }
  std::printf("perplexity: %.4f +/- %.4f over %d windows of %lld tokens (%lld scored tokens)\n",
              stats.Perplexity(), stats.PerplexityError(), n_windows, static_cast<long long>(ctx),
              static_cast<long long>(stats.count));
  return std::fflush(stdout) == 0 ? kExitOk : kExitRuntimeError;
}

}  // namespace hearth::cli
