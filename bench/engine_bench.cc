// engine_bench — aggregate decode throughput of the engine (hearth.h,
// hearth_engine_*) with N concurrent requests, against one request alone,
// and the cost of mixing adapters: the same batch with every request on one
// adapter, and with the requests spread over K adapters (one LoRA file
// loaded K times: K separate adapters to the engine, the same arithmetic
// as K different files of that shape). A client of the public C ABI only.
//
//   engine_bench MODEL.gguf [--streams 1,4,8] [--tokens 32] [--prompt 32]
//                [--lora FILE --adapters 4] [--threads N] [--repeat 2]
//                [--shared N] [--kv-block B]
//
// --shared N puts the same N tokens (a system prompt) before every
// request's own --prompt tokens; --kv-block B pages the KV cache in pages of
// B positions (0: fixed slots), which lets requests running together share
// the pages of their common start.
// Per line: streams, adapter mode, generated tokens, seconds of the run
// (from the first submit to the last DONE, prompts included), aggregate
// decode tokens/s over the decode phase only (from the moment every request
// has its first token), and that rate over the one-stream rate of the same
// mode, then the seconds until every request had its first token
// (prefill_s) and the prompt tokens computed and taken from the cache over
// the run. The best of --repeat runs is kept.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "hearth/hearth.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Run {
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  int first_tokens = 0;
  uint64_t tokens = 0;
  uint64_t tokens_at_decode = 0;  // generated when the last request got its first token
  Clock::time_point decode_start;
  Clock::time_point end;
};

int OnEvent(const hearth_request_event* ev, void* user_data) {
  auto* r = static_cast<Run*>(user_data);
  std::lock_guard<std::mutex> lock(r->mu);
  if (ev->kind == HEARTH_EVENT_TOKEN) {
    ++r->tokens;
    if (ev->n_generated_tokens == 1) {
      ++r->first_tokens;
      r->decode_start = Clock::now();
      r->tokens_at_decode = r->tokens;
    }
  } else {
    ++r->done;
    r->end = Clock::now();
    r->cv.notify_all();
  }
  return 0;
}

std::vector<int> ParseList(const char* s) {
  std::vector<int> out;
  for (const char* p = s; *p;) {
    out.push_back(std::atoi(p));
    while (*p && *p != ',') ++p;
    if (*p == ',') ++p;
  }
  return out;
}

