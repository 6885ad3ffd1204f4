#include "spawn.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spawn.h>

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

// The child's one handle; without it the child would be nobody's to reap: it is killed then.
UniqueFd open_pidfd(pid_t pid) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) {
    const int err = errno;
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {}  // SIGKILLed: it ends promptly
    throw SystemError("pidfd_open for worker pid " + std::to_string(pid), err);
  }
  return UniqueFd(fd);
}

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
  return WorkerProcess(pid, open_pidfd(pid), std::move(master_end), std::move(err.read), std::move(slot));
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

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawnattr_init(&attr);
  // dup2 clears close-on-exec on the target; dup2(fd, fd) would not, hence the adddup2 only
  // when the numbers differ and an explicit flag otherwise.
  if (child_fd.get() != kChannelFd) ::posix_spawn_file_actions_adddup2(&fa, child_fd.get(), kChannelFd);
  else ::fcntl(child_fd.get(), F_SETFD, 0);
  ::posix_spawn_file_actions_adddup2(&fa, err.write.get(), STDERR_FILENO);
  ::posix_spawnattr_setpgroup(&attr, 0);  // its own process group: killpg reaches its children
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setsigdefault(&attr, &all);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, exe.c_str(), &fa, &attr, argv.data(), envp.data());
  ::posix_spawn_file_actions_destroy(&fa);
  ::posix_spawnattr_destroy(&attr);
  if (rc != 0) throw SpawnError("cannot start worker program " + exe + ": " + std::strerror(rc), rc);
  if (limits.memory_limit != 0) {  // also applied by the worker itself; this closes the window
    const rlimit rl{limits.memory_limit, limits.memory_limit};
    ::prlimit(pid, RLIMIT_AS, &rl, nullptr);
  }
  err.write.reset();
  child_fd.reset();
  return WorkerProcess(pid, open_pidfd(pid), std::move(master_end), std::move(err.read), std::move(slot));
}

}  // namespace taskfarm
