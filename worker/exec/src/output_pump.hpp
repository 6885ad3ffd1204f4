// OutputPump: the pipes a task's command writes its stdout and stderr into, and the loop that
// copies them into the task's spool files as they come, until the command has exited. The worker
// does the writing (not the command, into a file it was given) so that a write that fails — a
// full --tmpdir (ENOSPC, EDQUOT), a file size limit (EFBIG), an I/O error — is seen and the task
// fails saying so, instead of its output being cut short while it passes for complete (the
// command may not notice, or say so on a stderr that went to the same full disk). What the
// command writes after a write failed is read and dropped, so that it is never blocked on a
// full pipe. Worker process, its one thread.
#pragma once

#include <sys/types.h>

#include "spool.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm::exec {

class OutputPump {
 public:
  /// Makes the two pipes. Throws SystemError.
  OutputPump();

  /// The write ends, for the command's descriptors 1 and 2.
  int command_stdout() const noexcept { return out_w_.get(); }
  int command_stderr() const noexcept { return err_w_.get(); }

  /// The command `pid` has been started: copies what it writes into `out_file` and `err_file`
  /// until it has exited and what it wrote before is copied — not until every descriptor of the
  /// pipes is closed, so a background process it left behind does not hold the task. Does not
  /// reap it. Returns the errno of the first write that failed (0: none), and its stream.
  int copy(pid_t pid, int out_file, int err_file, Stream& failed);

 private:
  UniqueFd out_r_, out_w_, err_r_, err_w_;
};

}  // namespace taskfarm::exec
