#include "group_keeper.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "taskfarm/error.hpp"

namespace taskfarm::exec {
namespace {

[[noreturn]] void keep(pid_t worker) noexcept {
  // Nothing of the worker's stays open here: its channel, pipes and segments close with it.
  ::close_range(0, ~0U, 0);
  ::prctl(PR_SET_NAME, "taskfarm-keeper");
  ::prctl(PR_SET_PDEATHSIG, SIGUSR1);  // blocked, like every signal here: taken by sigwaitinfo
  if (::getppid() == worker) {          // else the worker died before the prctl
    sigset_t usr1;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    // Bounded by the worker's life: its death, however it comes, sends SIGUSR1.
    while (::sigwaitinfo(&usr1, nullptr) != SIGUSR1) {
    }
  }
  // The worker's group: every command still running, what each started there, and this process.
  ::kill(-worker, SIGKILL);
  ::_exit(0);
}

}  // namespace

GroupKeeper::GroupKeeper() {
  const pid_t worker = ::getpid();
  if (::getpgrp() != worker) return;
  // Blocked before the fork, so no signal reaches the keeper before it waits (the master's
  // TERM to the group on a timeout stays pending in it; the worker's death is what counts).
  sigset_t all, old;
  sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, &old);
  const pid_t pid = ::fork();
  if (pid == 0) keep(worker);
  const int err = errno;
  ::sigprocmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) throw SystemError("cannot start the keeper of the commands' process group", err);
  pid_ = pid;
}

GroupKeeper::~GroupKeeper() {
  if (pid_ < 0) return;
  ::kill(pid_, SIGKILL);
  siginfo_t info{};
  while (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED) != 0 && errno == EINTR) {
  }
}

}  // namespace taskfarm::exec
