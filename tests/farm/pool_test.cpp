// Every Pool API equals the serial loop, bit for bit, for 1, 2 and 4 workers and chunk sizes
// 1, 7 and auto; in fork mode and on the threads backend.
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <cmath>
#include <cstring>
#include <csignal>
#include <stdexcept>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "taskfarm/pool.hpp"
#include "taskfarm/shared_array.hpp"

using namespace taskfarm;

namespace {

struct Params {
  int workers;
  std::uint64_t chunk;
  Backend backend;
};

void PrintTo(const Params& p, std::ostream* os) {
  *os << (p.backend == Backend::fork ? "fork" : "threads") << " workers=" << p.workers << " chunk=" << p.chunk;
}

std::string name_of(const testing::TestParamInfo<Params>& p) {
  return (p.param.backend == Backend::fork ? "fork_w" : "threads_w") + std::to_string(p.param.workers) + "_chunk" +
         (p.param.chunk == 0 ? std::string("auto") : std::to_string(p.param.chunk));
}

class PoolApi : public testing::TestWithParam<Params> {
 protected:
  PoolOptions options() const {
    PoolOptions o;
    o.workers = GetParam().workers;
    o.chunk = GetParam().chunk;
    o.backend = GetParam().backend;
    return o;
  }
};

double f(std::uint64_t i) { return std::sin(static_cast<double>(i)) * 1e3 + std::sqrt(static_cast<double>(i)); }

}  // namespace

TEST_P(PoolApi, MapEqualsSerialLoop) {
  Pool pool(options());
  const std::uint64_t n = 5003;
  std::vector<double> serial(n);
  for (std::uint64_t i = 0; i < n; ++i) serial[i] = f(i);
  EXPECT_EQ(pool.map<double>(n, f), serial);
}

TEST_P(PoolApi, MapOfVariableSizeResultsKeepsIndexOrder) {
  Pool pool(options());
  auto got = pool.map<std::vector<std::uint8_t>>(777, [](std::uint64_t i) { return std::vector<std::uint8_t>(i % 13, static_cast<std::uint8_t>(i)); });
  ASSERT_EQ(got.size(), 777u);
  for (std::uint64_t i = 0; i < 777; ++i) EXPECT_EQ(got[i], std::vector<std::uint8_t>(i % 13, static_cast<std::uint8_t>(i))) << i;
  auto strings = pool.map<std::string>(300, [](std::uint64_t i) { return std::to_string(i * 31); });
  for (std::uint64_t i = 0; i < 300; ++i) EXPECT_EQ(strings[i], std::to_string(i * 31));
}

TEST_P(PoolApi, FilterMapDropsEmptyResultsInOrder) {
  Pool pool(options());
  auto got = pool.filter_map<std::uint64_t>(1000, [](std::uint64_t i) -> std::optional<std::uint64_t> {
    if (i % 3 == 0) return std::nullopt;
    return i;
  });
  std::vector<std::uint64_t> want;
  for (std::uint64_t i = 0; i < 1000; ++i)
    if (i % 3 != 0) want.push_back(i);
  EXPECT_EQ(got, want);
}

TEST_P(PoolApi, TwoDimensionalSpaceIsRowMajor) {
  Pool pool(options());
  auto got = pool.map<std::pair<std::uint64_t, std::uint64_t>>(Extent{2, 2}, [](std::uint64_t i, std::uint64_t j) { return std::make_pair(i, j + 2); });
  const std::vector<std::pair<std::uint64_t, std::uint64_t>> want{{0, 2}, {0, 3}, {1, 2}, {1, 3}};
  EXPECT_EQ(got, want);
  auto cube = pool.map<std::uint64_t>(Extent{3, 4, 5}, [](std::uint64_t i, std::uint64_t j, std::uint64_t k) { return i * 100 + j * 10 + k; });
  std::vector<std::uint64_t> serial;
  for (std::uint64_t i = 0; i < 3; ++i)
    for (std::uint64_t j = 0; j < 4; ++j)
      for (std::uint64_t k = 0; k < 5; ++k) serial.push_back(i * 100 + j * 10 + k);
  EXPECT_EQ(cube, serial);
}