int Fail(const char* what, hearth_error* err) {
  std::fprintf(stderr, "engine_bench: %s: %s\n", what, hearth_error_message(err));
  hearth_error_free(err);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: engine_bench MODEL.gguf [--streams 1,4,8] [--tokens 32] [--prompt 32] "
                 "[--lora FILE --adapters 4] [--threads N] [--repeat 2] [--shared N] "
                 "[--kv-block B]\n");
    return 2;
  }
  const char* model_path = argv[1];
  std::vector<int> streams = {1, 4, 8};
  int tokens = 32, prompt = 32, n_adapters = 4, repeat = 2, shared = 0, kv_block = 0;
  uint32_t threads = 0;
  const char* lora = nullptr;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--streams"))
      streams = ParseList(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--tokens"))
      tokens = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--prompt"))
      prompt = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--lora"))
      lora = argv[i + 1];
    else if (!std::strcmp(argv[i], "--adapters"))
      n_adapters = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads"))
      threads = static_cast<uint32_t>(std::atoi(argv[i + 1]));
    else if (!std::strcmp(argv[i], "--repeat"))
      repeat = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--shared"))
      shared = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--kv-block"))
      kv_block = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "engine_bench: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (streams.empty() || tokens < 2 || prompt < 1 || n_adapters < 1 || repeat < 1 || shared < 0 ||
      kv_block < 0) {
    std::fprintf(stderr, "engine_bench: bad option values\n");
    return 2;
  }
  hearth_runtime_params rp = HEARTH_RUNTIME_PARAMS_INIT;
  rp.plugin_path = HEARTH_PLUGIN_DIR;  // the build's plugins, then the usual search
  hearth_runtime* rt = nullptr;
  if (hearth_error* err = hearth_runtime_create(&rp, &rt)) return Fail("runtime", err);
  hearth_model_params mp = HEARTH_MODEL_PARAMS_INIT;
  mp.n_threads = threads;
  hearth_model* model = nullptr;
  if (hearth_error* err = hearth_model_load(rt, model_path, &mp, &model)) {
    return Fail(model_path, err);
  }
  std::vector<hearth_adapter*> adapters;
  if (lora) {
    for (int k = 0; k < n_adapters; ++k) {
      hearth_adapter* a = nullptr;
      if (hearth_error* err = hearth_adapter_load(model, lora, nullptr, &a)) return Fail(lora, err);
      adapters.push_back(a);
    }
  }
  const int max_streams = *std::max_element(streams.begin(), streams.end());
  hearth_engine_params ep = HEARTH_ENGINE_PARAMS_INIT;
  ep.n_seq = static_cast<uint32_t>(max_streams);
  ep.n_ctx = static_cast<uint32_t>(shared + prompt + tokens + 8);
  if (kv_block > 0) ep.n_ctx = (ep.n_ctx + kv_block - 1) / kv_block * kv_block;
  ep.kv_block_size = static_cast<uint32_t>(kv_block);
  ep.max_step_tokens = static_cast<uint32_t>(std::max(256, max_streams));
  ep.n_threads = threads;
  ep.adapters = adapters.data();
  ep.n_adapters = adapters.size();
  hearth_engine* engine = nullptr;
  if (hearth_error* err = hearth_engine_create(model, &ep, &engine)) return Fail("engine", err);
  if (hearth_error* err = hearth_engine_start(engine)) return Fail("engine start", err);

  // Prompt ids of request s in run `salt`: --shared common tokens, then ids
  // different per request from the first position on, so requests share no
  // more than the common part; every run has new ids, so nothing is reused
  // from the run before.
  auto make_prompt = [&](int s, int salt) {
    std::vector<int32_t> p;
    for (int i = 0; i < shared; ++i) p.push_back(1100 + (i * 53 + salt * 131) % 997);
    for (int i = 0; i < prompt; ++i) p.push_back(100 + (i * 37 + s * 11 + salt * 7) % 1000);
    return p;
  };
  int salt = 0;
  std::printf(
      "streams  adapters        tokens  run_s   decode_tok/s  vs_1_stream  prefill_s  computed  "
      "cached\n");
  std::vector<std::string> modes = {"none"};
  if (lora) {
    modes.push_back("one");
    modes.push_back("mixed-" + std::to_string(n_adapters));
  }
  for (const std::string& mode : modes) {
    double one_stream = 0.0;
    for (int n : streams) {
      double best_rate = 0.0, best_run = 0.0, best_prefill = 0.0;
      uint64_t generated = 0, computed = 0, cached = 0;
      for (int rep = 0; rep < repeat; ++rep) {
        Run run;
        ++salt;
        std::vector<std::vector<int32_t>> prompts;
        for (int s = 0; s < n; ++s) prompts.push_back(make_prompt(s, salt));
        hearth_engine_stats before = HEARTH_ENGINE_STATS_INIT;
        if (hearth_error* err = hearth_engine_get_stats(engine, &before)) return Fail("stats", err);
        const Clock::time_point t0 = Clock::now();
        std::vector<hearth_engine_adapter> use(static_cast<size_t>(n));
        for (int s = 0; s < n; ++s) {
          hearth_request_params r = HEARTH_REQUEST_PARAMS_INIT;
          r.tokens = prompts[static_cast<size_t>(s)].data();
          r.n_tokens = prompts[static_cast<size_t>(s)].size();
          r.max_tokens = tokens;
          r.sampling.temperature = 0.0f;
          r.on_event = OnEvent;
          r.user_data = &run;
          if (mode != "none") {
            use[static_cast<size_t>(s)] = {
                mode == "one" ? 0u : static_cast<uint32_t>(s % n_adapters), 1.0f};
            r.adapters = &use[static_cast<size_t>(s)];
            r.n_adapters = 1;
          }
          uint64_t id = 0;
          if (hearth_error* err = hearth_engine_submit(engine, &r, &id)) return Fail("submit", err);
        }
        std::unique_lock<std::mutex> lock(run.mu);
        run.cv.wait(lock, [&] { return run.done == n; });
        const double run_s = std::chrono::duration<double>(run.end - t0).count();
        const double decode_s = std::chrono::duration<double>(run.end - run.decode_start).count();
        const double rate =
            decode_s > 0 ? static_cast<double>(run.tokens - run.tokens_at_decode) / decode_s : 0.0;
        if (rate > best_rate) {
          best_rate = rate;
          best_run = run_s;
        }
        const double prefill_s = std::chrono::duration<double>(run.decode_start - t0).count();
        if (rep == 0 || prefill_s < best_prefill) best_prefill = prefill_s;
        generated = run.tokens;
        lock.unlock();
        hearth_engine_stats after = HEARTH_ENGINE_STATS_INIT;
        if (hearth_error* err = hearth_engine_get_stats(engine, &after)) return Fail("stats", err);
        computed = after.prompt_tokens - before.prompt_tokens;
        cached = after.cached_prompt_tokens - before.cached_prompt_tokens;
      }
      if (n == streams.front()) one_stream = best_rate;
      std::printf("%7d  %-14s %7llu  %6.2f  %12.2f  %10.2fx  %9.2f  %8llu  %6llu\n", n,
                  mode.c_str(), static_cast<unsigned long long>(generated), best_run, best_rate,
                  one_stream > 0 ? best_rate / one_stream : 0.0, best_prefill,
                  static_cast<unsigned long long>(computed),
                  static_cast<unsigned long long>(cached));
      std::fflush(stdout);
    }
  }
  hearth_engine_free(engine);
  for (hearth_adapter* a : adapters) hearth_adapter_free(a);
  hearth_model_free(model);
  hearth_runtime_free(rt);
  return 0;
}
