#include "joblog_observer.hpp"

#include "taskfarm/error.hpp"

namespace taskfarm::cli {

JoblogObserver::JoblogObserver(JoblogFile file, std::function<void(const std::string&)> on_failed)
    : file_(std::move(file)), on_failed_(std::move(on_failed)), steady0_(std::chrono::steady_clock::now()),
      wall0_(std::chrono::system_clock::now()) {}

void JoblogObserver::write_rows() {
  if (!error_.empty()) return;  // after a failed write nothing more: the file keeps whole rows
  try {
    file_.write(rows_);
    recorded_ok_ += rows_ok_;
  } catch (const Error& e) {
    error_ = e.what();
    if (on_failed_) on_failed_(error_);
  }
}

double JoblogObserver::wall_seconds(std::chrono::steady_clock::time_point t) const {
  const auto wall = wall0_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(t - steady0_);
  return std::chrono::duration<double>(wall.time_since_epoch()).count();
}

void JoblogObserver::on_tasks_done(const TasksDone& t) {
  // Tasks of a piece are timed together; each row gets the piece's mean and its share of the span.
  const double per_task = std::chrono::duration<double>(t.stop - t.start).count() / static_cast<double>(t.end - t.begin);
  const double t0 = wall_seconds(t.start);
  rows_.clear();
  rows_ok_ = 0;
  auto f = t.failed.begin();
  for (std::uint64_t i = t.begin; i < t.end; ++i) {
    if (f != t.failed.end() && *f == i) {
      ++f;
      continue;
    }
    JoblogRow row;
    row.index = i;
    row.slot = t.slot;
    row.pid = t.pid;
    row.start = t0 + per_task * static_cast<double>(i - t.begin);
    row.runtime = per_task;
    row.attempt = t.attempt;
    append_row(rows_, row);
    ++rows_ok_;
  }
  write_rows();
}

void JoblogObserver::on_failure(const FailureRecord& f) {
  if (!f.index) return;  // a worker that died between tasks: no task attempt to record
  const auto now = std::chrono::steady_clock::now();
  JoblogRow row;
  row.index = *f.index;
  row.slot = f.slot;
  row.pid = f.pid;
  row.start = wall_seconds(now - f.runtime);
  row.runtime = std::chrono::duration<double>(f.runtime).count();
  row.attempt = f.attempt;
  row.outcome = f.final ? "failed" : "retried";
  row.exit_code = f.exit_code;
  row.signal = f.signal;
  row.cause = to_string(f.cause);
  rows_.clear();
  rows_ok_ = 0;
  append_row(rows_, row);
  write_rows();
}

}  // namespace taskfarm::cli
