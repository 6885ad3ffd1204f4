// One spawn path (issue 12): Pool::submit's processes are started like a map's workers — the
// memory limit, the thread environment, stderr captured, no other call's descriptors — and a
// call past its timeout gets SIGTERM, then SIGKILL after the grace, with the causes map reports.
// A memory limit that cannot be applied is an error with cause `start`, never silently dropped;
// kill_and_reap says when it reaped nothing.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include "taskfarm/farm.hpp"
#include "taskfarm/pool.hpp"
#include "worker_process.hpp"

using namespace taskfarm;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t kLimit = 1ull << 30;  // 1 GiB of address space per process
// Past the limit, and not touched: without the limit the allocation succeeds (it only reserves
// address space), so a call that fails here failed because of the limit.
int allocate_past_the_limit() {
  char* volatile p = new char[std::size_t{4} << 30];
  p[0] = 1;
  delete[] p;
  return 1;
}

FailureRecord failure_of(const std::function<void()>& get) {
  try {
    get();
  } catch (const TaskFailed& e) {
    if (!e.failures().empty()) return e.failures().back();
    ADD_FAILURE() << "TaskFailed without a record: " << e.what();
    return {};
  }
  ADD_FAILURE() << "no TaskFailed";
  return {};
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TASKFARM_NO_RLIMIT_AS 1
#endif

}  // namespace

TEST(SpawnPath, SubmitPastTheMemoryLimitFailsWithCauseMemoryLikeMap) {
#ifdef TASKFARM_NO_RLIMIT_AS
  GTEST_SKIP() << "ASan and TSan reserve terabytes of address space for shadow memory: RLIMIT_AS cannot apply";
#endif
  PoolOptions o;
  o.workers = 2;
  o.retries = 0;
  o.memory_limit = kLimit;
  o.throw_on_failure = false;
  Pool pool(o);
  auto fine = pool.submit([] { return 42; });
  auto greedy = pool.submit([] { return allocate_past_the_limit(); });
  EXPECT_EQ(fine.get(), 42) << "the limit leaves room for an ordinary call";
  const FailureRecord f = failure_of([&] { greedy.get(); });
  EXPECT_EQ(f.cause, FailureCause::memory) << f.describe();
  EXPECT_NE(f.message.find("1.0 GiB"), std::string::npos) << f.message;

  const auto m = pool.try_map<int>(1, [](std::uint64_t) { return allocate_past_the_limit(); });
  ASSERT_EQ(m.failures.size(), 1u);
  EXPECT_EQ(m.failures[0].cause, f.cause) << "map and submit report the same cause";
  EXPECT_EQ(m.failures[0].exception_type, f.exception_type);
}

TEST(SpawnPath, SubmitPastTheTimeoutGetsSigtermThenSigkillLikeMap) {
  PoolOptions o;
  o.workers = 2;
  o.retries = 0;
  o.task_timeout = 200ms;
  o.kill_grace = 100ms;
  o.throw_on_failure = false;
  Pool pool(o);
  auto stuck = pool.submit([] {
    for (;;) ::pause();  // SIGTERM ends it
    return 0;
  });
  auto deaf = pool.submit([] {
    ::signal(SIGTERM, SIG_IGN);  // only SIGKILL ends it
    for (;;) ::pause();
    return 0;
  });
  const FailureRecord termed = failure_of([&] { stuck.get(); });
  EXPECT_EQ(termed.cause, FailureCause::timeout) << termed.describe();
  EXPECT_EQ(termed.signal, SIGTERM) << "SIGTERM first, as the farm does";
  EXPECT_NE(termed.message.find("200 ms"), std::string::npos) << termed.message;
  const FailureRecord killed = failure_of([&] { deaf.get(); });
  EXPECT_EQ(killed.cause, FailureCause::timeout) << killed.describe();
  EXPECT_EQ(killed.signal, SIGKILL) << "SIGKILL after the grace";

  const auto m = pool.try_map<int>(1, [](std::uint64_t) {
    for (;;) ::pause();
    return 0;
  });
  ASSERT_EQ(m.failures.size(), 1u);
  EXPECT_EQ(m.failures[0].cause, termed.cause) << "map and submit report the same cause";
}

