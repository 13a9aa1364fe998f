// cli_bench.cc — `hearth bench`: prompt-processing (pp) and token-generation
// (tg) speed, and the fraction of the machine's measured memory bandwidth
// that generation reaches (decoding one token must stream every weight once,
// so bandwidth is its ceiling).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bandwidth.h"
#include "cli_commands.h"
#include "cli_common.h"
#include "terminal_text.h"

namespace hearth::cli {
namespace {

struct Stats {
  double median = 0, min = 0, max = 0;
};

Stats Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  Stats s;
  s.min = v.front();
  s.max = v.back();
  const size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  return s;
}

// Bench prompts need valid ids, not meaningful text; a fixed generator keeps
// runs comparable across machines. (splitmix64; the CLI sees only hearth.h,
// so it keeps its own copy rather than reach into the core's sampler.)
uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Weight bytes one decode step reads, as the library counts them (tensors
// the step reads in full; a tied output table included).
double BytesPerToken(const hearth_model_info& mi) {
  return mi.decode_bytes_per_token > 0 ? static_cast<double>(mi.decode_bytes_per_token)
                                       : static_cast<double>(mi.file_size);
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

struct Row {
  const char* test;
  int64_t n_tokens;
  Stats stats;
  double fraction;  // NaN when it does not apply
};

}  // namespace

int RunBench(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--train") return RunBenchTrain(argc, argv);
  }
  ModelFlags mf;
  int64_t n_prompt = 512, n_gen = 128, reps = 5, n_batch = 512, bw_mib = 0;
  uint64_t seed = 1234;
  bool json = false;
  ArgParser p("bench", "bench -m MODEL [-p N] [-n N] [-r N] [--threads N] [--json]",
              "Measures the machine's memory read bandwidth, then prompt processing (pp:\n"
              "feed N random token ids to an empty context) and token generation (tg: feed\n"
              "N tokens one at a time), each repeated R times after one untimed warm-up.\n"
              "Prints tokens/s (median, min, max) and, for tg, the fraction of the measured\n"
              "bandwidth reached. See docs/cli.md for how that fraction is computed.\n"
              "With --train: LoRA training speed and peak memory instead (bench --train\n"
              "--help).");
  AddModelFlags(p, &mf);
  AddLoraFlag(p, &mf);
  p.AddInt("-p,--n-prompt", "N", &n_prompt, 0, 1 << 20, "pp tokens (default 512; 0 skips pp)");
  p.AddInt("-n,--n-gen", "N", &n_gen, 0, 1 << 20, "tg tokens (default 128; 0 skips tg)");
  p.AddInt("-r,--repetitions", "N", &reps, 1, 1000, "timed runs per test (default 5)");
  p.AddInt("-b,--batch", "N", &n_batch, 1, 1 << 20,
           "prompt tokens per step for pp (default 512, at most -p)");
  p.AddInt(
      "--bw-mib", "N", &bw_mib, 0, 1 << 30,
      "bandwidth buffer in MiB (default 0: max of 1 GiB, 4x the last-level cache, 4x the model)");
  p.AddUint64("--seed", "N", &seed, "seed of the random token ids (default 1234)");
  p.AddSwitch("--json", &json, "one JSON object per test per line on stdout, nothing else");
  bool train = false;  // handled above; listed so --help shows it
  p.AddSwitch("--train", &train, "measure LoRA training instead (bench --train --help)");
  if (int rc = p.Finish(p.Parse(argc, argv, 1)); rc >= 0) return rc;
  if (!p.positional().empty()) {
    return p.UsageError("unexpected argument '" + p.positional()[0] + "'");
  }
  if (mf.model.empty()) return p.UsageError("-m MODEL is required");
  if (n_prompt == 0 && n_gen == 0) return p.UsageError("-p 0 and -n 0 leave nothing to measure");

  Runtime rt;
  Model model;
  Adapters adapters;
  if (int rc = OpenModelWithAdapters(mf, &rt, &model, &adapters)) return rc;
  hearth_model_info mi = HEARTH_MODEL_INFO_INIT;
  if (hearth_error* err = hearth_model_get_info(model.get(), &mi)) return ReportError(err);
  if (mi.n_vocab == 0) {
    std::fprintf(stderr, "hearth: %s: the model reports an empty vocabulary\n", mf.model.c_str());
    return kExitRuntimeError;
  }
  const int threads = mf.threads > 0
                          ? static_cast<int>(mf.threads)
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  BandwidthResult bw;
  std::string bw_error;
  const uint64_t bw_bytes =
      bw_mib > 0 ? static_cast<uint64_t>(bw_mib) << 20 : DefaultBandwidthBufferBytes(mi.file_size);
  if (!MeasureReadBandwidth(threads, bw_bytes, 3, &bw, &bw_error)) {
    std::fprintf(stderr, "hearth: %s\n", bw_error.c_str());
    return kExitRuntimeError;
  }

  hearth_session_params sparams = HEARTH_SESSION_PARAMS_INIT;
  sparams.n_ctx = static_cast<uint32_t>(std::max(n_prompt, n_gen));
  sparams.n_batch = static_cast<uint32_t>(std::max<int64_t>(1, std::min(n_batch, n_prompt)));
  sparams.n_threads = static_cast<uint32_t>(mf.threads);
  Session session;
  if (int rc = OpenSession(model.get(), sparams, &session, "", &adapters)) return rc;

  uint64_t rng = seed;
  std::vector<int32_t> tokens(static_cast<size_t>(std::max(n_prompt, n_gen)));
  for (int32_t& t : tokens) t = static_cast<int32_t>(SplitMix64(&rng) % mi.n_vocab);

  const double bytes_per_token = BytesPerToken(mi);
  std::vector<Row> rows;
  if (n_prompt > 0) {
    std::vector<double> rates;
    for (int64_t r = -1; r < reps; ++r) {  // r = -1: warm-up
      hearth_session_reset(session.get());
      const auto start = std::chrono::steady_clock::now();
      if (hearth_error* err = hearth_session_feed(session.get(), tokens.data(), n_prompt)) {
        return ReportError(err, "pp");
      }
      if (r >= 0) rates.push_back(double(n_prompt) / Seconds(start));
    }
    rows.push_back({"pp", n_prompt, Summarize(rates), NAN});
  }
  if (n_gen > 0) {
    std::vector<double> rates;
    for (int64_t r = -1; r < reps; ++r) {
      hearth_session_reset(session.get());
      const int64_t steps = r < 0 ? std::min<int64_t>(n_gen, 4) : n_gen;
      const auto start = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < steps; ++i) {
        if (hearth_error* err = hearth_session_feed(session.get(), &tokens[i], 1)) {
          return ReportError(err, "tg");
        }
      }
      if (r >= 0) rates.push_back(double(n_gen) / Seconds(start));
    }
    const Stats s = Summarize(rates);
    rows.push_back({"tg", n_gen, s, bytes_per_token * s.median / bw.bytes_per_second});
  }

