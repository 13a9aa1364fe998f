// cli_bench.cc — `hearth bench`: prompt-processing (pp) and token-generation
// (tg) speed, the fraction of the machine's measured memory bandwidth that
// generation reaches (decoding one token must stream every weight once, so
// bandwidth is its ceiling) and the fraction of its measured peak
// multiply-add throughput that prompt processing reaches (its ceiling).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "bandwidth.h"
#include "cli_commands.h"
#include "cli_common.h"
#include "flops.h"
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
  double gflops;    // pp: 2 x parameters x tokens/s; NaN for tg
  double flops_fraction;  // pp: gflops / measured peak; NaN for tg
};

// Bytes the KV cache holds per token of context: every layer's k and v
// rows, from the GGUF key/value lengths (n_embd / n_head when absent).
double KvBytesPerToken(hearth_model* model, const hearth_model_info& mi, uint32_t kv_type) {
  auto meta_len = [&](const char* what) -> double {
    const std::string key =
        std::string(mi.architecture ? mi.architecture : "") + ".attention." + what;
    const char* v = hearth_model_meta(model, key.c_str());
    if (v != nullptr && std::atoll(v) > 0) return static_cast<double>(std::atoll(v));
    return mi.n_head > 0 ? static_cast<double>(mi.n_embd) / mi.n_head : 0.0;
  };
  const double elem = kv_type == HEARTH_KV_F16 ? 2.0 : 4.0;
  return double(mi.n_layer) * double(mi.n_head_kv) *
         (meta_len("key_length") + meta_len("value_length")) * elem;
}

}  // namespace

