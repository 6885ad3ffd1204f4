// The farm's own limits: how many workers a run starts, how large a chunk can be, what a
// fork-mode call refuses (other threads in the process), and waiting for the next submitted
// call. Real processes; the scheduler's side of it is in scheduler_test.cpp.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "proc_info.hpp"
#include "taskfarm/farm.hpp"
#include "taskfarm/pool.hpp"
#include "taskfarm/shared_array.hpp"
#include "taskfarm/warm_pool.hpp"

using namespace taskfarm;

namespace {

/// Counts what a run reports.
struct Counting : FarmObserver {
  int workers_started = 0, failures = 0;
  void on_worker_started(int, pid_t) override { ++workers_started; }
  void on_failure(const FailureRecord&) override { ++failures; }
};

}  // namespace

// A --resume whose ranges do not start at 0, with a chunk beyond the index space: every index in
// the ranges is computed once, nobody is killed as a protocol violator.
TEST(Limits, ChunkBeyondTheIndexSpaceRunsEachRangeOnce) {
  FarmOptions o;
  o.workers = 2;
  o.chunk = ~std::uint64_t{0};
  o.forward_stderr = false;
  Farm farm = Farm::program(o, FAULT_WORKER);
  auto out = SharedArray<std::int64_t>::create({20});
  JobSpec job;
  job.extent = {20};
  job.ranges = {{3, 5}, {10, 12}};
  job.output_handle = out.handle();
  Counting seen;
  const RunReport r = farm.run(job, &seen);
  EXPECT_EQ(r.tasks, 4u);
  EXPECT_EQ(r.succeeded, 4u);
  EXPECT_EQ(r.worker_deaths, 0u);
  EXPECT_EQ(seen.failures, 0);
  for (std::size_t i = 0; i < 20; ++i) {
    const bool in_run = (i >= 3 && i < 5) || (i >= 10 && i < 12);
    EXPECT_EQ(out.view().element({i}), in_run ? static_cast<std::int64_t>(i * i) : 0) << "index " << i;
  }
}

