#include "test_support.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "taskfarm/error.hpp"
#include "taskfarm/unique_fd.hpp"

extern char** environ;

namespace taskfarm::test {
namespace {

// Reads `out` until EOF and waits for `pid` to end, both within `timeout`; kills it after that.
ProcessResult collect(pid_t pid, UniqueFd out, std::chrono::milliseconds timeout) {
  ProcessResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // glibc 2.36's <sys/pidfd.h> lacks extern "C", so call the system call directly.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd) throw_errno("pidfd_open of child " + std::to_string(pid));
  bool eof = false, exited = false;
  while (!(eof && exited)) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd fds[2] = {{eof ? -1 : out.get(), POLLIN, 0}, {exited ? -1 : pidfd.get(), POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("poll on child " + std::to_string(pid));
    if (fds[0].revents != 0) {
      char buf[4096];
      const ssize_t r = ::read(out.get(), buf, sizeof buf);
      if (r > 0) result.output.append(buf, static_cast<std::size_t>(r));
      if (r == 0 || (r < 0 && errno != EINTR)) eof = true;
    }
    if (fds[1].revents != 0) exited = true;
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_errno("waitpid of child " + std::to_string(pid));
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

}  // namespace

ProcessResult run_program(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe2");
  UniqueFd rd(p[0]), wr(p[1]);
  posix_spawn_file_actions_t fa;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_adddup2(&fa, wr.get(), 1);
  ::posix_spawn_file_actions_adddup2(&fa, wr.get(), 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int err = ::posix_spawn(&pid, argv.at(0).c_str(), &fa, nullptr, args.data(), environ);
  ::posix_spawn_file_actions_destroy(&fa);
  if (err != 0) throw SystemError("cannot start " + argv[0], err);
  wr.reset();
  return collect(pid, std::move(rd), timeout);
}

ProcessResult run_in_child(const std::function<int(int fd)>& body,
                           std::chrono::milliseconds timeout) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw_errno("pipe2");
  UniqueFd rd(p[0]), wr(p[1]);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    rd.reset();
    int rc = 125;
    try {
      rc = body(wr.get());
    } catch (...) {
    }
    ::_exit(rc);
  }
  wr.reset();
  return collect(pid, std::move(rd), timeout);
}

void write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t r = ::write(fd, text.data() + done, text.size() - done);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return;
    done += static_cast<std::size_t>(r);
  }
}

std::vector<std::string> segments_of(pid_t pid) {
  const std::string prefix = "taskfarm-" + std::to_string(pid) + "-";
  std::vector<std::string> names;
  DIR* dir = ::opendir("/dev/shm");
  if (dir == nullptr) throw_errno("opendir /dev/shm");
  while (const dirent* e = ::readdir(dir)) {
    const std::string name = e->d_name;
    if (name.compare(0, prefix.size(), prefix) == 0) names.push_back(name);
  }
  ::closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

void record_test_pid(pid_t pid) {
  const char* dir = std::getenv("TASKFARM_TEST_PID_DIR");
  if (dir == nullptr || *dir == '\0') return;
  const std::string path = std::string(dir) + "/" + std::to_string(pid);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) throw_errno("cannot record test pid in " + path);
}

TempDir::TempDir(const std::string& prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/" + prefix + "-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) throw_errno("mkdtemp " + templ);
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no taskfarm::Error)";
}

}  // namespace taskfarm::test
