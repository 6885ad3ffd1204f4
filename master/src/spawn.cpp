#include "spawn.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pthread.h>

// Boost.Process v2 finds programs on PATH. Its launchers are not used (docs/design.md §5).
// 1.81 with std::filesystem forgets two includes of its own.
#define BOOST_PROCESS_USE_STD_FS 1
#include <boost/optional.hpp>
#include <boost/type_traits.hpp>
#include <boost/process/v2/environment.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "proc_info.hpp"
#include "taskfarm/detail/exec_signals.hpp"
#include "taskfarm/detail/worker_loop.hpp"
#include "taskfarm/farm.hpp"
#include "taskfarm/shm_segment.hpp"

namespace bp = boost::process::v2;

namespace taskfarm {
namespace {

constexpr int kChannelFd = 3;


struct Pipe {
  UniqueFd read, write;
};

Pipe make_stderr_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe for worker stderr");
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  return {UniqueFd(fds[0]), UniqueFd(fds[1])};
}

// What a child reports to the master when its setup failed: which step, and errno. It is
// written to a close-on-exec pipe; a child that execs (or, forked, finishes its setup) closes
// its end without writing, so the master reads either one whole report or EOF.
enum class SetupStep : int { exec = 1, memory_limit = 2 };
struct SetupReport {
  SetupStep step;
  int error;
};

// Runs in the child between fork or vfork and exec (or the body): async-signal-safe calls only,
// nothing that allocates (a vfork child shares the master's memory). What every process the
// master starts gets first: its own process group (killpg reaches what it starts), its life
// bound to the master's, its memory limit. Returns false if a step failed (SetupReport says
// which); a child whose master is already gone exits here.
bool setup_child(pid_t master, std::uint64_t memory_limit, SetupReport& failed) noexcept {
  ::setpgid(0, 0);  // fails only for a session leader, which a fresh child is not
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != master) ::_exit(detail::kExitSetupFailed);
  if (memory_limit != 0) {
    // Soft and hard: the task cannot raise it again. Raising a hard limit needs
    // CAP_SYS_RESOURCE, so a limit above this process's own hard limit fails here.
    const rlimit rl{memory_limit, memory_limit};
    if (::setrlimit(RLIMIT_AS, &rl) != 0) {
      failed = {SetupStep::memory_limit, errno};
      return false;
    }
  }
  return true;
}

[[noreturn]] void report_and_exit(int fd, const SetupReport& r) noexcept {
  [[maybe_unused]] const auto w = ::write(fd, &r, sizeof r);
  ::_exit(127);
}

// The one sentence a failed setup becomes (in the master, where allocating is fine).
std::string describe_setup_failure(const SetupReport& r, std::uint64_t memory_limit, const std::string& what) {
  if (r.step == SetupStep::exec) return "cannot start " + what + ": " + std::strerror(r.error);
  std::string s = "cannot apply the memory limit of " + format_bytes(memory_limit) + " (RLIMIT_AS) to " + what + ": " +
                  std::strerror(r.error);
  rlimit own{};
  if (r.error == EPERM && ::getrlimit(RLIMIT_AS, &own) == 0 && own.rlim_max != RLIM_INFINITY)
    s += " (this process's hard limit is " + format_bytes(own.rlim_max) + "; raising it needs CAP_SYS_RESOURCE)";
  return s;
}

// Reads the report of a child forked with a report pipe whose write end the master has closed:
// returns once the child finished its setup (EOF), throws SpawnError with the reason if it
// failed (the caller's ChildProcess then kills and reaps it). The child's setup is a handful of
// system calls, so the deadline is only there so that nothing waits without one.
void await_setup(int report, std::uint64_t memory_limit, const std::string& what) {
  constexpr int kSetupDeadlineMs = 10'000;
  pollfd p{report, POLLIN, 0};
  int ready = 0;
  while ((ready = ::poll(&p, 1, kSetupDeadlineMs)) < 0 && errno == EINTR) {}
  if (ready == 0) throw SpawnError("cannot start " + what + ": its setup did not finish within 10 s", ETIMEDOUT);
  SetupReport r{};
  ssize_t n = 0;
  while ((n = ::read(report, &r, sizeof r)) < 0 && errno == EINTR) {}
  if (n == static_cast<ssize_t>(sizeof r)) throw SpawnError(describe_setup_failure(r, memory_limit, what), r.error);
}

