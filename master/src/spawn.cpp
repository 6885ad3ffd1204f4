#include "spawn.hpp"

#include <fcntl.h>
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

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "taskfarm/detail/worker_loop.hpp"

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

// Runs in the child between fork and exec (or the body): async-signal-safe calls only.
void setup_child(pid_t master, const SpawnLimits& limits) noexcept {
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != master) ::_exit(detail::kExitSetupFailed);
  if (limits.memory_limit != 0) {
    const rlimit rl{limits.memory_limit, limits.memory_limit};
    ::setrlimit(RLIMIT_AS, &rl);
  }
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
};

// The child's side of spawn_program, between vfork and exec. It is bound to the master's life
// first (PR_SET_PDEATHSIG survives exec): from its first instruction, not from its run_worker
// call, so a program that never gets there (still loading, or no worker program at all) dies
// with a SIGKILLed master too. posix_spawn cannot ask for that.
[[noreturn]] __attribute__((noinline)) void exec_worker(const ExecPlan& p) noexcept {
  ::setpgid(0, 0);  // its own process group: killpg reaches its children
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != p.master) ::_exit(detail::kExitSetupFailed);
  if (p.memory_limit != 0) {
    const rlimit rl{p.memory_limit, p.memory_limit};
    ::setrlimit(RLIMIT_AS, &rl);
  }
  // stderr first: the channel's dup2 may reuse the stderr pipe's number. dup2 clears
  // close-on-exec on its target; dup2(fd, fd) would not, hence the explicit flag then.
  bool ok = ::dup2(p.stderr_write, STDERR_FILENO) >= 0 &&
            (p.channel != kChannelFd ? ::dup2(p.channel, kChannelFd) >= 0 : ::fcntl(kChannelFd, F_SETFD, 0) >= 0);
  if (ok) {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);  // SIGKILL, SIGSTOP: EINVAL, harmless
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(p.path, p.argv, p.envp);
  }
  const int e = errno;
  [[maybe_unused]] const auto w = ::write(p.report, &e, sizeof e);
  ::_exit(127);
}

// vfork in a frame of its own: the compiler must treat it like setjmp (it returns twice), which
// only a function with no locals of its own can afford.
__attribute__((noinline)) pid_t vfork_exec(const ExecPlan& p) noexcept {
  const pid_t pid = ::vfork();
  if (pid == 0) exec_worker(p);
  return pid;
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

WorkerProcess spawn_forked(ShmSegment slot, const SpawnLimits& limits, const std::vector<int>& close_in_child,
                           const std::function<int(Channel, ShmSegment)>& body) {
  auto [master_end, worker_end] = Channel::make_pair();
  Pipe err = make_stderr_pipe();
  const pid_t master = ::getpid();
  std::fflush(nullptr);  // else the child would write the parent's buffered output again
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork of a worker");
  if (pid == 0) {
    setup_child(master, limits);
    for (int fd : close_in_child) ::close(fd);
    { UniqueFd drop = master_end.release(); }
    err.read.reset();
    ::dup2(err.write.get(), STDERR_FILENO);
    ::close(err.write.release());
    for (const auto& [k, v] : limits.env) ::setenv(k.c_str(), v.c_str(), 0);
    int code = detail::kExitSetupFailed;
    try {
      code = body(std::move(worker_end), std::move(slot));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "taskfarm worker %d: %s\n", static_cast<int>(::getpid()), e.what());
    } catch (...) {
    }
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(code);  // never run the parent's atexit handlers or destructors
  }
  worker_end.release().reset();
  err.write.reset();
  return WorkerProcess(pid, open_pidfd(pid, "worker"), std::move(master_end), std::move(err.read), std::move(slot));
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
  for (const auto& [k, v] : limits.env)
    if (std::getenv(k.c_str()) == nullptr) env.push_back(k + "=" + v);
  // The worker runtime binds itself to this pid (PR_SET_PDEATHSIG + getppid check) and
  // applies the memory limit before it serves anything.
  env.push_back("TASKFARM_WORKER=" + std::to_string(kChannelFd) + ":" + slot.name() + ":" + std::to_string(master) +
                ":" + std::to_string(limits.memory_limit));
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
                      limits.memory_limit};
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
  int exec_errno = 0;
  ssize_t n = 0;
  while ((n = ::read(report_read.get(), &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {}
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {  // it exited without exec: reap it, say why
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {}
    throw SpawnError("cannot start worker program " + exe + ": " + std::strerror(exec_errno), exec_errno);
  }
  err.write.reset();
  child_fd.reset();
  return WorkerProcess(pid, open_pidfd(pid, "worker"), std::move(master_end), std::move(err.read), std::move(slot));
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