TEST(SpawnPath, SubmittedCallsGetTheThreadEnvironmentAndTheirStderrIsKept) {
  ::unsetenv("OMP_NUM_THREADS");
  PoolOptions o;
  o.workers = 2;
  o.retries = 0;
  o.forward_stderr = false;
  Pool pool(o);
  auto env = pool.submit([] {
    const char* v = std::getenv("OMP_NUM_THREADS");
    return std::string(v != nullptr ? v : "(unset)");
  });
  auto loud = pool.submit([] {
    std::fputs("about to abort on purpose\n", stderr);
    std::fflush(stderr);
    std::abort();
    return 0;
  });
  EXPECT_EQ(env.get(), std::to_string(std::max(1, usable_cpus() / 2)));
  const FailureRecord f = failure_of([&] { loud.get(); });
  EXPECT_EQ(f.cause, FailureCause::signal);
  EXPECT_NE(f.stderr_tail.find("about to abort on purpose"), std::string::npos) << "tail: " << f.stderr_tail;
}

// FarmOptions::stdout_to_stderr: what a worker prints outside a capture goes into its stderr pipe
// (kept in a failure's tail), in map's workers and submit's alike.
TEST(SpawnPath, StdoutToStderrSendsAWorkersPrintsIntoItsStderrPipe) {
  PoolOptions o;
  o.workers = 1;
  o.retries = 0;
  o.forward_stderr = false;
  o.stdout_to_stderr = true;
  o.throw_on_failure = false;
  Pool pool(o);
  pool.for_each(1, [](std::uint64_t) {
    std::fputs("printed on stdout by map\n", stdout);
    std::fflush(stdout);
    std::abort();
  });
  const RunReport& r = pool.last_report();
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_NE(r.failures[0].stderr_tail.find("printed on stdout by map"), std::string::npos) << r.failures[0].stderr_tail;
  auto loud = pool.submit([] {
    std::fputs("printed on stdout by submit\n", stdout);
    std::fflush(stdout);
    std::abort();
    return 0;
  });
  const FailureRecord f = failure_of([&] { loud.get(); });
  EXPECT_NE(f.stderr_tail.find("printed on stdout by submit"), std::string::npos) << "tail: " << f.stderr_tail;
}

TEST(SpawnPath, SubmittedCallKeepsNoDescriptorOfAnotherCall) {
  PoolOptions o;
  o.workers = 2;
  Pool pool(o);
  int gate[2];
  ASSERT_EQ(::pipe2(gate, O_CLOEXEC), 0);
  // The first call holds its process until the gate has a byte (at most 30 s; every process
  // forked here holds the write end too, so closing it would not be seen).
  auto holder = pool.submit([fd = gate[0]] {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 30'000);
  });
  // The second counts the pidfds it inherited: the master's handle of the first call would be one.
  auto counter = pool.submit([] {
    int pidfds = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
      std::error_code ec;
      if (std::filesystem::read_symlink(e.path(), ec).string() == "anon_inode:[pidfd]") ++pidfds;
    }
    return pidfds;
  });
  EXPECT_EQ(counter.get(), 0);
  ASSERT_EQ(::write(gate[1], "x", 1), 1);
  EXPECT_EQ(holder.get(), 1);
  ::close(gate[0]);
  ::close(gate[1]);
}

namespace {

/// Runs `body` in a forked child without CAP_SYS_RESOURCE and under a hard RLIMIT_AS of 2^56
/// bytes (more than any process here maps, sanitizers included): a limit asked above that
/// cannot be applied, whoever runs the test. Returns the child's exit code (body's result), or
/// -1 if it did not end within 60 s.
int without_raising_limits(const std::function<int()>& body) {
  const pid_t child = ::fork();
  if (child == 0) {
    __user_cap_header_struct head{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct caps[2] = {};
    static_assert(CAP_SYS_RESOURCE < 32, "in the first word of the capability sets");
    const unsigned bit = 1u << CAP_SYS_RESOURCE;
    if (::syscall(SYS_capget, &head, caps) != 0) ::_exit(90);
    caps[0].effective &= ~bit, caps[0].permitted &= ~bit, caps[0].inheritable &= ~bit;
    ::prctl(PR_CAPBSET_DROP, CAP_SYS_RESOURCE, 0, 0, 0);  // fails without CAP_SETPCAP: then not ours to drop
    const rlimit cap{rlim_t{1} << 56, rlim_t{1} << 56};
    if (::syscall(SYS_capset, &head, caps) != 0 || ::setrlimit(RLIMIT_AS, &cap) != 0) {
      std::perror("dropping CAP_SYS_RESOURCE, lowering RLIMIT_AS");
      ::_exit(91);
    }
    int code = 92;
    try {
      code = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "escaped: %s\n", e.what());
    }
    std::fflush(nullptr);
    ::_exit(code);
  }
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, child, 0));
  pollfd p{pidfd, POLLIN, 0};
  const bool ended = ::poll(&p, 1, 60'000) == 1;
  if (!ended) ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  ::close(pidfd);
  if (!ended) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

constexpr std::uint64_t kUnappliable = std::uint64_t{1} << 57;

/// 0 if `text` names the limit that could not be applied and why; else says what is missing.
int names_the_limit(const std::string& text) {
  for (const char* part : {"cannot apply the memory limit of", "RLIMIT_AS", "Operation not permitted"})
    if (text.find(part) == std::string::npos) return std::fprintf(stderr, "'%s' not in: %s\n", part, text.c_str()), 1;
  return 0;
}

}  // namespace

