#include "output_pump.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "taskfarm/error.hpp"

namespace taskfarm::exec {
namespace {

constexpr std::size_t kPiece = 1 << 20;

void make_pipe(UniqueFd& r, UniqueFd& w) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("cannot make a pipe for a command's output");
  r.reset(p[0]);
  w.reset(p[1]);
}

// One stream: its pipe's read end and the spool file it goes to.
struct Channel {
  int pipe;
  int file;
  Stream stream;
  bool open = true;  // not at end of file yet
  int error = 0;     // a write into the file failed: what comes now is dropped
};

// Moves what the pipe holds now into the file (splice: no copy through our memory). Returns
// false at end of file or when the pipe holds nothing now.
bool move_some(Channel& c) {
  if (c.error == 0) {
    const ssize_t n = ::splice(c.pipe, nullptr, c.file, nullptr, kPiece, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) return true;
    if (n == 0) {
      c.open = false;
      return false;
    }
    if (errno == EINTR) return true;
    if (errno == EAGAIN) return false;
    if (errno != EINVAL) {  // the file refused it (EINVAL: a file system that cannot splice: copy)
      c.error = errno;
      return true;
    }
  }
  char buf[64 * 1024];
  const ssize_t got = ::read(c.pipe, buf, sizeof buf);
  if (got == 0) c.open = false;
  if (got <= 0) return got < 0 && errno == EINTR;
  for (ssize_t done = 0; c.error == 0 && done < got;) {
    const ssize_t n = ::write(c.file, buf + done, static_cast<std::size_t>(got - done));
    if (n > 0) done += n;
    else if (n < 0 && errno != EINTR) c.error = errno;
  }
  return true;
}

}  // namespace

OutputPump::OutputPump() {
  make_pipe(out_r_, out_w_);
  make_pipe(err_r_, err_w_);
}

int OutputPump::copy(pid_t pid, int out_file, int err_file, Stream& failed) {
  out_w_.reset();  // the command holds them now: end of file comes when it (and its children) close them
  err_w_.reset();
  const UniqueFd exited(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!exited) throw_errno("pidfd_open for the command's pid " + std::to_string(pid));
  Channel ch[2] = {{out_r_.get(), out_file, Stream::out}, {err_r_.get(), err_file, Stream::err}};
  for (bool running = true; running;) {
    pollfd p[3] = {{ch[0].open ? ch[0].pipe : -1, POLLIN, 0}, {ch[1].open ? ch[1].pipe : -1, POLLIN, 0},
                   {exited.get(), POLLIN, 0}};
    // No deadline of its own: the command's time is the master's (--timeout kills this worker).
    if (::poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll on a command's output");
    }
    running = (p[2].revents & POLLIN) == 0;
    for (int k = 0; k < 2; ++k) {
      if (!ch[k].open) continue;
      if (!running) {  // it has exited: everything it wrote is in the pipe now
        ::fcntl(ch[k].pipe, F_SETFL, O_NONBLOCK);
        while (ch[k].open && move_some(ch[k])) {}
      } else if ((p[k].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        move_some(ch[k]);
      }
    }
  }
  for (const Channel& c : ch)
    if (c.error != 0) {
      failed = c.stream;
      return c.error;
    }
  return 0;
}

}  // namespace taskfarm::exec
