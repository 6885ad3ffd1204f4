// Results larger than a worker's result arena come back whole, bit for bit equal to the
// serial loop, through every Pool API that returns values (map, try_map, imap, imap_unordered,
// submit) and from worker programs (program mode blobs and captured stdout).
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "taskfarm/farm.hpp"
#include "taskfarm/pool.hpp"
#include "taskfarm/serialize.hpp"

using namespace taskfarm;

namespace {

constexpr std::size_t kSmallArena = 64 << 10;  // keeps the tests fast: a "huge" result is 1 MiB

// Index `big` returns `big_ints` ints, every other index 3; the values depend on the index.
std::vector<int> value_at(std::uint64_t i, std::uint64_t big, std::size_t big_ints) {
  std::vector<int> v(i == big ? big_ints : 3);
  for (std::size_t k = 0; k < v.size(); ++k) v[k] = static_cast<int>(i * 1000003u + k);
  return v;
}

std::vector<std::vector<int>> serial(std::uint64_t n, std::uint64_t big, std::size_t big_ints) {
  std::vector<std::vector<int>> out;
  for (std::uint64_t i = 0; i < n; ++i) out.push_back(value_at(i, big, big_ints));
  return out;
}

PoolOptions small_arena(std::uint64_t chunk = 0) {
  PoolOptions o;
  o.workers = 2;
  o.chunk = chunk;
  o.arena_bytes = kSmallArena;
  return o;
}

constexpr std::size_t kFourArenas = 4 * kSmallArena / sizeof(int);  // ints in a 4× arena result

}  // namespace

TEST(BigResult, MapReturnsAResultFourTimesTheArenaWhole) {
  for (std::uint64_t chunk : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{7}}) {
    Pool pool(small_arena(chunk));
    auto got = pool.map<std::vector<int>>(100, [](std::uint64_t i) { return value_at(i, 50, kFourArenas); });
    ASSERT_EQ(got, serial(100, 50, kFourArenas)) << "chunk " << chunk;
  }
}

TEST(BigResult, TryMapReportsTheHugeIndexOkAndItsValueWhole) {
  Pool pool(small_arena());
  auto r = pool.try_map<std::vector<int>>(100, [](std::uint64_t i) { return value_at(i, 50, kFourArenas); });
  EXPECT_TRUE(r.failed.empty());
  EXPECT_TRUE(r.failures.empty()) << r.failures.front().describe();
  ASSERT_EQ(r.values, serial(100, 50, kFourArenas));
  EXPECT_EQ(pool.last_report().worker_deaths, 0u);
}

TEST(BigResult, ImapDeliversTheHugeResultInItsPlace) {
  Pool pool(small_arena());
  std::vector<std::vector<int>> got;
  pool.imap<std::vector<int>>(100, [](std::uint64_t i) { return value_at(i, 50, kFourArenas); },
                              [&got](std::uint64_t i, std::vector<int>&& v) {
                                EXPECT_EQ(i, got.size());
                                got.push_back(std::move(v));
                              });
  ASSERT_EQ(got, serial(100, 50, kFourArenas));
}

TEST(BigResult, ImapUnorderedDeliversTheHugeResultOnce) {
  Pool pool(small_arena());
  std::map<std::uint64_t, std::vector<int>> got;
  pool.imap_unordered<std::vector<int>>(100, [](std::uint64_t i) { return value_at(i, 50, kFourArenas); },
                                        [&got](std::uint64_t i, std::vector<int>&& v) {
                                          EXPECT_TRUE(got.emplace(i, std::move(v)).second) << "index " << i << " delivered twice";
                                        });
  ASSERT_EQ(got.size(), 100u);
  const auto want = serial(100, 50, kFourArenas);
  for (std::uint64_t i = 0; i < 100; ++i) ASSERT_EQ(got[i], want[i]) << i;
}

// Several huge results next to each other and at chunk edges, among small ones.
TEST(BigResult, NeighbouringHugeResultsInOneChunk) {
  Pool pool(small_arena(10));
  auto fn = [](std::uint64_t i) {
    const bool big = i == 0 || i == 3 || i == 4 || i == 5 || i == 9 || i == 10 || i == 99;
    return value_at(i, big ? i : ~0ull, kFourArenas + i);
  };
  auto got = pool.map<std::vector<int>>(100, fn);
  for (std::uint64_t i = 0; i < 100; ++i) ASSERT_EQ(got[i], fn(i)) << i;
}