  const double gbps = bw.bytes_per_second / 1e9;
  if (json) {
    for (const Row& row : rows) {
      std::printf(
          "{\"test\":\"%s\",\"n_tokens\":%lld,\"threads\":%d,\"tokens_per_s\":%s,\"min\":%s,"
          "\"max\":%s,\"bandwidth_fraction\":%s,\"bandwidth_gbps\":%s,\"repetitions\":%lld,"
          "\"bytes_per_token\":%s}\n",
          row.test, static_cast<long long>(row.n_tokens), threads,
          JsonNumber(row.stats.median).c_str(), JsonNumber(row.stats.min).c_str(),
          JsonNumber(row.stats.max).c_str(), JsonNumber(row.fraction).c_str(),
          JsonNumber(gbps).c_str(), static_cast<long long>(reps),
          JsonNumber(bytes_per_token).c_str());
    }
    return std::fflush(stdout) == 0 ? kExitOk : kExitRuntimeError;
  }
  std::printf("model: %s (%s, %s, %s)\n", Printable(mf.model).c_str(),
              PrintableOrDash(mi.architecture).c_str(), PrintableOrDash(mi.quantization).c_str(),
              HumanBytes(double(mi.file_size)).c_str());
  std::printf("device: %s\n", PrintableOrDash(mi.device).c_str());
  std::printf("memory read bandwidth: %.1f GB/s (best of %d reads of %s, %d threads)\n", gbps,
              bw.passes, HumanBytes(double(bw.buffer_bytes)).c_str(), bw.threads);
  std::printf("weight bytes read per generated token: %s\n\n",
              HumanBytes(bytes_per_token).c_str());
  // Weights that stay in cache are not streamed from memory each token, so
  // the fraction can pass 1 there and says nothing about memory efficiency.
  const uint64_t llc = LastLevelCacheBytes();
  if (n_gen > 0 && llc > 0 && bytes_per_token < 4.0 * double(llc)) {
    std::printf(
        "note: the weights are within 4x the last-level cache (%s), so tg may run from\n"
        "      cache and its bandwidth fraction is not a memory-efficiency figure\n\n",
        HumanBytes(double(llc)).c_str());
  }
  std::printf("%-5s %9s %8s %14s %10s %10s %13s\n", "test", "n_tokens", "threads", "tok/s median",
              "min", "max", "bw fraction");
  for (const Row& row : rows) {
    char fraction[32] = "-";
    if (std::isfinite(row.fraction))
      std::snprintf(fraction, sizeof(fraction), "%.3f", row.fraction);
    std::printf("%-5s %9lld %8d %14.2f %10.2f %10.2f %13s\n", row.test,
                static_cast<long long>(row.n_tokens), threads, row.stats.median, row.stats.min,
                row.stats.max, fraction);
  }
  return std::fflush(stdout) == 0 ? kExitOk : kExitRuntimeError;
}

}  // namespace hearth::cli
