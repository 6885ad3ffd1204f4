// Nothing is reported ok that was not delivered: a run that ends early (halt, workers that
// keep dying) marks every index whose result never came back as failed, and map throws
// TaskFailed saying how many tasks succeeded.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "taskfarm/pool.hpp"

using namespace taskfarm;

namespace {

void spin_us(long us) {  // a slow task that burns CPU (no sleeping in tests)
  timespec t0{}, t1{};
  ::clock_gettime(CLOCK_MONOTONIC, &t0);
  do ::clock_gettime(CLOCK_MONOTONIC, &t1);
  while ((t1.tv_sec - t0.tv_sec) * 1'000'000 + (t1.tv_nsec - t0.tv_nsec) / 1000 < us);
}

PoolOptions halting() {
  PoolOptions o;
  o.workers = 2;
  o.chunk = 1;
  o.retries = 0;
  o.halt = Halt::now;
  return o;
}

// Every index either ok with the serial value, or listed failed; the failed list is sorted,
// and together with the successes it covers the whole index space.
template <class T, class F>
void expect_only_delivered_ok(const MapResult<T>& r, std::uint64_t n, F want, std::uint64_t succeeded) {
  ASSERT_TRUE(std::is_sorted(r.failed.begin(), r.failed.end()));
  EXPECT_EQ(r.failed.size(), n - succeeded) << "every index that did not succeed is listed failed";
  for (std::uint64_t i = 0; i < n; ++i) {
    if (r.ok(i)) { ASSERT_EQ(r.values[i], want(i)) << "index " << i << " is reported ok but its value was never delivered"; }
  }
}

}  // namespace

// The result buffer of trivially copyable results is reused across calls: an index a halted
// call never ran still holds the previous call's value there.
TEST(Undelivered, HaltedRunNeverReportsUnrunIndicesOk) {
  Pool pool(halting());
  const std::uint64_t n = 2000;
  ASSERT_EQ(pool.map<std::uint64_t>(n, [](std::uint64_t i) { return i * 7 + 1; }).size(), n);
  auto r = pool.try_map<std::uint64_t>(n, [](std::uint64_t i) {
    if (i == 5) throw std::runtime_error("poison");
    spin_us(200);
    return i * 3 + 2;
  });
  const RunReport& rep = pool.last_report();
  ASSERT_TRUE(rep.halted);
  ASSERT_LT(rep.succeeded + 1, n) << "the run was not cut short: the test proves nothing";
  EXPECT_FALSE(r.ok(5));
  expect_only_delivered_ok(r, n, [](std::uint64_t i) { return i * 3 + 2; }, rep.succeeded);
  EXPECT_EQ(rep.unfinished_count(), n - rep.succeeded - 1);
}

TEST(Undelivered, HaltedRunOfSerialisedValuesNeverReportsUnrunIndicesOk) {
  Pool pool(halting());
  const std::uint64_t n = 2000;
  auto r = pool.try_map<std::vector<int>>(n, [](std::uint64_t i) {
    if (i == 5) throw std::runtime_error("poison");
    spin_us(200);
    return std::vector<int>(2, static_cast<int>(i));
  });
  ASSERT_LT(pool.last_report().succeeded + 1, n) << "the run was not cut short: the test proves nothing";
  expect_only_delivered_ok(r, n, [](std::uint64_t i) { return std::vector<int>(2, static_cast<int>(i)); }, pool.last_report().succeeded);
}

TEST(Undelivered, MapOfAHaltedRunThrowsTaskFailedSayingHowManySucceeded) {
  Pool pool(halting());
  try {
    pool.map<int>(2000, [](std::uint64_t i) {
      if (i == 5) throw std::runtime_error("poison");
      spin_us(200);
      return 1;
    });
    FAIL() << "no TaskFailed";
  } catch (const TaskFailed& e) {
    const RunReport& rep = pool.last_report();
    const std::string what = e.what();
    EXPECT_NE(what.find(std::to_string(rep.succeeded) + " of 2000 tasks succeeded"), std::string::npos) << what;
    EXPECT_NE(what.find("std::runtime_error: poison"), std::string::npos) << what;
    EXPECT_NE(what.find("not run"), std::string::npos) << what;
    EXPECT_EQ(e.succeeded(), rep.succeeded);
    EXPECT_EQ(e.unfinished(), rep.unfinished_count());
    ASSERT_EQ(e.failures().size(), 1u);
    EXPECT_EQ(e.failures()[0].index, 5u);
  }
}

// Workers that keep dying at start-up after others made progress stop the run with a farm
// error: map throws TaskFailed (not a bare Error), try_map lists every undelivered index,
// and the message does not claim that no task completed.
TEST(Undelivered, WorkersDyingAfterProgressEndTheRunWithTaskFailed) {
  // Counts worker starts across forks; the first worker serves, every later one dies at start.
  auto* starts = static_cast<std::atomic<int>*>(::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(starts, MAP_FAILED);
  PoolOptions o;
  o.workers = 1;
  o.chunk = 1;
  o.max_start_failures = 3;
  o.initializer = [starts] {
    if (starts->fetch_add(1) > 0) ::_exit(9);
  };
  const std::uint64_t n = 100;
  auto fn = [](std::uint64_t i) {
    if (i == 30) ::_exit(3);  // the serving worker dies at index 30
    spin_us(3000);            // > 2 ms: each index is reported before the next one
    return static_cast<int>(i) + 1;
  };
  for (int round = 0; round < 2; ++round) {
    starts->store(0);
    Pool pool(o);
    if (round == 0) {
      auto r = pool.try_map<int>(n, fn);
      const RunReport& rep = pool.last_report();
      ASSERT_FALSE(rep.farm_error.empty());
      ASSERT_GT(rep.succeeded, 0u);
      EXPECT_EQ(rep.farm_error.find("without completing any task"), std::string::npos) << rep.farm_error;
      EXPECT_FALSE(r.ok(30));
      expect_only_delivered_ok(r, n, [](std::uint64_t i) { return static_cast<int>(i) + 1; }, rep.succeeded);
    } else {
      try {
        pool.map<int>(n, fn);
        FAIL() << "no TaskFailed";
      } catch (const TaskFailed& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find(std::to_string(pool.last_report().succeeded) + " of 100 tasks succeeded"), std::string::npos) << what;
        EXPECT_NE(what.find("exited with code 9"), std::string::npos) << what;
      }
    }
  }
  ::munmap(starts, 4096);
}

