// Rank 0's own parts of `taskfarm run --mpi` (docs/design.md §17): the hand-out of the run's
// ranges, and the --joblog it writes from every node's rows. Rank 0's relay, main thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mpi_wire.hpp"
#include "run_plan.hpp"
#include "taskfarm/joblog_file.hpp"

namespace taskfarm::cli::mpi {

/// The run's ranges, sliced `grain` indices at a time, in order.
class HandOut {
 public:
  HandOut(std::vector<IndexRange> todo, std::uint64_t grain) : todo_(std::move(todo)), grain_(grain) {}
  /// The next slice as a Wire (kind closed when none is left).
  Wire next();

 private:
  std::vector<IndexRange> todo_;
  std::uint64_t grain_;
  std::size_t k_ = 0;
  std::uint64_t at_ = 0;
};

/// Rank 0's --joblog: every node's rows, each given its node ("HOST:RANK", hosts[rank]) in the
/// host column — unless it resumes a joblog without one (a single-machine run's), whose columns
/// it keeps. A failed write is said once on stderr; no row is written after it.
class RankJoblog {
 public:
  /// Creates plan.joblog (replacing a file there by rename) or, with plan.resume, appends to it.
  RankJoblog(const RunPlan& plan, std::vector<std::string> hosts);
  /// Writes `rows` (whole lines, from node `rank`) with one write(2).
  void write(int rank, std::string_view rows);
  std::uint64_t recorded_ok() const noexcept { return recorded_ok_; }
  const std::string& error() const noexcept { return error_; }

 private:
  std::vector<std::string> hosts_;
  std::optional<JoblogFile> file_;
  bool host_ = false;
  std::string error_;
  std::uint64_t recorded_ok_ = 0;
};

}  // namespace taskfarm::cli::mpi