TEST_P(PoolApi, ForEachWritesFramesIntoSharedArray) {
  Pool pool(options());
  auto frames = SharedArray<float>::create({24, 16, 16});
  pool.for_each(24, [&frames](std::uint64_t f) {
    auto frame = frames[f];
    for (std::size_t r = 0; r < 16; ++r)
      for (std::size_t c = 0; c < 16; ++c) frame(r, c) = static_cast<float>(f * 1000 + r * 16 + c);
  });
  auto v = frames.view();
  for (std::size_t f = 0; f < 24; ++f)
    for (std::size_t r = 0; r < 16; ++r)
      for (std::size_t c = 0; c < 16; ++c) ASSERT_EQ(v(f, r, c), static_cast<float>(f * 1000 + r * 16 + c));
}

TEST_P(PoolApi, MapReduceIsIdenticalToBlockedSerialFold) {
  Pool pool(options());
  const std::uint64_t n = 100'003, block = 1024;
  auto op = [](double a, double b) { return a + b; };
  double serial = 0.5;
  for (std::uint64_t b = 0; b * block < n; ++b) {
    double acc = f(b * block);
    for (std::uint64_t i = b * block + 1; i < std::min(n, (b + 1) * block); ++i) acc = acc + f(i);
    serial = serial + acc;
  }
  const double got = pool.map_reduce<double>(n, f, op, 0.5, block);
  EXPECT_EQ(std::memcmp(&got, &serial, sizeof got), 0) << got << " vs " << serial;
}

// A block of n or more is one block, however large (h14 F2: a block near 2^64 wrapped to zero
// blocks and `init` came back as the fold); a block of 0 is an error, not `init`.
TEST_P(PoolApi, MapReduceWithOneBlockOrNoneSaysSo) {
  Pool pool(options());
  const auto one = [](std::uint64_t i) { return static_cast<double>(i + 1); };
  for (const std::uint64_t block : {std::uint64_t{10}, std::uint64_t{1} << 63, ~std::uint64_t{0}, ~std::uint64_t{0} - 8})
    EXPECT_EQ(pool.map_reduce<double>(10, one, std::plus<>{}, 0.0, block), 55.0) << "block " << block;
  EXPECT_THROW(pool.map_reduce<double>(10, one, std::plus<>{}, 0.0, 0), Error);
  EXPECT_EQ(pool.map_reduce<double>(0, one, std::plus<>{}, 0.5, 4), 0.5);  // (no index: init)
}

