#include "child_process.hpp"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "taskfarm/detail/exec_signals.hpp"
#include "taskfarm/error.hpp"

extern char** environ;

namespace taskfarm::exec {
namespace {

// What the child of a vfork needs, all made before the vfork: it shares the worker's memory
// until it execs and may only make system calls. It writes the exec's errno into `exec_errno`
// (the worker's memory: vfork suspends the worker until the child execs or exits).
struct ExecPlan {
  const char* path;
  char* const* argv;
  StandardFds fds;
  pid_t worker;
  volatile int* exec_errno;
};

// dup2 clears close-on-exec on its target; dup2(fd, fd) would not, hence the flag then.
bool place(int fd, int target) noexcept {
  return fd == target ? ::fcntl(fd, F_SETFD, 0) == 0 : ::dup2(fd, target) >= 0;
}

[[noreturn]] __attribute__((noinline)) void exec_command(const ExecPlan& p) noexcept {
  // Bound to the worker's life: a worker killed (timeout, crash, chaos) takes its command along.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != p.worker) ::_exit(127);
  if (place(p.fds.in, STDIN_FILENO) && place(p.fds.out, STDOUT_FILENO) && place(p.fds.err, STDERR_FILENO)) {
    taskfarm::detail::reset_signals_for_exec();
    ::execve(p.path, p.argv, environ);
  }
  *p.exec_errno = errno;
  ::_exit(127);
}

// vfork in a frame of its own: the compiler must treat it like setjmp (it returns twice), which
// only a function with no locals of its own can afford.
__attribute__((noinline)) pid_t vfork_exec(const ExecPlan& p) noexcept {
  const pid_t pid = ::vfork();
  if (pid == 0) exec_command(p);
  return pid;
}

bool executable_file(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

}  // namespace

std::string find_program(const std::string& program, std::string& why) {
  if (program.empty()) {
    why = "an empty command name";
    return {};
  }
  if (program.find('/') != std::string::npos) return program;  // exec says what is wrong with it
  const char* env = std::getenv("PATH");
  const std::string_view path = env != nullptr && *env != '\0' ? env : "/usr/local/bin:/usr/bin:/bin";
  for (std::size_t start = 0; start <= path.size();) {
    std::size_t colon = path.find(':', start);
    if (colon == std::string_view::npos) colon = path.size();
    std::string dir(path.substr(start, colon - start));
    if (dir.empty()) dir = ".";  // an empty PATH entry is the current directory
    std::string candidate = dir + "/" + program;
    if (executable_file(candidate)) return candidate;
    start = colon + 1;
  }
  why = "command not found in PATH: " + program;
  return {};
}

CommandStatus run_command(const std::string& path, const std::vector<std::string>& argv, StandardFds fds,
                          std::string& exec_error, const std::function<void(pid_t)>& name_process,
                          const std::function<void(pid_t)>& while_running) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  volatile int exec_errno = 0;
  const ExecPlan plan{path.c_str(), args.data(), fds, ::getpid(), &exec_errno};
  // No handler of ours may run in the child, which shares our memory until it execs: every
  // signal is blocked across the vfork (the child resets them before exec), as posix_spawn does.
  sigset_t all, old;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, &old);
  const pid_t pid = vfork_exec(plan);
  const int vfork_errno = errno;
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) throw SystemError("cannot start a process for the command " + argv.front(), vfork_errno);

  siginfo_t info{};
  name_process(pid);
  try {
    while_running(pid);
  } catch (...) {
    name_process(0);
    ::kill(pid, SIGKILL);
    while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED) != 0 && errno == EINTR) {}
    throw;
  }
  // Its end first, without reaping it: its pid stays its own until the slot no longer names it.
  while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT) != 0) {
    if (errno != EINTR) {
      name_process(0);
      throw_errno("waiting for the command " + argv.front() + " (pid " + std::to_string(pid) + ")");
    }
  }
  name_process(0);
  while (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED) != 0) {
    if (errno != EINTR) throw_errno("waiting for the command " + argv.front() + " (pid " + std::to_string(pid) + ")");
  }
  if (exec_errno != 0) {
    exec_error = "cannot run " + path + ": " + std::strerror(exec_errno);
    return CommandStatus{exec_errno == ENOENT ? 127 : 126, 0};
  }
  if (info.si_code == CLD_EXITED) return CommandStatus{info.si_status, 0};
  return CommandStatus{0, info.si_status};
}

}  // namespace taskfarm::exec
