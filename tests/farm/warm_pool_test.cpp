// WarmPool: warm forked workers with Python Pool's contract. Every call kind equals the serial
// loop bit for bit; workers are kept across calls and replaced when they die, mid-call or between
// calls; nothing is left behind; a kernel that captures does not compile.
#include <gtest/gtest.h>

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <future>
#include <thread>
#include <set>
#include <string>
#include <vector>

#include "taskfarm/warm_pool.hpp"

using namespace taskfarm;

namespace {

PoolOptions two_workers(int retries = 2) {
  PoolOptions o;
  o.workers = 2;
  o.retries = retries;
  return o;
}

// Not trivially foldable, and sensitive to every bit of its argument: a wrong or mixed-up index
// shows.
double value_at(std::uint64_t i) { return std::sin(static_cast<double>(i) * 0.37) * 1e3 + std::sqrt(static_cast<double>(i)); }

std::size_t children_of_this_process() {
  std::ifstream c("/proc/self/task/" + std::to_string(::getpid()) + "/children");
  EXPECT_TRUE(c.is_open()) << "no /proc/self/task/<pid>/children: the check would prove nothing";
  std::size_t n = 0;
  std::string pid;
  while (c >> pid) ++n;
  return n;
}

std::size_t segments_of_this_process() {
  const std::string prefix = "taskfarm-" + std::to_string(::getpid()) + "-";
  std::size_t n = 0;
  DIR* d = ::opendir("/dev/shm");
  EXPECT_NE(d, nullptr);
  if (d == nullptr) return 0;
  while (const dirent* e = ::readdir(d)) if (std::string(e->d_name).starts_with(prefix)) ++n;
  ::closedir(d);
  return n;
}

// The workers' pids, as they say themselves: 64 tasks of 1 ms over 2 workers reach both.
std::set<int> worker_pids(WarmPool& pool) {
  auto pids = pool.map<int>(64, +[](std::uint64_t) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
    while (std::chrono::steady_clock::now() < until) {
    }
    return static_cast<int>(::getpid());
  });
  return {pids.begin(), pids.end()};
}

// Waits (at most 5 s) until process `pid` has ended; it stays a zombie for its parent to reap.
bool ended_within_5s(int pid) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return false;
  pollfd p{fd, POLLIN, 0};
  const bool ended = ::poll(&p, 1, 5000) == 1;
  ::close(fd);
  return ended;
}

template <class F>
concept ForEachAccepts = requires(WarmPool& p, F f) { p.for_each(Extent(4), f); };

}  // namespace

TEST(WarmPool, MapEqualsSerialLoopBitForBit) {
  WarmPool pool(two_workers());
  for (int call = 0; call < 3; ++call) {  // the same workers serve every call
    const std::uint64_t n = 5000 + static_cast<std::uint64_t>(call);
    auto v = pool.map<double>(n, &value_at);
    ASSERT_EQ(v.size(), n);
    std::vector<double> serial(n);
    for (std::uint64_t i = 0; i < n; ++i) serial[i] = value_at(i);
    ASSERT_EQ(std::memcmp(v.data(), serial.data(), n * sizeof(double)), 0) << "call " << call;
  }
  // 2-D, an argument by value, and results that travel as bytes.
  auto s = pool.map<std::string>({30, 7}, [](std::uint64_t i, std::uint64_t j, const std::string& sep) {
    return std::to_string(i) + sep + std::to_string(j);
  }, std::string("/"));
  ASSERT_EQ(s.size(), 210u);
  for (std::uint64_t k = 0; k < 210; ++k) EXPECT_EQ(s[k], std::to_string(k / 7) + "/" + std::to_string(k % 7));
}

