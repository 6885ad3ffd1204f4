#include "stdout_writer.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "taskfarm/progress.hpp"

namespace taskfarm::cli {

namespace {
constexpr std::size_t kFlushBytes = 64 * 1024;
}

StdoutWriter::StdoutWriter(std::function<void()> on_closed, int fd) : on_closed_(std::move(on_closed)), fd_(fd) {}

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
      closed_ = true;
      if (errno != EPIPE) std::cerr << "taskfarm: cannot write to standard output: " << std::strerror(errno) << "\n";
      if (on_closed_) on_closed_();
      break;
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  buf_.clear();
}

}  // namespace taskfarm::cli
