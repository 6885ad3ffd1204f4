// Starting workers: forked (fork mode, running a function in the child) or as programs (vfork +
// exec, as posix_spawn does, but bound to the master before the exec; see docs/design.md for
// why not Boost.Process v2 1.81). Both give the child its own process group, bind its life to
// the master's (PR_SET_PDEATHSIG), apply the memory limit and thread-count environment, wire
// stderr to a pipe and the channel to fd 3. The only code that forks or execs.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "taskfarm/error.hpp"
#include "worker_process.hpp"

namespace taskfarm {

/// The worker program could not be started (missing, not executable, exec failed).
class SpawnError : public Error {
 public:
  SpawnError(const std::string& what, int err) : Error(what), error_(err) {}
  int error() const noexcept { return error_; }

 private:
  int error_;
};

struct SpawnLimits {
  std::uint64_t memory_limit = 0;                 // RLIMIT_AS bytes; 0 = none
  std::vector<std::pair<std::string, std::string>> env;  // set in the child unless already set
};

/// Forks a worker that runs `body(channel, slot)` and _exits with its result. `close_in_child`
/// are the master's descriptors the child must not keep (other workers' channels and pipes).
WorkerProcess spawn_forked(ShmSegment slot, const SpawnLimits& limits, const std::vector<int>& close_in_child,
                           const std::function<int(Channel, ShmSegment)>& body);

/// Starts `program args...` as a worker (channel on fd 3, TASKFARM_WORKER in its environment),
/// bound to this process's death from before its exec.
WorkerProcess spawn_program(ShmSegment slot, const SpawnLimits& limits, const std::string& program,
                            const std::vector<std::string>& args);

/// The pidfd of a child just started, its one handle. Without one the child would be nobody's
/// to reap: it is SIGKILLed and reaped, and SystemError names `what` and the pid.
UniqueFd open_pidfd(pid_t pid, const std::string& what);

/// Whether a failed spawn (fork, vfork, a pipe or segment for it) with this errno failed
/// for want of resources — "not now" (EAGAIN under RLIMIT_NPROC, ENOMEM, EMFILE, ...), not
/// "never" (the program cannot be executed).
bool for_want_of_resources(int err) noexcept;

/// Resolves a program name like execvp would (PATH for bare names); throws SpawnError with
/// the reason if it is missing or not executable.
std::string resolve_program(const std::string& program);

}  // namespace taskfarm
