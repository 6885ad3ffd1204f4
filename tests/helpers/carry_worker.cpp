// A hostile worker program for tests of carried results: speaks the protocol by hand (no
// run_worker), takes its first chunk, then sends what --mode says instead of a valid Done, and
// waits (at most 10 s) to be killed for it.
//   carry_worker --mode MODE
// MODE: no-fd two-fds fd-on-hello fd-on-plain-done pipe-fd unsealed write-sealed-only short
//       bad-records huge-sparse empty-datagram
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "taskfarm/detail/channel.hpp"
#include "taskfarm/detail/protocol.hpp"

using namespace taskfarm;

namespace {

// One datagram holding `m` with every descriptor of `fds` attached.
void send_raw(int sock, const proto::Message& m, const std::vector<int>& fds) {
  std::string bytes;
  proto::encode(m, bytes);
  iovec iov{bytes.data(), bytes.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  std::vector<char> control(CMSG_SPACE(fds.size() * sizeof(int)));
  if (!fds.empty()) {
    mh.msg_control = control.data();
    mh.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
    std::memcpy(CMSG_DATA(c), fds.data(), fds.size() * sizeof(int));
  }
  if (::sendmsg(sock, &mh, MSG_NOSIGNAL) < 0) std::perror("carry_worker: sendmsg"), std::exit(1);
}

int memfd_with(const std::string& bytes, unsigned seals) {
  const int fd = ::memfd_create("carry-worker", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0 || ::write(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) std::exit(1);
  if (seals != 0 && ::fcntl(fd, F_ADD_SEALS, seals) != 0) std::exit(1);
  return fd;
}

// A valid record for each index of [begin, end): 4-byte value, no text.
std::string records(std::uint64_t begin, std::uint64_t end) {
  std::string r;
  for (std::uint64_t i = begin; i < end; ++i) {
    const std::uint32_t four = 4, zero = 0;
    const auto v = static_cast<std::uint32_t>(i);
    r.append(reinterpret_cast<const char*>(&four), 4).append(reinterpret_cast<const char*>(&v), 4).append(reinterpret_cast<const char*>(&zero), 4);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc == 3 && std::string(argv[1]) == "--mode" ? argv[2] : "";
  const char* env = std::getenv("TASKFARM_WORKER");
  if (env == nullptr || mode.empty()) return 2;
  const int sock = std::atoi(env);
  Channel ch{UniqueFd(sock)};
  constexpr unsigned kAllSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL;
  const proto::Hello hello{static_cast<std::int32_t>(::getpid())};
  if (mode == "fd-on-hello") {
    ch.send(hello, std::chrono::seconds(10), memfd_with("x", kAllSeals));
  } else {
    ch.send(hello, std::chrono::seconds(10));
  }
  std::uint64_t job = 0;
  proto::Chunk chunk;
  for (bool have = false; !have;) {
    auto m = ch.receive(std::chrono::seconds(10));
    if (!m) return 3;
    if (auto* j = std::get_if<proto::Job>(&*m)) job = j->job_id;
    if (auto* a = std::get_if<proto::Assign>(&*m)) chunk = a->chunks.at(0), have = true;
  }
  const std::string recs = records(chunk.begin, chunk.end);
  proto::ChunkDone d{chunk.id, chunk.end, 0, recs.size(), 1000, false, true};
  const proto::Done done{job, {d}};
  if (mode == "no-fd") {
    ch.send(done, std::chrono::seconds(10));
  } else if (mode == "two-fds") {
    send_raw(sock, done, {memfd_with(recs, kAllSeals), memfd_with(recs, kAllSeals)});
  } else if (mode == "fd-on-plain-done") {
    d.carried = false;
    d.arena_len = 0;
    ch.send(proto::Done{job, {d}}, std::chrono::seconds(10), memfd_with(recs, kAllSeals));
  } else if (mode == "pipe-fd") {
    int p[2];
    if (::pipe(p) != 0) return 1;
    ch.send(done, std::chrono::seconds(10), p[0]);
  } else if (mode == "unsealed") {
    ch.send(done, std::chrono::seconds(10), memfd_with(recs, 0));
  } else if (mode == "write-sealed-only") {  // could still be shrunk under the master's mapping
    ch.send(done, std::chrono::seconds(10), memfd_with(recs, F_SEAL_WRITE));
  } else if (mode == "short") {
    ch.send(done, std::chrono::seconds(10), memfd_with(recs.substr(0, 5), kAllSeals));
  } else if (mode == "bad-records") {  // the first value claims more bytes than there are
    std::string bad = recs;
    const std::uint32_t huge = 1u << 30;
    std::memcpy(bad.data(), &huge, 4);
    ch.send(done, std::chrono::seconds(10), memfd_with(bad, kAllSeals));
  } else if (mode == "huge-sparse") {  // 1 TiB of zeros: empty records, then trailing bytes
    const int fd = ::memfd_create("carry-worker", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    const std::uint64_t tib = std::uint64_t{1} << 40;
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(tib)) != 0 || ::fcntl(fd, F_ADD_SEALS, kAllSeals) != 0) return 1;
    d.arena_len = tib;
    ch.send(proto::Done{job, {d}}, std::chrono::seconds(10), fd);
  } else if (mode == "empty-datagram") {  // looks like EOF to a naive recv()
    if (::send(sock, "", 0, MSG_NOSIGNAL) != 0) return 1;
  } else {
    return 2;
  }
  // Wait to be killed for it; a master that did not notice would see this exit after 10 s.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  try {
    while (std::chrono::steady_clock::now() < deadline) ch.receive(std::chrono::milliseconds(100));
  } catch (const std::exception&) {
  }
  return 0;
}
