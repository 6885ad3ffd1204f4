// WorkerNotices: one line on stderr, as it happens, for what a user watching a run should know
// about its workers: a worker that could not be started for want of resources (the run carries
// on with fewer) and a stalled worker (FarmOptions::stall_warning, --stall-warning). The
// summary says the rest at the end. Clears the progress bar first. Farm's thread.
#pragma once

#include <string>

#include "taskfarm/farm.hpp"

namespace taskfarm::cli {

class Progress;

class WorkerNotices : public FarmObserver {
 public:
  /// `progress`: the bar to clear before writing (it redraws on its next update), or nullptr.
  explicit WorkerNotices(Progress* progress, int fd = 2) : progress_(progress), fd_(fd) {}

  void on_failure(const FailureRecord& f) override;

 private:
  void say(const std::string& line);
  Progress* progress_;
  int fd_;
};

}  // namespace taskfarm::cli
