// threadpool.h — the CPU backend's persistent worker pool: one per context,
// workers created once, every op dispatched to all of them as (ith, nth).
//
// Decode runs hundreds of small ops per token, so a dispatch must cost about a
// microsecond: workers spin on a generation counter for a short while after
// each job and only then block on a condition variable, so back-to-back ops
// never pay a kernel wake-up while an idle pool burns no CPU. The calling
// thread is ith = 0 and returns from Run() only when every thread finished,
// which makes each Run() a barrier between the phases of an op.
#ifndef HEARTH_BACKENDS_CPU_THREADPOOL_H_
#define HEARTH_BACKENDS_CPU_THREADPOOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace hearth::cpu {

class ThreadPool {
 public:
  using TaskFn = void (*)(void* arg, int ith, int nth);

  // A pool of n_threads threads in all (the caller plus n_threads - 1
  // workers). Returns nullptr and sets *error when a thread cannot start.
  static std::unique_ptr<ThreadPool> Create(int n_threads, std::string* error);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }

  // Runs fn(arg, ith, nth) for ith in [0, nth) with nth clamped to
  // [1, n_threads()]; the caller runs ith = 0. Returns when all are done.
  // nth == 1 runs inline without waking anyone.
  void Run(TaskFn fn, void* arg, int nth);

  template <typename F>
  void Run(int nth, F&& f) {
    using Fn = std::remove_reference_t<F>;
    Run([](void* arg, int ith, int n) { (*static_cast<Fn*>(arg))(ith, n); },
        const_cast<void*>(static_cast<const void*>(&f)), nth);
  }

  // Idle workers stop spinning and sleep until the next Run(). Called before
  // handing the cores to another runtime (oneDNN's OpenMP team).
  void Park();

 private:
  explicit ThreadPool(int n_threads);
  void WorkerLoop(int ith);
  // Waits until the generation differs from `seen`; returns the new value.
  uint64_t WaitForJob(uint64_t seen);
  void WaitForWorkers();

  const int n_threads_;
  bool oversubscribed_ = false;  // more threads than CPUs: yield, never pause-spin

  // The job of the current generation; written by the caller before it
  // publishes the generation (release) and read by workers after (acquire).
  TaskFn fn_ = nullptr;
  void* arg_ = nullptr;
  int nth_ = 1;

  alignas(64) std::atomic<uint64_t> generation_{0};
  alignas(64) std::atomic<int> pending_{0};
  alignas(64) std::atomic<int> sleepers_{0};
  std::atomic<bool> park_{false};
  std::atomic<bool> stop_{false};

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
};

}  // namespace hearth::cpu

#endif  // HEARTH_BACKENDS_CPU_THREADPOOL_H_
