// The threads backend of Pool: the same API on threads of this process, no isolation. What it
// can honour it does (retries, halt, the initializer); what a thread cannot do (be killed,
// limited or recycled) it refuses by name at construction. Part of Pool (pool.cpp).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pool_threads.hpp"
#include "task_mark.hpp"
#include "taskfarm/detail/caught.hpp"
#include "taskfarm/pool.hpp"

namespace taskfarm {

namespace detail {

// What the threads backend cannot do, refused by name at construction: never silently ignored.
void refuse_for_threads(const PoolOptions& o) {
  auto refuse = [](const char* option, const char* why) {
    throw Error(std::string("taskfarm::Pool: the threads backend cannot apply ") + option + ": " + why +
                "; use Backend::fork");
  };
  if (o.task_timeout.count() != 0) refuse("task_timeout", "a thread cannot be killed");
  if (o.memory_limit != 0) refuse("memory_limit", "RLIMIT_AS limits the whole process, not one task");
  if (o.max_tasks_per_worker != 0)
    refuse("max_tasks_per_worker", "its workers are threads of this process, which cannot be recycled");
  if (o.chaos_rate != 0) refuse("chaos_rate", "fault injection kills worker processes, and a thread cannot be killed");
  if (o.reap_descendants)
    refuse("reap_descendants", "it kills what worker processes leave behind, and this backend has none");
}

}  // namespace detail

// The threads backend: same chunking idea, no isolation. A task that throws is retried (the
// one retry rule) and reported like in the process farm; a crash takes the whole program down
// (that is what isolation is for). The halt policy stops the threads from taking more work:
// `soon` after their current chunk, `now` before their next index (a thread cannot be killed,
// so the index it runs finishes).
void Pool::run_threads(const Extent& extent, const std::function<void(std::uint64_t)>& body) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint64_t n = extent.size();
  const std::size_t nthreads = static_cast<std::size_t>(resolve_workers(options_.workers));
  const std::uint64_t chunk = options_.chunk != 0 ? options_.chunk : std::max<std::uint64_t>(1, n / (nthreads * 16));
  const bool halt_now = options_.halt == Halt::now;
  std::atomic<std::uint64_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mu;  // guards report_, final_failures and unfinished while the threads run
  std::uint64_t final_failures = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> unfinished;
  report_ = RunReport{};
  report_.tasks = n;
  report_.workers = nthreads;
  auto work = [&](std::size_t slot) {
    detail::TaskOf mark(state_.get());
    try {
      if (options_.initializer) options_.initializer();  // once per worker thread, as per forked worker
    } catch (...) {
      const detail::CaughtException x = detail::caught_exception();
      std::lock_guard lock(mu);
      if (report_.farm_error.empty()) report_.farm_error = "the initializer threw " + x.type + ": " + x.message;
      stop.store(true);
      return;
    }
    for (;;) {
      if (stop.load(std::memory_order_relaxed)) return;
      const std::uint64_t b = next.fetch_add(chunk);
      if (b >= n) return;
      const std::uint64_t e = std::min(n, b + chunk);
      for (std::uint64_t i = b; i < e; ++i) {
        if (halt_now && stop.load(std::memory_order_relaxed)) {
          std::lock_guard lock(mu);
          unfinished.emplace_back(i, e);
          break;
        }
        for (std::uint32_t attempt = 0;; ++attempt) {
          try {
            body(i);
            break;
          } catch (...) {
            const detail::CaughtException x = detail::caught_exception();
            FailureRecord f;
            f.cause = x.out_of_memory ? FailureCause::memory : FailureCause::exception;
            f.index = i;
            f.chunk_begin = b;
            f.chunk_end = e;
            f.attempt = attempt;
            f.slot = static_cast<int>(slot);
            f.exception_type = x.type;
            f.message = x.message;
            f.final = !detail::may_retry(attempt, options_.retries);
            std::lock_guard lock(mu);
            if (!f.final) {
              ++report_.retries;
              continue;
            }
            report_.failures.push_back(std::move(f));
            if (options_.halt != Halt::never && ++final_failures >= options_.halt_after) {
              report_.halted = true;
              stop.store(true);
            }
            break;
          }
        }
      }
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t t = 1; t < nthreads; ++t) threads.emplace_back(work, t);
  work(0);
  for (auto& t : threads) t.join();
  const std::uint64_t taken = std::min(n, next.load());
  if (taken < n) unfinished.emplace_back(taken, n);  // stopped before any thread took these
  std::sort(unfinished.begin(), unfinished.end());
  for (auto [b, e] : unfinished) {
    if (!report_.unfinished.empty() && report_.unfinished.back().second == b) report_.unfinished.back().second = e;
    else report_.unfinished.emplace_back(b, e);
  }
  report_.succeeded = n - report_.failures.size() - report_.unfinished_count();
  report_.wall = std::chrono::steady_clock::now() - t0;
}

}  // namespace taskfarm