TEST(WarmPool, ForEachWritesIntoSharedArraysMadeAfterTheWorkers) {
  WarmPool pool(two_workers());
  EXPECT_EQ(pool.map<int>(4, +[](std::uint64_t i) { return static_cast<int>(i); })[3], 3);  // workers exist now
  for (int round = 0; round < 2; ++round) {  // new arrays: attached by handle in the warm workers
    auto in = SharedArray<double>::create({40, 64});
    auto out = SharedArray<double>::create({40, 64});
    for (std::size_t k = 0; k < in.size(); ++k) in.data()[k] = value_at(k);
    const double factor = 2.5 + round;
    pool.for_each(40, [](std::uint64_t f, const SharedArray<double>& src, const SharedArray<double>& dst, double by) {
      for (std::size_t k = 0; k < 64; ++k) dst[f].data()[k] = src[f].data()[k] * by;
    }, in, out, factor);
    for (std::size_t k = 0; k < out.size(); ++k) ASSERT_EQ(out.data()[k], value_at(k) * factor) << "round " << round << " element " << k;
  }
}

TEST(WarmPool, ImapUnorderedDeliversEveryIndexOnce) {
  WarmPool pool(two_workers());
  std::vector<int> seen(500, 0);
  pool.imap_unordered<double>(500, &value_at, [&seen](std::uint64_t i, double&& v) {
    ++seen[i];
    EXPECT_EQ(v, value_at(i));
  });
  for (int c : seen) ASSERT_EQ(c, 1);
}

TEST(WarmPool, WorkersAreKeptAcrossCallsAndReplacedWhenKilledBetweenCalls) {
  WarmPool pool(two_workers());
  const std::set<int> first = worker_pids(pool);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(worker_pids(pool), first) << "a second call forked new workers";
  const int victim = *first.begin();
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  ASSERT_TRUE(ended_within_5s(victim));
  const std::set<int> after = worker_pids(pool);
  EXPECT_EQ(after.size(), 2u);
  EXPECT_EQ(after.count(victim), 0u);
  EXPECT_EQ(after.count(*first.rbegin()), 1u) << "the surviving worker was replaced too";
  auto v = pool.map<double>(3000, &value_at);
  for (std::uint64_t i = 0; i < 3000; ++i) ASSERT_EQ(v[i], value_at(i));
}

// Crashes once at index 5 (the flag, shared, says whether it has): the chunk is retried on a
// fresh worker and every value is right. Then index 7 crashes at every attempt: it is reported as
// the one poison index, killed by SIGKILL, the rest computed, and the pool works afterwards.
TEST(WarmPool, CrashMidCallIsRetriedPoisonIsReportedAndThePoolStaysUsable) {
  WarmPool pool(two_workers(1));
  auto flag = SharedArray<int>::create({1});
  auto once = pool.try_map<double>(200, [](std::uint64_t i, const SharedArray<int>& crashed) {
    if (i == 5 && crashed.data()[0]++ == 0) ::raise(SIGKILL);
    return value_at(i);
  }, flag);
  EXPECT_TRUE(once.failed.empty());
  for (std::uint64_t i = 0; i < 200; ++i) ASSERT_EQ(once.values[i], value_at(i));
  EXPECT_EQ(pool.last_report().worker_deaths, 1u);

  auto poison = pool.try_map<double>(200, +[](std::uint64_t i) {
    if (i == 7) ::raise(SIGKILL);
    return value_at(i);
  });
  ASSERT_EQ(poison.failed, std::vector<std::uint64_t>{7});
  ASSERT_EQ(poison.failures.size(), 1u);
  EXPECT_EQ(poison.failures[0].cause, FailureCause::signal);
  EXPECT_EQ(poison.failures[0].signal, SIGKILL);
  for (std::uint64_t i = 0; i < 200; ++i) {
    if (i == 7) continue;
    ASSERT_EQ(poison.values[i], value_at(i)) << i;
  }
  EXPECT_THROW(pool.map<double>(20, +[](std::uint64_t i) { if (i == 3) ::raise(SIGKILL); return 1.0; }), TaskFailed);
  auto after = pool.map<double>(1000, &value_at);
  for (std::uint64_t i = 0; i < 1000; ++i) ASSERT_EQ(after[i], value_at(i));
}

