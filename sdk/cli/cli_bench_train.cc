// cli_bench_train.cc — `hearth bench --train`: LoRA training speed and peak
// memory. Random token sequences of exactly the requested length (every
// token trained, as a text record), LoRA on the chosen projections, AdamW at
// a constant learning rate with no clipping (what bench/peft_cpu_bench.py
// runs on the PEFT side); one untimed warm-up step, then N timed steps of
// one sequence each. Prints train tokens/s, seconds per step and the
// process's peak RSS (getrusage), which includes the touched pages of the
// memory-mapped model file. docs/perf.md, "Training (LoRA) vs PEFT".
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "cli_commands.h"
#include "cli_common.h"
#include "terminal_text.h"

namespace hearth::cli {
namespace {

using Dataset = std::unique_ptr<hearth_dataset, HandleDeleter<hearth_dataset_free>>;
using Trainer = std::unique_ptr<hearth_trainer, HandleDeleter<hearth_trainer_free>>;

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double PeakRssBytes() {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return NAN;
  return static_cast<double>(ru.ru_maxrss) * 1024.0;  // Linux: KiB
}

std::string JsonNumber(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// A JSONL file of `n` text records, each of random lowercase words, at
// least `words` of them (every word is at least one token, so a record
// truncated to `words` tokens is exactly that long). Returns the path, or ""
// with *error set.
std::string WriteRandomText(int64_t n, int64_t words, uint64_t seed, std::string* error) {
  const char* dir = std::getenv("TMPDIR");
  std::string path = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") +
                     "/hearth-bench-train-XXXXXX.jsonl";
  const int fd = mkstemps(path.data(), 6);
  if (fd < 0) {
    *error = "cannot create a temporary file " + path;
    return "";
  }
  FILE* f = fdopen(fd, "w");
  if (f == nullptr) {
    close(fd);
    std::remove(path.c_str());
    *error = "cannot open the temporary file " + path;
    return "";
  }
  uint64_t rng = seed;
  bool ok = true;
  for (int64_t i = 0; i < n && ok; ++i) {
    std::string line = "{\"text\": \"";
    for (int64_t w = 0; w < words; ++w) {
      if (w > 0) line += ' ';
      const int len = 2 + static_cast<int>(SplitMix64(&rng) % 6);
      for (int c = 0; c < len; ++c) line += static_cast<char>('a' + SplitMix64(&rng) % 26);
    }
    line += "\"}\n";
    ok = std::fwrite(line.data(), 1, line.size(), f) == line.size();
  }
  if (std::fclose(f) != 0 || !ok) {
    std::remove(path.c_str());
    *error = "cannot write the temporary file " + path;
    return "";
  }
  return path;
}

}  // namespace

int RunBenchTrain(int argc, char** argv) {
  ModelFlags mf;
  int64_t seq = 512, rank = 16, steps = 4;
  uint64_t seed = 1234;
  float alpha = 32, lr = 1e-4f;
  std::string targets = "q,k,v,o,gate,up,down";
  bool json = false, train = false, bf16 = false;
  ArgParser p("bench", "bench --train -m MODEL [--seq N] [--rank N] [--steps N] [--threads N]",
              "LoRA training speed: one untimed warm-up step, then N timed optimizer steps,\n"
              "each on one sequence of random tokens of exactly --seq tokens (the loss on\n"
              "every token), AdamW at a constant learning rate, no clipping. Prints train\n"
              "tokens/s, seconds per step and the peak resident memory of the process\n"
              "(getrusage; it counts the pages of the mapped model file that were read).\n"
              "docs/perf.md");
  AddModelFlags(p, &mf);
  p.AddSwitch("--train", &train, "measure LoRA training (this mode)");
  p.AddInt("-s,--seq", "N", &seq, 2, 1 << 20, "tokens per sequence (default 512)");
  p.AddInt("--rank", "N", &rank, 1, 65536, "LoRA rank (default 16)");
  p.AddFloat("--alpha", "X", &alpha, "LoRA alpha (default 32)");
  p.AddString("--targets", "LIST", &targets, "projections to adapt (default q,k,v,o,gate,up,down)");
  p.AddInt("--steps", "N", &steps, 1, 1 << 20, "timed steps after the warm-up (default 4)");
  p.AddFloat("--lr", "X", &lr, "learning rate (default 1e-4)");
  p.AddUint64("--seed", "N", &seed, "seed of the random text and of A's init (default 1234)");
  p.AddSwitch("--bf16", &bf16,
              "mixed precision: the base model's products in BF16 (hearth_trainer_params."
              "bf16_products)");
  p.AddSwitch("--json", &json, "one JSON object on stdout, nothing else");
  if (int rc = p.Finish(p.Parse(argc, argv, 1)); rc >= 0) return rc;
  if (!p.positional().empty()) {
    return p.UsageError("unexpected argument '" + p.positional()[0] + "'");
  }
  if (mf.model.empty()) return p.UsageError("-m MODEL is required");

  Runtime rt;
  if (int rc = OpenRuntime(mf, &rt)) return rc;
  Model model;
  if (int rc = OpenModel(rt.get(), mf, &model)) return rc;
  hearth_model_info mi = HEARTH_MODEL_INFO_INIT;
  if (hearth_error* err = hearth_model_get_info(model.get(), &mi)) return ReportError(err);
  const double rss_loaded = PeakRssBytes();

  std::string error;
  const std::string path = WriteRandomText(steps + 1, seq, seed, &error);
  if (path.empty()) {
    std::fprintf(stderr, "hearth: %s\n", error.c_str());
    return kExitRuntimeError;
  }
  hearth_dataset_params dp = HEARTH_DATASET_PARAMS_INIT;
  dp.max_tokens = static_cast<uint32_t>(seq);
  dp.truncate = 1;
  hearth_dataset* raw_data = nullptr;
  hearth_error* load_err = hearth_dataset_load(model.get(), path.c_str(), &dp, &raw_data);
  std::remove(path.c_str());
  if (load_err != nullptr) return ReportError(load_err, "bench --train data");
  Dataset data(raw_data);
  hearth_dataset_info di = HEARTH_DATASET_INFO_INIT;
  if (hearth_error* err = hearth_dataset_get_info(data.get(), &di)) return ReportError(err);
  if (di.n_examples != static_cast<uint64_t>(steps + 1) ||
      di.n_tokens != static_cast<uint64_t>(seq * (steps + 1))) {
    std::fprintf(stderr,
                 "hearth: bench --train: the random text gave %llu tokens in %llu sequences; "
                 "want %lld x %lld (is --seq beyond the model's context?)\n",
                 static_cast<unsigned long long>(di.n_tokens),
                 static_cast<unsigned long long>(di.n_examples), static_cast<long long>(steps + 1),
                 static_cast<long long>(seq));
    return kExitRuntimeError;
  }

  hearth_trainer_params tp = HEARTH_TRAINER_PARAMS_INIT;
  tp.rank = static_cast<uint32_t>(rank);
  tp.alpha = alpha;
  tp.targets = targets.c_str();
  tp.lr = lr;
  tp.schedule = HEARTH_SCHEDULE_CONSTANT;
  tp.max_grad_norm = 0;
  tp.batch = 1;
  tp.grad_accum = 1;
  tp.epochs = 1;
  tp.seed = seed;
  tp.n_threads = static_cast<uint32_t>(mf.threads);
  tp.bf16_products = bf16 ? 1 : 0;
  hearth_trainer* raw_trainer = nullptr;
  if (hearth_error* err = hearth_trainer_create(model.get(), data.get(), &tp, &raw_trainer)) {
    return ReportError(err, mf.model);
  }
  Trainer trainer(raw_trainer);
  const int threads = mf.threads > 0
                          ? static_cast<int>(mf.threads)
                          : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  std::vector<double> seconds;
  double first_loss = NAN, last_loss = NAN, warmup_s = 0;
  for (int64_t s = -1; s < steps; ++s) {  // s = -1: warm-up (plans the graphs)
    hearth_train_progress pr = HEARTH_TRAIN_PROGRESS_INIT;
    const auto start = std::chrono::steady_clock::now();
    if (hearth_error* err = hearth_trainer_step(trainer.get(), &pr)) {
      return ReportError(err, "bench --train");
    }
    const double dt =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (s < 0) {
      warmup_s = dt;
      first_loss = pr.loss;
    } else {
      seconds.push_back(dt);
    }
    last_loss = pr.loss;
    if (!json) {
      std::fprintf(stderr, "%s %lld: loss %.4f, %.2f s\n", s < 0 ? "warm-up step" : "step",
                   static_cast<long long>(s + 1), pr.loss, dt);
    }
  }
  double total = 0;
  for (double v : seconds) total += v;
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  const double median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  const double tokens_per_s = static_cast<double>(seq * steps) / total;
  const double peak_rss = PeakRssBytes();

  if (json) {
    std::printf(
        "{\"test\":\"train\",\"n_tokens\":%lld,\"threads\":%d,\"rank\":%lld,\"targets\":%s,"
        "\"bf16_products\":%s,\"steps\":%lld,\"tokens_per_s\":%s,\"seconds_per_step\":%s,\"min\":%"
        "s,\"max\":%s,"
        "\"warmup_s\":%s,\"loss_first\":%s,\"loss_last\":%s,\"peak_rss_bytes\":%s,"
        "\"rss_after_load_bytes\":%s,\"model_bytes\":%llu}\n",
        static_cast<long long>(seq), threads, static_cast<long long>(rank),
        JsonString(targets).c_str(), bf16 ? "true" : "false", static_cast<long long>(steps),
        JsonNumber(tokens_per_s).c_str(), JsonNumber(median).c_str(),
        JsonNumber(sorted.front()).c_str(), JsonNumber(sorted.back()).c_str(),
        JsonNumber(warmup_s).c_str(), JsonNumber(first_loss).c_str(), JsonNumber(last_loss).c_str(),
        JsonNumber(peak_rss).c_str(), JsonNumber(rss_loaded).c_str(),
        static_cast<unsigned long long>(mi.file_size));
    return std::fflush(stdout) == 0 ? kExitOk : kExitRuntimeError;
  }
  std::printf("model: %s (%s, %s, %s)\n", Printable(mf.model).c_str(),
              PrintableOrDash(mi.architecture).c_str(), PrintableOrDash(mi.quantization).c_str(),
              HumanBytes(double(mi.file_size)).c_str());
  std::printf("device: %s, %d threads\n", PrintableOrDash(mi.device).c_str(), threads);
  std::printf("LoRA rank %lld on %s, AdamW, 1 sequence of %lld tokens per step, %s products\n",
              static_cast<long long>(rank), Printable(targets).c_str(), static_cast<long long>(seq),
              bf16 ? "BF16" : "F32");
  std::printf("train: %.2f tok/s over %lld steps (%.2f s/step median, %.2f-%.2f; warm-up %.2f s)\n",
              tokens_per_s, static_cast<long long>(steps), median, sorted.front(), sorted.back(),
              warmup_s);
  std::printf("peak RSS: %s (%s after loading the model)\n", HumanBytes(peak_rss).c_str(),
              HumanBytes(rss_loaded).c_str());
  return std::fflush(stdout) == 0 ? kExitOk : kExitRuntimeError;
}

}  // namespace hearth::cli
