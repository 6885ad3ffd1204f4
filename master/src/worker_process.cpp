#include "worker_process.hpp"
#include "taskfarm/detail/write_out.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <utility>

namespace taskfarm {
namespace {
constexpr std::size_t kTailBytes = 2048;
constexpr std::size_t kMaxLine = 64 * 1024;          // longest stderr line forwarded whole
constexpr std::size_t kMaxDrainBytes = 1024 * 1024;  // read per drain_stderr call
}

ChildProcess::ChildProcess(pid_t pid, UniqueFd pidfd, UniqueFd stderr_fd)
    : pid_(pid), pidfd_(std::move(pidfd)), stderr_(std::move(stderr_fd)) {}

ChildProcess::ChildProcess(ChildProcess&& o) noexcept
    : pid_(std::exchange(o.pid_, 0)),
      pidfd_(std::move(o.pidfd_)),
      stderr_(std::move(o.stderr_)),
      reaped_(o.reaped_),
      given_up_(o.given_up_),
      tail_(std::move(o.tail_)),
      partial_(std::move(o.partial_)),
      stderr_bytes_(o.stderr_bytes_),
      skipping_line_(o.skipping_line_) {}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_ && !given_up_) kill_and_reap();
}

WorkerProcess::~WorkerProcess() {
  if (pid() > 0 && !reaped()) kill_and_reap();
}

void ChildProcess::kill_group(int sig) noexcept {
  if (pid_ <= 0 || reaped_) return;
  // The process leads its own process group; fall back to the pid if it has not set it up yet.
  if (::kill(-pid_, sig) != 0) ::kill(pid_, sig);
}

std::optional<ExitStatus> ChildProcess::try_reap() {
  if (reaped_) return std::nullopt;
  siginfo_t info{};
  for (;;) {
    if (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED | WNOHANG) == 0) break;
    if (errno == ECHILD) {  // reaped by another wait() (a SIGCHLD handler, SIG_IGN): gone, status lost
      reaped_ = true;
      ::kill(-pid_, SIGKILL);
      return ExitStatus{false, -1, true};
    }
    if (errno != EINTR) throw_errno("waitid for pid " + std::to_string(pid_));
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

std::optional<ExitStatus> ChildProcess::kill_and_reap() noexcept {
  if (pid_ <= 0 || reaped_ || given_up_) return std::nullopt;
  kill_group(SIGKILL);
  // The kernel needs a moment to tear the process down (8–19 ms for 200 MiB): wait on the
  // pidfd with a deadline, never unbounded.
  std::string why = "it did not end within 5 s of SIGKILL (stuck in the kernel?)";
  for (int i = 0; i < 100; ++i) {
    try {
      if (auto st = try_reap()) return st;
    } catch (const std::exception& e) {
      why = e.what();  // waitid failed: nothing was reaped, its status is not known
      break;
    }
    pollfd p{pidfd_.get(), POLLIN, 0};
    ::poll(&p, 1, 50);
  }
  // Not reaped: say so rather than invent an exit status; it is left to the kernel (a zombie of
  // this process until it exits, or a subreaper's sweep).
  given_up_ = true;
  std::fprintf(stderr, "taskfarm: pid %d was killed but could not be reaped: %s; left behind\n", static_cast<int>(pid_),
               why.c_str());
  return std::nullopt;
}

void ChildProcess::drain_stderr(bool forward, bool last, const std::function<void(std::string_view)>* to) {
  if (!stderr_) return;
  char buf[4096];
  bool eof = false;
  for (std::size_t read_now = 0; read_now < kMaxDrainBytes;) {
    const ssize_t n = ::read(stderr_.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      eof = n == 0;
      break;
    }
    read_now += static_cast<std::size_t>(n);
    stderr_bytes_ += static_cast<std::uint64_t>(n);
    tail_.append(buf, static_cast<std::size_t>(n));
    if (tail_.size() > 2 * kTailBytes) tail_.erase(0, tail_.size() - kTailBytes);
    partial_.append(buf, static_cast<std::size_t>(n));
    if (partial_.size() > kMaxLine) forward_lines(forward, false, to);  // bounded while a flood goes on
  }
  forward_lines(forward, eof || last, to);
  if (eof) stderr_.reset();  // the worker (and its children) closed it
  if (tail_.size() > kTailBytes) tail_.erase(0, tail_.size() - kTailBytes);
}

// Forwards whole lines only, so lines of different workers never interleave mid-line. A line
// longer than kMaxLine goes out cut, with a note, and the rest of it is dropped; at EOF a last
// line without newline goes out too.
void ChildProcess::forward_lines(bool forward, bool at_eof, const std::function<void(std::string_view)>* to) {
  std::string out;
  std::size_t pos = 0;
  for (;;) {
    const auto nl = partial_.find('\n', pos);
    if (nl == std::string::npos) break;
    if (skipping_line_ > 0) {  // the end of a line already forwarded cut
      skipping_line_ += nl - pos;
      out += "[taskfarm: " + std::to_string(skipping_line_) + " more bytes of that line not shown]\n";
      skipping_line_ = 0;
    } else {
      out.append(partial_, pos, nl + 1 - pos);
    }
    pos = nl + 1;
  }
  partial_.erase(0, pos);
  if (partial_.size() > kMaxLine || (at_eof && !partial_.empty())) {
    if (skipping_line_ > 0) {
      skipping_line_ += partial_.size();
    } else if (partial_.size() > kMaxLine) {
      out.append(partial_, 0, kMaxLine);
      out += " [taskfarm: line longer than " + std::to_string(kMaxLine / 1024) + " KiB, cut here]\n";
      skipping_line_ = partial_.size() - kMaxLine;
    } else {
      out += partial_ + "\n";  // the worker's last words, without a newline of their own
    }
    partial_.clear();
    if (at_eof && skipping_line_ > 0) {
      out += "[taskfarm: " + std::to_string(skipping_line_) + " more bytes of that line not shown]\n";
      skipping_line_ = 0;
    }
  }
  if (!forward || out.empty()) return;
  if (to != nullptr && *to) (*to)(out);
  else detail::write_best_effort(STDERR_FILENO, out);
}

std::string ChildProcess::stderr_tail() const {
  if (stderr_bytes_ <= tail_.size()) return tail_;
  return "[taskfarm: " + std::to_string(stderr_bytes_ - tail_.size()) + " earlier bytes of stderr not kept]\n" + tail_;
}

}  // namespace taskfarm
