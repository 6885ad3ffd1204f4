// The commands of the `taskfarm` binary, each a function returning the exit status. They print
// to stdout/stderr and delegate the work to the library. Main thread.
#pragma once

#include <string>

#include "run_plan.hpp"

namespace taskfarm::cli {

/// `taskfarm clean`: removes the segments of dead masters and says which.
int clean_command();

/// `taskfarm info`: usable CPUs (affinity, cgroup quota), /dev/shm free space, limits.
int info_command();

/// `taskfarm run`: runs `plan`; `resume_hint` is the command line that would resume this run
/// (shown when tasks are missing), or "". Takes `plan.lines` (they move into their segment).
int run_command(RunPlan& plan, const std::string& resume_hint);

}  // namespace taskfarm::cli