// What the child of a vfork needs, all made before the vfork: it shares the master's memory
// until it execs and may only make system calls.
struct ExecPlan {
  const char* path;
  char* const* argv;
  char* const* envp;
  pid_t master;
  int channel, stderr_write, report;
  std::uint64_t memory_limit;
  bool stdout_to_stderr;
};

// The child's side of spawn_program, between vfork and exec. It is bound to the master's life
// first (PR_SET_PDEATHSIG survives exec): from its first instruction, not from its run_worker
// call, so a program that never gets there (still loading, or no worker program at all) dies
// with a SIGKILLed master too. posix_spawn cannot ask for that.
[[noreturn]] __attribute__((noinline)) void exec_worker(const ExecPlan& p) noexcept {
  SetupReport failed{};
  if (!setup_child(p.master, p.memory_limit, failed)) report_and_exit(p.report, failed);
  // stderr first: the channel's dup2 may reuse the stderr pipe's number. dup2 clears
  // close-on-exec on its target; dup2(fd, fd) would not, hence the explicit flag then.
  // stdout last: the channel may have had its number (a master whose stdout is closed).
  bool ok = ::dup2(p.stderr_write, STDERR_FILENO) >= 0 &&
            (p.channel != kChannelFd ? ::dup2(p.channel, kChannelFd) >= 0 : ::fcntl(kChannelFd, F_SETFD, 0) >= 0) &&
            (!p.stdout_to_stderr || ::dup2(STDERR_FILENO, STDOUT_FILENO) >= 0);
  if (ok) {
    detail::reset_signals_for_exec();
    ::execve(p.path, p.argv, p.envp);
  }
  report_and_exit(p.report, SetupReport{SetupStep::exec, errno});
}

// vfork in a frame of its own: the compiler must treat it like setjmp (it returns twice), which
// only a function with no locals of its own can afford.
__attribute__((noinline)) pid_t vfork_exec(const ExecPlan& p) noexcept {
  const pid_t pid = ::vfork();
  if (pid == 0) exec_worker(p);
  return pid;
}

// A forked child's first call of a libc function this process never called goes through lazy
// binding — the dynamic linker's symbol lookup, a dozen page faults in the child (~0.2 ms per
// worker on a VM whose faults are slow) — in every child, since the binding it writes dies with
// it. Called once here, with arguments that make them fail and change nothing, the functions
// only a child calls are bound in the master, and its children inherit the binding. (Nothing to
// do where the program was linked with -z now.)
void bind_child_calls() noexcept {
  static const bool bound = [] {
    ::setpgid(0, -1);  // EINVAL
    int sig = 0;
    ::prctl(PR_GET_PDEATHSIG, &sig);
    [[maybe_unused]] const pid_t parent = ::getppid();
    ::dup2(-1, -1);  // EBADF
    const rlimit none{};
    ::setrlimit(RLIMIT_NLIMITS, &none);  // EINVAL
    struct stat st {};
    ::fstat(-1, &st);  // EBADF (a worker checks its channel's identity: Channel::guard_identity)
    return true;
  }();
  (void)bound;
}

// Whether NAME of a "NAME=value" entry is in this process's environment (no allocation).
bool in_environ(const std::string& entry) {
  const std::size_t len = entry.find('=') + 1;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, entry.c_str(), len) == 0) return true;
  return false;
}