TEST(WarmPool, DestructionLeavesNoChildNorSegment) {
  const std::size_t segments_before = segments_of_this_process();
  {
    WarmPool pool(two_workers());
    auto v = pool.map<double>(1000, &value_at);
    ASSERT_EQ(v[999], value_at(999));
    EXPECT_EQ(children_of_this_process(), 2u) << "the workers are kept between calls";
  }
  EXPECT_EQ(children_of_this_process(), 0u);
  EXPECT_EQ(segments_of_this_process(), segments_before);
}

TEST(WarmPool, ArgumentsTooLargeForACallAreRefusedBeforeAnyWorkerStarts) {
  WarmPool pool(two_workers());
  const std::vector<double> big(1000, 1.0);  // 8 kB serialised
  try {
    pool.for_each(4, [](std::uint64_t, const std::vector<double>&) {}, big);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pass large data in a SharedArray"), std::string::npos) << e.what();
  }
  EXPECT_EQ(children_of_this_process(), 0u);
  const std::vector<double> fits(100, 1.5);
  auto v = pool.map<double>(4, [](std::uint64_t i, const std::vector<double>& w) { return w[i] * 2; }, fits);
  EXPECT_EQ(v, std::vector<double>(4, 3.0));
}

// A warm pool forks at its first call and to replace a worker: like Pool, it refuses while other
// threads exist (a fork while one holds a lock would deadlock the worker on it).
TEST(WarmPool, RefusesToForkWhileOtherThreadsExist) {
  WarmPool pool(two_workers());
  std::promise<void> release;
  std::thread other([f = release.get_future()]() mutable { f.wait(); });
  std::string message;
  try {
    pool.map<double>(4, &value_at);
  } catch (const Error& e) {
    message = e.what();
  }
  release.set_value();
  other.join();
  EXPECT_NE(message.find("thread"), std::string::npos) << "no error, or not about threads: '" << message << "'";
  EXPECT_EQ(children_of_this_process(), 0u);
  EXPECT_EQ(pool.map<double>(4, &value_at)[3], value_at(3));
}

// The contract in the type system: what a warm worker cannot see at the call does not compile.
TEST(WarmPool, KernelsThatCaptureDoNotCompile) {
  int x = 0;
  auto by_reference = [&x](std::uint64_t) { ++x; };
  auto by_value = [x](std::uint64_t i) { return static_cast<int>(i) + x; };
  auto nothing = [](std::uint64_t) {};
  static_assert(!ForEachAccepts<decltype(by_reference)>);
  static_assert(!ForEachAccepts<decltype(by_value)>);
  static_assert(!ForEachAccepts<std::function<void(std::uint64_t)>>);
  static_assert(ForEachAccepts<decltype(nothing)>);
  static_assert(ForEachAccepts<void (*)(std::uint64_t)>);
  by_reference(0);
  EXPECT_EQ(by_value(1) + x, 2);
}

// A worker's decoding of a call's head (warm_kernels.hpp: function word, name length, name,
// arguments) names what is cut instead of reading past the kernel string.
TEST(WarmPool, AWorkerRefusesACallWhoseHeadIsCut) {
  const std::uint64_t words[2] = {7, 5};
  const std::string head(reinterpret_cast<const char*>(words), sizeof words);
  EXPECT_THROW(detail::WarmCallHead(std::string_view(head).substr(0, 15)), Error);
  EXPECT_THROW(detail::WarmCallHead(head + "shm-"), Error);  // announces 5 bytes of name, has 4
  const std::string payload = head + "shm-xargs";  // the head's views point into it
  const detail::WarmCallHead ok(payload);
  EXPECT_EQ(ok.fn_address, 7u);
  EXPECT_EQ(ok.results, "shm-x");
  EXPECT_EQ(ok.args, "args");
}