int RunBench(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--train") return RunBenchTrain(argc, argv);
  }
  ModelFlags mf;
  int64_t n_prompt = 512, n_gen = 128, reps = 5, n_batch = 512, bw_mib = 0, depth = 0;
  uint64_t seed = 1234;
  bool json = false;
  ArgParser p("bench",
              "bench -m MODEL [-p N] [-n N] [-d N] [-r N] [--threads N] [--kv-type T] [--json]",
              "Measures the machine's memory read bandwidth (and, when pp runs, its peak\n"
              "fp32 FMA throughput), then prompt processing (pp: feed N random token ids\n"
              "to an empty context) and token generation (tg: feed N tokens one at a time),\n"
              "each repeated R times after one untimed warm-up.\n"
              "Prints tokens/s (median, min, max), for tg the fraction of the measured\n"
              "bandwidth reached and, for pp, GFLOP/s and the fraction of the measured peak\n"
              "fp32 FMA throughput. See docs/cli.md for how the fractions are computed.\n"
              "With --train: LoRA training speed and peak memory instead (bench --train\n"
              "--help).");
  AddModelFlags(p, &mf);
  AddLoraFlag(p, &mf);
  p.AddInt("-p,--n-prompt", "N", &n_prompt, 0, 1 << 20, "pp tokens (default 512; 0 skips pp)");
  p.AddInt("-n,--n-gen", "N", &n_gen, 0, 1 << 20, "tg tokens (default 128; 0 skips tg)");
  p.AddInt("-d,--depth", "N", &depth, 0, 1 << 22,
           "tg after N tokens of context (fed first, untimed; default 0)");
  p.AddInt("-r,--repetitions", "N", &reps, 1, 1000, "timed runs per test (default 5)");
  p.AddInt("-b,--batch", "N", &n_batch, 1, 1 << 20,
           "prompt tokens per step for pp and the -d context (default 512)");
  p.AddInt(
      "--bw-mib", "N", &bw_mib, 0, 1 << 30,
      "bandwidth buffer in MiB (default 0: max of 1 GiB, 4x the last-level cache, 4x the model)");
  p.AddUint64("--seed", "N", &seed, "seed of the random token ids (default 1234)");
  p.AddSwitch("--json", &json, "one JSON object per test per line on stdout, nothing else");
  bool train = false;  // handled above; listed so --help shows it
  p.AddSwitch("--train", &train, "measure LoRA training instead (bench --train --help)");
  std::string kv_flag;
  AddKvTypeFlag(p, &kv_flag);
  if (int rc = p.Finish(p.Parse(argc, argv, 1)); rc >= 0) return rc;
  uint32_t kv_type = HEARTH_KV_F32;
  if (int rc = ParseKvTypeFlag(p, kv_flag, &kv_type); rc != kExitOk) return rc;
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
  // Peak multiply-add throughput, the ceiling of pp (measured only for pp).
  FlopsResult peak;
  if (n_prompt > 0) {
    std::string flops_error;
    if (!MeasurePeakFlops(threads, 3, 0.2, &peak, &flops_error)) {
      std::fprintf(stderr, "hearth: %s\n", flops_error.c_str());
      return kExitRuntimeError;
    }
  }
  const double peak_gflops = peak.flops_per_second > 0 ? peak.flops_per_second / 1e9 : NAN;

  hearth_session_params sparams = HEARTH_SESSION_PARAMS_INIT;
  sparams.kv_type = kv_type;
  sparams.n_ctx = static_cast<uint32_t>(std::max(n_prompt, depth + n_gen));
  // The batch also feeds tg's depth context: -p 0 -d 4096 must not feed it
  // one token at a time.
  sparams.n_batch =
      static_cast<uint32_t>(std::max<int64_t>(1, std::min(n_batch, std::max(n_prompt, depth))));
  sparams.n_threads = static_cast<uint32_t>(mf.threads);
  Session session;
  if (int rc = OpenSession(model.get(), sparams, &session, "", &adapters)) return rc;

  uint64_t rng = seed;
  std::vector<int32_t> tokens(static_cast<size_t>(std::max(n_prompt, depth + n_gen)));
  for (int32_t& t : tokens) t = static_cast<int32_t>(SplitMix64(&rng) % mi.n_vocab);

  const double bytes_per_token = BytesPerToken(mi);
  const double kv_per_token = KvBytesPerToken(model.get(), mi, kv_type);
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
    const Stats s = Summarize(rates);
    const double gflops = 2.0 * double(mi.n_params) * s.median / 1e9;
    rows.push_back({"pp", n_prompt, s, NAN, gflops, gflops / peak_gflops});
  }
  if (n_gen > 0) {
    std::vector<double> rates;
    for (int64_t r = -1; r < reps; ++r) {
      // The context of -d is fed once (before the warm-up); each run
      // rewinds to it.
      if (r < 0) {
        hearth_session_reset(session.get());
        if (depth > 0) {
          if (hearth_error* err = hearth_session_feed(session.get(), tokens.data(), depth)) {
            return ReportError(err, "tg depth");
          }
        }
      } else if (hearth_error* err = hearth_session_truncate(session.get(), depth)) {
        return ReportError(err, "tg");
      }
      const int64_t steps = r < 0 ? std::min<int64_t>(n_gen, 4) : n_gen;
      const auto start = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < steps; ++i) {
        if (hearth_error* err = hearth_session_feed(session.get(), &tokens[depth + i], 1)) {
          return ReportError(err, "tg");
        }
      }
      if (r >= 0) rates.push_back(double(n_gen) / Seconds(start));
    }
    const Stats s = Summarize(rates);
    // Each token reads the weights and the KV rows before it (on average
    // depth + n_gen / 2 of them).
    const double read = bytes_per_token + kv_per_token * (double(depth) + 0.5 * double(n_gen));
    rows.push_back({"tg", n_gen, s, read * s.median / bw.bytes_per_second, NAN, NAN});
  }

  const double gbps = bw.bytes_per_second / 1e9;
  if (json) {
    for (const Row& row : rows) {
      std::printf(
          "{\"test\":\"%s\",\"n_tokens\":%lld,\"threads\":%d,\"tokens_per_s\":%s,\"min\":%s,"
          "\"max\":%s,\"bandwidth_fraction\":%s,\"bandwidth_gbps\":%s,\"repetitions\":%lld,"
          "\"bytes_per_token\":%s,\"depth\":%lld,\"kv_type\":\"%s\","
          "\"kv_bytes_per_token\":%s,\"gflops\":%s,\"peak_gflops\":%s,\"flops_fraction\":%s,"
          "\"peak_isa\":%s}\n",
          row.test, static_cast<long long>(row.n_tokens), threads,
          JsonNumber(row.stats.median).c_str(), JsonNumber(row.stats.min).c_str(),
          JsonNumber(row.stats.max).c_str(), JsonNumber(row.fraction).c_str(),
          JsonNumber(gbps).c_str(), static_cast<long long>(reps),
          JsonNumber(bytes_per_token).c_str(),
          static_cast<long long>(row.test[0] == 't' ? depth : 0),
          kv_type == HEARTH_KV_F16 ? "f16" : "f32", JsonNumber(kv_per_token).c_str(),
          JsonNumber(row.gflops).c_str(), JsonNumber(peak_gflops).c_str(),
          JsonNumber(row.flops_fraction).c_str(),
          peak.isa.empty() ? "null" : ("\"" + peak.isa + "\"").c_str());
    }
    return std::fflush(stdout) == 0 ? kExitOk : kExitRuntimeError;
  }
  std::printf("model: %s (%s, %s, %s)\n", Printable(mf.model).c_str(),
              PrintableOrDash(mi.architecture).c_str(), PrintableOrDash(mi.quantization).c_str(),
              HumanBytes(double(mi.file_size)).c_str());
  std::printf("device: %s\n", PrintableOrDash(mi.device).c_str());
  std::printf("memory read bandwidth: %.1f GB/s (best of %d reads of %s, %d threads)\n", gbps,
              bw.passes, HumanBytes(double(bw.buffer_bytes)).c_str(), bw.threads);
  if (n_prompt > 0) {
    std::printf("peak fp32 FMA throughput: %.1f GFLOP/s (%s, %d threads, best of %d)\n",
                peak_gflops, peak.isa.c_str(), peak.threads, peak.passes);
  }
  std::printf("weight bytes read per generated token: %s\n", HumanBytes(bytes_per_token).c_str());
  std::printf(
      "KV cache: %s per token of context (%s)%s\n\n", HumanBytes(kv_per_token).c_str(),
      kv_type == HEARTH_KV_F16 ? "f16" : "f32",
      depth > 0 ? (", tg after " + std::to_string(depth) + " tokens of context").c_str() : "");
  // Weights that stay in cache are not streamed from memory each token, so
  // the fraction can pass 1 there and says nothing about memory efficiency.
  const uint64_t llc = LastLevelCacheBytes();
  if (n_gen > 0 && llc > 0 && bytes_per_token < 4.0 * double(llc)) {
    std::printf(
        "note: the weights are within 4x the last-level cache (%s), so tg may run from\n"
        "      cache and its bandwidth fraction is not a memory-efficiency figure\n\n",
        HumanBytes(double(llc)).c_str());
  }
  std::printf("%-5s %9s %8s %14s %10s %10s %13s %9s %8s\n", "test", "n_tokens", "threads",
              "tok/s median", "min", "max", "bw fraction", "GFLOP/s", "of peak");
  for (const Row& row : rows) {
    char fraction[32] = "-";
    if (std::isfinite(row.fraction))
      std::snprintf(fraction, sizeof(fraction), "%.3f", row.fraction);
    char gflops[32] = "-";
    if (std::isfinite(row.gflops)) std::snprintf(gflops, sizeof(gflops), "%.1f", row.gflops);
    char of_peak[32] = "-";
    if (std::isfinite(row.flops_fraction))
      std::snprintf(of_peak, sizeof(of_peak), "%.3f", row.flops_fraction);
    std::printf("%-5s %9lld %8d %14.2f %10.2f %10.2f %13s %9s %8s\n", row.test,
                static_cast<long long>(row.n_tokens), threads, row.stats.median, row.stats.min,
                row.stats.max, fraction, gflops, of_peak);
  }
  return std::fflush(stdout) == 0 ? kExitOk : kExitRuntimeError;
}

}  // namespace hearth::cli
