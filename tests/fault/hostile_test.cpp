// Hostile workers (tests/helpers/hostile_worker.cpp): what a worker does to escape or swamp
// the master must neither outlive the run nor unbound its memory, and an exit that looks
// clean mid-task is still a failure of that task.
#include <gtest/gtest.h>
#include <iterator>
#include <map>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>

#include "taskfarm/farm.hpp"
#include "taskfarm/pool.hpp"
#include "taskfarm/shared_array.hpp"

using namespace taskfarm;

namespace {

/// A fresh directory for one test, removed at the end.
class TempDir {
 public:
  TempDir() : path_(testing::TempDir() + "/hostile-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++)) {
    std::system(("rm -rf '" + path_ + "' && mkdir -p '" + path_ + "'").c_str());
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

/// The pid the escaped grandchild wrote, or 0.
pid_t escaped_pid(const TempDir& dir) {
  std::ifstream in(dir.path() + "/escaped");
  long pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

/// Whether `pid` still exists (a zombie counts: nobody reaped it).
bool exists(pid_t pid) { return ::kill(pid, 0) == 0; }

RunReport run_hostile(FarmOptions o, std::vector<std::string> args, std::uint64_t n = 20) {
  o.workers = 2;
  o.forward_stderr = false;
  Farm farm = Farm::program(o, HOSTILE_WORKER, std::move(args));
  auto out = SharedArray<std::int64_t>::create({n});
  JobSpec job;
  job.extent = {n};
  job.output_handle = out.handle();
  RunReport r = farm.run(job);
  const std::vector<std::uint64_t> failed = r.failed_indices();
  for (std::size_t i = 0; i < n; ++i) {
    const bool ok = std::find(failed.begin(), failed.end(), i) == failed.end();
    if (ok) { EXPECT_EQ(out.view().element({i}), static_cast<std::int64_t>(i * i)) << "index " << i; }
  }
  return r;
}

}  // namespace

// A task whose grandchild setsid()s and outlives its worker: out of reach of the worker's
// process group and parent-death signal. With reap_descendants the run ends with none left.
TEST(Hostile, EscapedGrandchildIsKilledAtTheEndOfTheRun) {
  TempDir dir;
  FarmOptions o;
  o.reap_descendants = true;
  const RunReport r = run_hostile(o, {"--mode", "escape", "--at", "3", "--dir", dir.path()});
  EXPECT_EQ(r.succeeded, 20u);
  const pid_t escaped = escaped_pid(dir);
  ASSERT_GT(escaped, 0) << "the grandchild never started";
  EXPECT_FALSE(exists(escaped)) << "escaped grandchild " << escaped << " outlived the run";
  EXPECT_EQ(r.strays_killed, 1u);
  if (exists(escaped)) ::kill(escaped, SIGKILL);  // ours: the test started it
}

TEST(Hostile, EscapedGrandchildOfAForkedWorkerIsKilledToo) {
  TempDir dir;
  PoolOptions o;
  o.workers = 2;
  o.reap_descendants = true;
  Pool pool(o);
  const std::string path = dir.path();
  const auto v = pool.map<long>(10, [&path](std::uint64_t i) {
    if (i == 3) {
      const std::string cmd = "setsid sh -c 'echo $$ > " + path + "/escaped.tmp && mv " + path + "/escaped.tmp " + path +
                              "/escaped && exec sleep 1000' >/dev/null 2>&1 < /dev/null &";
      if (std::system(cmd.c_str()) != 0) throw std::runtime_error("could not start the grandchild");
      for (int k = 0; k < 10000 && ::access((path + "/escaped").c_str(), F_OK) != 0; ++k) ::usleep(1000);  // bounded
    }
    return static_cast<long>(i);
  });
  EXPECT_EQ(v.size(), 10u);
  const pid_t escaped = escaped_pid(dir);
  ASSERT_GT(escaped, 0);
  EXPECT_FALSE(exists(escaped)) << "escaped grandchild " << escaped << " outlived the call";
  if (exists(escaped)) ::kill(escaped, SIGKILL);
}

// A 16 MiB stderr line with no newline: the record's tail is bounded, ends with the line's end,
// and says how much came before it.
TEST(Hostile, HugeStderrLineIsKeptCutAndSaysSo) {
  FarmOptions o;
  o.retries = 0;
  const RunReport r = run_hostile(o, {"--mode", "stderr-line", "--at", "7", "--bytes", std::to_string(16u << 20)});
  ASSERT_EQ(r.failed_indices(), std::vector<std::uint64_t>{7});
  const FailureRecord& f = r.failures.front();
  EXPECT_EQ(f.cause, FailureCause::exit);
  EXPECT_EQ(f.exit_code, 7);
  EXPECT_LT(f.stderr_tail.size(), 4096u);
  EXPECT_NE(f.stderr_tail.find(" earlier bytes of stderr not kept]"), std::string::npos) << f.stderr_tail.substr(0, 200);
  EXPECT_EQ(f.stderr_tail.substr(f.stderr_tail.size() - 10), std::string(10, 'x'));
}

// A worker that exits with code 0 in the middle of a task has not stopped cleanly: that index
// is charged (cause exit, code 0) and retried; nothing else is.
TEST(Hostile, ExitZeroMidTaskIsAFailureOfThatTask) {
  FarmOptions o;
  o.chunk = 4;
  const RunReport r = run_hostile(o, {"--mode", "exit0", "--at", "7"});
  ASSERT_EQ(r.failed_indices(), std::vector<std::uint64_t>{7});
  EXPECT_EQ(r.failures.front().cause, FailureCause::exit);
  EXPECT_EQ(r.failures.front().exit_code, 0);
  EXPECT_EQ(r.failures.front().attempt, 2u);
  EXPECT_EQ(r.succeeded, 19u);
}

TEST(Hostile, ExitZeroMidTaskInForkModeIsAFailureOfThatTask) {
  PoolOptions o;
  o.workers = 2;
  o.chunk = 4;
  Pool pool(o);
  const auto r = pool.try_map<long>(20, [](std::uint64_t i) {
    if (i == 7) std::_Exit(0);
    return static_cast<long>(i * i);
  });
  ASSERT_EQ(r.failed, std::vector<std::uint64_t>{7});
  EXPECT_EQ(r.failures.front().cause, FailureCause::exit);
  EXPECT_EQ(r.failures.front().exit_code, 0);
  for (std::uint64_t i = 0; i < 20; ++i)
    if (i != 7) { EXPECT_EQ(r.values[i], static_cast<long>(i * i)); }
}

// A kernel that forks and whose child returns from the kernel too (no _exit, no exec): the child
// went on serving beside its parent, committing into its arena, so a healthy worker was killed
// (and a Python run waited for ever: tests/python fork_in_kernel_ends_the_child). The worker
// ends such a child where it returns; the run sees nothing but the results.
TEST(Hostile, KernelWhoseForkedChildReturnsKillsNoWorker) {
  PoolOptions o;
  o.workers = 2;
  Pool pool(o);
  const auto r = pool.try_map<long>(40, [](std::uint64_t i) {
    if (i == 3) ::fork();
    return static_cast<long>(i * i);
  });
  EXPECT_TRUE(r.failed.empty());
  for (std::uint64_t i = 0; i < 40; ++i) EXPECT_EQ(r.values[i], static_cast<long>(i * i));
  EXPECT_EQ(pool.last_report().worker_deaths, 0u);
  EXPECT_TRUE(pool.last_report().failures.empty()) << pool.last_report().failures.front().describe();
}

namespace {

/// This process's peak resident memory since the last reset_peak_memory(), in bytes.
std::uint64_t peak_memory() {
  std::ifstream in("/proc/self/status");
  std::string key;
  std::uint64_t kib = 0;
  while (in >> key)
    if (key == "VmHWM:" && (in >> kib)) return kib * 1024;
  return 0;
}
void reset_peak_memory() { std::ofstream("/proc/self/clear_refs") << "5"; }

/// Checks the order of delivered results and counts their bytes.
struct InOrder : FarmObserver {
  std::uint64_t next = 0, bytes = 0;
  void on_result(const IndexResult& r) override {
    EXPECT_EQ(r.index, next);
    next = r.index + 1;
    bytes += r.text.size();
  }
};

}  // namespace

// Tasks that print a lot, delivered in order behind a slow first one: the master held every
// result that overtook it (the window is in indices: 4096 × what a task prints). Results held
// for order are bounded in bytes now.
TEST(Hostile, StdoutFloodInOrderKeepsTheMastersMemoryBounded) {
  FarmOptions o;
  o.workers = 2;
  o.forward_stderr = false;
  Farm farm = Farm::program(o, HOSTILE_WORKER, {"--mode", "flood-stdout", "--at", "all", "--bytes", "262144",
                                                "--slow-index", "0", "--slow-ms", "1500"});
  JobSpec job;
  job.extent = {1000};
  job.capture_stdout = true;
  job.ordered = true;
  InOrder seen;
  reset_peak_memory();
  [[maybe_unused]] const std::uint64_t before = peak_memory();  // (no bound under a sanitizer)
  const RunReport r = farm.run(job, &seen);
  EXPECT_EQ(r.succeeded, 1000u);
  EXPECT_EQ(seen.next, 1000u);
  EXPECT_EQ(seen.bytes, 1000u * 262144u);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)  // their allocators inflate RSS
  EXPECT_LT(peak_memory() - before, std::uint64_t{128} << 20) << (peak_memory() - before) << " bytes for " << (seen.bytes >> 20) << " MiB of output";
#endif
}

namespace {
// Each index's captured stdout, and what failed.
struct Texts : FarmObserver {
  std::map<std::uint64_t, std::string> text;
  void on_result(const IndexResult& r) override { text[r.index].assign(r.text.begin(), r.text.end()); }
};

RunReport run_printing(const std::string& mode, const std::string& dir, Texts& seen, std::uint64_t n = 40) {
  FarmOptions o;
  o.workers = 2;
  o.forward_stderr = false;
  Farm farm = Farm::program(o, HOSTILE_WORKER, {"--mode", mode, "--at", "7", "--dir", dir});
  JobSpec job;
  job.extent = {n};
  job.capture_stdout = true;
  RunReport r = farm.run(job, &seen);
  for (std::uint64_t i = 0; i < n; ++i)
    if (i != 7) { EXPECT_EQ(seen.text[i], "task " + std::to_string(i) + "\n") << "index " << i; }
  return r;
}
}  // namespace

// Outside pass F1/F4: a task that closed fd 1 lost the output of every later task of its worker
// (a C++ worker: silently; a Python one: each failed with EBADF). It is charged, by name, and
// the next task prints into a fresh capture.
TEST(Hostile, TaskClosingItsStdoutIsChargedAndEveryOtherTasksOutputKept) {
  TempDir dir;
  Texts seen;
  const RunReport r = run_printing("close-stdout", dir.path(), seen);
  EXPECT_EQ(r.failed_indices(), std::vector<std::uint64_t>{7});
  ASSERT_FALSE(r.failures.empty());
  EXPECT_NE(r.failures.back().message.find("closed or replaced its standard output (descriptor 1)"), std::string::npos)
      << r.failures.back().describe();
  EXPECT_EQ(r.succeeded, 39u);
}

// Outside pass F3: the worker kept its stdout capture at a second, high descriptor and read and
// truncated whatever was there after each task: a file of the user's that a task had put at
// that number was emptied, and printed as the task's output. Only fd 1 holds the capture now.
TEST(Hostile, TaskPuttingAFileAtHighDescriptorsNeverHasItTruncated) {
  TempDir dir;
  const std::string user = dir.path() + "/userfile", content = "precious user data\n";
  { std::ofstream(user) << content; }
  Texts seen;
  const RunReport r = run_printing("dup-high", dir.path(), seen);
  EXPECT_TRUE(r.failures.empty());
  EXPECT_EQ(r.succeeded, 40u);
  std::ifstream in(user);
  const std::string after((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(after.substr(0, content.size()), content) << "the user's file was truncated";
  EXPECT_EQ(seen.text[7].find("precious"), std::string::npos) << "the user's file came out as the task's output";
}

// Outside pass F7: a task that closed every descriptor and opened a socket pair of its own (which
// took the channel's number) had the worker talk to that socket pair: the master waited for ever,
// even with a timeout. The worker checks that its channel is still its own; the task is found
// and charged, every other result kept.
TEST(Hostile, TaskReplacingTheChannelWithASocketOfItsOwnIsChargedAndTheRunEnds) {
  TempDir dir;
  Texts seen;
  const RunReport r = run_printing("own-channel", dir.path(), seen);
  EXPECT_TRUE(r.farm_error.empty()) << r.farm_error;
  EXPECT_EQ(r.failed_indices(), std::vector<std::uint64_t>{7});
  EXPECT_EQ(r.succeeded, 39u);
}

// The same task, going on after it replaced the channel (waiting on its own socket): the worker
// could not notice until the task returned, and the master, which saw the channel hang up, waited
// on (for ever, had the task never returned). The master kills a worker whose channel hung up and
// that did not exit within a second; the task it was running is charged, by name.
TEST(Hostile, WorkerWhoseChannelHungUpAndThatGoesOnIsKilledAndItsTaskCharged) {
  TempDir dir;
  Texts seen;
  const RunReport r = run_printing("own-channel-wait", dir.path(), seen);
  EXPECT_TRUE(r.farm_error.empty()) << r.farm_error;
  EXPECT_EQ(r.failed_indices(), std::vector<std::uint64_t>{7});
  EXPECT_EQ(r.succeeded, 39u);
  ASSERT_FALSE(r.failures.empty());
  EXPECT_NE(r.failures.back().message.find("it closed its channel to the master and had not exited 1000 ms later"),
            std::string::npos)
      << r.failures.back().describe();
}