// The case, at the default 16 MiB arena: one 20 MB result among 99 small ones.
TEST(BigResult, TwentyMegabyteResultAtTheDefaultArena) {
  PoolOptions o;
  o.workers = 2;
  Pool pool(o);
  constexpr std::size_t kInts = 5'000'000;
  auto r = pool.try_map<std::vector<int>>(100, [](std::uint64_t i) { return std::vector<int>(i == 50 ? kInts : 3, static_cast<int>(i)); });
  EXPECT_TRUE(r.failed.empty());
  EXPECT_TRUE(r.ok(50));
  ASSERT_EQ(r.values.size(), 100u);
  EXPECT_EQ(r.values[50], std::vector<int>(kInts, 50));
  for (int i = 0; i < 100; ++i) {
    if (i != 50) { ASSERT_EQ(r.values[static_cast<std::size_t>(i)], std::vector<int>(3, i)) << i; }
  }
  auto m = pool.map<std::vector<int>>(100, [](std::uint64_t i) { return std::vector<int>(i == 50 ? kInts : 3, static_cast<int>(i)); });
  EXPECT_EQ(m, r.values);
}

TEST(BigResult, SubmitReturnsATwentyMegabyteResult) {
  PoolOptions o;
  o.workers = 2;
  Pool pool(o);
  auto small = pool.submit([](int x) { return std::vector<int>(3, x); }, 7);
  auto big = pool.submit([](int x) { return value_at(50, 50, 5'000'000 + static_cast<std::size_t>(x)); }, 1);
  EXPECT_EQ(big.get(), value_at(50, 50, 5'000'001));
  EXPECT_EQ(small.get(), std::vector<int>(3, 7));
}

// Program mode: a worker program's blob result (and captured stdout) larger than the arena.
TEST(BigResult, WorkerProgramBlobLargerThanTheArena) {
  FarmOptions o;
  o.workers = 2;
  o.arena_bytes = kSmallArena;
  constexpr std::uint64_t kBytes = 3 * kSmallArena + 17;
  Farm farm = Farm::program(o, BLOB_WORKER, {"--big-at", "13", "--big-bytes", std::to_string(kBytes), "--print"});
  struct Collect : FarmObserver {
    std::vector<std::string> values, text;
    void on_result(const IndexResult& r) override {
      EXPECT_EQ(r.index, values.size());
      values.push_back(detail::deserialize<std::string>(r.value));
      text.emplace_back(r.text.data(), r.text.size());
    }
  } obs;
  JobSpec job;
  job.extent = {40};
  job.results = ResultMode::blobs;
  job.capture_stdout = true;
  job.ordered = true;
  for (int run = 0; run < 2; ++run) {  // warm workers: the second run reuses them
    obs.values.clear();
    obs.text.clear();
    RunReport r = farm.run(job, &obs);
    EXPECT_EQ(r.succeeded, 40u);
    EXPECT_TRUE(r.failures.empty()) << r.failures.front().describe();
    EXPECT_EQ(r.worker_deaths, 0u);
    ASSERT_EQ(obs.values.size(), 40u);
    for (std::uint64_t i = 0; i < 40; ++i) {
      const std::uint64_t n = i == 13 ? kBytes : 5;
      std::string want(n, '\0');
      for (std::uint64_t k = 0; k < n; ++k) want[k] = static_cast<char>('a' + (i + k) % 26);
      ASSERT_EQ(obs.values[i], want) << i;
      // The printed text of index 13 is larger than the arena too.
      ASSERT_EQ(obs.text[i], (i == 13 ? want : std::string("task ") + std::to_string(i)) + "\n") << i;
    }
  }
}

// What keeps a huge result from being carried (here: the worker is out of descriptors, so no
// memfd) fails that index with the reason; the worker serves on and every other index is kept.
TEST(BigResult, ResultThatCannotBeCarriedFailsItsIndexWithTheReason) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the sanitizer runtimes need descriptors of their own (to read /proc/self/maps): "
                  "a worker out of descriptors fails inside them, not where this test looks";
#endif
  PoolOptions o = small_arena(1);
  o.retries = 0;
  Pool pool(o);
  auto r = pool.try_map<std::vector<int>>(100, [](std::uint64_t i) {
    if (i == 50) {
      // No new descriptor in this worker from now on: the lowest free one is past the limit
      // (and poll() of the fds it has still works, as nfds stays under the limit).
      const int lowest_free = ::dup(0);
      ::close(lowest_free);
      rlimit rl{};
      ::getrlimit(RLIMIT_NOFILE, &rl);
      rl.rlim_cur = static_cast<rlim_t>(lowest_free);
      ::setrlimit(RLIMIT_NOFILE, &rl);
    }
    return value_at(i, 50, kFourArenas);
  });
  ASSERT_EQ(r.failed, std::vector<std::uint64_t>{50});
  ASSERT_EQ(r.failures.size(), 1u);
  const FailureRecord& f = r.failures[0];
  EXPECT_EQ(f.cause, FailureCause::exception) << f.describe();
  EXPECT_EQ(f.index, 50u);
  EXPECT_NE(f.message.find("could not be carried to the master"), std::string::npos) << f.describe();
  EXPECT_NE(f.message.find("memfd_create"), std::string::npos) << f.describe();
  EXPECT_EQ(pool.last_report().worker_deaths, 0u);
  const auto want = serial(100, 50, kFourArenas);
  for (std::uint64_t i = 0; i < 100; ++i) {
    if (i != 50) { ASSERT_EQ(r.values[i], want[i]) << i; }
  }
}