// The environment a forked child gets — this process's, plus the entries of `limits.env` whose
// names it lacks — or nullptr: nothing to add, the child keeps environ. Built before the fork,
// the child only points `environ` at it: setenv in the child allocates (unsafe in a child forked
// beside other threads, fork_with_threads) and wrote a dozen fresh pages of each worker. The
// array is this thread's, kept from fork to fork and written only where it changed, so that
// the master writes no page it shares with the worker it forked last.
char** child_environment(const SpawnLimits& limits) {
  thread_local std::vector<char*> envp;
  std::size_t n = 0;
  for (char** e = environ; *e != nullptr; ++e) ++n;
  std::size_t size = n + 1;
  for (const std::string& entry : limits.env)
    if (!in_environ(entry)) ++size;
  if (size == n + 1) return nullptr;
  if (envp.size() != size) envp.resize(size);
  auto put = [](char*& slot, char* v) {
    if (slot != v) slot = v;
  };
  std::size_t k = 0;
  for (; k < n; ++k) put(envp[k], environ[k]);
  for (const std::string& entry : limits.env)
    if (!in_environ(entry)) put(envp[k++], const_cast<char*>(entry.c_str()));  // the child never writes it
  put(envp[k], nullptr);
  return envp.data();
}

}  // namespace

bool for_want_of_resources(int err) noexcept {
  return err == EAGAIN || err == ENOMEM || err == EMFILE || err == ENFILE || err == ENOSPC || err == ENOBUFS ||
         err == EINTR;
}

std::string resolve_program(const std::string& program) {
  auto check = [](const std::string& path) -> int {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return errno;
    if (S_ISDIR(st.st_mode)) return EISDIR;
    if (::access(path.c_str(), X_OK) != 0) return errno;
    return 0;
  };
  if (program.find('/') != std::string::npos) {
    if (const int err = check(program)) throw SpawnError("worker program " + program + ": " + std::strerror(err), err);
    return program;
  }
  // PATH search as execvp does it: Boost.Process's find_executable.
  const bp::filesystem::path found = bp::environment::find_executable(program);
  if (found.empty()) throw SpawnError("worker program " + program + ": not found in PATH", ENOENT);
  return found.string();
}

SpawnLimits spawn_limits(std::uint64_t memory_limit, bool set_thread_env, std::size_t workers) {
  SpawnLimits l;
  l.memory_limit = memory_limit;
  if (set_thread_env) {
    const std::string per = std::to_string(std::max(1, usable_cpus() / static_cast<int>(std::max<std::size_t>(1, workers))));
    for (const char* k : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"})
      l.env.push_back(std::string(k) + "=" + per);
  }
  return l;
}

ChildProcess spawn_child(const SpawnLimits& limits, const std::vector<int>& close_in_child, int also_close,
                         const std::function<int()>& body, const std::string& what) {
  Pipe err = make_stderr_pipe();
  // Only a memory limit can fail in the child's setup: then the master waits for its report, so
  // that the failure is this call's SpawnError and no body runs without its limit.
  UniqueFd report_read, report_write;
  if (limits.memory_limit != 0) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe for starting " + what);
    report_read.reset(fds[0]);
    report_write.reset(fds[1]);
  }
  char** const child_env = child_environment(limits);
  bind_child_calls();
  const pid_t master = ::getpid();
  std::fflush(nullptr);  // else the child would write the parent's buffered output again
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork of " + what);
  if (pid == 0) {
    SetupReport failed{};
    if (!setup_child(master, limits.memory_limit, failed)) report_and_exit(report_write.get(), failed);
    report_write.reset();  // EOF: the setup is done
    report_read.reset();
    for (int fd : close_in_child) ::close(fd);
    if (also_close >= 0) ::close(also_close);
    err.read.reset();
    ::dup2(err.write.get(), STDERR_FILENO);
    ::close(err.write.release());
    if (limits.stdout_to_stderr) ::dup2(STDERR_FILENO, STDOUT_FILENO);
    if (child_env != nullptr) environ = child_env;
    int code = detail::kExitSetupFailed;
    try {
      code = body();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "taskfarm: %s (pid %d): %s\n", what.c_str(), static_cast<int>(::getpid()), e.what());
    } catch (...) {
    }
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(code);  // never run the parent's atexit handlers or destructors
  }
  err.write.reset();
  report_write.reset();
  ChildProcess child(pid, open_pidfd(pid, what), std::move(err.read));
  if (report_read) await_setup(report_read.get(), limits.memory_limit, what);  // on a throw, `child` is killed and reaped
  return child;
}

