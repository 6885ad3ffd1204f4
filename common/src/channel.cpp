#include "taskfarm/detail/channel.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

namespace taskfarm {
namespace {

bool wait_fd(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r >= 0) return r > 0;
    if (errno != EINTR) throw_errno("poll on worker channel");
  }
}

}  // namespace

std::pair<Channel, Channel> Channel::make_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) throw_errno("socketpair for a worker channel");
  return {Channel(UniqueFd(fds[0])), Channel(UniqueFd(fds[1]))};
}

bool Channel::try_send(const proto::Message& m) {
  proto::encode(m, buf_);
  for (;;) {
    const ssize_t n = ::send(fd_.get(), buf_.data(), buf_.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return true;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    if (errno == EPIPE || errno == ECONNRESET) throw ChannelClosed("worker channel closed by peer");
    throw_errno("send on worker channel");
  }
}

void Channel::send(const proto::Message& m, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!try_send(m)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !wait_fd(fd_.get(), POLLOUT, left))
      throw Error("worker channel: peer did not read for " + std::to_string(timeout.count()) + " ms");
  }
}

std::optional<proto::Message> Channel::try_receive() {
  char data[proto::kMaxMessage + 1];
  for (;;) {
    const ssize_t n = ::recv(fd_.get(), data, sizeof data, MSG_DONTWAIT | MSG_TRUNC);
    if (n > 0) {
      if (static_cast<std::size_t>(n) > proto::kMaxMessage)
        throw proto::ProtocolError("datagram of " + std::to_string(n) + " bytes exceeds " + std::to_string(proto::kMaxMessage));
      return proto::decode(std::span<const char>(data, static_cast<std::size_t>(n)));
    }
    if (n == 0) throw ChannelClosed("worker channel closed by peer");
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
    if (errno == ECONNRESET) throw ChannelClosed("worker channel reset by peer");
    throw_errno("recv on worker channel");
  }
}

std::optional<proto::Message> Channel::receive(std::chrono::milliseconds timeout) {
  if (auto m = try_receive()) return m;
  if (!wait_fd(fd_.get(), POLLIN, timeout)) return std::nullopt;
  return try_receive();
}

}  // namespace taskfarm
