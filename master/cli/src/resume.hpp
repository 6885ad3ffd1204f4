// --resume: what an earlier run of the same job left to do, from its joblog: the complement of
// its done ranges, so a resume's memory grows with the joblog, not the index space. Pure logic
// over the joblog's contents; the master's main thread.
#pragma once

#include <cstdint>
#include <string>

#include "joblog.hpp"
#include "range_set.hpp"

namespace taskfarm::cli {

/// What a resumed run computes.
struct ResumePlan {
  IndexRanges ranges;         ///< the tasks still to run
  std::uint64_t done = 0;     ///< tasks the earlier run(s) completed
};

/// Checks that `earlier` ran the same job as `now` (same index space, same output file, dtype
/// and shape) and returns what is left. Throws UsageError naming the difference and the joblog.
ResumePlan plan_resume(const EarlierRun& earlier, const RunIdentity& now, const std::string& joblog_path);

}  // namespace taskfarm::cli
