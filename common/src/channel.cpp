#include "taskfarm/detail/channel.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace taskfarm {
namespace {

// Room for more descriptors than any message may carry, so that a datagram with too many is
// received whole and refused by name (check_attached) rather than cut short.
constexpr std::size_t kMaxAttached = 4;

bool wait_fd(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (r >= 0) return r > 0;
    if (errno != EINTR) throw_errno("poll on worker channel");
  }
}

// Takes ownership of every descriptor the kernel installed for this datagram (closed when the
// vector goes, whatever is thrown in between).
std::vector<UniqueFd> take_rights(msghdr& mh) {
  std::vector<UniqueFd> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t k = 0; k < n; ++k) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
      fds.emplace_back(fd);
    }
  }
  return fds;
}

// recv() returned 0: the peer closed, or sent an empty datagram (SEQPACKET allows one; it must
// not pass for a close, or a live worker would go unwatched).
bool peer_closed(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP)) != 0;
}

}  // namespace

std::pair<Channel, Channel> Channel::make_pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) throw_errno("socketpair for a worker channel");
  return {Channel(UniqueFd(fds[0])), Channel(UniqueFd(fds[1]))};
}

void Channel::guard_identity() {
  struct stat st{};
  if (::fstat(fd_.get(), &st) != 0) throw_errno("the worker channel (descriptor " + std::to_string(fd_.get()) + ")");
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  guarded_ = true;
}

void Channel::check_identity() const {
  if (!guarded_) return;
  struct stat st{};
  if (::fstat(fd_.get(), &st) != 0 || st.st_dev != dev_ || st.st_ino != ino_)
    throw SystemError("the worker channel (descriptor " + std::to_string(fd_.get()) + ") was closed or replaced", EBADF);
}

bool Channel::try_send(const proto::Message& m, int attach) {
  check_identity();
  proto::encode(m, buf_);
  iovec iov{buf_.data(), buf_.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (attach >= 0) {
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &attach, sizeof attach);
  }
  for (;;) {
    const ssize_t n = ::sendmsg(fd_.get(), &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) return true;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    if (errno == EPIPE || errno == ECONNRESET) throw ChannelClosed("worker channel closed by peer");
    throw_errno("send on worker channel");
  }
}

void Channel::send(const proto::Message& m, std::chrono::milliseconds timeout, int attach) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!try_send(m, attach)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !wait_fd(fd_.get(), POLLOUT, left))
      throw Error("worker channel: peer did not read for " + std::to_string(timeout.count()) + " ms");
  }
}

std::optional<proto::Message> Channel::try_receive() {
  received_fd_.reset();
  char data[proto::kMaxMessage + 1];
  alignas(cmsghdr) char control[CMSG_SPACE(kMaxAttached * sizeof(int))];
  for (;;) {
    iovec iov{data, sizeof data};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control;
    mh.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd_.get(), &mh, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
    // The identity check (guard_identity) only once something came: an empty queue — the
    // usual answer, once per chunk in a busy worker — costs no fstat (7 % of a one-task-chunk
    // dispatch). What a foreign socket gave is then dropped as this process leaves.
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
      check_identity();
      if (errno == ECONNRESET) throw ChannelClosed("worker channel reset by peer");
      throw_errno("recv on worker channel");
    }
    std::vector<UniqueFd> fds = take_rights(mh);
    check_identity();
    if (n == 0 && fds.empty() && peer_closed(fd_.get())) throw ChannelClosed("worker channel closed by peer");
    if ((mh.msg_flags & MSG_CTRUNC) != 0)
      throw proto::ProtocolError("a message came with more than " + std::to_string(kMaxAttached) +
                                 " descriptors, or this process has no descriptor left to receive them");
    if (static_cast<std::size_t>(n) > proto::kMaxMessage)
      throw proto::ProtocolError("datagram of " + std::to_string(n) + " bytes exceeds " + std::to_string(proto::kMaxMessage));
    proto::Message m = proto::decode(std::span<const char>(data, static_cast<std::size_t>(n)));
    proto::check_attached(m, fds.size());
    if (!fds.empty()) received_fd_ = std::move(fds.front());
    return m;
  }
}

std::optional<proto::Message> Channel::receive(std::chrono::milliseconds timeout) {
  if (auto m = try_receive()) return m;
  if (!wait_fd(fd_.get(), POLLIN, timeout)) return std::nullopt;
  return try_receive();  // (checks the descriptor again: a task's leftover thread may have replaced it meanwhile)
}

}  // namespace taskfarm
