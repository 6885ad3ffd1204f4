// EventsObserver: --events, one JSON object per line on stdout, flushed line by line, for
// programs that drive taskfarm: "start", "worker", "chunk" (a committed chunk), "failure",
// "stall" (a worker without progress past --stall-warning), "output" (a task's captured stdout,
// instead of printing it raw) and "end". Farm's thread.
#pragma once

#include <cstdint>
#include <string>

#include "stdout_writer.hpp"
#include "taskfarm/farm.hpp"

namespace taskfarm::cli {

class EventsObserver : public FarmObserver {
 public:
  explicit EventsObserver(StdoutWriter& out) : out_(out) {}

  /// {"event":"start",...}: the run's size and shape before anything runs.
  void start(std::uint64_t tasks, std::uint64_t total, std::uint64_t already_done, int workers,
             const std::string& program);
  /// {"event":"end",...}: the report and the exit status.
  void end(const RunReport& report, int exit_status);

  void on_worker_started(int slot, pid_t pid) override;
  void on_tasks_done(const TasksDone& t) override;
  void on_result(const IndexResult& r) override;
  void on_failure(const FailureRecord& f) override;
  void on_stall(const WorkerLiveness& w) override;

 private:
  void line(std::string&& json);
  StdoutWriter& out_;
};

}  // namespace taskfarm::cli
