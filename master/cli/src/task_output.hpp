// TaskOutput: prints what each task wrote to its stdout (captured per task by the worker
// runtime) on the master's stdout, as tasks complete — or in task order with --keep-order,
// where the Farm delivers results in index order. A task's text is written whole, never
// interleaved with another's. Says which tasks' output is out (on_printed: the joblog's "ok"
// rows wait for it), once standard output has taken it (StdoutWriter::then). Farm's thread.
#pragma once

#include <unistd.h>

#include <cstddef>
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
  /// A task's text up to this size is copied (write_file would copy it too, as text).
  static constexpr std::size_t kCopiedBytes = 64 * 1024;
  /// `on_cut(index)`: a task whose output standard output took only in part before it was given
  /// up on (a stop with a reader that does not read): said PARTIAL.
  explicit TaskOutput(StdoutWriter& out, OnPrinted on_printed = {},
                      std::function<void(std::uint64_t)> on_cut = {})
      : out_(out), on_printed_(std::move(on_printed)), on_cut_(std::move(on_cut)) {}

  void on_result(const IndexResult& r) override {
    const std::uint64_t start = out_.bytes_taken();
    if (r.text_fd >= 0 && r.text.size() > kCopiedBytes &&
        ::lseek(r.text_fd, static_cast<off_t>(r.text_offset), SEEK_SET) >= 0) {
      // A large output came in a memfd: what waits for the reader is a range of it, not a copy
      // (counted as memory all the same: the hold bounds it) — h13 F10.
      out_.write_file(r.text_fd, r.text.size(), /*in_memory=*/true);
    } else {
      out_.write(std::string_view(r.text.data(), r.text.size()));
    }
    written_.push_back(Written{r.index, start, out_.bytes_taken()});
  }
  // Results arrive in bursts, one per committed chunk: write each burst out.
  void on_tasks_done(const TasksDone&) override { finish(); }
  void on_failure(const FailureRecord&) override { finish(); }
  /// Writes out what is buffered (also at the end of the run: results held for order come last).
  void finish() {
    out_.flush();
    if (written_.empty()) return;
    waiting_ += written_.size();
    out_.then([this, written = std::move(written_)](bool all_out) {
      waiting_ -= written.size();
      // Given up on after a stop: what went out whole is printed (the pipe holds it for its
      // reader); a task cut there is said to be; the rest was not printed.
      const std::uint64_t out = out_.bytes_out();
      std::vector<std::uint64_t> printed;
      for (const Written& w : written) {
        if (all_out || (out_.gave_up() && w.end <= out))
          printed.push_back(w.index);
        else if (out_.gave_up() && w.start < out && on_cut_)
          on_cut_(w.index);
      }
      if (on_printed_ && !printed.empty()) on_printed_(printed);
    });
    written_.clear();
  }
  /// Tasks whose output waits for standard output (their joblog rows with it).
  std::uint64_t waiting() const noexcept { return waiting_ + written_.size(); }

 private:
  struct Written {
    std::uint64_t index, start, end;  // where its output is in standard output's bytes
  };
  StdoutWriter& out_;
  OnPrinted on_printed_;
  std::function<void(std::uint64_t)> on_cut_;
  std::vector<Written> written_;  // buffered since the last flush
  std::uint64_t waiting_ = 0;
};

/// --events for a worker program: an `output` event is written out as the result is delivered
/// (EventStream's sink flushes each line), so this observer, added after it, says it printed.
class PrintedByEvents : public FarmObserver {
 public:
  PrintedByEvents(StdoutWriter& out, OnPrinted on_printed)
      : out_(out), on_printed_(std::move(on_printed)) {}
  void on_result(const IndexResult& r) override {
    ++waiting_;
    out_.then([this, index = r.index](bool all_out) {
      --waiting_;
      if (all_out) on_printed_(std::span<const std::uint64_t>(&index, 1));
    });
  }
  std::uint64_t waiting() const noexcept { return waiting_; }

 private:
  StdoutWriter& out_;
  OnPrinted on_printed_;
  std::uint64_t waiting_ = 0;
};

}  // namespace taskfarm::cli
