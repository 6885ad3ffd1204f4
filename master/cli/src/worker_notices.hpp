// WorkerNotices: one line on stderr, as it happens, for what a user watching a run should know
// about its workers: a worker that could not be started for want of resources (the run carries
// on with fewer) and a stalled worker (FarmOptions::stall_warning, --stall-warning). The
// summary says the rest at the end. Clears the progress bar first. Farm's thread.
#pragma once

#include <functional>
#include <string>
#include <utility>

#include "taskfarm/farm.hpp"

namespace taskfarm {
class Progress;
}  // namespace taskfarm

namespace taskfarm::cli {

class WorkerNotices : public FarmObserver {
 public:
  /// `progress`: the bar to clear before writing (it redraws on its next update), or nullptr.
  /// `has_timeout`: a --timeout is set (else a stall notice says how to have stuck tasks killed).
  /// `who`: said before each line ("rank 1 (node7): " on an --mpi node, where slot and pid alone
  /// are ambiguous), or empty.
  WorkerNotices(Progress* progress, bool has_timeout, int fd = 2, std::string who = {})
      : progress_(progress), has_timeout_(has_timeout), fd_(fd), who_(std::move(who)) {}

  /// Each line (with its newline) goes to `sink` instead of the descriptor: `taskfarm run` queues
  /// it with its other output, so that a stderr nobody reads never blocks the run.
  void send_to(std::function<void(const std::string&)> sink) { sink_ = std::move(sink); }

  void on_failure(const FailureRecord& f) override;
  void on_stall(const WorkerLiveness& w) override;

 private:
  void say(const std::string& line);
  Progress* progress_;
  bool has_timeout_;
  int fd_;
  std::string who_;
  std::function<void(const std::string&)> sink_;
};

}  // namespace taskfarm::cli
