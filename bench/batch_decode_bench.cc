// batch_decode_bench — aggregate decode throughput of a BatchRunner
// (sdk/src/runtime/batch.h) at several numbers of sequences, against one
// session decoding alone: what batching buys when every step reads the
// weights once for all sequences. Prints one line per batch size.
//
//   batch_decode_bench MODEL.gguf [--seqs 1,2,4,8] [--steps 16] [--prompt 32] [--threads N]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "sdk/src/runtime/batch.h"
#include "sdk/src/runtime/model.h"
#include "sdk/src/runtime/session.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "batch_decode_bench: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace hearth;
  if (argc < 2) {
    return Fail(
        "usage: batch_decode_bench MODEL.gguf [--seqs 1,2,4,8] [--steps N] "
        "[--prompt N] [--threads N]");
  }
  std::vector<int> seqs = {1, 2, 4, 8};
  int steps = 16, prompt = 32, threads = 0;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    int n = 0;
    if (flag == "--seqs") {
      seqs.clear();
      for (absl::string_view part : absl::StrSplit(value, ',')) {
        if (!absl::SimpleAtoi(part, &n) || n < 1 || n > 256) return Fail("bad --seqs " + value);
        seqs.push_back(n);
      }
    } else if (absl::SimpleAtoi(value, &n) && n >= 0) {
      if (flag == "--steps")
        steps = n;
      else if (flag == "--prompt")
        prompt = n;
      else if (flag == "--threads")
        threads = n;
      else
        return Fail("unknown flag " + flag);
    } else {
      return Fail("bad value for " + flag);
    }
  }
  if (steps < 1 || prompt < 1) return Fail("--steps and --prompt must be at least 1");
  PluginHostOptions ho;
  ho.explicit_paths = {std::string(HEARTH_PLUGIN_DIR) + "/libhearth-backend-cpu.so"};
  ho.explicit_only = true;
  auto host = PluginHost::Create(ho);
  if (!host.ok()) return Fail(std::string(host.status().message()));
  ModelLoadOptions mo;
  mo.n_threads = static_cast<uint32_t>(threads);
  auto loaded = Model::Load(std::shared_ptr<PluginHost>(std::move(host).value()), argv[1], mo);
  if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
  std::shared_ptr<const Model> model = *loaded;
  const int32_t n_vocab = static_cast<int32_t>(model->config().n_vocab);
  auto prompt_of = [&](int s) {
    std::vector<int32_t> p(static_cast<size_t>(prompt));
    for (int i = 0; i < prompt; ++i) p[i] = 3 + (s * 7919 + i * 104729) % (n_vocab - 3);
    return p;
  };
  const uint32_t n_ctx = static_cast<uint32_t>(prompt + steps + 1);

  // One session alone: the baseline a batch is compared with.
  SessionOptions so;
  so.n_ctx = n_ctx;
  auto session = Session::Create(model, so);
  if (!session.ok()) return Fail(std::string(session.status().message()));
  if (auto st = (*session)->Feed(prompt_of(0)); !st.ok()) return Fail(std::string(st.message()));
  Clock::time_point t0 = Clock::now();
  for (int i = 0; i < steps; ++i) {
    if (auto st = (*session)->Feed({3 + i}); !st.ok()) return Fail(std::string(st.message()));
  }
  const double session_tps = steps / Seconds(t0, Clock::now());
  std::printf("%s, %s threads, prompt %d, %d decode steps\n", argv[1],
              threads ? std::to_string(threads).c_str() : "all", prompt, steps);
  std::printf("session alone: %.2f tokens/s\n", session_tps);
  std::printf("%6s %10s %14s %10s\n", "n_seq", "ms/step", "tokens/s", "x session");
  for (int n : seqs) {
    BatchRunnerOptions ro;
    ro.n_seq = static_cast<uint32_t>(n);
    ro.n_ctx = n_ctx;
    ro.max_tokens = static_cast<uint32_t>(n * prompt);
    auto runner = BatchRunner::Create(model, ro);
    if (!runner.ok()) return Fail(std::string(runner.status().message()));
    std::vector<std::vector<int32_t>> tokens(static_cast<size_t>(n));
    std::vector<BatchEntry> entries(static_cast<size_t>(n));
    for (int s = 0; s < n; ++s) {
      tokens[s] = prompt_of(s);
      entries[s].slot = s;
      entries[s].tokens = tokens[s];
      entries[s].want_logits = true;
    }
    if (auto st = (*runner)->Step(entries); !st.ok()) return Fail(std::string(st.message()));
    t0 = Clock::now();
    for (int i = 0; i < steps; ++i) {
      for (int s = 0; s < n; ++s) {
        tokens[s] = {3 + (i + s) % (n_vocab - 3)};
        entries[s].tokens = tokens[s];
        entries[s].start = (*runner)->n_past(s);
      }
      if (auto st = (*runner)->Step(entries); !st.ok()) return Fail(std::string(st.message()));
    }
    const double secs = Seconds(t0, Clock::now());
    const double tps = static_cast<double>(n) * steps / secs;
    std::printf("%6d %10.1f %14.2f %10.2f\n", n, 1000.0 * secs / steps, tps, tps / session_tps);
  }
  return 0;
}
