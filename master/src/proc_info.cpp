#include "proc_info.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "taskfarm/error.hpp"

namespace taskfarm::proc {
namespace {

// /proc/PID/stat into buf (NUL-terminated); the part after the command name, which may hold
// spaces and parentheses itself, so it ends at the last ')'. nullptr if unreadable.
const char* stat_fields(pid_t pid, char (&buf)[512]) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return nullptr;
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return nullptr;
  buf[n] = '\0';
  const char* p = std::strrchr(buf, ')');
  return p != nullptr && p[1] == ' ' ? p + 2 : nullptr;  // "<state> <ppid> ..."
}

}  // namespace

char state_of(pid_t pid) noexcept {
  char buf[512];
  const char* f = stat_fields(pid, buf);
  return f != nullptr && *f != '\0' ? *f : '?';
}

Stat stat_of(pid_t pid) noexcept {
  char buf[512];
  const char* f = stat_fields(pid, buf);
  int ppid = 0, pgrp = 0;
  char state = '?';
  unsigned long long start = 0;
  // state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime cutime
  // cstime priority nice num_threads itrealvalue starttime
  if (f == nullptr ||
      std::sscanf(f, "%c %d %d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu", &state, &ppid, &pgrp,
                  &start) != 4)
    return {};
  return Stat{state, static_cast<pid_t>(ppid), static_cast<pid_t>(pgrp), static_cast<std::uint64_t>(start)};
}

std::int64_t switches(pid_t pid) noexcept {
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/status", static_cast<int>(pid));
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[4096];  // ~1.5 KiB here; the two counts are its last lines
  ssize_t n = 0, got = 0;
  while (n < static_cast<ssize_t>(sizeof buf) - 1 && (got = ::read(fd, buf + n, sizeof buf - 1 - static_cast<std::size_t>(n))) > 0) n += got;
  ::close(fd);
  buf[n] = '\0';
  std::int64_t sum = 0;
  int found = 0;
  for (const char* key : {"\nvoluntary_ctxt_switches:", "\nnonvoluntary_ctxt_switches:"}) {
    const char* p = std::strstr(buf, key);
    if (p == nullptr) continue;
    sum += std::strtoll(p + std::strlen(key), nullptr, 10);
    ++found;
  }
  return found == 2 ? sum : -1;
}

namespace {

constexpr const char* kTask = "/proc/self/task";

// The entries of /proc/self/task: the authoritative count, but opendir allocates a 32 KiB buffer
// and it takes five system calls.
std::size_t scan_threads() noexcept {
  DIR* d = ::opendir(kTask);
  if (d == nullptr) return 0;
  std::size_t n = 0;
  while (const dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n;
}

// Linux reports a task directory's link count as 2 + its threads (proc_task_getattr): one stat
// instead of a scan, made before every fork (docs/design.md §4). Trusted only once this process
// has seen it agree with a scan (the same link count before and after it); otherwise every count
// scans, so a kernel that counts otherwise costs time, never safety.
bool link_count_is_thread_count() noexcept {
  static const bool agrees = [] {
    struct stat before {}, after {};
    if (::stat(kTask, &before) != 0) return false;
    const std::size_t n = scan_threads();
    if (::stat(kTask, &after) != 0) return false;
    return n != 0 && before.st_nlink == after.st_nlink && before.st_nlink == n + 2;
  }();
  return agrees;
}

}  // namespace

std::size_t thread_count() noexcept {
  struct stat st {};
  if (link_count_is_thread_count() && ::stat(kTask, &st) == 0 && st.st_nlink > 2) return static_cast<std::size_t>(st.st_nlink - 2);
  return scan_threads();
}

void require_single_thread(bool allowed, const char* what) {
  if (allowed) return;
  const std::size_t n = thread_count();
  if (n <= 1) return;
  throw Error(std::string(what) + ": this process has " + std::to_string(n) +
              " threads, and a worker forked while another thread holds a lock (malloc's, or yours) would deadlock "
              "on it. Use Backend::threads or program mode (Farm::program) here, or set fork_with_threads = true "
              "if no other thread can hold a lock at the call");
}

namespace {
// Whether `ancestor` is `pid`'s parent, or its parent's, ... (at most 64 generations).
bool descends_from(pid_t pid, pid_t ancestor) noexcept {
  for (int depth = 0; depth < 64 && pid > 1; ++depth) {
    pid = stat_of(pid).ppid;
    if (pid == ancestor) return true;
  }
  return false;
}
}  // namespace

std::uint64_t ticks_since_boot(std::int64_t ago_ns) noexcept {
  timespec ts{};
  if (::clock_gettime(CLOCK_BOOTTIME, &ts) != 0) return 0;
  const long hz = ::sysconf(_SC_CLK_TCK);
  const std::int64_t ns = static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec - ago_ns;
  return hz > 0 && ns > 0 ? static_cast<std::uint64_t>(ns / (1'000'000'000 / hz)) : 0;
}

pid_t stopped_in_group(pid_t pgrp, std::initializer_list<pid_t> except, std::uint64_t not_before, pid_t ancestor) noexcept {
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return 0;
  pid_t found = 0;
  while (const dirent* e = ::readdir(d)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0' || std::find(except.begin(), except.end(), static_cast<pid_t>(pid)) != except.end()) continue;
    const Stat st = stat_of(static_cast<pid_t>(pid));
    // What the task started: a descendant of its process, or one started since — in a later
    // clock tick (10 ms), so that a process an earlier task left in that same tick is not taken
    // (h12b N13): a process not named is better than one named with a kill -CONT that does nothing.
    const bool since = st.start > not_before;
    if (st.pgrp == pgrp && st.state == 'T' && (since || (ancestor != 0 && descends_from(static_cast<pid_t>(pid), ancestor)))) {
      found = static_cast<pid_t>(pid);
      break;
    }
  }
  ::closedir(d);
  return found;
}

std::vector<pid_t> children() {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  const pid_t self = ::getpid();
  while (const dirent* e = ::readdir(d)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    char buf[512];
    const char* f = stat_fields(static_cast<pid_t>(pid), buf);
    if (f == nullptr || f[0] == '\0' || f[1] != ' ') continue;
    if (std::strtol(f + 2, nullptr, 10) == self) out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  return out;
}

}  // namespace taskfarm::proc
