// A worker program for the hostile-worker suite: correct results (out[i] = i * i into an int64
// output array, or result i * i), except at index --at, where it does what --mode says:
//   escape        starts a grandchild that setsid()s and outlives the worker (a daemon's double
//                 fork); the grandchild writes its pid to DIR/escaped and waits forever; the
//                 task then completes normally
//   stderr-line   writes --bytes of 'x' to stderr with no newline, then exits with code 7
//   flood-stdout  writes --bytes to stdout (in 64 KiB pieces), then completes normally
//   exit0         exits with code 0 in the middle of the task
//   close-stdout  closes its standard output (fd 1), then completes normally
//   dup-high      opens DIR/userfile for appending and dup2()s it over every descriptor above 2
//                 that names a taskfarm memfd, writes a line through each, then completes
//   own-channel   closes every descriptor above 2 (close_range, as daemonising code does), opens
//                 a socket pair of its own (which takes the numbers) and keeps it, then completes
//   own-channel-wait  as own-channel, then waits up to 20 s for its socket pair to say something
//                 (nothing does) before it completes: a task that goes on after closing the channel
// In the last four modes every task prints "task I" on stdout.
// --slow-index K --slow-ms MS: index K first burns MS of CPU (a slow task the others overtake).
//   hostile_worker --mode MODE --at K|all [--dir DIR] [--bytes N] [--slow-index K --slow-ms MS]
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "taskfarm/worker.hpp"

namespace {

void write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w <= 0) return;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

// The double fork of a daemon: the grandchild is in a session of its own and its parent is
// gone, so neither the worker's process group nor its parent-death signal reaches it.
void escape(const std::string& dir) {
  const pid_t child = ::fork();
  if (child == 0) {
    ::setsid();
    if (::fork() == 0) {
      const std::string tmp = dir + "/escaped.tmp", path = dir + "/escaped";
      const std::string pid = std::to_string(::getpid());
      const int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
      write_all(fd, pid.data(), pid.size());
      ::close(fd);
      ::rename(tmp.c_str(), path.c_str());  // appears whole
      for (;;) ::pause();
    }
    ::_exit(0);
  }
  ::waitpid(child, nullptr, 0);
  for (int k = 0; k < 10000 && ::access((dir + "/escaped").c_str(), F_OK) != 0; ++k) ::usleep(1000);  // bounded
}

// A task that puts a file of its own at the descriptors where taskfarm keeps something.
void dup_over_memfds(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_APPEND);
  if (fd < 0) std::exit(9);
  for (int k = 3; k < 64; ++k) {
    char link[256] = {};
    const std::string proc = "/proc/self/fd/" + std::to_string(k);
    if (k == fd || ::readlink(proc.c_str(), link, sizeof link - 1) <= 0) continue;
    if (std::string(link).rfind("/memfd:taskfarm", 0) != 0) continue;
    ::dup2(fd, k);
    write_all(k, "a task's log line\n", 18);
  }
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode, dir = ".";
  std::uint64_t at = ~0ull, bytes = 16u << 20;
  bool every = false;
  std::uint64_t slow_index = ~0ull;
  long slow_ms = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--mode") mode = argv[i + 1];
    else if (a == "--at") at = std::string(argv[i + 1]) == "all" ? ~0ull : std::strtoull(argv[i + 1], nullptr, 10), every = at == ~0ull;
    else if (a == "--dir") dir = argv[i + 1];
    else if (a == "--bytes") bytes = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--slow-index") slow_index = std::strtoull(argv[i + 1], nullptr, 10);
    else if (a == "--slow-ms") slow_ms = std::strtol(argv[i + 1], nullptr, 10);
  }
  return taskfarm::run_worker([&](taskfarm::TaskContext& t) {
    const std::uint64_t i = t.index();
    if (i == slow_index) {  // burns CPU: no sleeping in tests
      timespec t0{}, t1{};
      ::clock_gettime(CLOCK_MONOTONIC, &t0);
      do ::clock_gettime(CLOCK_MONOTONIC, &t1);
      while ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1'000'000 < slow_ms);
    }
    if (i == at || every) {
      if (mode == "escape") escape(dir);
      if (mode == "stderr-line") {
        const std::string x(bytes, 'x');
        write_all(2, x.data(), x.size());
        std::exit(7);
      }
      if (mode == "flood-stdout") {
        const std::string x(64 * 1024, 'y');
        for (std::uint64_t left = bytes; left > 0; left -= std::min<std::uint64_t>(left, x.size()))
          std::fwrite(x.data(), 1, std::min<std::uint64_t>(left, x.size()), stdout);
        std::fflush(stdout);
      }
      if (mode == "exit0") std::exit(0);
      if (mode == "close-stdout") {
        std::printf("task %llu\n", static_cast<unsigned long long>(i));
        std::fflush(stdout);
        ::close(1);
      }
      if (mode == "dup-high") dup_over_memfds(dir + "/userfile");
      if (mode == "own-channel" || mode == "own-channel-wait") {
        ::close_range(3, ~0U, 0);
        int sv[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0) std::exit(9);  // kept open: the task's own
        if (mode == "own-channel-wait") {
          pollfd p{sv[0], POLLIN, 0};
          ::poll(&p, 1, 20'000);
        }
      }
    } else if (mode == "close-stdout" || mode == "dup-high" || mode == "own-channel" || mode == "own-channel-wait") {
      std::printf("task %llu\n", static_cast<unsigned long long>(i));
    }
    const auto v = static_cast<std::int64_t>(i * i);
    if (t.job().output_handle.empty()) t.set_result(v);
    else t.output_as<std::int64_t>().element({i}) = v;
  });
}
