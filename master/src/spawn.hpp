// Starting processes: the one path by which the master starts a process of any kind — a farm
// worker forked to run a function (fork mode), a worker program (vfork + exec, as posix_spawn
// does, but bound to the master before the exec; docs/design.md §5 says why not Boost.Process
// v2's launchers); Pool::submit's calls are forked farm workers too (§8). Every one gets its
// own process group, is bound to the master's life (PR_SET_PDEATHSIG), gets the memory limit
// (checked: a limit that cannot be applied is a SpawnError) and the thread-count environment,
// has its stderr on a pipe and keeps none of the master's descriptors it is told to close.
// Nothing else in the library forks or execs. Master side, one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "taskfarm/error.hpp"
#include "worker_process.hpp"

namespace taskfarm {

/// A process could not be started: the program is missing or not executable, exec failed, or
/// its setup (the memory limit) could not be applied. `error()` is the errno.
class SpawnError : public Error {
 public:
  SpawnError(const std::string& what, int err) : Error(what), error_(err) {}
  int error() const noexcept { return error_; }

 private:
  int error_;
};

/// What every started process gets.
struct SpawnLimits {
  std::uint64_t memory_limit = 0;                 // RLIMIT_AS bytes, soft and hard; 0 = none
  std::vector<std::string> env;                   // "NAME=value": set in the child unless NAME is set
  // spawn_forked refuses to fork while the process has other threads, unless this is set
  // (FarmOptions::fork_with_threads): checked at each fork, so a warm farm whose workers all
  // live pays nothing per call.
  bool fork_with_threads = false;
  // The child's stdout is its stderr pipe too (FarmOptions::stdout_to_stderr).
  bool stdout_to_stderr = false;
};

/// The limits for `workers` processes at once: `memory_limit`, and if `set_thread_env` the
/// OMP/BLAS thread counts (max(1, usable CPUs / workers)). Reads the affinity mask and cgroup
/// files: call it once per engine, not per spawn.
SpawnLimits spawn_limits(std::uint64_t memory_limit, bool set_thread_env, std::size_t workers);

/// Forks a child that runs `body()` and _exits with its result (an escaping exception: its
/// what() on stderr, exit 4). `close_in_child` are the master's descriptors the child must not
/// keep (other children's pidfds and pipes), and `also_close` one more unless -1 (the master's
/// end of a channel made for the child). `what` names the child in errors ("a forked worker").
/// With a memory limit, returns only once the child has applied it: SpawnError if it could not.
ChildProcess spawn_child(const SpawnLimits& limits, const std::vector<int>& close_in_child, int also_close,
                         const std::function<int()>& body, const std::string& what);

/// Forks a farm worker that runs `body(channel, slot)` (spawn_child with a channel). Throws
/// Error, forking nothing, if the process has other threads and `limits.fork_with_threads` is
/// not set (a worker forked while another thread holds a lock would deadlock on it).
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