// Workers beyond the task count would never get work: a run starts at most one per task. (It
// may start fewer: a worker is started only while a task is left to hand out, and a fast first
// worker may have taken them all.)
TEST(Limits, ARunStartsNoMoreWorkersThanTasks) {
  FarmOptions o;
  o.workers = 200;
  Farm farm = Farm::program(o, FAULT_WORKER);
  auto out = SharedArray<std::int64_t>::create({3});
  JobSpec job;
  job.extent = {3};
  job.output_handle = out.handle();
  Counting seen;
  const RunReport r = farm.run(job, &seen);
  EXPECT_EQ(r.succeeded, 3u);
  EXPECT_GE(seen.workers_started, 1);
  EXPECT_LE(seen.workers_started, 3);
  EXPECT_EQ(r.workers, 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(out.view().element({i}), static_cast<std::int64_t>(i * i));
}

TEST(Limits, APoolCallForksNoMoreWorkersThanTasks) {
  PoolOptions o;
  o.workers = 200;
  Pool pool(o);
  const auto v = pool.map<int>(10, [](std::uint64_t i) { return static_cast<int>(i) * 3; });
  ASSERT_EQ(v.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(v[static_cast<std::size_t>(i)], 3 * i);
  EXPECT_EQ(pool.last_report().workers, 10u);
  EXPECT_EQ(pool.workers(), 200u) << "the option itself is what was asked";
}

namespace {

/// A thread that waits on a condition variable until destroyed, as an idle pool thread does.
class WaitingThread {
 public:
  WaitingThread() : thread_([this] {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return done_; });
  }) {}
  ~WaitingThread() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// A WarmPool kernel: counts itself in, then waits (10 s at most) until 2 tasks are in.
int rendezvous(std::uint64_t, const SharedArray<std::int32_t>& met) {
  std::atomic_ref<std::int32_t> n(met.data()[0]);
  n.fetch_add(1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (n.load() < 2)
    if (std::chrono::steady_clock::now() > deadline) return 0;
  return 1;
}

void expect_refusal(const std::function<void()>& call, const char* what) {
  try {
    call();
    ADD_FAILURE() << what << " forked with another thread alive";
  } catch (const Error& e) {
    const std::string m = e.what();
#if defined(__SANITIZE_THREAD__)  // TSan's runtime has a thread of its own too
    EXPECT_NE(m.find("this process has "), std::string::npos) << m;
#else
    EXPECT_NE(m.find("this process has 2 threads"), std::string::npos) << m;
#endif
    EXPECT_NE(m.find("Backend::threads or program mode"), std::string::npos) << m;
    EXPECT_NE(m.find("fork_with_threads"), std::string::npos) << m;
  }
}

}  // namespace

// A fork while another thread holds malloc's (or the user's) lock deadlocks the child: the repro
// hung 6 runs in 8. A fork-mode call now refuses while other threads exist, naming the fix.
TEST(ForkSafety, ForkModeRefusesWhileOtherThreadsExist) {
  PoolOptions o;
  o.workers = 2;
  Pool pool(o);
  WaitingThread other;
  expect_refusal([&] { pool.map<int>(10, [](std::uint64_t i) { return static_cast<int>(i); }); }, "map");
  expect_refusal([&] { pool.for_each(10, [](std::uint64_t) {}); }, "for_each");
  expect_refusal([&] { pool.submit([] { return 1; }); }, "submit");
  EXPECT_EQ(pool.in_flight(), 0u) << "a refused submit queues nothing";
}

// The check is made at each fork, not at each call: a WarmPool whose workers all live forks
// nothing, so a call with another thread alive is safe and runs; its first call forks and is
// refused. (Checking every call cost a /proc scan per warm call: issue 15's start-up row.)
TEST(ForkSafety, WarmPoolRefusesOnlyTheCallsThatFork) {
  PoolOptions o;
  o.workers = 2;
  WarmPool cold(o);
  {
    WaitingThread other;
    expect_refusal([&] { cold.map<int>(4, [](std::uint64_t i) { return static_cast<int>(i); }); }, "WarmPool's first map");
  }
  o.chunk = 1;
  WarmPool warm(o);
  // Both workers must be started before the thread is: a worker is started only while work is
  // left, so each of the 2 tasks waits (bounded) until the other has begun — on the other worker.
  auto met = SharedArray<std::int32_t>::create({1});
  EXPECT_EQ(warm.map<int>(2, &rendezvous, met), (std::vector<int>{1, 1}));
  WaitingThread other;
  EXPECT_EQ(warm.map<int>(6, [](std::uint64_t i) { return static_cast<int>(i) * 3; }), (std::vector<int>{0, 3, 6, 9, 12, 15}));
  EXPECT_EQ(warm.last_report().workers, 2u);
}

// The check before each fork counts threads from /proc/self/task's link count (one stat) once
// it agreed with a scan of the directory: the count must be the directory's, with one thread and
// with two.
TEST(ForkSafety, ThreadCountIsTheEntriesOfProcSelfTask) {
  auto entries = [] {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
    return n;
  };
  const std::size_t alone = entries();
  EXPECT_EQ(proc::thread_count(), alone);
  {
    WaitingThread other;
    EXPECT_EQ(proc::thread_count(), alone + 1);
    EXPECT_EQ(proc::thread_count(), entries());
  }
}

TEST(ForkSafety, ForkWithThreadsIsAnExplicitOptIn) {
  PoolOptions o;
  o.workers = 2;
  o.fork_with_threads = true;
  Pool pool(o);
  WaitingThread other;  // holds no lock while it waits: safe, and the user says so
  const auto v = pool.map<int>(10, [](std::uint64_t i) { return static_cast<int>(i) + 1; });
  for (int i = 0; i < 10; ++i) EXPECT_EQ(v[static_cast<std::size_t>(i)], i + 1);
  EXPECT_EQ(pool.submit([] { return 42; }).get(), 42);
}

TEST(ForkSafety, ThreadsBackendAndProgramModeAreUnaffected) {
  WaitingThread other;
  PoolOptions o;
  o.workers = 2;
  o.backend = Backend::threads;
  Pool pool(o);
  EXPECT_EQ(pool.map<int>(4, [](std::uint64_t i) { return static_cast<int>(i); }).size(), 4u);
  EXPECT_EQ(pool.submit([] { return 7; }).get(), 7);
  FarmOptions f;
  f.workers = 2;
  Farm farm = Farm::program(f, FAULT_WORKER);
  JobSpec job;
  job.extent = {4};
  job.results = ResultMode::blobs;
  EXPECT_EQ(farm.run(job).succeeded, 4u);
}

// The README's progress loop waited on futures.front(), which returns at once once that call is
// done: 2 million progress lines for 300 calls. wait_any waits for the next completion.
class WaitAny : public testing::TestWithParam<Backend> {};

TEST_P(WaitAny, ProgressLoopMakesOneIterationPerCompletion) {
  PoolOptions o;
  o.workers = 2;
  o.backend = GetParam();
  Pool pool(o);
  std::vector<Future<std::uint64_t>> futures;
  for (std::uint64_t i = 0; i < 300; ++i)
    futures.push_back(pool.submit([](std::uint64_t k) {
      volatile std::uint64_t x = 0;  // a little work, so calls finish one by one
      for (int j = 0; j < 20000; ++j) x = x + k;
      return k * k;
    }, i));
  std::size_t iterations = 0, reported = 0;
  while (pool.in_flight() > 0) {  // the README's loop
    reported += pool.wait_any(std::chrono::seconds(5));
    ++iterations;
    ASSERT_LE(iterations, 300u) << "the loop spins";
  }
  reported += pool.wait_any(std::chrono::seconds(5));  // what finished after the last wait
  EXPECT_EQ(reported, 300u) << "each completion is counted once";
  EXPECT_EQ(pool.completed(), 300u);
  EXPECT_EQ(pool.wait_any(std::chrono::seconds(5)), 0u) << "nothing in flight: returns at once";
  for (std::uint64_t i = 0; i < 300; ++i) EXPECT_EQ(futures[i].get(), i * i);
}

INSTANTIATE_TEST_SUITE_P(Backends, WaitAny, testing::Values(Backend::fork, Backend::threads),
                         [](const testing::TestParamInfo<Backend>& p) { return p.param == Backend::fork ? "fork" : "threads"; });
