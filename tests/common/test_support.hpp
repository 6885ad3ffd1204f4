// Test-only helpers for tests/common: run a program with a deadline and capture its output,
// run a function in a forked child, temporary directories, and the list of /dev/shm segments a
// pid created. Used from the single thread of a test process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace taskfarm::test {

/// How a child process ended, and what it wrote to stdout and stderr (interleaved).
struct ProcessResult {
  int exit_code = -1;  ///< -1 if it did not exit normally
  int signal = 0;      ///< the signal that ended it, if any
  bool timed_out = false;
  std::string output;
  bool ok() const { return exit_code == 0 && !timed_out; }
};

/// Runs argv[0] (a path) with argv, stdin from /dev/null, until it ends or `timeout` passes
/// (then SIGKILL). Never waits longer than the timeout plus reaping.
ProcessResult run_program(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::seconds(30));

/// Forks; the child runs body(fd) with `fd` the write end of a pipe to the parent, then _exits
/// with body's return value (an escaping exception: 125). The parent collects what was written
/// and the exit status, with the same deadline rule as run_program.
ProcessResult run_in_child(const std::function<int(int fd)>& body,
                           std::chrono::milliseconds timeout = std::chrono::seconds(30));

/// Writes all of `text` to fd (for children reporting to their parent).
void write_all(int fd, const std::string& text);

/// What f() threw as a taskfarm::Error, or "(no taskfarm::Error)".
std::string error_of(const std::function<void()>& f);

/// Names in /dev/shm of the taskfarm segments created by `pid`, sorted.
std::vector<std::string> segments_of(pid_t pid);

/// Notes `pid` as one of this suite's processes for the leftover check that closes the suite
/// (a file in $TASKFARM_TEST_PID_DIR; nothing if that is unset).
void record_test_pid(pid_t pid);

/// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "taskfarm-test");
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace taskfarm::test