TEST(SpawnPath, MemoryLimitThatCannotBeAppliedStopsAMapWithCauseStart) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "TSan starts a thread of its own in a forked child: a fork-mode Pool there refuses";
#endif
  EXPECT_EQ(without_raising_limits([] {
    PoolOptions o;
    o.workers = 2;
    o.memory_limit = kUnappliable;
    o.forward_stderr = false;
    Pool pool(o);
    try {
      pool.map<int>(10, [](std::uint64_t i) { return static_cast<int>(i); });
      return std::fprintf(stderr, "the map ran without its memory limit\n"), 10;
    } catch (const TaskFailed& e) {
      if (const int bad = names_the_limit(e.what())) return bad;
      const auto& f = pool.last_report().failures;
      if (f.empty() || f.back().cause != FailureCause::start || f.back().error != EPERM) return 11;
    }
    return 0;
  }), 0);
}

TEST(SpawnPath, MemoryLimitThatCannotBeAppliedFailsASubmittedCallWithCauseStart) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "TSan starts a thread of its own in a forked child: a fork-mode Pool there refuses";
#endif
  EXPECT_EQ(without_raising_limits([] {
    PoolOptions o;
    o.workers = 2;
    o.memory_limit = kUnappliable;
    Pool pool(o);
    auto f = pool.submit([] { return 1; });
    try {
      f.get();
      return std::fprintf(stderr, "the call ran without its memory limit\n"), 10;
    } catch (const TaskFailed& e) {
      if (e.failures().size() != 1 || e.failures()[0].cause != FailureCause::start || e.failures()[0].error != EPERM) return 11;
      return names_the_limit(e.failures()[0].message);
    }
  }), 0);
}

TEST(SpawnPath, MemoryLimitThatCannotBeAppliedStopsAProgramRunWithCauseStart) {
  EXPECT_EQ(without_raising_limits([] {
    FarmOptions o;
    o.workers = 2;
    o.memory_limit = kUnappliable;
    o.forward_stderr = false;
    Farm farm = Farm::program(o, FAULT_WORKER);
    JobSpec job;
    job.extent = {10};
    const RunReport r = farm.run(job);
    if (r.succeeded != 0) return std::fprintf(stderr, "the workers ran without their memory limit\n"), 10;
    if (r.failures.empty() || r.failures.back().cause != FailureCause::start) return 11;
    return names_the_limit(r.farm_error);
  }), 0);
}

TEST(SpawnPath, KillAndReapSaysSoWhenItReapedNothing) {
  int gate[2];
  ASSERT_EQ(::pipe2(gate, O_CLOEXEC), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    char c;
    [[maybe_unused]] auto r = ::read(gate[0], &c, 1);  // until killed, or the test ends
    ::_exit(0);
  }
  ::close(gate[0]);
  {
    // A handle that is not this child's pidfd: waitid fails (EBADF), nothing is reaped.
    ChildProcess child(pid, UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)), UniqueFd());
    EXPECT_FALSE(child.kill_and_reap().has_value()) << "no exit status was seen: none may be reported";
    EXPECT_FALSE(child.reaped());
  }  // given up: the destructor does not wait again
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid) << "the child was not reaped by anyone else";
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "kill_and_reap did kill it";
  ::close(gate[1]);
}
