// TaskOutput: prints what each task wrote to its stdout (captured per task by the worker
// runtime) on the master's stdout, as tasks complete — or in task order with --keep-order,
// where the Farm delivers results in index order. A task's text is written whole, never
// interleaved with another's. Says which tasks' output is out (on_printed: the joblog's "ok"
// rows wait for it), once standard output has taken it (StdoutWriter::then). Farm's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "stdout_writer.hpp"
#include "taskfarm/farm.hpp"

namespace taskfarm::cli {

/// Told the tasks whose output has just been written out whole.
using OnPrinted = std::function<void(std::span<const std::uint64_t>)>;

class TaskOutput : public FarmObserver {
 public:
  explicit TaskOutput(StdoutWriter& out, OnPrinted on_printed = {}) : out_(out), on_printed_(std::move(on_printed)) {}

  void on_result(const IndexResult& r) override {
    out_.write(std::string_view(r.text.data(), r.text.size()));
    if (on_printed_) written_.push_back(r.index);
  }
  // Results arrive in bursts, one per committed chunk: write each burst out.
  void on_tasks_done(const TasksDone&) override { finish(); }
  void on_failure(const FailureRecord&) override { finish(); }
  /// Writes out what is buffered (also at the end of the run: results held for order come last).
  void finish() {
    out_.flush();
    if (!written_.empty())
      out_.then([this, written = std::move(written_)](bool all_out) {
        if (all_out) on_printed_(written);
      });
    written_.clear();
  }

 private:
  StdoutWriter& out_;
  OnPrinted on_printed_;
  std::vector<std::uint64_t> written_;  // buffered since the last flush
};

/// --events for a worker program: an `output` event is written out as the result is delivered
/// (EventStream's sink flushes each line), so this observer, added after it, says it printed.
class PrintedByEvents : public FarmObserver {
 public:
  PrintedByEvents(StdoutWriter& out, OnPrinted on_printed) : out_(out), on_printed_(std::move(on_printed)) {}
  void on_result(const IndexResult& r) override {
    out_.then([this, index = r.index](bool all_out) {
      if (all_out) on_printed_(std::span<const std::uint64_t>(&index, 1));
    });
  }

 private:
  StdoutWriter& out_;
  OnPrinted on_printed_;
};

}  // namespace taskfarm::cli
