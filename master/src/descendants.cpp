#include "descendants.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "proc_info.hpp"
#include "taskfarm/error.hpp"

namespace taskfarm::descendants {
namespace {

bool is_worker(const std::vector<pid_t>& workers, pid_t pid) {
  return std::find(workers.begin(), workers.end(), pid) != workers.end();
}

// Reaps `pid` if it has exited; true if it is gone.
bool reap(pid_t pid) {
  siginfo_t info{};
  for (;;) {
    if (::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG) == 0) return info.si_pid == pid;
    if (errno != EINTR) return true;  // ECHILD: not ours (any more)
  }
}

}  // namespace

void become_subreaper() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) throw_errno("prctl(PR_SET_CHILD_SUBREAPER)");
}

std::size_t reap_exited(const std::vector<pid_t>& workers) {
  std::size_t n = 0;
  // WNOWAIT peeks at one exited child; a worker among them is its WorkerProcess's to reap, and
  // then the rest waits for the next call (a worker's pidfd is handled within milliseconds).
  for (int k = 0; k < 1000; ++k) {
    siginfo_t info{};
    if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0) break;
    if (is_worker(workers, info.si_pid)) break;
    if (!reap(info.si_pid)) break;
    ++n;
  }
  return n;
}

std::size_t kill_and_reap(const std::vector<pid_t>& workers, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  std::size_t killed = 0;
  for (;;) {
    std::vector<pid_t> strays;
    for (pid_t p : proc::children())
      if (!is_worker(workers, p)) strays.push_back(p);
    if (strays.empty()) return killed;
    std::vector<pollfd> waits;
    for (pid_t p : strays) {
      // Its group too: an escaped process that setsid()s leads a group of its own, and what it
      // started there goes with it (a group that is not its own: ESRCH, harmless).
      ::kill(-p, SIGKILL);
      ::kill(p, SIGKILL);
      ++killed;
      const int fd = static_cast<int>(::syscall(SYS_pidfd_open, p, 0));
      if (fd >= 0) waits.push_back(pollfd{fd, POLLIN, 0});
    }
    // A SIGKILLed process ends within milliseconds (more for a large one); wait on pidfds with
    // the deadline, never unbounded.
    for (auto& w : waits) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() > 0) ::poll(&w, 1, static_cast<int>(left.count()));
      ::close(w.fd);
    }
    for (pid_t p : strays) reap(p);
    if (std::chrono::steady_clock::now() >= deadline) return killed;
  }
}

}  // namespace taskfarm::descendants
