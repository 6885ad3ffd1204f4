// Channel: one end of a worker's message channel — a SOCK_SEQPACKET socketpair, one per
// worker, carrying proto::Message datagrams both ways. The kernel owns the queue state, so a
// worker killed at any instant can never leave the master blocked on it: the master sees EOF
// (and the worker's pidfd) instead. The master creates the pair, keeps one end and hands the
// other to the worker (inherited across fork, or as fd 3 across exec). A worker's Done may
// carry one descriptor (SCM_RIGHTS: a result too large for its arena); the receiving Channel
// owns it until taken, and refuses a descriptor on any other message (proto::check_attached).
// One thread uses a Channel at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "taskfarm/detail/protocol.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm {

/// The peer closed its end (exited or was killed).
class ChannelClosed : public Error {
 public:
  using Error::Error;
};

class Channel {
 public:
  /// A connected pair (close-on-exec): first for the master, second for the worker.
  static std::pair<Channel, Channel> make_pair();

  Channel() = default;
  explicit Channel(UniqueFd fd) : fd_(std::move(fd)) {}

  int fd() const noexcept { return fd_.get(); }
  explicit operator bool() const noexcept { return static_cast<bool>(fd_); }
  UniqueFd release() noexcept { return std::move(fd_); }

  /// Sends without blocking; false if the socket buffer is full (the peer is not reading).
  /// Throws ChannelClosed if the peer is gone.
  bool try_send(const proto::Message& m, int attach = -1);
  /// Sends, waiting at most `timeout` for room. Throws ChannelClosed, or Error on timeout.
  /// `attach` >= 0: a descriptor passed with the message (the receiver gets its own copy).
  void send(const proto::Message& m, std::chrono::milliseconds timeout, int attach = -1);
  /// Receives one message if one is queued. Throws ChannelClosed on EOF, ProtocolError for a
  /// datagram that is not a valid message or comes with descriptors it must not have (those
  /// are closed). A descriptor it must have is kept for take_fd().
  std::optional<proto::Message> try_receive();
  /// Waits at most `timeout` for a message; nullopt when none came.
  std::optional<proto::Message> receive(std::chrono::milliseconds timeout);
  /// The descriptor that came with the last message received (empty if none). The next
  /// receive closes one not taken.
  UniqueFd take_fd() noexcept { return std::move(received_fd_); }

  /// A worker's side: from now on every send first checks that the descriptor still names this
  /// socket, and every receive that got something checks it before using it. A task that closed
  /// it and opened a file or socket of its own, which took its number, would otherwise be sent
  /// this channel's messages and have its own taken for the master's, while the master waited for
  /// ever (outside pass F7); SystemError(EBADF) is thrown instead.
  void guard_identity();

 private:
  void check_identity() const;

  UniqueFd fd_;
  std::string buf_;
  UniqueFd received_fd_;
  std::uint64_t dev_ = 0, ino_ = 0;  // guard_identity(): the socket's
  bool guarded_ = false;
};

}  // namespace taskfarm
