// threadpool.cc — spin-then-block worker pool of the CPU backend.
#include "backends/cpu/threadpool.h"

#include <sched.h>

#include <chrono>
#include <system_error>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace hearth::cpu {
namespace {

// How long an idle worker keeps spinning after its last job before it blocks.
// Long enough to bridge the gap between two ops of one graph and the host's
// sampling between decode steps, short enough that an idle context costs
// nothing measurable.
constexpr auto kSpinTime = std::chrono::microseconds(200);
// Past this, a waiting thread yields between checks instead of pausing: on a
// loaded machine the thread it waits for may need this very core.
constexpr auto kPauseTime = std::chrono::microseconds(20);

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

int OnlineCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(n_threads < 1 ? 1 : n_threads) {
  oversubscribed_ = n_threads_ > OnlineCpus();
}

std::unique_ptr<ThreadPool> ThreadPool::Create(int n_threads, std::string* error) {
  std::unique_ptr<ThreadPool> pool(new ThreadPool(n_threads));
  try {
    pool->workers_.reserve(pool->n_threads_ - 1);
    for (int ith = 1; ith < pool->n_threads_; ++ith) {
      pool->workers_.emplace_back([p = pool.get(), ith] { p->WorkerLoop(ith); });
    }
  } catch (const std::system_error& e) {
    *error = "cannot start worker thread " + std::to_string(pool->workers_.size() + 1) + " of " +
             std::to_string(pool->n_threads_ - 1) + ": " + e.what();
    return nullptr;  // the destructor joins the workers that did start
  }
  return pool;
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_seq_cst);
  generation_.fetch_add(1, std::memory_order_seq_cst);
  {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::Park() { park_.store(true, std::memory_order_relaxed); }

void ThreadPool::Run(TaskFn fn, void* arg, int nth) {
  if (nth > n_threads_) nth = n_threads_;
  if (nth <= 1) {
    fn(arg, 0, 1);
    return;
  }
  fn_ = fn;
  arg_ = arg;
  nth_ = nth;
  // Every worker acknowledges every job (even those with ith >= nth), so no
  // worker can still be reading fn_/arg_/nth_ when the next job is written.
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  park_.store(false, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_seq_cst);
  // A worker raises sleepers_ under mu_ before it re-checks the generation,
  // so either it sees the new generation or we see it asleep and wake it.
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
  fn(arg, 0, nth);
  WaitForWorkers();
}

void ThreadPool::WaitForWorkers() {
  bool yield = oversubscribed_;
  std::chrono::steady_clock::time_point start;
  for (uint32_t spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if (yield) {
      std::this_thread::yield();
      continue;
    }
    CpuRelax();
    if (spins == 64) start = std::chrono::steady_clock::now();
    if (spins > 64 && (spins & 63) == 0) {
      yield = std::chrono::steady_clock::now() - start > kPauseTime;
    }
  }
}

uint64_t ThreadPool::WaitForJob(uint64_t seen) {
  const auto start = std::chrono::steady_clock::now();
  bool yield = oversubscribed_;
  for (uint32_t spins = 1;; ++spins) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    if (g != seen) return g;
    if (park_.load(std::memory_order_relaxed)) break;
    if (yield) {
      std::this_thread::yield();
    } else {
      CpuRelax();
    }
    if ((spins & 63) == 0) {
      auto waited = std::chrono::steady_clock::now() - start;
      if (waited > kSpinTime) break;
      yield = yield || waited > kPauseTime;
    }
  }
  std::unique_lock<std::mutex> lock(mu_);
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  uint64_t g;
  while ((g = generation_.load(std::memory_order_seq_cst)) == seen) cv_.wait(lock);
  sleepers_.fetch_sub(1, std::memory_order_relaxed);
  return g;
}

void ThreadPool::WorkerLoop(int ith) {
  uint64_t seen = 0;
  for (;;) {
    seen = WaitForJob(seen);
    if (stop_.load(std::memory_order_acquire)) return;
    if (ith < nth_) fn_(arg_, ith, nth_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace hearth::cpu
