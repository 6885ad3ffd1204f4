// The worker's serving loop, shared by worker programs (run_worker) and forked workers
// (Pool's fork mode): say Hello, then run assigned chunks index by index, recording in the
// slot which index runs (so the master can name it if we die), committing results through
// the arena and reporting them in batched Done messages, until Stop or the channel closes.
// Runs in the worker process, on one thread.
#pragma once

#include <functional>
#include <memory>

#include "taskfarm/detail/channel.hpp"
#include "taskfarm/shm_segment.hpp"
#include "taskfarm/worker.hpp"

namespace taskfarm::detail {

using RunnerFactory = std::function<std::unique_ptr<JobRunner>(const JobInfo&)>;

/// Serves the master until told to stop. Returns the exit code for the worker process.
/// `greeted`: Hello was sent already (taskfarm::greet), so it is not sent again.
int serve(Channel channel, ShmSegment slot, const RunnerFactory& make_runner, bool greeted = false);

/// What serve() needs once per process image, done now: a master calls it before it forks
/// workers, so that each forked worker inherits it instead of doing it itself (in a child every
/// page first written or run costs a page fault: this one took ~5 of them per worker).
void prepare_serve();

/// Exit codes of a worker process that the master interprets.
inline constexpr int kExitStartedByHand = 2;
inline constexpr int kExitSetupFailed = 4;  // could not attach the slot, arrays, ...

/// Binds this process's life to its parent's: SIGKILL when the parent dies, and exit now
/// if it already has (parent pid no longer `expected_parent`).
void bind_to_parent(pid_t expected_parent) noexcept;

}  // namespace taskfarm::detail