WorkerProcess spawn_forked(ShmSegment slot, const SpawnLimits& limits, const std::vector<int>& close_in_child,
                           const std::function<int(Channel, ShmSegment)>& body) {
  proc::require_single_thread(limits.fork_with_threads, "fork mode");
  // Not a structured binding: a lambda may not capture one before C++20's P1091 (clang 14).
  std::pair<Channel, Channel> ends = Channel::make_pair();
  Channel& master_end = ends.first;
  Channel& worker_end = ends.second;
  // In the child: its own copies of the worker's end and the slot, moved into the body. Behind
  // one reference, which std::function keeps in place: a heap copy would be freed after the
  // fork, a write to a page the master still shares with the child (a page fault, and a copy).
  struct Start {
    Channel& channel;
    ShmSegment& slot;
    const std::function<int(Channel, ShmSegment)>& body;
  } start{worker_end, slot, body};
  ChildProcess child = spawn_child(limits, close_in_child, master_end.fd(),
                                   [&start] { return start.body(std::move(start.channel), std::move(start.slot)); }, "a forked worker");
  worker_end.release().reset();
  return WorkerProcess(std::move(child), std::move(master_end), std::move(slot));
}

WorkerProcess spawn_program(ShmSegment slot, const SpawnLimits& limits, const std::string& program,
                            const std::vector<std::string>& args) {
  const std::string exe = resolve_program(program);
  auto [master_end, worker_end] = Channel::make_pair();
  UniqueFd child_fd = worker_end.release();
  Pipe err = make_stderr_pipe();
  const pid_t master = ::getpid();

  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "TASKFARM_WORKER=", 16) != 0) env.emplace_back(*e);
  for (const std::string& e : limits.env)
    if (!in_environ(e)) env.push_back(e);
  // The worker runtime binds itself to this pid again (PR_SET_PDEATHSIG + getppid check): a
  // set-user-ID program loses the binding at exec. The memory limit is set before the exec.
  env.push_back("TASKFARM_WORKER=" + std::to_string(kChannelFd) + ":" + slot.name() + ":" + std::to_string(master));
  std::vector<char*> envp, argv;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string argv0 = exe;
  argv.push_back(argv0.data());
  std::vector<std::string> arg_copy = args;
  for (auto& a : arg_copy) argv.push_back(a.data());
  argv.push_back(nullptr);

  // An exec failure comes back through a close-on-exec pipe (nothing at all on success).
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) throw_errno("pipe for starting worker program " + exe);
  UniqueFd report_read(report[0]), report_write(report[1]);
  const ExecPlan plan{exe.c_str(), argv.data(), envp.data(), master, child_fd.get(), err.write.get(), report[1],
                      limits.memory_limit, limits.stdout_to_stderr};
  // No handler of ours may run in the child, which shares our memory until it execs: every
  // signal is blocked across the vfork (the child resets them before exec), as posix_spawn does.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t pid = vfork_exec(plan);
  const int vfork_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) throw SpawnError("cannot start worker program " + exe + ": " + std::strerror(vfork_errno), vfork_errno);
  report_write.reset();
  // The vfork child has exec'd or exited by now: the report is there, or EOF.
  SetupReport failed{};
  ssize_t n = 0;
  while ((n = ::read(report_read.get(), &failed, sizeof failed)) < 0 && errno == EINTR) {}
  if (n == static_cast<ssize_t>(sizeof failed)) {  // it exited without exec: reap it, say why
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {}
    throw SpawnError(describe_setup_failure(failed, limits.memory_limit, "worker program " + exe), failed.error);
  }
  err.write.reset();
  child_fd.reset();
  ChildProcess child(pid, open_pidfd(pid, "worker program " + exe), std::move(err.read));
  return WorkerProcess(std::move(child), std::move(master_end), std::move(slot));
}

UniqueFd open_pidfd(pid_t pid, const std::string& what) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    const int err = errno;
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {}  // SIGKILLed: it ends promptly
    throw SystemError("pidfd_open for " + what + " pid " + std::to_string(pid), err);
  }
  return UniqueFd(fd);
}

}  // namespace taskfarm
