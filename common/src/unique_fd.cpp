#include "taskfarm/unique_fd.hpp"

#include <unistd.h>

namespace taskfarm {

void UniqueFd::reset(int fd) noexcept {
  if (fd_ >= 0) ::close(fd_);  // close() is not retried on EINTR on Linux: the fd is gone anyway
  fd_ = fd;
}

}  // namespace taskfarm
