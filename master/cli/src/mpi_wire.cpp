#include "mpi_wire.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstring>
#include <vector>

#include "taskfarm/error.hpp"

namespace taskfarm::cli::mpi {

void send_wire(int fd, const Wire& w) {
  if (::send(fd, &w, sizeof w, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof w)) throw_errno("--mpi: relay socket");
}

void send_rows(int fd, std::string_view rows) {
  while (!rows.empty()) {
    std::size_t n = rows.size();
    if (n > kMaxRowBytes) {
      n = rows.rfind('\n', kMaxRowBytes - 1) + 1;  // rows are ~100 bytes: a line end is near
      if (n == 0) throw Error("--mpi: a joblog row longer than " + std::to_string(kMaxRowBytes) + " bytes");
    }
    Wire w;
    w.kind = Wire::rows;
    w.count = static_cast<std::uint32_t>(n);
    iovec iov[2] = {{&w, sizeof w}, {const_cast<char*>(rows.data()), n}};
    msghdr m{};
    m.msg_iov = iov;
    m.msg_iovlen = 2;
    if (::sendmsg(fd, &m, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof w + n)) throw_errno("--mpi: relay socket");
    rows.remove_prefix(n);
  }
}

std::optional<Message> recv_message(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, ms) <= 0) return std::nullopt;
  thread_local std::vector<char> buf(sizeof(Wire) + kMaxRowBytes);
  const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
  if (n == 0) throw Error("--mpi: the other side of this node's relay is gone");
  if (n < 0) throw_errno("--mpi: relay socket");
  if (n < static_cast<ssize_t>(sizeof(Wire))) throw Error("--mpi: relay socket: a message of the wrong size");
  Message m;
  std::memcpy(&m.wire, buf.data(), sizeof m.wire);
  const auto text = static_cast<std::size_t>(n) - sizeof m.wire;
  if (m.wire.kind == Wire::rows) {
    if (text != m.wire.count) throw Error("--mpi: relay socket: a rows message of the wrong size");
    m.rows.assign(buf.data() + sizeof m.wire, text);
  }
  return m;
}

}  // namespace taskfarm::cli::mpi
