// Channel: one end of a worker's message channel — a SOCK_SEQPACKET socketpair, one per
// worker, carrying proto::Message datagrams both ways. The kernel owns the queue state, so a
// worker killed at any instant can never leave the master blocked on it: the master sees EOF
// (and the worker's pidfd) instead. The master creates the pair, keeps one end and hands the
// other to the worker (inherited across fork, or as fd 3 across exec).
// One thread uses a Channel at a time.
#pragma once

#include <chrono>
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
  bool try_send(const proto::Message& m);
  /// Sends, waiting at most `timeout` for room. Throws ChannelClosed, or Error on timeout.
  void send(const proto::Message& m, std::chrono::milliseconds timeout);
  /// Receives one message if one is queued. Throws ChannelClosed on EOF, ProtocolError for a
  /// datagram that is not a valid message.
  std::optional<proto::Message> try_receive();
  /// Waits at most `timeout` for a message; nullopt when none came.
  std::optional<proto::Message> receive(std::chrono::milliseconds timeout);

 private:
  UniqueFd fd_;
  std::string buf_;
};

}  // namespace taskfarm
