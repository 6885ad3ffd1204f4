// --resume: what an earlier run of the same job left to do, from its joblog. Pure logic over
// the joblog's contents; the master's main thread.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "joblog.hpp"

namespace taskfarm::cli {

using IndexRanges = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

/// The [begin, end) runs of indices whose done[i] is false, ascending.
IndexRanges missing_ranges(const std::vector<bool>& done);

/// What a resumed run computes.
struct ResumePlan {
  IndexRanges ranges;         ///< the tasks still to run
  std::uint64_t done = 0;     ///< tasks the earlier run(s) completed
};

/// Checks that `earlier` ran the same job as `now` (same index space, same output file, dtype
/// and shape) and returns what is left. Throws UsageError naming the difference and the joblog.
ResumePlan plan_resume(const EarlierRun& earlier, const RunIdentity& now, const std::string& joblog_path);

}  // namespace taskfarm::cli
