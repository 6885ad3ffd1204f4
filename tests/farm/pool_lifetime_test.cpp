// What a Pool's futures and calls do when the Pool is moved, closed or destroyed, and when a
// Pool is called from inside one of its own tasks (nested calls), in fork mode and on threads.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "taskfarm/pool.hpp"

using namespace taskfarm;

namespace {

PoolOptions with(Backend backend, int workers = 2) {
  PoolOptions opt;
  opt.backend = backend;
  opt.workers = workers;
  opt.retries = 0;
  return opt;
}

std::string name_of(const testing::TestParamInfo<Backend>& p) { return p.param == Backend::fork ? "fork" : "threads"; }

// Runs `fn` and returns the message of the taskfarm::Error it throws ("" if it throws none).
template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

class PoolLifetime : public testing::TestWithParam<Backend> {};

TEST_P(PoolLifetime, FuturesFollowTheirPoolWhenItIsMoved) {
  Pool pool(with(GetParam()));
  auto first = pool.submit([](int x) { return x * 2; }, 21);
  std::vector<Future<int>> pending;
  for (int i = 0; i < 20; ++i) pending.push_back(pool.submit([](int x) { return x + 1000; }, i));
  Pool moved(std::move(pool));
  EXPECT_EQ(first.get(), 42);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(pending[static_cast<std::size_t>(i)].get(), i + 1000) << "future " << i;
  // and by move assignment, into a Pool that had calls of its own
  Pool target(with(GetParam()));
  auto own = target.submit([] { return 7; });
  auto later = moved.submit([] { return 8; });
  target = std::move(moved);
  EXPECT_EQ(later.get(), 8);
  EXPECT_EQ(target.submit([] { return 9; }).get(), 9);
  // The assignment closed target's own pool, as its destructor would have: `own` delivers if
  // its pool saw it finish (a fast thread may), else it throws.
  int value = 0;
  const std::string msg = error_of([&] { value = own.get(); });
  if (value != 7) {
    EXPECT_NE(msg.find("its Pool was closed"), std::string::npos) << msg;
  }
}

// A pipe whose read end a submitted call polls (at most 30 s): the call runs until open()
// writes a byte (closing would not do: forked calls hold the write end too), and a call
// queued behind it (one worker) stays queued.
struct Gate {
  int fds[2] = {-1, -1};
  Gate() { EXPECT_EQ(::pipe(fds), 0); }
  ~Gate() { open(), ::close(fds[0]); }
  void open() {
    if (fds[1] < 0) return;
    EXPECT_EQ(::write(fds[1], "x", 1), 1);
    ::close(fds[1]);
    fds[1] = -1;
  }
  auto waiter() const {
    return [fd = fds[0]] {
      pollfd p{fd, POLLIN, 0};
      return ::poll(&p, 1, 30000);
    };
  }
};

TEST_P(PoolLifetime, FutureOutlivingItsPoolThrowsInsteadOfCrashing) {
  std::optional<Future<int>> finished, running, queued;
  Gate gate;
  {
    Pool pool(with(GetParam(), 1));
    finished = pool.submit([] { return 5; });
    ASSERT_EQ(finished->get(), 5);
    running = pool.submit(gate.waiter());
    queued = pool.submit([] { return 3; });
    ASSERT_FALSE(queued->ready());
    gate.open();  // on threads the destructor joins the running call: let it end
  }
  EXPECT_EQ(finished->get(), 5) << "a call that finished before the close still delivers";
  for (auto* f : {&running, &queued}) {
    const std::string msg = error_of([&] { static_cast<void>((*f)->get()); });
    EXPECT_NE(msg.find("Future::get: its Pool was closed"), std::string::npos) << msg;
    EXPECT_NE(error_of([&] { static_cast<void>((*f)->ready()); }), "") << "ready() must not say false forever";
    EXPECT_NE(error_of([&] { static_cast<void>((*f)->wait_for(std::chrono::milliseconds(1))); }), "");
  }
}

TEST_P(PoolLifetime, CloseStopsUnfinishedCallsAndThePoolStaysUsable) {
  Pool pool(with(GetParam(), 1));
  Gate gate;
  auto running = pool.submit(gate.waiter());
  auto queued = pool.submit([] { return 3; });
  gate.open();
  pool.close();
  for (auto* f : {&running, &queued}) {
    const std::string msg = error_of([&] { static_cast<void>(f->get()); });
    EXPECT_NE(msg.find("its Pool was closed"), std::string::npos) << msg;
  }
  EXPECT_EQ(pool.submit([] { return 4; }).get(), 4);
}

TEST_P(PoolLifetime, MovedFromPoolThrowsOnEveryCall) {
  Pool pool(with(GetParam()));
  Pool other(std::move(pool));
  auto f = [](std::uint64_t i) { return static_cast<long>(i); };
  const std::vector<std::string> msgs = {
      error_of([&] { pool.map<long>(3, f); }),
      error_of([&] { pool.try_map<long>(3, f); }),
      error_of([&] { pool.for_each(3, [](std::uint64_t) {}); }),
      error_of([&] { pool.imap<long>(3, f, [](std::uint64_t, long) {}); }),
      error_of([&] { pool.imap_unordered<long>(3, f, [](std::uint64_t, long) {}); }),
      error_of([&] { pool.submit([] { return 1; }); }),
      error_of([&] { static_cast<void>(pool.workers()); }),
      error_of([&] { pool.completed(); }),
      error_of([&] { pool.in_flight(); }),
      error_of([&] { pool.wait_any(std::chrono::milliseconds(1)); }),
  };
  for (const auto& m : msgs) EXPECT_NE(m.find("used after it was moved from"), std::string::npos) << m;
  EXPECT_NO_THROW(pool.close()) << "closing a moved-from Pool closes nothing";
  EXPECT_EQ(other.map<long>(3, f), (std::vector<long>{0, 1, 2}));
}

TEST_P(PoolLifetime, MapInsideATaskOfTheSamePoolIsRefusedSayingWhatToDo) {
  Pool pool(with(GetParam()));
  auto r = pool.try_map<long>(10, [&](std::uint64_t i) {
    return pool.map<long>(3, [](std::uint64_t j) { return static_cast<long>(j); })[2] + static_cast<long>(i);
  });
  ASSERT_EQ(r.failed.size(), 10u);
  for (const auto& f : r.failures) {
    EXPECT_NE(f.message.find("Pool::map called from inside a task of the same Pool"), std::string::npos) << f.describe();
    EXPECT_NE(f.message.find("make a new Pool inside the task"), std::string::npos) << f.describe();
  }
  // Every other entry point, from a task: the message names the call.
  auto refused = [&](auto call) {
    auto one = pool.try_map<std::string>(1, [&](std::uint64_t) { return error_of(call); });
    return one.values.empty() ? std::string("no value") : one.values[0];
  };
  EXPECT_NE(refused([&] { pool.for_each(2, [](std::uint64_t) {}); }).find("Pool::for_each called from inside a task"), std::string::npos);
  EXPECT_NE(refused([&] { pool.try_map<int>(2, [](std::uint64_t) { return 1; }); }).find("Pool::try_map called from inside"), std::string::npos);
  EXPECT_NE(refused([&] { pool.imap<int>(2, [](std::uint64_t) { return 1; }, [](std::uint64_t, int) {}); }).find("Pool::imap called from inside"), std::string::npos);
  EXPECT_NE(refused([&] { pool.submit([] { return 1; }); }).find("Pool::submit called from inside"), std::string::npos);
  // The pool is still whole afterwards.
  EXPECT_EQ(pool.map<long>(3, [](std::uint64_t j) { return static_cast<long>(j); }), (std::vector<long>{0, 1, 2}));
}

TEST_P(PoolLifetime, SubmitInsideASubmittedCallIsRefused) {
  Pool pool(with(GetParam()));
  auto f = pool.submit([&pool] { return pool.submit([] { return 1; }).get(); });
  try {
    static_cast<void>(f.get());
    FAIL() << "a nested submit was not refused";
  } catch (const TaskFailed& e) {
    EXPECT_NE(std::string(e.what()).find("Pool::submit called from inside a task of the same Pool"), std::string::npos)
        << e.what();
  }
}

TEST_P(PoolLifetime, MapFromASinkOfTheSamePoolIsRefused) {
  Pool pool(with(GetParam()));
  std::string msg;
  pool.imap<long>(
      2, [](std::uint64_t i) { return static_cast<long>(i); },
      [&](std::uint64_t, long) {
        if (msg.empty()) msg = error_of([&] { pool.map<long>(1, [](std::uint64_t) { return 1L; }); });
      });
  EXPECT_NE(msg.find("Pool::map called while another call of the same Pool is running"), std::string::npos) << msg;
}

TEST_P(PoolLifetime, NewPoolInsideATaskWorks) {
#if defined(__SANITIZE_THREAD__)
  if (GetParam() == Backend::fork) GTEST_SKIP() << "TSan starts a thread of its own in a forked worker: a fork-mode Pool there refuses";
#endif
  Pool pool(with(GetParam()));
  // In a forked worker, a fork-mode Pool forks grandchildren; on a task thread, a fork-mode Pool
  // would refuse (other threads exist): the threads backend is the one to nest there.
  const Backend inner_backend = GetParam();
  auto r = pool.map<long>(4, [inner_backend](std::uint64_t i) {
    Pool inner(with(inner_backend, 2));
    const auto v = inner.map<long>(3, [i](std::uint64_t j) { return static_cast<long>(i * 10 + j); });
    return v[0] + v[1] + v[2];
  });
  EXPECT_EQ(r, (std::vector<long>{3, 33, 63, 93}));
}

INSTANTIATE_TEST_SUITE_P(Backends, PoolLifetime, testing::Values(Backend::fork, Backend::threads), name_of);

TEST(PoolLifetime, ForkedCopyOfTheProcessRefusesThePoolAndLeavesItAlone) {
  Pool pool(with(Backend::fork));
  Gate gate;
  auto f = pool.submit([w = gate.waiter()] { return w() + 10; });
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const std::string msg = error_of([&] { pool.map<int>(2, [](std::uint64_t) { return 1; }); });
    const bool refused = msg.find("a fork of process") != std::string::npos;
    { Pool gone(std::move(pool)); }  // its destructor must not stop the parent's calls
    ::_exit(refused ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  gate.open();
  EXPECT_EQ(f.get(), 11) << "the parent's call survived the child's copy";
}

}  // namespace
