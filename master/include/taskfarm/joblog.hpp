// Joblog: the observer that writes a joblog (joblog_file.hpp) as a run goes — a row for every
// attempt of every task: "ok" rows when their chunk piece commits, "retried"/"failed" rows
// when an attempt fails — and that resumes a job from the joblog of an earlier run of it. Each
// commit's rows reach the file in one write(2), so the joblog of a master killed with SIGKILL
// lists exactly the tasks whose results are in place. A write that fails (disk full, file too
// large) is reported once to `on_failed` (the `taskfarm` binary stops the run then, exit 102);
// no row is written after it, so the file holds only whole rows of done work. With output held
// back for order (hold_until_printed), an "ok" row waits until its task's output is printed, so
// that a killed master's joblog never lists a task whose output no run printed. Attach it to a
// Farm::run or a Pool call (CallOptions::observer); used on that call's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "taskfarm/farm.hpp"
#include "taskfarm/joblog_file.hpp"
#include "taskfarm/range_set.hpp"

namespace taskfarm {

/// A run's joblog rows as text, without a file: what Joblog writes, and what a node of an MPI
/// run sends rank 0 (docs/design.md §17). Times are placed on the wall clock as of construction.
class JoblogRows {
 public:
  JoblogRows();
  /// Appends the "ok" rows of a committed piece to `out`; returns how many.
  std::uint64_t append_done(std::string& out, const TasksDone& t) const;
  /// Appends the row of a failed attempt; a worker that died between tasks has none (false).
  bool append_failure(std::string& out, const FailureRecord& f) const;

  InputFingerprint inputs;  ///< if set, every row gets its task's inputs column
  std::string host;         ///< if not "", every row gets this host column

 private:
  double wall_seconds(std::chrono::steady_clock::time_point t) const;
  std::chrono::steady_clock::time_point steady0_;
  std::chrono::system_clock::time_point wall0_;
};

class Joblog : public FarmObserver {
 public:
  /// Called once, with the reason, on the first write that fails.
  using OnFailed = std::function<void(const std::string& why)>;

  /// A new joblog for `job` at `path`, there at once: a regular file at `path` is replaced whole
  /// (by rename, never truncated or written), a FIFO, device or directory is refused. todo() is
  /// the whole index space. Throws Error naming the path.
  static Joblog create(const std::string& path, const RunIdentity& job, OnFailed on_failed = {});
  /// Goes on from the joblog an earlier run of `job` wrote at `path` (also one whose master was
  /// killed): adds this run's rows to it, and todo() is what it did not record as done. Throws
  /// Error if it is missing, not a joblog, or of another job (read_joblog, plan_resume).
  static Joblog resume(const std::string& path, const RunIdentity& job, OnFailed on_failed = {});
  /// Writes into `file`; `todo` is what todo() returns (the `taskfarm` binary stages its file).
  Joblog(JoblogFile file, std::vector<IndexRange> todo, OnFailed on_failed = {});

  /// The ranges this run is to compute: pass them to the run (JobSpec::ranges, CallOptions::only).
  const std::vector<IndexRange>& todo() const noexcept { return todo_; }
  /// Tasks done by the earlier runs (0 for a new joblog).
  std::uint64_t earlier_done() const noexcept { return earlier_done_; }
  /// Why writing stopped ("cannot write joblog j.tsv: No space left on device"), or "".
  const std::string& error() const noexcept { return error_; }
  /// Tasks whose "ok" row reached the file in this run (what a resume will not run again).
  std::uint64_t recorded_ok() const noexcept { return recorded_ok_; }
  /// Whether a row of this run (any outcome) reached the file: the `taskfarm` binary replaces a
  /// file of the user's with a new joblog only then, never with one that records nothing.
  bool holds_rows() const noexcept { return holds_rows_; }
  const std::string& path() const noexcept { return file_.path(); }
  /// Every row gets its task's inputs fingerprint (a file made with_inputs, joblog_file.hpp).
  void record_inputs(InputFingerprint fingerprint) { format_.inputs = std::move(fingerprint); }
  /// Every row gets this host column (a file made with_host: the joblog of an --mpi run, resumed).
  void record_host(std::string host) { format_.host = std::move(host); }

  /// Output printed in task order (`taskfarm run -k`): a task's output is the result, and it
  /// waits for the tasks before it after its piece committed. From now on an "ok" row is written
  /// once both have happened — its piece committed and printed() named it — as GNU parallel logs
  /// a job when it prints it; one never printed (the master killed meanwhile) is never "ok",
  /// so a --resume runs it again. Rows held meanwhile are those of the output held for order.
  void hold_until_printed() noexcept { hold_ = true; }
  /// The output of these tasks (succeeded ones) has been written out (hold_until_printed).
  void printed(std::span<const std::uint64_t> indices);

  void on_tasks_done(const TasksDone& t) override;
  void on_failure(const FailureRecord& f) override;

 private:
  void write_rows();

  JoblogFile file_;
  std::vector<IndexRange> todo_;
  std::uint64_t earlier_done_ = 0;
  OnFailed on_failed_;
  std::string error_;
  JoblogRows format_;
  std::string rows_;
  std::uint64_t rows_ok_ = 0;      // "ok" rows in rows_
  std::uint64_t recorded_ok_ = 0;  // "ok" rows written
  bool holds_rows_ = false;        // a write of rows succeeded
  bool hold_ = false;
  std::map<std::uint64_t, std::string> held_;  // hold_: committed, not yet printed
  std::set<std::uint64_t> printed_early_;      // hold_: printed before their piece's commit was seen
};

}  // namespace taskfarm
