// The same guarantees in fork mode, through Pool.
#include <gtest/gtest.h>
#include <algorithm>
#include <signal.h>
#include <unistd.h>

#include "taskfarm/pool.hpp"
#include "taskfarm/worker.hpp"

using namespace taskfarm;

TEST(ForkFaults, SegfaultingIndexIsIsolatedAndEveryOtherResultKept) {
  PoolOptions o;
  o.workers = 2;
  Pool pool(o);
  auto r = pool.try_map<int>(40, [](std::uint64_t i) {
    if (i == 7) ::raise(SIGSEGV);
    return static_cast<int>(i) * 3;
  });
  EXPECT_EQ(r.failed, std::vector<std::uint64_t>{7});
  for (int i = 0; i < 40; ++i) {
    if (i != 7) { EXPECT_EQ(r.values[static_cast<std::size_t>(i)], i * 3); }
  }
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_EQ(r.failures[0].signal, SIGSEGV);
  EXPECT_FALSE(r.ok(7));
  EXPECT_TRUE(r.ok(8));
}

// F40: a task that closes every descriptor it did not open (close_range, as daemonising code
// does) returns normally; its worker dies only once it sends the results. The poison is found
// among what that worker ran since it was last heard from, charged, and named; before, no index
// was charged and each fresh worker died the same way until the run gave up with it unnamed.
TEST(ForkFaults, TaskClosingItsWorkersDescriptorsIsIsolatedAndEveryOtherResultKept) {
  PoolOptions o;
  o.workers = 2;
  Pool pool(o);
  auto r = pool.try_map<int>(400, [](std::uint64_t i) {
    if (i == 77) ::close_range(3, ~0U, 0);
    return static_cast<int>(i) * 3;
  });
  const RunReport& rep = pool.last_report();
  EXPECT_TRUE(rep.farm_error.empty()) << rep.farm_error;
  EXPECT_EQ(r.failed, std::vector<std::uint64_t>{77});
  for (int i = 0; i < 400; ++i) {
    if (i != 77) { EXPECT_EQ(r.values[static_cast<std::size_t>(i)], i * 3) << i; }
  }
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_EQ(r.failures[0].index, 77u);
  EXPECT_NE(r.failures[0].message.find("died after this task returned, before its result reached the master"), std::string::npos)
      << r.failures[0].describe();
}

TEST(ForkFaults, MapThrowsTaskFailedListingEveryFailedIndex) {
  PoolOptions o;
  o.workers = 2;
  o.retries = 0;
  Pool pool(o);
  try {
    pool.map<int>(100, [](std::uint64_t i) {
      if (i % 30 == 0) throw std::runtime_error("no " + std::to_string(i));
      return 1;
    });
    FAIL() << "no TaskFailed";
  } catch (const TaskFailed& e) {
    ASSERT_EQ(e.failures().size(), 4u);
    const std::string what = e.what();
    for (const char* idx : {"index 0 ", "index 30 ", "index 60 ", "index 90 "}) EXPECT_NE(what.find(idx), std::string::npos) << what;
    EXPECT_NE(what.find("std::runtime_error: no 60"), std::string::npos) << what;
  }
}

// How the Python module reports a Python exception: under the type name it gives.
TEST(ForkFaults, KernelErrorIsReportedUnderItsOwnTypeName) {
  PoolOptions o;
  o.workers = 2;
  o.retries = 0;
  Pool pool(o);
  auto r = pool.try_map<int>(10, [](std::uint64_t i) {
    if (i == 3) throw KernelError("ZeroDivisionError", "division by zero (at w.py:5 in kernel)");
    if (i == 5) throw KernelError("MemoryError", "no room", true);
    return 1;
  });
  ASSERT_EQ(r.failed, (std::vector<std::uint64_t>{3, 5}));
  ASSERT_EQ(r.failures.size(), 2u);
  std::sort(r.failures.begin(), r.failures.end(), [](const auto& a, const auto& b) { return *a.index < *b.index; });
  EXPECT_EQ(r.failures[0].cause, FailureCause::exception);
  EXPECT_EQ(r.failures[0].exception_type, "ZeroDivisionError");
  EXPECT_EQ(r.failures[0].message, "division by zero (at w.py:5 in kernel)");
  EXPECT_EQ(r.failures[1].cause, FailureCause::memory);
  EXPECT_EQ(r.failures[1].exception_type, "MemoryError");
}

