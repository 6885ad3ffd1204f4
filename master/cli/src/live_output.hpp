// LiveOutput: --line-buffer for `taskfarm run --exec` — the complete lines the running commands
// have written so far, printed as they come (GNU parallel's --line-buffer): lines of different
// tasks may interleave, a line is never cut. It reads the spool files of running commands
// (w<pid>-<n>-<index>.out|err, spool.hpp) from where it left off, up to their last newline, and
// copies those bytes out with sendfile (no line is held in memory). When a task is done,
// ExecOutput prints the rest of its output from there (resume_offset). Farm's thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "spool.hpp"
#include "stdout_writer.hpp"
#include "taskfarm/range_set.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm::cli {

class LiveOutput {
 public:
  LiveOutput(std::string spool, StdoutWriter& out, StdoutWriter& err) : spool_(std::move(spool)), out_(out), err_(err) {}

  /// Prints what the running commands' files hold in whole lines and was not printed: of every
  /// task, or of task `only` (--keep-order: the oldest task not yet printed; the others wait).
  void poll(std::optional<std::uint64_t> only);
  /// Task `index` is done and its `s` output is the file `fd` (its published file): how much of
  /// it poll() printed (0 if none, or if it is another file), forgetting the task's files.
  std::uint64_t resume_offset(std::uint64_t index, exec::Stream s, int fd);

 private:
  struct Tail {
    UniqueFd fd;
    std::uint64_t index = 0;
    exec::Stream stream = exec::Stream::out;
    dev_t dev = 0;
    ino_t ino = 0;
    std::uint64_t printed = 0;  // bytes from the file's start
  };
  void print_lines(Tail& t);

  std::string spool_;
  StdoutWriter& out_;
  StdoutWriter& err_;
  std::map<std::string, Tail> tails_;  // by file name
  RangeSet done_;  // tasks printed: a file left for one by a worker that died is not read again
};

}  // namespace taskfarm::cli
