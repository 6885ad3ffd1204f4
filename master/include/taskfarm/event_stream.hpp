// EventStream: an observer that says what a run does as JSON lines, one object per line, for
// programs that drive taskfarm: "start", "worker", "chunk" (a committed piece of a chunk),
// "failure", "stall" (a worker without progress past FarmOptions::stall_warning), "output" (a
// task's captured stdout) and "end". The `taskfarm` binary's --events; the fields are
// docs/cli.md's. Each line goes whole to a sink of yours. Used on the run's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "taskfarm/farm.hpp"

namespace taskfarm {

class EventStream : public FarmObserver {
 public:
  /// Receives each line, '\n' included, as it happens (flush it there if someone waits for it).
  using Sink = std::function<void(std::string_view line)>;
  explicit EventStream(Sink sink) : sink_(std::move(sink)) {}

  /// {"event":"start",...}: the run's size and shape before anything runs: `tasks` this run
  /// computes of `total`, `already_done` by earlier runs, `workers`, the worker `program`.
  void start(std::uint64_t tasks, std::uint64_t total, std::uint64_t already_done, int workers,
             const std::string& program);
  /// {"event":"end",...}: the report and `exit_status` (what the program exits with).
  void end(const RunReport& report, int exit_status);
  /// The same with `failed` indices that `report` does not list (an --mpi run's rank 0 sums its
  /// nodes' counts).
  void end(const RunReport& report, std::uint64_t failed, int exit_status);

  void on_worker_started(int slot, pid_t pid) override;
  void on_tasks_done(const TasksDone& t) override;
  void on_result(const IndexResult& r) override;
  void on_failure(const FailureRecord& f) override;
  void on_stall(const WorkerLiveness& w) override;

 private:
  void line(std::string&& json);
  Sink sink_;
};

}  // namespace taskfarm
