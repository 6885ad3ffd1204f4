// No silent hang: a worker that never starts the protocol is stopped at a deadline with a cause
// that says what is wrong; a stuck or stopped worker is visible on time (ticks, stalls); a
// spawn that fails leaves the run going with fewer workers.
#include <gtest/gtest.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>

#include "taskfarm/farm.hpp"
#include "taskfarm/pool.hpp"
#include "taskfarm/shared_array.hpp"

using namespace taskfarm;
using namespace std::chrono_literals;

namespace {

/// Whether this process has no child left (every worker reaped).
bool no_children() {
  siginfo_t info{};
  return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 && errno == ECHILD;
}

RunReport run_program(FarmOptions o, const std::string& program, std::vector<std::string> args, std::uint64_t n = 3) {
  o.forward_stderr = false;
  Farm farm = Farm::program(o, program, std::move(args));
  JobSpec job;
  job.extent = {n};
  return farm.run(job);
}

/// Runs `body` in a child process as an unprivileged user under RLIMIT_NPROC = `nproc` (root
/// is exempt from it: a real limit needs a real user). The uid is this test process's own, so
/// no other process counts against the limit. Returns the child's exit code (body's result),
/// or -1 if it did not end within 60 s; skips the test when not root.
int as_unprivileged_user(rlim_t nproc, const std::function<int()>& body) {
  const pid_t child = ::fork();
  if (child == 0) {
    const uid_t uid = 200000 + static_cast<uid_t>(::getpid() % 100000);
    const rlimit rl{nproc, nproc};
    if (::setgroups(0, nullptr) != 0 || ::setgid(uid) != 0 || ::setrlimit(RLIMIT_NPROC, &rl) != 0 || ::setuid(uid) != 0) {
      std::perror("switching to an unprivileged user");
      ::_exit(90);
    }
    int code = 91;
    try {
      code = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
  pollfd p{pidfd, POLLIN, 0};
  if (::poll(&p, 1, 60'000) != 1) {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    ::close(pidfd);
    return -1;
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(pidfd);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// Remembers the start failures and how many workers started.
struct StartWatch : FarmObserver {
  int started = 0;
  std::vector<FailureRecord> start_failures;
  void on_worker_started(int, pid_t) override { ++started; }
  void on_failure(const FailureRecord& f) override {
    if (f.cause == FailureCause::start) start_failures.push_back(f);
  }
};

}  // namespace

// `taskfarm run --tasks 3 --timeout 2s -- sleep 100` waited forever: the task timeout starts with
// a task, and sleep never asks for one.
TEST(StartDeadline, ProgramThatNeverSaysHelloStopsTheRunWithTheCause) {
  FarmOptions o;
  o.workers = 2;
  o.task_timeout = 2s;
  o.start_timeout = 300ms;
  const auto t0 = std::chrono::steady_clock::now();
  const RunReport r = run_program(o, "sleep", {"100"});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_NE(r.farm_error.find("sleep did not start the taskfarm protocol within 300 ms — is it a worker program (does it "
                              "call run_worker)?"),
            std::string::npos)
      << r.farm_error;
  ASSERT_FALSE(r.failures.empty());
  EXPECT_EQ(r.failures.back().cause, FailureCause::start);
  EXPECT_FALSE(r.failures.back().index.has_value());
  EXPECT_EQ(r.succeeded, 0u);
  EXPECT_TRUE(no_children());
}

TEST(StartDeadline, ProgramThatExitsBeforeItsHandshakeIsNotAWorkerProgram) {
  FarmOptions o;
  o.workers = 2;
  const RunReport r = run_program(o, "true", {});
  EXPECT_NE(r.farm_error.find("true exited with code 0 before starting the taskfarm protocol: it is not a worker program"),
            std::string::npos)
      << r.farm_error;
  EXPECT_EQ(r.succeeded, 0u);
  EXPECT_TRUE(no_children());
}

// A master that could not look at its workers for longer than the start deadline (stopped by
// Ctrl-Z, a paused VM, swapping; here: an observer busy for 1.3 s) finds their handshakes
// waiting when it comes back: healthy workers are not killed as "not a worker program".
TEST(StartDeadline, HandshakeWaitingWhileTheMasterWasBusyCounts) {
  struct BusyAtFirstStart : FarmObserver {
    bool busy = false;
    void on_worker_started(int, pid_t) override {
      if (busy) return;
      busy = true;
      const auto until = std::chrono::steady_clock::now() + 1300ms;  // the master is elsewhere
      while (std::chrono::steady_clock::now() < until) {
      }
    }
  } observer;
  FarmOptions o;
  o.workers = 1;
  o.start_timeout = 1s;
  Farm farm = Farm::program(o, FAULT_WORKER, {});
  auto out = SharedArray<std::int64_t>::create({40});
  JobSpec job;
  job.extent = {40};
  job.output_handle = out.handle();
  const RunReport r = farm.run(job, &observer);
  EXPECT_TRUE(r.farm_error.empty()) << r.farm_error;
  EXPECT_EQ(r.succeeded, 40u);
  EXPECT_EQ(r.worker_deaths, 0u);
}

// A farm whose workers have greeted before: one stuck start is one failed worker, replaced;
// the run goes on. (A fresh program farm's first start is a probe: stuck, it ends the run.)
TEST(StartDeadline, OneStuckStartAmongGoodOnesIsReplaced) {
  FarmOptions o;
  o.workers = 2;
  o.start_timeout = 300ms;
  o.forward_stderr = false;
  o.max_tasks_per_worker = 10;  // workers are recycled, so the second run starts new ones
  // fault_worker --fault slow-start: the worker that creates DIR/slow-start blocks before
  // run_worker; while it exists, every worker starts normally.
  const std::string dir = testing::TempDir() + "/slow-start-" + std::to_string(::getpid());
  ASSERT_EQ(std::system(("rm -rf " + dir + " && mkdir -p " + dir + " && touch " + dir + "/slow-start").c_str()), 0);
  Farm farm = Farm::program(o, FAULT_WORKER, {"--fault", "slow-start", "--marker-dir", dir});
  auto out = SharedArray<std::int64_t>::create({40});
  JobSpec job;
  job.extent = {40};
  job.output_handle = out.handle();
  const RunReport first = farm.run(job);
  ASSERT_TRUE(first.farm_error.empty()) << first.farm_error;
  ASSERT_EQ(::unlink((dir + "/slow-start").c_str()), 0);  // the next worker started blocks
  std::memset(out.data(), 0, 40 * sizeof(std::int64_t));
  const RunReport r = farm.run(job);
  EXPECT_TRUE(r.farm_error.empty()) << r.farm_error;
  EXPECT_EQ(r.succeeded, 40u);
  EXPECT_EQ(r.worker_deaths, 1u);
  for (std::size_t i = 0; i < 40; ++i) EXPECT_EQ(out.view().element({i}), static_cast<std::int64_t>(i * i));
  farm.close();
  EXPECT_TRUE(no_children());
  std::system(("rm -rf " + dir).c_str());
}

// One failed spawn (EAGAIN under `ulimit -u`) stopped the whole run while healthy workers were
// there: now it carries on with those, says so once, and keeps trying.
TEST(SpawnFailures, ForkLimitLeavesTheRunGoingWithFewerWorkers) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run as an unprivileged user under RLIMIT_NPROC";
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "TSan's own threads count against RLIMIT_NPROC: the limits here are counted in processes";
#endif
  // This process and two workers fit under 3; the third and fourth spawns fail with EAGAIN.
  const int code = as_unprivileged_user(3, [] {
    FarmOptions o;
    o.workers = 4;
    o.forward_stderr = false;
    Farm farm = Farm::program(o, FAULT_WORKER);
    auto out = SharedArray<std::int64_t>::create({200});
    JobSpec job;
    job.extent = {200};
    job.output_handle = out.handle();
    StartWatch seen;
    const RunReport r = farm.run(job, &seen);
    if (!r.farm_error.empty()) return std::fprintf(stderr, "farm error: %s\n", r.farm_error.c_str()), 1;
    if (r.succeeded != 200) return std::fprintf(stderr, "%llu succeeded\n", static_cast<unsigned long long>(r.succeeded)), 2;
    for (std::size_t i = 0; i < 200; ++i)
      if (out.view().element({i}) != static_cast<std::int64_t>(i * i)) return std::fprintf(stderr, "index %zu wrong\n", i), 3;
    if (seen.started != 2) return std::fprintf(stderr, "%d workers started\n", seen.started), 4;
    if (seen.start_failures.size() != 1) return std::fprintf(stderr, "%zu start failures reported\n", seen.start_failures.size()), 5;
    const FailureRecord& f = seen.start_failures[0];
    if (f.index || f.error != EAGAIN || f.message.find("carrying on with 2 of 4 workers") == std::string::npos)
      return std::fprintf(stderr, "reported: %s\n", f.describe().c_str()), 6;
    if (r.failed_spawns < 2 || !r.failures.empty()) return std::fprintf(stderr, "report: %llu failed spawns\n", static_cast<unsigned long long>(r.failed_spawns)), 7;
    return 0;
  });
  EXPECT_EQ(code, 0);
}

TEST(SpawnFailures, ForkModeCarriesOnWithFewerWorkersToo) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run as an unprivileged user under RLIMIT_NPROC";
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "TSan's own threads count against RLIMIT_NPROC: the limits here are counted in processes";
#endif
  const int code = as_unprivileged_user(3, [] {
    PoolOptions o;
    o.workers = 4;
    o.forward_stderr = false;
    Pool pool(o);
    const auto v = pool.map<long>(200, [](std::uint64_t i) { return static_cast<long>(i * i); });
    for (std::size_t i = 0; i < 200; ++i)
      if (v[i] != static_cast<long>(i * i)) return std::fprintf(stderr, "index %zu wrong\n", i), 3;
    const RunReport& r = pool.last_report();
    if (r.failed_spawns < 2 || !r.failures.empty()) return std::fprintf(stderr, "%llu failed spawns\n", static_cast<unsigned long long>(r.failed_spawns)), 4;
    return 0;
  });
  EXPECT_EQ(code, 0);
}

TEST(SpawnFailures, SubmittedCallsWaitForAFreeProcessInsteadOfFailing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run as an unprivileged user under RLIMIT_NPROC";
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "TSan's own threads count against RLIMIT_NPROC: the limits here are counted in processes";
#endif
  const int code = as_unprivileged_user(3, [] {  // two calls at a time fit, not four
    PoolOptions o;
    o.workers = 4;
    Pool pool(o);
    std::vector<Future<int>> futures;
    for (int i = 0; i < 12; ++i) futures.push_back(pool.submit([](int k) { return k * k; }, i));
    for (int i = 0; i < 12; ++i)
      if (futures[static_cast<std::size_t>(i)].get() != i * i) return std::fprintf(stderr, "call %d wrong\n", i), 1;
    return 0;
  });
  EXPECT_EQ(code, 0);
}

TEST(SpawnFailures, NoWorkerAtAllStopsTheRunWithTheCause) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run as an unprivileged user under RLIMIT_NPROC";
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "TSan's own threads count against RLIMIT_NPROC: the limits here are counted in processes";
#endif
  const int code = as_unprivileged_user(1, [] {  // not even one worker fits
    FarmOptions o;
    o.workers = 2;
    o.forward_stderr = false;
    Farm farm = Farm::program(o, FAULT_WORKER);
    JobSpec job;
    job.extent = {10};
    const RunReport r = farm.run(job);
    if (r.farm_error.find("cannot start any worker") == std::string::npos ||
        r.farm_error.find("Resource temporarily unavailable") == std::string::npos)
      return std::fprintf(stderr, "farm error: '%s'\n", r.farm_error.c_str()), 1;
    if (r.failures.empty() || r.failures.back().cause != FailureCause::start) return 2;
    return 0;
  });
  EXPECT_EQ(code, 0);
}

namespace {

/// Watches ticks and stalls; after `stop_after_ticks` ticks past the first stall, stops the run.
struct LivenessWatch : FarmObserver {
  Farm* farm = nullptr;
  int ticks = 0, ticks_after_stall = 0, stop_after_ticks = 3;
  bool continue_stopped = false;  // SIGCONT a stalled worker instead of stopping the run
  std::vector<WorkerLiveness> stalls;
  std::chrono::nanoseconds longest{0};
  char state_seen = '?';
  pid_t first_pid = 0;
  bool stop_sent = false;
  void on_tasks_done(const TasksDone& t) override {
    if (first_pid == 0 && continue_stopped) {
      first_pid = t.pid;
      ::kill(t.pid, SIGSTOP);  // mid-run, holding work
    }
  }
  void on_tick(const FarmTick& t) override {
    ++ticks;
    for (const auto& w : t.workers) {
      if (w.busy && w.since_progress > longest) longest = w.since_progress;
      if (w.stopped()) state_seen = w.state;
    }
    if (!stalls.empty() && ++ticks_after_stall >= stop_after_ticks && !continue_stopped && !stop_sent) {
      stop_sent = true;
      farm->request_stop();
    }
  }
  void on_stall(const WorkerLiveness& w) override {
    stalls.push_back(w);
    if (continue_stopped) ::kill(w.pid, SIGCONT);
  }
};

}  // namespace

// A task stuck with no --timeout: the run used to wait silently. Ticks come on time all the
// while, and the worker is reported once, with the task it is stuck on.
TEST(Liveness, StuckTaskIsReportedOnceWithItsIndexWhileTicksGoOn) {
  FarmOptions o;
  o.workers = 2;
  o.chunk = 1;
  o.tick_interval = 100ms;
  o.stall_warning = 400ms;
  o.forward_stderr = false;
  Farm farm = Farm::program(o, FAULT_WORKER, {"--fault", "hang", "--at", "7"});
  auto out = SharedArray<std::int64_t>::create({20});
  JobSpec job;
  job.extent = {20};
  job.output_handle = out.handle();
  LivenessWatch watch;
  watch.farm = &farm;
  const RunReport r = farm.run(job, &watch);
  EXPECT_TRUE(r.interrupted);
  ASSERT_EQ(watch.stalls.size(), 1u) << "once per stall, though it lasted several ticks";
  const WorkerLiveness& w = watch.stalls[0];
  EXPECT_EQ(w.index, std::optional<std::uint64_t>(7));
  EXPECT_TRUE(w.busy);
  EXPECT_TRUE(w.started);
  EXPECT_GT(w.pid, 0);
  EXPECT_GE(w.since_progress, 400ms);
  EXPECT_LT(w.since_progress, 2s);
  EXPECT_GE(watch.ticks, 5);
  EXPECT_LT(r.succeeded, 20u) << "index 7 never completes (and chunks queued behind it)";
  EXPECT_EQ(w.task_pid, 0) << "a kernel that named no process of its own";
}

// A worker stopped with SIGSTOP shows as stopped ('T') and is reported; once continued, the run
// completes.
TEST(Liveness, StoppedWorkerIsReportedAsStopped) {
  FarmOptions o;
  o.workers = 1;
  o.chunk = 1;
  o.tick_interval = 100ms;
  o.stall_warning = 300ms;
  o.forward_stderr = false;
  Farm farm = Farm::program(o, FAULT_WORKER, {"--spin-ms", "2"});
  auto out = SharedArray<std::int64_t>::create({100});
  JobSpec job;
  job.extent = {100};
  job.output_handle = out.handle();
  LivenessWatch watch;
  watch.farm = &farm;
  watch.continue_stopped = true;
  testing::internal::CaptureStderr();
  const RunReport r = farm.run(job, &watch);
  const std::string said = testing::internal::GetCapturedStderr();
  EXPECT_EQ(r.succeeded, 100u);
  EXPECT_NE(said.find("taskfarm: slot 0 (pid " + std::to_string(watch.first_pid) + ") has shown no progress for "),
            std::string::npos) << said;
  EXPECT_NE(said.find("; it is stopped (SIGSTOP?): kill -CONT " + std::to_string(watch.first_pid) + " resumes it; "
                      "task_timeout would kill and retry a task that runs too long\n"),
            std::string::npos) << said;
  ASSERT_EQ(watch.stalls.size(), 1u);
  EXPECT_TRUE(watch.stalls[0].stopped()) << "state " << watch.stalls[0].state;
  EXPECT_EQ(watch.stalls[0].pid, watch.first_pid);
  EXPECT_EQ(watch.state_seen, 'T');
  for (std::size_t i = 0; i < 100; ++i) EXPECT_EQ(out.view().element({i}), static_cast<std::int64_t>(i * i));
}

namespace {

/// Records stalls; once one is reported, continues the task's process wherever a tick sees it
/// stopped (so a stop that came after the stall is continued too). A run still going 20 ticks
/// after the stall is stopped: nothing named the process to continue.
struct TaskProcessWatch : FarmObserver {
  Farm* farm = nullptr;
  std::vector<WorkerLiveness> stalls;
  int ticks_after_stall = 0;
  void on_tick(const FarmTick& t) override {
    if (stalls.empty()) return;
    for (const auto& w : t.workers)
      if (w.task_pid > 0 && w.task_stopped()) ::kill(w.task_pid, SIGCONT);
    if (++ticks_after_stall == 20) farm->request_stop();
  }
  void on_stall(const WorkerLiveness& w) override { stalls.push_back(w); }
};

}  // namespace

// A task that is a process of its own (an --exec command) and stops: its worker is not stopped,
// that process is. The stall names it, says it is stopped, and the kill -CONT it gives resumes
// it, not the worker; continued, the run completes (F42: it named the worker, "not stopped").
TEST(Liveness, StoppedTaskProcessIsNamedNotItsWorker) {
  FarmOptions o;
  o.workers = 1;
  o.chunk = 1;
  o.tick_interval = 100ms;
  o.stall_warning = 300ms;
  o.forward_stderr = false;
  Farm farm = Farm::program(o, FAULT_WORKER, {"--fault", "stop-child", "--at", "2"});
  auto out = SharedArray<std::int64_t>::create({5});
  JobSpec job;
  job.extent = {5};
  job.output_handle = out.handle();
  TaskProcessWatch watch;
  watch.farm = &farm;
  testing::internal::CaptureStderr();
  const RunReport r = farm.run(job, &watch);
  const std::string said = testing::internal::GetCapturedStderr();
  EXPECT_EQ(r.succeeded, 5u);
  ASSERT_EQ(watch.stalls.size(), 1u) << said;
  const WorkerLiveness& w = watch.stalls[0];
  EXPECT_EQ(w.index, std::optional<std::uint64_t>(2));
  EXPECT_FALSE(w.stopped()) << "the worker waits for its task's process: state " << w.state;
  ASSERT_GT(w.task_pid, 0);
  EXPECT_NE(w.task_pid, w.pid);
  EXPECT_TRUE(w.task_stopped()) << "state " << w.task_state;
  const std::string c = std::to_string(w.task_pid);
  EXPECT_NE(said.find("taskfarm: slot 0 (pid " + std::to_string(w.pid) + ") has shown no progress for "), std::string::npos) << said;
  EXPECT_NE(said.find(" on task 2; its command (pid " + c + ") is stopped (SIGSTOP?): kill -CONT " + c +
                      " resumes it; task_timeout would kill and retry a task that runs too long\n"),
            std::string::npos) << said;
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(out.view().element({i}), static_cast<std::int64_t>(i * i));
}

// What a worker's slot names as its task's process is the worker's word: a process that is
// neither its child nor in its process group (here its master) is neither named nor inspected.
TEST(Liveness, TaskProcessThatIsNotTheWorkersIsNotNamed) {
  FarmOptions o;
  o.workers = 1;
  o.chunk = 1;
  o.tick_interval = 100ms;
  o.stall_warning = 300ms;
  o.forward_stderr = false;
  Farm farm = Farm::program(o, FAULT_WORKER, {"--fault", "name-master", "--at", "1"});
  JobSpec job;
  job.extent = {3};
  LivenessWatch watch;
  watch.farm = &farm;
  watch.stop_after_ticks = 1;
  testing::internal::CaptureStderr();
  const RunReport r = farm.run(job, &watch);
  const std::string said = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(r.interrupted);
  ASSERT_EQ(watch.stalls.size(), 1u) << said;
  EXPECT_EQ(watch.stalls[0].index, std::optional<std::uint64_t>(1));
  EXPECT_EQ(watch.stalls[0].task_pid, 0) << "named the master, pid " << ::getpid();
  EXPECT_EQ(said.find("its command"), std::string::npos) << said;
  EXPECT_NE(said.find(" on task 1; task_timeout would"), std::string::npos) << said;
}

// A call with no observer at all (a plain Pool::for_each, Farm::run(job)) that waits on a stuck
// worker says so on stderr: before, ticks ran only for an observer, so such a call hung without
// a word until task_timeout, or for ever without one.
TEST(Liveness, StallIsSaidOnStderrWithoutAnObserver) {
  FarmOptions o;
  o.workers = 2;
  o.chunk = 1;
  o.retries = 0;
  o.tick_interval = 100ms;
  o.stall_warning = 300ms;
  o.task_timeout = 2s;  // ends the run: the hung task fails, the rest complete
  o.forward_stderr = false;
  Farm farm = Farm::program(o, FAULT_WORKER, {"--fault", "hang", "--at", "7"});
  JobSpec job;
  job.extent = {20};
  testing::internal::CaptureStderr();
  const RunReport r = farm.run(job);
  const std::string said = testing::internal::GetCapturedStderr();
  EXPECT_EQ(r.succeeded, 19u);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_EQ(r.failures[0].cause, FailureCause::timeout);
  const std::string line = "(pid " + std::to_string(r.failures[0].pid) + ") has shown no progress for ";
  const auto at = said.find(line);
  ASSERT_NE(at, std::string::npos) << said;
  EXPECT_EQ(at, said.rfind(line)) << "once per stall: " << said;
  EXPECT_NE(said.find(" s on task 7\n", at), std::string::npos) << said;
  EXPECT_EQ(said.find("task_timeout would"), std::string::npos) << "a timeout is set: " << said;
}
