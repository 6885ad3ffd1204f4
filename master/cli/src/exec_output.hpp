// ExecOutput: prints the output of `taskfarm run --exec`'s commands, GNU parallel's --group way:
// each task's stdout (then its stderr, on stderr) whole, never interleaved with another's, once
// the task is done — succeeded, or failed for good (a retried attempt's output is dropped: the
// next attempt replaces it). With --keep-order, in task order: a task done early waits for the
// ones before it; a run that ends early prints what is done, in order. The output waits on disk
// in the spool directory (spool_dir.hpp) and is copied from there, so the master's memory stays
// bounded whatever a command prints. With --events, stdout comes as `output` events instead
// (pieces of at most 1 MiB: several events for a larger output). Says which succeeded tasks'
// output is out (on_printed: the joblog's "ok" rows wait for it with --keep-order). A task whose command was
// killed with its worker (a timeout, a crash) and failed for good prints what the command wrote
// until then, as GNU parallel does, followed on stderr by a line saying it is partial. So does a
// task whose output could not be written into the spool (a full --tmpdir: the worker's
// SpoolWriteFailed), and `on_spool_failed` hears why (the run stops: its output is incomplete),
// and whether a PARTIAL line says it (not for an attempt that is retried).
// So does a task that succeeded whose files in the spool are missing or shorter than its worker
// said (exec::PublishedSizes: removed meanwhile by a tmp cleaner or a user's rm): its output is
// lost, and on_printed never names it (no "ok" row). Where standard output or stderr falls behind
// (StdoutWriter::busy: a pager not read), a task done waits in a queue of its own — its index;
// its files stay in the spool — and is printed when standard output has taken what came
// before, so the writer's queue holds at most one task's files. Farm's thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "stdout_writer.hpp"
#include "taskfarm/farm.hpp"
#include "live_output.hpp"
#include "run_plan.hpp"
#include "spool.hpp"
#include "task_output.hpp"
#include "taskfarm/range_set.hpp"

namespace taskfarm::cli {

/// The built-in worker's (taskfarm-exec) arguments for `exec`, its output spooled in `spool`.
std::vector<std::string> exec_worker_args(const ExecPlan& exec, const std::string& spool);

class ExecOutput : public FarmObserver {
 public:
  /// `todo`: the tasks of this run (sorted ranges), the order --keep-order prints them in.
  /// `events`: --events, which says each piece of stdout as an `output` event; nullptr prints it.
  ExecOutput(std::string spool, StdoutWriter& out, StdoutWriter& err, bool keep_order, FarmObserver* events,
             std::vector<IndexRange> todo, OnPrinted on_printed = {},
             std::function<void(const std::string& why, bool partial_line_says_it)> on_spool_failed = {});
  ~ExecOutput();
  ExecOutput(const ExecOutput&) = delete;
  ExecOutput& operator=(const ExecOutput&) = delete;

  /// --line-buffer: the running commands' complete lines are printed at each tick (all tasks',
  /// or with --keep-order the oldest unprinted task's), the rest of a task's output when it is done.
  void line_buffered() { live_.emplace(spool_, out_, err_); }

  void on_result(const IndexResult& r) override { done(r.index, true, exec::published_sizes(r.value)); }
  void on_tick(const FarmTick&) override;
  void on_failure(const FailureRecord& f) override;
  /// The run has ended: prints what is held back (--keep-order, behind tasks never done).
  void finish();
  /// Tasks done whose output waits for standard output to take what came before, and the bytes
  /// of it (in the spool) their workers said.
  std::size_t waiting() const noexcept { return ready_.size(); }
  std::uint64_t waiting_bytes() const noexcept { return ready_bytes_; }

 private:
  /// A task ended: succeeded, its worker's sizes (if it said them), or failed for good.
  struct Done {
    bool succeeded = false;
    std::optional<exec::PublishedSizes> sizes;
    std::uint64_t bytes = 0;  // what its files in the spool hold (the bound on what waits)
  };
  void done(std::uint64_t index, bool succeeded, std::optional<exec::PublishedSizes> sizes = std::nullopt);
  void print(std::uint64_t index, const Done& d);
  static std::uint64_t size_of(const Done& d) { return d.bytes; }
  // Prints the tasks that wait, while standard output takes what it is given.
  void print_ready();
  std::string lost_output(std::uint64_t index, exec::Stream s, const std::string& path, int fd, std::uint64_t expected) const;
  void advance();
  void events_of(std::uint64_t index, int fd);

  std::string spool_;
  StdoutWriter& out_;
  StdoutWriter& err_;
  bool keep_order_;
  FarmObserver* events_;
  std::vector<IndexRange> todo_;
  std::size_t range_ = 0;      // --keep-order: the range of the next task to print
  std::uint64_t next_ = 0;     // ... and that task
  OnPrinted on_printed_;
  std::function<void(const std::string&, bool)> on_spool_failed_;
  std::map<std::uint64_t, Done> held_;  // done, waiting for the tasks before them
  std::deque<std::pair<std::uint64_t, Done>> ready_;  // done, in turn, waiting for standard output
  std::uint64_t ready_bytes_ = 0;
  bool printing_ = false;
  std::optional<LiveOutput> live_;  // --line-buffer
  std::map<std::uint64_t, std::string> partial_;  // killed mid-command: why its output is partial
};

}  // namespace taskfarm::cli
