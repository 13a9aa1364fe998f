// run_together.h — the thread start the machine probes share (memory
// bandwidth, bandwidth.cc; peak FLOP/s, flops.cc): every thread is created
// first and spins until all are ready, so the timed span covers them all
// working at once.
#ifndef HEARTH_SDK_CLI_RUN_TOGETHER_H_
#define HEARTH_SDK_CLI_RUN_TOGETHER_H_

#include <atomic>
#include <chrono>
#include <exception>
#include <string>
#include <thread>
#include <vector>

namespace hearth::cli {

// Runs `work(t)` on `threads` threads that start together; returns the
// seconds from the common start to the last finish, or -1 with *error
// ("cannot start a <what> thread: …") when a thread cannot be created.
template <class Work>
double RunTogether(int threads, const char* what, Work work, std::string* error) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> pool;
  pool.reserve(threads);
  try {
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        ready.fetch_add(1);
        while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
        work(t);
      });
    }
  } catch (const std::exception& e) {
    *error = std::string("cannot start a ") + what + " thread: " + e.what();
    go.store(true);
    for (std::thread& th : pool) th.join();
    return -1;
  }
  while (ready.load() < threads) std::this_thread::yield();
  const auto start = std::chrono::steady_clock::now();
  go.store(true, std::memory_order_release);
  for (std::thread& th : pool) th.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace hearth::cli

#endif  // HEARTH_SDK_CLI_RUN_TOGETHER_H_