// imap holds results back for order; when the run ends early, those behind an index that will
// never come must still reach the sink (in index order), or the run would count as succeeded
// what nobody received. Index 0 is slow on one worker (which holds the first half) while the
// other commits the second half up to index 990, which halts the run.
TEST(Undelivered, ImapOfAHaltedRunDeliversEveryIndexItCountsSucceeded) {
  PoolOptions o = halting();
  o.chunk = 10;
  Pool pool(o);
  std::vector<std::uint64_t> got;
  try {
    pool.imap<std::uint64_t>(1000, [](std::uint64_t i) {
      if (i == 0) spin_us(500'000);
      if (i == 990) throw std::runtime_error("poison");
      return i * 2;
    }, [&got](std::uint64_t i, std::uint64_t&& v) {
      EXPECT_EQ(v, i * 2);
      got.push_back(i);
    });
    FAIL() << "no TaskFailed";
  } catch (const TaskFailed& e) {
    EXPECT_GT(e.unfinished(), 0u) << e.what();
  }
  const RunReport& rep = pool.last_report();
  ASSERT_GT(rep.succeeded, 0u) << "nothing committed: the test proves nothing";
  EXPECT_EQ(got.size(), rep.succeeded) << "indices counted succeeded never reached the sink";
  EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
  EXPECT_TRUE(std::adjacent_find(got.begin(), got.end()) == got.end());
  EXPECT_TRUE(std::find(got.begin(), got.end(), 990) == got.end());
}

namespace {
// A (serialised, not trivially copyable) result type whose decoding fails in the master for
// one value.
struct Picky {
  int v = 0;
  std::string tag = "picky";
  template <class A>
  void save(A& a) const { a(v, tag); }
  template <class A>
  void load(A& a) {
    a(v, tag);
    if (v == 7) throw std::domain_error("cannot load 7");
  }
};
}  // namespace

// What keeps the master from handing a result over — its decoding throws, the user's sink
// throws — fails that index with the cause (retried like a kernel's exception), never the
// worker that sent it, and every other index is delivered exactly once.
TEST(Undelivered, ResultTheMasterCannotDecodeFailsThatIndexNotTheWorker) {
  PoolOptions o;
  o.workers = 2;
  o.retries = 1;
  Pool pool(o);
  auto r = pool.try_map<Picky>(100, [](std::uint64_t i) { return Picky{static_cast<int>(i), "picky"}; });
  ASSERT_EQ(r.failed, std::vector<std::uint64_t>{7});
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_EQ(r.failures[0].exception_type, "std::domain_error") << r.failures[0].describe();
  EXPECT_NE(r.failures[0].message.find("could not be handed over in the master: cannot load 7"), std::string::npos) << r.failures[0].describe();
  EXPECT_EQ(r.failures[0].attempt, 1u) << "retried like a kernel's exception";
  EXPECT_EQ(pool.last_report().worker_deaths, 0u);
  for (int i = 0; i < 100; ++i) {
    if (i != 7) { EXPECT_EQ(r.values[static_cast<std::size_t>(i)].v, i); }
  }
}

TEST(Undelivered, SinkThrowingFailsThatIndexAndEveryOtherIsDeliveredOnce) {
  for (bool ordered : {false, true}) {
    PoolOptions o;
    o.workers = 2;
    o.retries = 1;
    Pool pool(o);
    std::map<std::uint64_t, int> calls;
    auto sink = [&calls](std::uint64_t i, std::uint64_t&& v) {
      ++calls[i];
      EXPECT_EQ(v, i + 1);
      if (i == 7) throw std::runtime_error("sink refuses 7");
    };
    auto fn = [](std::uint64_t i) { return i + 1; };
    try {
      if (ordered) pool.imap<std::uint64_t>(100, fn, sink);
      else pool.imap_unordered<std::uint64_t>(100, fn, sink);
      FAIL() << "no TaskFailed";
    } catch (const TaskFailed& e) {
      ASSERT_EQ(e.failures().size(), 1u) << e.what();
      EXPECT_EQ(e.failures()[0].index, 7u);
      EXPECT_NE(e.failures()[0].message.find("sink refuses 7"), std::string::npos) << e.what();
      EXPECT_EQ(e.succeeded(), 99u);
    }
    EXPECT_EQ(pool.last_report().worker_deaths, 0u);
    ASSERT_EQ(calls.size(), 100u) << "ordered " << ordered;
    for (auto [i, n] : calls) EXPECT_EQ(n, i == 7 ? 2 : 1) << "index " << i << ", ordered " << ordered;
  }
}
