#include "line_source.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>

#include "taskfarm/detail/user_file.hpp"
#include "usage_error.hpp"

namespace taskfarm::cli {
namespace {

using Clock = std::chrono::steady_clock;

// While no writer has come, a FIFO is looked at this often: a writer that opened it and has
// written nothing yet shows only as EAGAIN from read(), never as a poll() event.
constexpr std::chrono::milliseconds kWriterTick{20};
constexpr std::chrono::milliseconds kWaitNotice{1000};

bool refused_kind(mode_t mode) { return S_ISDIR(mode) || S_ISCHR(mode) || S_ISBLK(mode) || S_ISSOCK(mode); }

/// Whether `fd` is an anonymous pipe (`<(cmd)` is /dev/fd/N): once its writers are gone, no
/// new one can come, so an empty read is its end, as for a file.
bool anonymous_pipe(int fd) {
  char target[64] = {};
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
  return n > 5 && std::strncmp(target, "pipe:", 5) == 0;
}

}  // namespace

std::string LineSource::who(const std::string& path, const std::string& option) {
  // ":::: 'x'" reads as the command line did; an option takes a colon ("--input-lines: 'x'").
  return option + (option.starts_with(":") ? " " : ": ") + (path == "-" ? std::string("standard input") : "'" + path + "'");
}

LineSource::LineSource(const std::string& path, const std::string& option, std::chrono::milliseconds writer_wait)
    : writer_wait_(writer_wait) {
  const bool from_stdin = path == "-";
  who_ = who(path, option);
  if (from_stdin) return;  // whatever it is: the caller chose it
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && refused_kind(st.st_mode))
    throw UsageError(who_ + " is " + std::string(detail::file_kind(st.st_mode)) + ", not a file of lines");
  owned_ = UniqueFd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!owned_) throw UsageError(who_ + " cannot be read: " + std::strerror(errno));
  fd_ = owned_.get();
  if (::fstat(fd_, &st) != 0) throw UsageError(who_ + " cannot be read: " + std::strerror(errno));
  if (refused_kind(st.st_mode))  // replaced between stat and open
    throw UsageError(who_ + " is " + std::string(detail::file_kind(st.st_mode)) + ", not a file of lines");
  named_fifo_ = S_ISFIFO(st.st_mode) && !anonymous_pipe(fd_);
  writer_seen_ = !named_fifo_;
  opened_ = Clock::now();
}

void LineSource::wait_for_data() {
  pollfd p{fd_, POLLIN, 0};
  if (writer_seen_) {
    // A writer is there and slow: it may take as long as it likes (Ctrl-C ends the wait).
    while (::poll(&p, 1, -1) < 0 && errno == EINTR) {
    }
    return;
  }
  const auto waited = Clock::now() - opened_;
  if (waited >= writer_wait_)
    throw UsageError(who_ + " is a FIFO that no process opened for writing within " +
                     (writer_wait_ < std::chrono::seconds(1)
                          ? std::to_string(writer_wait_.count()) + " ms"
                          : std::to_string(std::chrono::duration_cast<std::chrono::seconds>(writer_wait_).count()) + " s") +
                     " (start its writer first, or give the lines through a pipe: <(cmd))");
  if (!told_waiting_ && waited >= kWaitNotice) {
    told_waiting_ = true;
    std::cerr << "taskfarm: " << who_ << " is a FIFO that no process has opened for writing yet: waiting for one\n";
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(writer_wait_ - waited);
  if (::poll(&p, 1, static_cast<int>(std::min(left, kWriterTick).count()) + 1) > 0 && (p.revents & POLLHUP) != 0)
    writer_seen_ = true;  // a writer came and went: what it wrote (perhaps nothing) is all
}

std::size_t LineSource::read(char* buffer, std::size_t size) {
  for (;;) {
    const ssize_t n = ::read(fd_, buffer, size);
    if (n > 0) {
      writer_seen_ = true;
      return static_cast<std::size_t>(n);
    }
    if (n == 0 && writer_seen_) return 0;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
      throw UsageError(who_ + ": error reading: " + std::strerror(errno));
    if (n < 0) writer_seen_ = true;  // EAGAIN: a writer holds it open and has nothing yet
    wait_for_data();
  }
}

std::ptrdiff_t LineSource::read_ready(char* buffer, std::size_t size) {
  const ssize_t n = ::read(fd_, buffer, size);
  if (n >= 0) return n;
  if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return -1;
  throw UsageError(who_ + ": error reading: " + std::strerror(errno));
}

}  // namespace taskfarm::cli
