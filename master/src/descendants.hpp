// Descendants that escape their worker: a process a task starts that leaves the worker's
// process group (setsid) and outlives the worker is out of reach of killpg. With the master a
// child subreaper (PR_SET_CHILD_SUBREAPER), such orphans are reparented to the master instead of
// init; these functions then reap the exited ones and, at the end of a run, kill and reap the
// rest. They treat every child of this process that is not in `workers` as such a descendant,
// so they are for a process whose only other children are the farm's (the `taskfarm` binary;
// FarmOptions::reap_descendants). Master side, the Farm's thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <vector>

namespace taskfarm::descendants {

/// Makes this process a child subreaper (for good: it is a property of the process).
/// Throws SystemError if the kernel refuses.
void become_subreaper();

/// Reaps adopted children that have exited (never a pid in `workers`), without blocking.
/// Returns how many.
std::size_t reap_exited(const std::vector<pid_t>& workers);

/// SIGKILLs every child of this process not in `workers` (and the process group it leads, if
/// it does), reaps it, and repeats for what that orphans in turn, until none is left or
/// `limit` has passed. Returns how many it killed.
std::size_t kill_and_reap(const std::vector<pid_t>& workers, std::chrono::milliseconds limit);

}  // namespace taskfarm::descendants
