#include "mpi_wire.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstdint>
#include <cerrno>
#include <cstring>
#include <vector>

#include "taskfarm/error.hpp"

namespace taskfarm::cli::mpi {
namespace {

std::string g_peer = "the other process of this rank";

// A socket call failed: the other end gone (it died, or was killed) is said as such, naming it.
// EINTR: a signal with a handler came while this process talked to it — here only stops (^C,
// mpirun's SIGTERM) and the relay's death signal have handlers, installed without SA_RESTART so
// that they also end a blocked send: the job is ending, not a broken socket (outside pass F45,
// worded "Interrupted system call" before).
[[noreturn]] void socket_failed() {
  if (errno == EPIPE || errno == ECONNRESET) throw Error("--mpi: " + g_peer + " is gone");
  if (errno == EINTR) throw Error("--mpi: stopped by a signal while talking to " + g_peer + " (the job is ending)");
  throw_errno("--mpi: the socket to " + g_peer);
}

// One datagram: its Wire, and its part of a text into `text` (appended).
std::optional<Wire> recv_datagram(int fd, int ms, std::string& text) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, ms) <= 0) return std::nullopt;
  thread_local std::vector<char> buf(sizeof(Wire) + kMaxTextBytes);
  ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
  // The other side closed with a message of ours unread (a grant racing its report): Linux says
  // so once, before the messages it had sent, which are still there to read.
  if (n < 0 && errno == ECONNRESET) n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
  if (n == 0) throw Error("--mpi: " + g_peer + " is gone");
  if (n < 0) socket_failed();
  if (n < static_cast<ssize_t>(sizeof(Wire))) throw Error("--mpi: a message of the wrong size from " + g_peer);
  Wire w;
  std::memcpy(&w, buf.data(), sizeof w);
  const auto bytes = static_cast<std::size_t>(n) - sizeof w;
  if (is_text(w.kind) || w.kind == Wire::data) {
    if (bytes != w.count) throw Error("--mpi: a text message of the wrong size from " + g_peer);
    text.append(buf.data() + sizeof w, bytes);
  }
  return w;
}

}  // namespace

void name_peer(std::string peer) { g_peer = std::move(peer); }

void send_wire(int fd, const Wire& w) {
  if (::send(fd, &w, sizeof w, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof w)) socket_failed();
}

void send_text(int fd, Wire::Kind kind, std::string_view text) {
  do {
    const std::size_t n = std::min(text.size(), kMaxTextBytes);
    Wire w;
    w.kind = kind;
    w.count = static_cast<std::uint32_t>(n);
    w.v[0] = n < text.size() ? 1 : 0;
    iovec iov[2] = {{&w, sizeof w}, {const_cast<char*>(text.data()), n}};
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = 2;
    if (::sendmsg(fd, &m, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof w + n)) socket_failed();
    text.remove_prefix(n);
  } while (!text.empty());
}

void send_data(int fd, std::uint64_t offset, const char* bytes, std::size_t n) {
  while (n > 0) {
    const std::size_t k = std::min(n, kMaxTextBytes);
    Wire w;
    w.kind = Wire::data;
    w.count = static_cast<std::uint32_t>(k);
    w.v[0] = offset;
    iovec iov[2] = {{&w, sizeof w}, {const_cast<char*>(bytes), k}};
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = 2;
    if (::sendmsg(fd, &m, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof w + k)) socket_failed();
    offset += k;
    bytes += k;
    n -= k;
  }
}

std::optional<Message> recv_message(int fd, int ms) {
  Message m;
  auto w = recv_datagram(fd, ms, m.text);
  if (!w) return std::nullopt;
  m.wire = *w;
  while (is_text(w->kind) && w->v[0] != 0) {
    w = recv_datagram(fd, 10'000, m.text);  // its sender writes the parts back to back
    if (!w) throw Error("--mpi: the rest of a message from " + g_peer + " did not come within 10 s");
    if (w->kind != m.wire.kind) throw Error("--mpi: a message from " + g_peer + " cut by another");
  }
  if (is_text(m.wire.kind)) m.wire.count = static_cast<std::uint32_t>(std::min<std::size_t>(m.text.size(), UINT32_MAX));
  return m;
}

}  // namespace taskfarm::cli::mpi
