#include "stdout_writer.hpp"

#include <poll.h>
#include <sys/sendfile.h>
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
  if (on_failed_) on_failed_(error);
}

StdoutWriter::~StdoutWriter() { flush(); }

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
  while (!rest.empty()) {
    const ssize_t n = ::write(fd_, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      failed(errno);
      break;
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  buf_.clear();
}

std::uint64_t StdoutWriter::write_file(int fd, std::uint64_t limit) {
  flush();
  if (closed_) return 0;
  if (progress_ != nullptr) progress_->clear();
  std::uint64_t total = 0;
  for (;;) {
    if (total == limit) return total;
    const ssize_t n = ::sendfile(fd_, fd, nullptr, static_cast<std::size_t>(std::min<std::uint64_t>(kFilePiece, limit - total)));
    if (n > 0) {
      total += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n == 0) return total;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {  // a non-blocking standard output, full: wait until it takes more
      pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, 1000);
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
      const ssize_t n = ::write(fd_, piece.data() + done, static_cast<std::size_t>(got) - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        failed(errno);
        return total;
      }
      done += static_cast<std::size_t>(n);
      total += static_cast<std::uint64_t>(n);
    }
  }
}

}  // namespace taskfarm::cli