// map_reduce runs over blocks, but a failure is said in the user's indices (h11 F5): the index
// whose fn threw, not the number of its block; a block that failed leaves no result, so it
// throws even with throw_on_failure off (the fold would silently miss the block).
TEST(Pool, MapReduceNamesTheIndexThatThrewNotItsBlock) {
  for (const Backend backend : {Backend::fork, Backend::threads}) {
    SCOPED_TRACE(backend == Backend::fork ? "fork" : "threads");
    PoolOptions o;
    o.workers = 2;
    o.retries = 0;
    o.throw_on_failure = false;
    o.backend = backend;
    Pool pool(o);
    try {
      pool.map_reduce<double>(
          100'000,
          [](std::uint64_t i) {
            if (i == 77'777) throw std::domain_error("bad input at " + std::to_string(i));
            return static_cast<double>(i);
          },
          std::plus<>{}, 0.0);
      ADD_FAILURE() << "no TaskFailed";
    } catch (const TaskFailed& e) {
      const std::string what = e.what();
      ASSERT_EQ(e.failures().size(), 1u) << what;
      const FailureRecord& f = e.failures()[0];
      EXPECT_EQ(f.index, std::optional<std::uint64_t>(77'777)) << what;
      EXPECT_EQ(f.chunk_begin, 76'800u);
      EXPECT_EQ(f.chunk_end, 77'824u);
      EXPECT_EQ(f.exception_type, "std::domain_error");
      EXPECT_EQ(what.rfind("taskfarm: map_reduce over 100000 indices has no result: 1 of 98 blocks "
                           "of 1024 indices failed\n"
                           "  index 77777 (block 75: indices 76800-77823; attempt 0, slot ",
                           0),
                0u)
          << what;
      EXPECT_NE(what.find("): threw std::domain_error: bad input at 77777"), std::string::npos)
          << what;
    }
    // The same pool goes on, and a call without failures folds as before.
    EXPECT_EQ(pool.map_reduce<std::uint64_t>(
                  10'000, [](std::uint64_t i) { return i; }, std::plus<>{}, 0, 100),
              49'995'000u);
  }
}

// Which index of a block crashed is not known: the block's range is named.
TEST(Pool, MapReduceNamesTheBlockRangeOfACrash) {
  PoolOptions o;
  o.workers = 2;
  o.retries = 0;
  Pool pool(o);
  try {
    pool.map_reduce<double>(
        20'000,
        [](std::uint64_t i) {
          if (i == 5'000) ::raise(SIGSEGV);
          return static_cast<double>(i);
        },
        std::plus<>{}, 0.0);
    FAIL() << "no TaskFailed";
  } catch (const TaskFailed& e) {
    const std::string what = e.what();
    ASSERT_EQ(e.failures().size(), 1u) << what;
    EXPECT_EQ(e.failures()[0].index, std::optional<std::uint64_t>(4'096))
        << what;  // the block's first
    EXPECT_EQ(e.failures()[0].chunk_end, 5'120u);
    EXPECT_NE(what.find("\n  indices 4096-5119 (block 4; attempt 0, slot "), std::string::npos)
        << what;
    EXPECT_NE(what.find("): killed by SIGSEGV"), std::string::npos) << what;
  }
}

TEST_P(PoolApi, ImapDeliversInIndexOrder) {
  Pool pool(options());
  std::vector<std::uint64_t> order;
  std::vector<std::string> values;
  pool.imap<std::string>(2000, [](std::uint64_t i) { return std::to_string(i); }, [&](std::uint64_t i, std::string&& v) {
    order.push_back(i);
    values.push_back(std::move(v));
  });
  ASSERT_EQ(order.size(), 2000u);
  for (std::uint64_t i = 0; i < 2000; ++i) {
    EXPECT_EQ(order[i], i);
    EXPECT_EQ(values[i], std::to_string(i));
  }
}

TEST_P(PoolApi, ImapUnorderedDeliversEveryIndexOnce) {
  Pool pool(options());
  std::multiset<std::uint64_t> seen;
  pool.imap_unordered<std::uint64_t>(3000, [](std::uint64_t i) { return i * 2; }, [&](std::uint64_t i, std::uint64_t&& v) {
    EXPECT_EQ(v, i * 2);
    seen.insert(i);
  });
  ASSERT_EQ(seen.size(), 3000u);
  for (std::uint64_t i = 0; i < 3000; ++i) EXPECT_EQ(seen.count(i), 1u);
}

TEST_P(PoolApi, EmptyIndexSpaceReturnsNothing) {
  Pool pool(options());
  EXPECT_TRUE(pool.map<int>(0, [](std::uint64_t) { return 1; }).empty());
}

INSTANTIATE_TEST_SUITE_P(Fork, PoolApi,
                         testing::Values(Params{1, 1, Backend::fork}, Params{1, 7, Backend::fork}, Params{1, 0, Backend::fork},
                                         Params{2, 1, Backend::fork}, Params{2, 7, Backend::fork}, Params{2, 0, Backend::fork},
                                         Params{4, 1, Backend::fork}, Params{4, 7, Backend::fork}, Params{4, 0, Backend::fork}),
                         name_of);
INSTANTIATE_TEST_SUITE_P(Threads, PoolApi,
                         testing::Values(Params{1, 0, Backend::threads}, Params{2, 7, Backend::threads}, Params{4, 0, Backend::threads}),
                         name_of);

TEST(Pool, LambdaSeesCallersDataAsAtTheCall) {
  Pool pool(PoolOptions{});
  std::vector<int> data(100);
  for (int round = 0; round < 3; ++round) {
    std::iota(data.begin(), data.end(), round * 1000);  // changed after the pool was made
    auto got = pool.map<int>(100, [&](std::uint64_t i) { return data[i]; });
    EXPECT_EQ(got, data);
  }
}

TEST(Pool, InitializerRunsInEachWorkerBeforeTasks) {
  PoolOptions o;
  o.workers = 2;
  static int initialised = 0;
  o.initializer = [] { initialised = 42; };
  Pool pool(o);
  auto got = pool.map<int>(50, [](std::uint64_t) { return initialised; });
  EXPECT_EQ(got, std::vector<int>(50, 42));
  EXPECT_EQ(initialised, 0) << "the initializer must run in the workers, not here";
}

TEST(Pool, WorkersGetThreadLimitsForBlas) {
  PoolOptions o;
  o.workers = 2;
  Pool pool(o);
  ::unsetenv("OMP_NUM_THREADS");
  auto got = pool.map<std::string>(4, [](std::uint64_t) { const char* v = std::getenv("OMP_NUM_THREADS"); return std::string(v ? v : "unset"); });
  const std::string want = std::to_string(std::max(1, usable_cpus() / 2));
  for (const auto& v : got) EXPECT_EQ(v, want);
}

// The workers' environment is built in the master before each fork (spawn.cpp) and kept from
// fork to fork: what the master's environment says at each run is what the workers see.
TEST(Pool, WorkersSeeTheEnvironmentOfEachRun) {
  PoolOptions o;
  o.workers = 2;
  Pool pool(o);
  auto env_of = [&pool](const char* name) {
    return pool.map<std::string>(2, [name](std::uint64_t) { const char* v = std::getenv(name); return std::string(v ? v : "unset"); });
  };
  ::unsetenv("OMP_NUM_THREADS");
  ::unsetenv("TASKFARM_TEST_ENV");
  const std::string want = std::to_string(std::max(1, usable_cpus() / 2));
  EXPECT_EQ(env_of("OMP_NUM_THREADS"), std::vector<std::string>(2, want));
  ASSERT_EQ(::setenv("OMP_NUM_THREADS", "7", 1), 0);
  EXPECT_EQ(env_of("OMP_NUM_THREADS"), std::vector<std::string>(2, "7")) << "a variable already set is kept";
  ASSERT_EQ(::setenv("TASKFARM_TEST_ENV", "late", 1), 0);
  EXPECT_EQ(env_of("TASKFARM_TEST_ENV"), std::vector<std::string>(2, "late")) << "a variable set between runs";
  ::unsetenv("OMP_NUM_THREADS");
  EXPECT_EQ(env_of("OMP_NUM_THREADS"), std::vector<std::string>(2, want)) << "unset again: the thread limit";
  EXPECT_EQ(env_of("TASKFARM_TEST_ENV"), std::vector<std::string>(2, "late"));
  // A kernel may change its own environment (glibc copies the array it was given).
  auto set = pool.map<std::string>(2, [](std::uint64_t i) {
    ::setenv("TASKFARM_TEST_ENV", std::to_string(i).c_str(), 1);
    ::unsetenv("OMP_NUM_THREADS");
    return std::string(std::getenv("TASKFARM_TEST_ENV")) + (std::getenv("OMP_NUM_THREADS") ? "+omp" : "");
  });
  EXPECT_EQ(set, (std::vector<std::string>{"0", "1"}));
  EXPECT_STREQ(std::getenv("TASKFARM_TEST_ENV"), "late") << "the master's environment is its own";
  ::unsetenv("TASKFARM_TEST_ENV");
}

std::size_t children_of_this_process() {
  std::ifstream c("/proc/self/task/" + std::to_string(::getpid()) + "/children");
  EXPECT_TRUE(c.is_open()) << "no /proc/self/task/<pid>/children: the check would prove nothing";
  std::size_t n = 0;
  std::string pid;
  while (c >> pid) ++n;
  return n;
}

void spin_us(int us) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  while (std::chrono::steady_clock::now() < until) {
  }
}

// A fork-mode call has reaped its workers when it returns (they are told to stop with their
// last chunks, so their exits overlap the end of the call): none is left for the caller's own
// wait() to find.
TEST(Pool, ACallLeavesNoChildrenBehind) {
  PoolOptions o;
  o.workers = 2;
  Pool pool(o);
  for (int call = 0; call < 20; ++call) {
    auto v = pool.map<int>(1000, [](std::uint64_t i) { return static_cast<int>(i); });
    ASSERT_EQ(v[999], 999);
    ASSERT_EQ(children_of_this_process(), 0u) << "call " << call;
  }
}

// What one pool's calls hold while the caller is between them: descriptors, mappings, threads,
// this process's segments in /dev/shm. A call that leaks any of them shows as a difference.
struct Held {
  std::size_t fds, maps, threads, segments;
};

std::size_t entries(const std::string& dir, const std::string& prefix = "") {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().starts_with(prefix)) ++n;
  }
  return n;
}

Held held_now() {
  std::ifstream maps("/proc/self/maps");
  std::size_t lines = 0;
  for (std::string line; std::getline(maps, line);) ++lines;
  return Held{entries("/proc/self/fd"), lines, entries("/proc/self/task"),
              entries("/dev/shm", "taskfarm-" + std::to_string(::getpid()) + "-")};
}

// Consecutive calls on one pool leak nothing per call. 1,000 calls (50-90 s on a loaded
// machine) would find a descriptor leaked per call only by running out of them; counting what
// the process holds after warm-up calls and again after 100 more finds a descriptor, mapping,
// thread, segment or child leaked per call (or per up to 100 calls) directly.
TEST(Pool, ConsecutiveMapsOnOnePoolLeakNothing) {
  PoolOptions o;
  o.workers = 2;
  Pool pool(o);
  int k = 0;
  auto call = [&] {
    auto got = pool.map<int>(16, [k](std::uint64_t i) { return k * 100 + static_cast<int>(i); });
    ASSERT_EQ(got[15], k * 100 + 15) << "call " << k;
    ASSERT_EQ(children_of_this_process(), 0u) << "call " << k;
    ++k;
  };
  for (int w = 0; w < 4; ++w) ASSERT_NO_FATAL_FAILURE(call());  // lazily made state settles
  const Held before = held_now();
  for (int c = 0; c < 100; ++c) ASSERT_NO_FATAL_FAILURE(call());
  const Held after = held_now();
  EXPECT_EQ(after.fds, before.fds) << "descriptors leaked over 100 calls";
  EXPECT_EQ(after.threads, before.threads) << "threads left over 100 calls";
  EXPECT_EQ(after.segments, before.segments) << "segments left in /dev/shm over 100 calls";
  // malloc may map or unmap an arena or a large block between two calls, and ASan's allocator
  // more (12 more mappings in 1 of 8 runs seen): slack well below the 100 that a mapping
  // leaked per call would add.
  EXPECT_LE(after.maps, before.maps + 32) << "mappings leaked over 100 calls";
}

TEST(Pool, TheCallersOwnWaitFindsItsOwnChild) {
  PoolOptions o;
  o.workers = 2;
  Pool pool(o);
  auto v = pool.map<int>(1000, [](std::uint64_t i) { return static_cast<int>(i); });
  const pid_t mine = ::fork();
  if (mine == 0) ::_exit(7);
  int st = 0;
  const pid_t got = ::wait(&st);
  EXPECT_EQ(got, mine) << "wait() returned a taskfarm worker";
  if (got != mine) ::waitpid(mine, &st, 0);
  EXPECT_EQ(pool.map<int>(1000, [](std::uint64_t i) { return static_cast<int>(i); })[999], 999);
}

// With SIGCHLD ignored the kernel reaps workers itself, so the farm finds them gone (ECHILD):
// the results must not change, and no death may be reported.
TEST(Pool, SigchldIgnoredChangesNothing) {
  PoolOptions o;
  o.workers = 2;
  Pool pool(o);
  auto old = ::signal(SIGCHLD, SIG_IGN);
  for (int k = 0; k < 3; ++k) {
    auto v = pool.map<int>(1000, [](std::uint64_t i) { spin_us(i % 100 == 0 ? 50 : 0); return static_cast<int>(i); });
    EXPECT_EQ(v[999], 999);
    EXPECT_EQ(pool.last_report().worker_deaths, 0u);
  }
  pool.close();
  ::signal(SIGCHLD, old);
}

// Exceptions on the first indices of a probe's steps (1, 2, 6, 18, ...) and inside them: each
// is reported once, everything else computed.
TEST(Pool, ExceptionsAtAndBetweenProbeStepsAreEachReported) {
  PoolOptions o;
  o.workers = 1;
  o.retries = 0;
  Pool pool(o);
  const std::set<std::uint64_t> bad{0, 2, 8, 9, 26};
  auto r = pool.try_map<int>(100, [&](std::uint64_t i) {
    spin_us(100);
    if (bad.count(i) != 0) throw std::runtime_error("bad");
    return static_cast<int>(i);
  });
  std::set<std::uint64_t> failed;
  for (auto& f : r.failures) failed.insert(*f.index);
  EXPECT_EQ(failed, bad);
  for (std::uint64_t i = 0; i < 100; ++i) {
    if (bad.count(i) == 0) { EXPECT_EQ(r.values[i], static_cast<int>(i)) << i; }
  }
  EXPECT_EQ(pool.last_report().worker_deaths, 0u);
}

// Records larger than a quarter of the arena commit a piece after every index, so a probe's
// budget can run out exactly where the last piece ended: a "returned" commit of nothing new.
TEST(Pool, ProbeReturnedRightAfterAnArenaPiece) {
  PoolOptions o;
  o.workers = 2;
  o.arena_bytes = 64 << 10;
  Pool pool(o);
  auto v = pool.map<std::string>(200, [](std::uint64_t i) {
    spin_us(300);
    return std::string(20 << 10, static_cast<char>('a' + i % 26));
  });
  ASSERT_EQ(v.size(), 200u);
  for (std::size_t i = 0; i < 200; ++i) ASSERT_EQ(v[i], std::string(20 << 10, static_cast<char>('a' + i % 26))) << i;
  EXPECT_EQ(pool.last_report().worker_deaths, 0u);
}

TEST(Pool, ImapStaysInOrderWhenProbesComeBack) {
  PoolOptions o;
  o.workers = 2;
  Pool pool(o);
  std::uint64_t next = 0;
  pool.imap<int>(
      3000, [](std::uint64_t i) { spin_us(i % 7 == 0 ? 200 : 5); return static_cast<int>(i); },
      [&](std::uint64_t i, int v) {
        ASSERT_EQ(i, next);
        ASSERT_EQ(v, static_cast<int>(i));
        ++next;
      });
  EXPECT_EQ(next, 3000u);
}

// With nothing measured yet, each worker's first chunk is its whole share with a time budget:
// a worker running slow tasks stops after about a millisecond, commits what it ran and hands the
// rest back; the rest goes out again in measured chunks. Every index runs exactly once.
TEST(Farm, FirstChunkStopsAtItsBudgetAndHandsTheRestBack) {
  struct Spin final : JobRunner {
    std::int64_t* out;
    explicit Spin(std::int64_t* o) : out(o) {}
    void run(std::uint64_t i, std::string&) override {
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(300);
      while (std::chrono::steady_clock::now() < until) {
      }
      out[i] += static_cast<std::int64_t>(i) + 1;  // twice if an index ran twice
    }
  };
  struct Pieces final : FarmObserver {
    std::vector<std::pair<std::uint64_t, std::uint64_t>> started, done;
    std::vector<std::uint32_t> attempts;
    void on_chunk_started(int, pid_t, std::uint64_t b, std::uint64_t e, std::uint32_t a) override {
      started.emplace_back(b, e);
      attempts.push_back(a);
    }
    void on_tasks_done(const TasksDone& t) override { done.emplace_back(t.begin, t.end); }
  } obs;
  FarmOptions o;
  o.workers = 2;
  Farm farm = Farm::fork(o);
  auto out = SharedArray<std::int64_t>::create({200});
  JobSpec job;
  job.extent = {200};
  ForkKernelFactory make = [&out]() -> std::unique_ptr<JobRunner> { return std::make_unique<Spin>(out.data()); };
  const RunReport r = farm.run(job, &obs, make);
  EXPECT_EQ(r.succeeded, 200u);
  EXPECT_EQ(r.retries, 0u) << "a returned rest is not a retry";
  for (auto a : obs.attempts) EXPECT_EQ(a, 0u) << "a returned rest goes out at the same attempt";
  ASSERT_GE(obs.started.size(), 2u);
  EXPECT_EQ(obs.started[0], std::make_pair(std::uint64_t{0}, std::uint64_t{100})) << "the first chunk is a share";
  const auto first_piece = std::find_if(obs.done.begin(), obs.done.end(), [](auto p) { return p.first == 0; });
  ASSERT_NE(first_piece, obs.done.end());
  EXPECT_LT(first_piece->second, 50u) << "300 us tasks: a 1 ms budget stops after a few";
  std::vector<int> covered(200, 0);
  for (auto [b, e] : obs.done)
    for (auto i = b; i < e; ++i) ++covered[i];
  for (std::size_t i = 0; i < 200; ++i) {
    EXPECT_EQ(covered[i], 1) << "index " << i << " committed " << covered[i] << " times";
    EXPECT_EQ(out.view().element({i}), static_cast<std::int64_t>(i) + 1) << "index " << i;
  }
}

// Held chunks are never taken back, so no worker may hold more than its share of what is
// unfinished. Here each worker's first index is slow (a cold start), so both probes come back
// at once and the rest is handed out in guided chunks: without the cap, the first worker to
// ask takes nearly everything while the other idles.
TEST(Farm, NoWorkerHoldsMoreThanItsShare) {
  struct ColdStart final : JobRunner {
    bool warm = false;
    void run(std::uint64_t, std::string&) override {
      if (!warm) spin_us(3000);
      warm = true;
    }
  };
  struct PerSlot final : FarmObserver {
    std::map<int, std::uint64_t> held, most;
    void on_chunk_started(int slot, pid_t, std::uint64_t b, std::uint64_t e, std::uint32_t) override {
      held[slot] += e - b;
      most[slot] = std::max(most[slot], held[slot]);
    }
    void on_tasks_done(const TasksDone& t) override { held[t.slot] -= t.end - t.begin; }
    void on_chunk_returned(int slot, pid_t, std::uint64_t b, std::uint64_t e, std::uint32_t) override { held[slot] -= e - b; }
  } obs;
  FarmOptions o;
  o.workers = 2;
  Farm farm = Farm::fork(o);
  JobSpec job;
  job.extent = {200'000};
  ForkKernelFactory make = []() -> std::unique_ptr<JobRunner> { return std::make_unique<ColdStart>(); };
  for (int run = 0; run < 5; ++run) {
    obs.held.clear();
    obs.most.clear();
    ASSERT_EQ(farm.run(job, &obs, make).succeeded, 200'000u);
    for (auto [slot, n] : obs.held) EXPECT_EQ(n, 0u) << "slot " << slot << ": every index started was done or returned";
    // A probe is a share of 100,000; after it, a share of what is unfinished is no more.
    for (auto [slot, n] : obs.most) EXPECT_LE(n, 100'000u) << "run " << run << ": slot " << slot << " held " << n << " indices at once";
  }
}

TEST(Pool, MaxTasksPerWorkerRecyclesWorkers) {
  PoolOptions o;
  o.workers = 2;
  o.chunk = 1;
  o.max_tasks_per_worker = 5;
  Pool pool(o);
  auto pids = pool.map<int>(40, [](std::uint64_t) { return static_cast<int>(::getpid()); });
  std::set<int> distinct(pids.begin(), pids.end());
  EXPECT_GE(distinct.size(), 8u);  // 40 tasks, at most 5 per worker process
  EXPECT_EQ(pool.last_report().worker_deaths, 0u) << "recycling is not a failure";
}

TEST(Pool, MaxTasksPerWorkerHoldsWithAutoChunks) {
  PoolOptions o;
  o.workers = 2;
  o.max_tasks_per_worker = 5;  // auto chunks would otherwise be a share of 100 each
  Pool pool(o);
  // 200 tasks, 40 workers at least: each start is a fork, ~50 ms under ASan (CI's budget).
  auto pids = pool.map<int>(200, [](std::uint64_t) { return static_cast<int>(::getpid()); });
  std::map<int, int> per_pid;
  for (int p : pids) ++per_pid[p];
  for (auto [pid, n] : per_pid) EXPECT_LE(n, 5) << "worker " << pid << " ran " << n << " tasks";
  EXPECT_GE(per_pid.size(), 40u);
}

TEST(Workers, JoblibCountsAndZeroIsAnError) {
  EXPECT_EQ(resolve_workers(3), 3);
  EXPECT_EQ(resolve_workers(-1), usable_cpus());
  EXPECT_EQ(resolve_workers(-2), std::max(1, usable_cpus() - 1));
  EXPECT_THROW(resolve_workers(0), Error);
}

// submit: the apply_async progress loop of the seeds.
class Submit : public testing::TestWithParam<Backend> {};

TEST_P(Submit, HundredsOfCallsInFlightAllComeBackWithProgressOnTheWay) {
  PoolOptions o;
  o.workers = 2;
  o.backend = GetParam();
  Pool pool(o);
  // Each call first takes one byte from this pipe, so the test decides how many can finish.
  int gate[2];
  ASSERT_EQ(::pipe(gate), 0);
  std::vector<Future<std::string>> futures;
  for (int i = 0; i < 300; ++i) {
    futures.push_back(pool.submit([fd = gate[0]](int k, std::string s) {
      char c;
      if (::read(fd, &c, 1) != 1) throw std::runtime_error("gate closed");
      return s + std::to_string(k * k);
    }, i, std::string("sq=")));
  }
  EXPECT_EQ(pool.completed(), 0u);
  EXPECT_EQ(pool.in_flight(), 300u);
  auto release_and_wait = [&](std::size_t n, std::size_t until) {
    const std::string bytes(n, 'x');
    ASSERT_EQ(::write(gate[1], bytes.data(), n), static_cast<ssize_t>(n));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (pool.completed() < until && std::chrono::steady_clock::now() < deadline) futures[0].wait_for(std::chrono::milliseconds(10));
    EXPECT_EQ(pool.completed(), until);
  };
  release_and_wait(150, 150);
  EXPECT_EQ(pool.in_flight(), 150u) << "progress must be visible while calls are still running";
  release_and_wait(150, 300);
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(futures[static_cast<std::size_t>(i)].ready());
    EXPECT_EQ(futures[static_cast<std::size_t>(i)].get(), "sq=" + std::to_string(i * i));
  }
  EXPECT_EQ(pool.in_flight(), 0u);
  ::close(gate[0]);
  ::close(gate[1]);
}

TEST_P(Submit, ExceptionComesBackFromGetWithItsType) {
  PoolOptions o;
  o.workers = 2;
  o.retries = 0;
  o.backend = GetParam();
  Pool pool(o);
  auto f = pool.submit([](int x) -> int { throw std::domain_error("bad " + std::to_string(x)); }, 5);
  try {
    f.get();
    FAIL() << "no TaskFailed";
  } catch (const TaskFailed& e) {
    ASSERT_EQ(e.failures().size(), 1u);
    EXPECT_EQ(e.failures()[0].exception_type, "std::domain_error");
    EXPECT_EQ(e.failures()[0].message, "bad 5");
    // Named as the call it is (the pool's first submit), not as an index of a slot (F18).
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("submitted call 0 failed (attempt 0", 0), 0u) << what;
    EXPECT_NE(what.find("): threw std::domain_error: bad 5"), std::string::npos) << what;
    EXPECT_EQ(what.find("slot"), std::string::npos) << what;
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, Submit, testing::Values(Backend::fork, Backend::threads),
                         [](const testing::TestParamInfo<Backend>& p) { return p.param == Backend::fork ? "fork" : "threads"; });

TEST(Submit, CrashOfASubmittedCallIsRetriedThenReported) {
  PoolOptions o;
  o.workers = 2;
  o.retries = 1;
  Pool pool(o);
  auto ok = pool.submit([](int x) { return x + 1; }, 41);
  auto bad = pool.submit([](int) -> int { ::raise(SIGSEGV); return 0; }, 0);
  EXPECT_EQ(ok.get(), 42);
  try {
    bad.get();
    FAIL() << "no TaskFailed";
  } catch (const TaskFailed& e) {
    EXPECT_EQ(e.failures()[0].cause, FailureCause::signal);
    EXPECT_EQ(e.failures()[0].signal, SIGSEGV);
    EXPECT_EQ(e.failures()[0].attempt, 1u);
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("submitted call 1 failed (attempt 1, pid ", 0), 0u) << what;
    EXPECT_NE(what.find("): killed by SIGSEGV"), std::string::npos) << what;
  }
}

// The hostile test's F10 from C++: a task's stray write just before the first element of a
// create_npy array lands in the file's header (the same page: it cannot be protected), and the
// file would no longer load. The call puts back the header it wrote and throws TaskFailed
// saying so; the file opens again and holds the serial loop's values.
TEST(Pool, AHeaderWrittenOverIsRestoredAndTheCallSaysSo) {
  const std::string path = testing::TempDir() + "header-" + std::to_string(::getpid()) + ".npy";
  std::string what;
  {
    auto out = SharedArray<double>::create_npy(path, {8});
    double* y = out.data();
    PoolOptions o;
    o.workers = 2;
    Pool pool(o);
    try {
      pool.for_each(8, [y](std::uint64_t i) {
        if (i == 3) std::memset(reinterpret_cast<char*>(y) - 64, 'A', 64);
        y[i] = f(i);
      });
    } catch (const TaskFailed& e) {
      what = e.what();
    }
    EXPECT_EQ(pool.last_report().succeeded, 8u);
  }
  EXPECT_NE(what.find("a worker wrote over the .npy header of " + std::filesystem::absolute(path).lexically_normal().string() +
                      " (restored); data near the start may be damaged too"),
            std::string::npos)
      << what;
  auto back = SharedArray<const double>::open_npy(path);
  for (std::uint64_t i = 0; i < 8; ++i) EXPECT_EQ(back.data()[i], f(i)) << "index " << i;
  std::filesystem::remove(path);
}
