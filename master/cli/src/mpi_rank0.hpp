// Rank 0's own parts of `taskfarm run --mpi` (docs/design.md §17): the hand-out of the run's
// ranges, and the --joblog and --trace it writes from every node's rows and records. A new file
// is put at its path at once; one that replaces a file of the user's only once it holds what it
// is for, as Publisher does on one machine: the joblog its first row written, the trace a node's
// records written after a task ended on any node. Rank 0's relay, main thread.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mpi_wire.hpp"
#include "run_plan.hpp"
#include "stdout_writer.hpp"
#include "taskfarm/event_stream.hpp"
#include "taskfarm/detail/staged_file.hpp"
#include "taskfarm/joblog_file.hpp"
#include "taskfarm/trace.hpp"

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
/// it keeps. A failed write is said once on stderr; no row is written after it (and rank 0
/// hands out no more work: the run stops, as on one machine).
class RankJoblog {
 public:
  /// Creates plan.joblog under a temporary name, or with plan.resume appends to it. Throws
  /// Error naming the file.
  RankJoblog(const RunPlan& plan, std::vector<std::string> hosts);
  /// Everything rank 0 makes is made: a joblog where nothing was (the plan looked) goes to its
  /// path now, so that other runs see its lock. Throws Error if something appeared there since.
  void publish_if_new();
  /// Writes `rows` (whole lines, from node `rank`) with one write(2); the first that succeeds
  /// puts a joblog that replaces the user's file in place. A failure is error() (no more rows).
  void write(int rank, std::string_view rows);
  /// Whether the file at the path is this run's (published, or appended to).
  bool in_place() const noexcept { return !staged_ || staged_.published(); }
  std::uint64_t recorded_ok() const noexcept { return recorded_ok_; }
  const std::string& error() const noexcept { return error_; }

 private:
  void publish();
  void failed(const std::string& why);
  std::vector<std::string> hosts_;
  bool replaces_ = false;      // a file of the user's was at the path
  detail::StagedFile staged_;  // removes the temporary file if never published
  std::optional<JoblogFile> file_;
  bool host_ = false;
  std::string error_;
  std::uint64_t recorded_ok_ = 0;
};

/// Rank 0's --trace: one process per node (process id its rank, named "HOST:RANK"), each node's
/// records as its node master's Trace made them (mpi_node.cpp).
class RankTrace {
 public:
  /// Creates plan.trace under a temporary name.
  RankTrace(const RunPlan& plan, const std::vector<std::string>& hosts);
  /// As RankJoblog's.
  void publish_if_new();
  /// Writes a node's records (a new file is at its path already).
  void append(std::string_view records);
  /// A task ended on some node.
  void task_ended();
  /// Closes the array; the trace replaces the user's file if a task ended and it was written
  /// whole. A failure is error(), said on stderr. A trace never published is removed.
  void finish();
  const std::string& error() const noexcept { return error_; }

 private:
  void publish();
  bool replaces_ = false;
  detail::StagedFile staged_;
  Trace trace_;
  bool ended_ = false, appended_ = false;  // a task ended; a node's records were written
  std::string error_;
};

/// Rank 0's --events: the one stream on its standard output — "start", every node's lines as they
/// come (their node masters added rank and host), and "end" with every node's counts summed.
class RankEvents {
 public:
  /// `stop`: the relay's stop flag; once set, standard output is waited for at most 100 ms in
  /// all (mpirun stops reading it and SIGKILLs rank 0 ~1 s after its SIGTERM: StdoutWriter).
  explicit RankEvents(const volatile std::sig_atomic_t* stop);
  /// "start": `workers` is every rank's -j summed.
  void start(const RunPlan& plan, std::uint64_t todo, std::uint64_t workers);
  /// A node's lines, written out at once (a driving program waits for them).
  void write(std::string_view lines);
  /// Standard output took no more after a stop: what was written since may not be out.
  bool gave_up() const noexcept { return out_.gave_up(); }
  /// "end": `total`, the nodes' reports summed (ReportField) — or, for a job ending before every
  /// node reported (`interrupted` non-empty: the job is ending), what `counted` says each node
  /// had succeeded and finally failed so far.
  void end(std::uint64_t todo, const std::vector<std::array<std::uint64_t, 2>>& counted,
           const std::array<std::uint64_t, r_fields>& total, int exit_status, const std::string& interrupted,
           std::chrono::steady_clock::duration wall);

 private:
  StdoutWriter out_;
  EventStream events_;
};

}  // namespace taskfarm::cli::mpi
