#include "worker_process.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace taskfarm {
namespace {
constexpr std::size_t kTailBytes = 2048;
}

WorkerProcess::WorkerProcess(pid_t pid, UniqueFd pidfd, Channel channel, UniqueFd stderr_fd, ShmSegment slot)
    : pid_(pid), pidfd_(std::move(pidfd)), channel_(std::move(channel)), stderr_(std::move(stderr_fd)), slot_(std::move(slot)) {}

WorkerProcess::WorkerProcess(WorkerProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, 0)),
      pidfd_(std::move(o.pidfd_)),
      channel_(std::move(o.channel_)),
      stderr_(std::move(o.stderr_)),
      slot_(std::move(o.slot_)),
      reaped_(o.reaped_),
      tail_(std::move(o.tail_)),
      partial_(std::move(o.partial_)) {}

WorkerProcess::~WorkerProcess() {
  if (pid_ > 0 && !reaped_) kill_and_reap();
}

void WorkerProcess::kill_group(int sig) noexcept {
  if (pid_ <= 0 || reaped_) return;
  // The worker leads its own process group; fall back to the pid if it has not set it up yet.
  if (::kill(-pid_, sig) != 0) ::kill(pid_, sig);
}

std::optional<ExitStatus> WorkerProcess::try_reap() {
  if (reaped_) return std::nullopt;
  siginfo_t info{};
  for (;;) {
    if (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED | WNOHANG) == 0) break;
    if (errno == ECHILD) {  // reaped by another wait() (a SIGCHLD handler, SIG_IGN): gone, status lost
      reaped_ = true;
      ::kill(-pid_, SIGKILL);
      return ExitStatus{false, -1, true};
    }
    if (errno != EINTR) throw_errno("waitid for worker pid " + std::to_string(pid_));
  }
  if (info.si_pid == 0) return std::nullopt;
  reaped_ = true;
  // Its children may outlive it; they are in its process group.
  ::kill(-pid_, SIGKILL);
  ExitStatus st;
  st.signaled = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED;
  st.code = info.si_status;
  return st;
}

ExitStatus WorkerProcess::kill_and_reap() noexcept {
  kill_group(SIGKILL);
  // The kernel needs a moment to tear the process down (8–19 ms for 200 MiB): wait on the
  // pidfd with a deadline, never unbounded.
  for (int i = 0; i < 100 && !reaped_; ++i) {
    try {
      if (auto st = try_reap()) return *st;
    } catch (...) {
      break;
    }
    pollfd p{pidfd_.get(), POLLIN, 0};
    ::poll(&p, 1, 50);
  }
  return ExitStatus{true, SIGKILL};
}

void WorkerProcess::drain_stderr(bool forward) {
  if (!stderr_) return;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(stderr_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) stderr_.reset();  // EOF: the worker (and its children) closed it
      break;
    }
    partial_.append(buf, static_cast<std::size_t>(n));
    tail_.append(buf, static_cast<std::size_t>(n));
    if (tail_.size() > 2 * kTailBytes) tail_.erase(0, tail_.size() - kTailBytes);
  }
  // Forward whole lines only, so lines of different workers never interleave mid-line.
  const auto last_nl = partial_.rfind('\n');
  if (last_nl != std::string::npos) {
    if (forward) {
      const char* p = partial_.data();
      std::size_t left = last_nl + 1;
      while (left > 0) {
        const ssize_t w = ::write(STDERR_FILENO, p, left);
        if (w <= 0) break;
        p += w;
        left -= static_cast<std::size_t>(w);
      }
    }
    partial_.erase(0, last_nl + 1);
  }
  if (partial_.size() > kTailBytes) partial_.erase(0, partial_.size() - kTailBytes);
  if (tail_.size() > kTailBytes) tail_.erase(0, tail_.size() - kTailBytes);
}

}  // namespace taskfarm
