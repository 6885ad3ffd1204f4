// Best-effort writes for notices and progress lines on stderr or a terminal: one is never worth
// failing a run for, and a signal (a stop handler installed without SA_RESTART) must not cut it.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <string_view>

namespace taskfarm::detail {

/// Writes all of `text` to `fd`, retrying EINTR; stops quietly at the first failed write.
inline void write_best_effort(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

}  // namespace taskfarm::detail
