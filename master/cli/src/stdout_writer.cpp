#include "stdout_writer.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "taskfarm/progress.hpp"

namespace taskfarm::cli {

namespace {
constexpr std::size_t kFlushBytes = 64 * 1024;
constexpr std::size_t kFilePiece = 1 << 20;  // per sendfile call: a slow reader is not waited on for long
}

StdoutWriter::StdoutWriter(std::function<void(int)> on_failed, int fd) : on_failed_(std::move(on_failed)), fd_(fd) {}

void StdoutWriter::failed(int error) {
  closed_ = true;
  error_ = error;
  if (on_failed_) on_failed_(error);
}

StdoutWriter::~StdoutWriter() { flush(); }

void StdoutWriter::give_up_after_stop(const volatile std::sig_atomic_t* stop, std::chrono::milliseconds patience) {
  flush();
  stop_ = stop;
  patience_ = patience;
  // A regular file never waits for a reader (and a descriptor of its own would not share the
  // offset); a socket cannot be opened anew: those stay as they are.
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))) return;
  const std::string self = "/proc/self/fd/" + std::to_string(fd_);
  if (UniqueFd own(::open(self.c_str(), O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)); own) {
    own_ = std::move(own);
    fd_ = own_.get();
  }
}

bool StdoutWriter::may_go_on() {
  if (stop_ == nullptr || *stop_ == 0) return !closed_;
  const auto now = std::chrono::steady_clock::now();
  if (!stop_seen_) {
    stop_seen_ = true;
    give_up_at_ = now + patience_;
  }
  if (now < give_up_at_ || closed_) return !closed_;
  closed_ = gave_up_ = true;
  return false;
}

bool StdoutWriter::wait_writable() {
  // In slices when watching a stop: a signal taken by another thread (MPI's) wakes no poll here.
  for (;;) {
    if (!may_go_on()) return false;
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, stop_ != nullptr ? 10 : 1000) != 0) return true;  // (an error: the write says which)
  }
}

void StdoutWriter::write(std::string_view text) {
  if (closed_) return;
  buf_.append(text);
  if (buf_.size() >= kFlushBytes) flush();
}

void StdoutWriter::flush() {
  if (buf_.empty() || closed_) {
    buf_.clear();
    return;
  }
  if (progress_ != nullptr) progress_->clear();
  std::string_view rest = buf_;
  while (!rest.empty() && may_go_on()) {
    const ssize_t n = ::write(fd_, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (!wait_writable()) break;
      continue;
    }
    if (n < 0) {
      failed(errno);
      break;
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
    out_ += static_cast<std::uint64_t>(n);
  }
  buf_.clear();
}

std::uint64_t StdoutWriter::write_file(int fd, std::uint64_t limit) {
  flush();
  if (closed_) return 0;
  if (progress_ != nullptr) progress_->clear();
  std::uint64_t total = 0;
  for (;;) {
    if (total == limit || !may_go_on()) return total;
    const ssize_t n = ::sendfile(fd_, fd, nullptr, static_cast<std::size_t>(std::min<std::uint64_t>(kFilePiece, limit - total)));
    if (n > 0) {
      total += static_cast<std::uint64_t>(n);
      out_ += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n == 0) return total;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {  // a non-blocking standard output, full: wait until it takes more
      if (!wait_writable()) return total;
      continue;
    }
    if (errno == EINVAL || errno == ENOSYS) break;  // this pair of files cannot: copy through a buffer
    failed(errno);
    return total;
  }
  std::vector<char> piece(kFlushBytes);
  for (;;) {
    if (total == limit) return total;
    const ssize_t got = ::read(fd, piece.data(), static_cast<std::size_t>(std::min<std::uint64_t>(piece.size(), limit - total)));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return total;
    for (std::size_t done = 0; done < static_cast<std::size_t>(got);) {
      if (!may_go_on()) return total;
      const ssize_t n = ::write(fd_, piece.data() + done, static_cast<std::size_t>(got) - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        if (!wait_writable()) return total;
        continue;
      }
      if (n < 0) {
        failed(errno);
        return total;
      }
      done += static_cast<std::size_t>(n);
      total += static_cast<std::uint64_t>(n);
      out_ += static_cast<std::uint64_t>(n);
    }
  }
}

}  // namespace taskfarm::cli
