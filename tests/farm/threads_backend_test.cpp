// The threads backend honours what it can (retries, halt, the initializer) and refuses by name
// what it cannot (a thread cannot be killed, limited or recycled) — it never silently ignores
// an option. Results still equal the serial loop where the run finishes.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <stdexcept>
#include <string>

#include "taskfarm/pool.hpp"

using namespace taskfarm;
using namespace std::chrono_literals;

namespace {

PoolOptions threads(int workers = 2) {
  PoolOptions o;
  o.backend = Backend::threads;
  o.workers = workers;
  return o;
}

std::string refusal(const PoolOptions& o) {
  try {
    Pool pool(o);
  } catch (const Error& e) {
    return e.what();
  }
  return "(accepted)";
}

}  // namespace

TEST(ThreadsBackend, RefusesEachOptionItCannotApplyByName) {
  const std::vector<std::pair<std::string, std::function<void(PoolOptions&)>>> cases = {
      {"task_timeout", [](PoolOptions& o) { o.task_timeout = 100ms; }},
      {"memory_limit", [](PoolOptions& o) { o.memory_limit = 1ull << 30; }},
      {"max_tasks_per_worker", [](PoolOptions& o) { o.max_tasks_per_worker = 10; }},
      {"chaos_rate", [](PoolOptions& o) { o.chaos_rate = 5; }},
      {"reap_descendants", [](PoolOptions& o) { o.reap_descendants = true; }},
  };
  for (const auto& [name, set] : cases) {
    PoolOptions o = threads();
    set(o);
    const std::string m = refusal(o);
    EXPECT_NE(m.find("the threads backend cannot apply " + name), std::string::npos) << m;
    EXPECT_NE(m.find("use Backend::fork"), std::string::npos) << m;
  }
  EXPECT_NE(refusal(threads()).find("(accepted)"), std::string::npos) << "the defaults are all applicable";
}

TEST(ThreadsBackend, HaltNowStopsBeforeTheNextIndexAfterTheFirstFinalFailure) {
  PoolOptions o = threads(1);  // one thread: the order of the indices is the serial loop's
  o.chunk = 10;
  o.retries = 0;
  o.halt = Halt::now;
  Pool pool(o);
  const auto r = pool.try_map<int>(1000, [](std::uint64_t i) -> int {
    if (i == 3) throw std::runtime_error("poison");
    return static_cast<int>(i);
  });
  const RunReport& rep = pool.last_report();
  EXPECT_TRUE(rep.halted);
  ASSERT_EQ(rep.failures.size(), 1u);
  EXPECT_EQ(*rep.failures[0].index, 3u);
  EXPECT_EQ(rep.unfinished, (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{4, 1000}}));
  EXPECT_EQ(rep.succeeded, 3u);
  for (std::uint64_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(r.ok(i));
    EXPECT_EQ(r.values[i], static_cast<int>(i));
  }
  EXPECT_FALSE(r.ok(500)) << "an index never run is marked, not zero";
}

TEST(ThreadsBackend, HaltSoonFinishesTheRunningChunkThenStops) {
  PoolOptions o = threads(1);
  o.chunk = 10;
  o.retries = 0;
  o.halt = Halt::soon;
  Pool pool(o);
  EXPECT_THROW(pool.for_each(1000, [](std::uint64_t i) {
    if (i == 3) throw std::runtime_error("poison");
  }), TaskFailed);
  const RunReport& rep = pool.last_report();
  EXPECT_TRUE(rep.halted);
  EXPECT_EQ(rep.unfinished, (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{10, 1000}}));
  EXPECT_EQ(rep.succeeded, 9u);
}

TEST(ThreadsBackend, HaltAfterCountsFinalFailuresNotAttempts) {
  PoolOptions o = threads(1);
  o.chunk = 1;
  o.retries = 1;
  o.halt = Halt::now;
  o.halt_after = 2;
  Pool pool(o);
  std::atomic<int> attempts_at_5{0};
  const auto r = pool.try_map<int>(100, [&](std::uint64_t i) -> int {
    if (i == 5 && attempts_at_5++ == 0) throw std::runtime_error("once");  // retried, succeeds
    if (i == 7 || i == 9) throw std::runtime_error("always");
    return 1;
  });
  const RunReport& rep = pool.last_report();
  EXPECT_TRUE(rep.halted);
  EXPECT_EQ(rep.retries, 3u) << "5 once, 7 once, 9 once";
  EXPECT_EQ(rep.failed_indices(), (std::vector<std::uint64_t>{7, 9}));
  EXPECT_EQ(rep.unfinished, (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{10, 100}}));
  EXPECT_TRUE(r.ok(5));
}

TEST(ThreadsBackend, ThrowOfANonStandardTypeFailsItsIndexNamedLikeInFork) {
  PoolOptions o = threads();
  o.retries = 0;
  Pool pool(o);
  const auto r = pool.try_map<int>(20, [](std::uint64_t i) -> int {
    if (i == 4) throw 42;  // not a std::exception: must not terminate the program
    if (i == 6) throw std::domain_error("six");
    return 0;
  });
  ASSERT_EQ(r.failures.size(), 2u);
  for (const auto& f : r.failures) {
    if (*f.index == 4) EXPECT_EQ(f.exception_type, "unknown exception");
    else EXPECT_EQ(f.exception_type, "std::domain_error") << "demangled, as the fork backend names it";
  }
}

TEST(ThreadsBackend, InitializerRunsOnceInEachWorkerThreadBeforeItsTasks) {
  std::atomic<int> inits{0};
  static thread_local bool initialised = false;
  PoolOptions o = threads(2);
  o.initializer = [&inits] { ++inits, initialised = true; };
  Pool pool(o);
  const auto seen = pool.map<int>(200, [](std::uint64_t) { return initialised ? 1 : 0; });
  EXPECT_EQ(inits.load(), 2) << "once per worker thread";
  for (int v : seen) EXPECT_EQ(v, 1) << "every task ran on a thread whose initializer had run";
}

TEST(ThreadsBackend, InitializerThatThrowsStopsTheRunSayingSo) {
  PoolOptions o = threads(2);
  o.initializer = [] { throw std::runtime_error("no licence"); };
  Pool pool(o);
  try {
    pool.map<int>(10, [](std::uint64_t) { return 1; });
    FAIL() << "no TaskFailed";
  } catch (const TaskFailed& e) {
    EXPECT_NE(std::string(e.what()).find("the initializer threw std::runtime_error: no licence"), std::string::npos) << e.what();
  }
}