TEST(ForkFaults, ChaosKillsDoNotChangeResults) {
  PoolOptions o;
  o.workers = 2;
  o.chaos_rate = 200;  // a SIGKILL every 5 ms on average
  o.chaos_seed = 1234;
  o.max_start_failures = 1000;
  Pool pool(o);
  std::vector<std::uint64_t> serial(20000);
  for (std::uint64_t i = 0; i < serial.size(); ++i) serial[i] = i * 7 + 1;
  std::uint64_t kills = 0;
  for (int round = 0; round < 300 && kills < 20; ++round) {
    auto got = pool.map<std::uint64_t>(serial.size(), [](std::uint64_t i) {
      for (int k = 0; k < 2000; ++k) asm volatile("" ::"r"(k));  // a little work per task
      return i * 7 + 1;
    });
    ASSERT_EQ(got, serial);
    kills += pool.last_report().chaos_kills;
  }
  EXPECT_GT(kills, 0u) << "the chaos monkey never struck: the test proved nothing";
}

// The README's fault-injection example, as users would write it in their own test suite.
#include "taskfarm/chaos.hpp"

TEST(ChaosHelpers, EachInjectedFaultIsReportedAndEverythingElseKept) {
  using taskfarm::chaos::Fault;
  const std::pair<Fault, FailureCause> cases[] = {{Fault::segfault, FailureCause::signal}, {Fault::abort, FailureCause::signal},
                                                  {Fault::exit, FailureCause::exit}, {Fault::exception, FailureCause::exception},
                                                  {Fault::hang, FailureCause::timeout}};
  for (auto [fault, cause] : cases) {
    PoolOptions o;
    o.workers = 2;
    o.retries = 1;
    o.task_timeout = std::chrono::milliseconds(300);
    Pool pool(o);
    auto r = pool.try_map<double>(50, taskfarm::chaos::fault_at(13, fault, [](std::uint64_t i) { return static_cast<double>(i) * 0.5; }));
    ASSERT_EQ(r.failed, std::vector<std::uint64_t>{13}) << static_cast<int>(fault);
    EXPECT_EQ(r.failures[0].cause, cause) << r.failures[0].describe();
    for (std::uint64_t i = 0; i < 50; ++i) {
      if (i != 13) { EXPECT_EQ(r.values[i], static_cast<double>(i) * 0.5); }
    }
  }
}

// A worker killed for its timeout that died of the SIGTERM before the KILL's grace ran out left
// its KILL deadline behind: every later wait of the loop was 0 ms, and the master spun on a core
// for the rest of the run (and of every later run of the Farm).
#include <sys/resource.h>

namespace {
double cpu_seconds(int who) {
  rusage u{};
  ::getrusage(who, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}
}  // namespace

TEST(ForkFaults, TimedOutWorkerLeavesNoDeadlineForTheLoopToSpinOn) {
  PoolOptions o;
  o.workers = 1;
  o.chunk = 1;
  o.retries = 0;
  o.task_timeout = std::chrono::milliseconds(250);  // five times what a task takes
  o.kill_grace = std::chrono::milliseconds(20);  // SIGTERM ends it before; the deadline passes soon after
  Pool pool(o);
  const double self0 = cpu_seconds(RUSAGE_SELF), children0 = cpu_seconds(RUSAGE_CHILDREN);
  auto r = pool.try_map<int>(9, [](std::uint64_t i) {
    if (i == 0) for (;;) ::pause();  // SIGTERM's default action ends it
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
    while (std::chrono::steady_clock::now() < until) {}  // a task that burns CPU (no sleeping in tests)
    return 1;
  });
  const double master = cpu_seconds(RUSAGE_SELF) - self0, workers = cpu_seconds(RUSAGE_CHILDREN) - children0;
  ASSERT_EQ(r.failed, std::vector<std::uint64_t>{0});
  EXPECT_EQ(r.failures[0].cause, FailureCause::timeout);
  // The workers burned up to 400 ms; a master that waits on its deadlines used 4–5 % of what they
  // did here, one that spins 84–98 %, whatever the load (a sanitizer's master has room to spare).
  EXPECT_LT(master, workers / 2) << "master " << master << " s of CPU, workers " << workers << " s";
}
