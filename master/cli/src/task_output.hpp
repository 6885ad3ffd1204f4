// TaskOutput: prints what each task wrote to its stdout (captured per task by the worker
// runtime) on the master's stdout, as tasks complete — or in task order with --keep-order,
// where the Farm delivers results in index order. A task's text is written whole, never
// interleaved with another's. Farm's thread.
#pragma once

#include "stdout_writer.hpp"
#include "taskfarm/farm.hpp"

namespace taskfarm::cli {

class TaskOutput : public FarmObserver {
 public:
  explicit TaskOutput(StdoutWriter& out) : out_(out) {}

  void on_result(const IndexResult& r) override { out_.write(std::string_view(r.text.data(), r.text.size())); }
  // Results arrive in bursts, one per committed chunk: write each burst out.
  void on_tasks_done(const TasksDone&) override { out_.flush(); }
  void on_failure(const FailureRecord&) override { out_.flush(); }

 private:
  StdoutWriter& out_;
};

}  // namespace taskfarm::cli
