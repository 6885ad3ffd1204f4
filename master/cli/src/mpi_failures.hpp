// The failed tasks of `taskfarm run --mpi`, named at rank 0 as one machine names its own
// (docs/design.md §17, "Failures named at rank 0"): each node master sends, once its farm has
// run, a `failures` text — its lowest-index failures described (at most kFailuresShown), its
// failed indices as ranges (at most kFailureRangesSent), and its counts — and rank 0 merges
// them into the summary's lines, each failure with the rank and host where it ran. Bounded on
// both sides: a node with a million failures sends at most a few KiB of ranges and 20
// descriptions, and rank 0 keeps at most kFailuresShown descriptions and kFailureRangesKept
// ranges. Node masters make the text (mpi_node.cpp); rank 0's relay reads it, main thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "summary.hpp"
#include "taskfarm/farm.hpp"
#include "taskfarm/range_set.hpp"

namespace taskfarm::cli::mpi {

/// Ranges of failed indices a node sends at most (the lowest; 16 bytes each).
inline constexpr std::size_t kFailureRangesSent = 1024;
/// Ranges of failed indices rank 0 keeps at most (the lowest, over every node).
inline constexpr std::size_t kFailureRangesKept = 4096;

/// A node's `failures` text from its run's report (empty when nothing failed).
std::string encode_failures(const RunReport& report);

/// Rank 0's merge of every node's `failures` text.
class FailureNames {
 public:
  /// `hosts[rank]`: each rank's node name, "HOST:RANK".
  explicit FailureNames(std::vector<std::string> hosts) : hosts_(std::move(hosts)) {}
  /// A `failures` text from node `rank`. Throws Error on a malformed one (nothing of it kept).
  void add(int rank, std::string_view text);
  /// The summary's failure lines (summary.hpp's format_failures): the lowest-index failures over
  /// every node, each "index 7 (attempt 0, slot 1, pid 123) on rank 1 (HOST): killed by SIGSEGV",
  /// then the rest counted and the failed indices — those past a list a node or rank 0 cut
  /// counted as "(N more)".
  FailureLines lines() const;

 private:
  struct Named {
    std::optional<std::uint64_t> index;  // none: a failure of no task (a worker that never started)
    std::string line;
  };
  std::vector<std::string> hosts_;
  std::vector<Named> named_;    // the lowest kFailuresShown by index, those of no task last
  RangeSet failed_;             // every failed index below limit_
  std::uint64_t limit_ = UINT64_MAX;  // a failed index at or past it may be missing from failed_
  std::uint64_t records_ = 0, failed_count_ = 0;
};

}  // namespace taskfarm::cli::mpi
