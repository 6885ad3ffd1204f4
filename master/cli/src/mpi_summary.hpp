// Rank 0's last words on a `taskfarm run --mpi` (docs/design.md §17): the summary of every
// node's counts, the failed tasks named with their nodes, what was not run or is missing from
// the output, and the run's exit status — in one machine's words (summary.hpp). Rank 0's
// relay, main thread, once every node reported (a job cut short says less: mpi_run.cpp).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>

#include "file_claim.hpp"
#include "mpi_failures.hpp"
#include "mpi_rank0.hpp"
#include "mpi_wire.hpp"
#include "run_plan.hpp"

namespace taskfarm::cli::mpi {

/// What rank 0 counted over the run.
struct RankTotals {
  std::uint64_t todo = 0;  ///< tasks in this run
  int ranks = 1;
  std::array<std::uint64_t, r_fields> total{};  ///< every node's report summed (ReportField)
  /// -k: tasks that succeeded on their node but whose output rank 0 lost (not counted as
  /// succeeded), and whether output was lost at all (its spool failed, or its stdout gave up).
  std::uint64_t unprinted = 0;
  bool lost_output = false;
  std::uint64_t requests = 0;                      ///< ranges handed out
  std::chrono::steady_clock::duration serving{};  ///< rank 0's time inside requests
  double wall_s = 0;
  std::optional<std::uint64_t> gathered;  ///< bytes gathered to rank 0, if any node gathered
};

/// Says the summary on stderr, finishes the trace, keeps or removes the new --output (removed
/// when no task succeeded, as on one machine) and returns the run's exit status.
int say_summary(const RunPlan& plan, const RankTotals& t, RankJoblog* joblog, RankTrace* trace,
                const FailureNames* failures, CreatedFile& created);

/// A run cut short: how many tasks the joblog records done, for the --resume (nothing without
/// a joblog in place).
void say_joblog_count(const RunPlan& plan, const RankJoblog* joblog);

}  // namespace taskfarm::cli::mpi
