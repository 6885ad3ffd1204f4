#include "taskfarm/joblog.hpp"

#include <optional>

#include "taskfarm/detail/staged_file.hpp"
#include "taskfarm/error.hpp"

namespace taskfarm {

Joblog Joblog::create(const std::string& path, const RunIdentity& job, OnFailed on_failed) {
  // Written whole under a temporary name, then renamed over `path`: a reader never finds a
  // joblog without its identity line, and a file of the user's there is replaced, never written.
  const std::optional<std::uint64_t> tasks = index_space_size(job.extent);
  if (job.extent.empty() || !tasks || *tasks == 0)
    throw Error("joblog " + path + ": the job's index space has no task, or 2^64 tasks or more");
  detail::StagedFile staged = detail::StagedFile::create(path);
  JoblogFile file = JoblogFile::create(staged.duplicate_fd(), path, job);
  staged.publish(/*replace_existing=*/true);
  return Joblog(std::move(file), {{0, *tasks}}, std::move(on_failed));
}

Joblog Joblog::resume(const std::string& path, const RunIdentity& job, OnFailed on_failed) {
  const ResumePlan plan = plan_resume(read_joblog(path, {}, job.extent), job, path);
  Joblog log(JoblogFile::append(path), plan.ranges, std::move(on_failed));
  log.earlier_done_ = plan.done;
  return log;
}

Joblog::Joblog(JoblogFile file, std::vector<IndexRange> todo, OnFailed on_failed)
    : file_(std::move(file)), todo_(std::move(todo)), on_failed_(std::move(on_failed)) {}

void Joblog::write_rows() {
  if (!error_.empty()) return;  // after a failed write nothing more: the file keeps whole rows
  try {
    file_.write(rows_);
    recorded_ok_ += rows_ok_;
    holds_rows_ = true;
  } catch (const Error& e) {
    error_ = e.what();
    if (on_failed_) on_failed_(error_);
  }
}

void Joblog::on_tasks_done(const TasksDone& t) {
  rows_.clear();
  if (!hold_) {
    rows_ok_ = format_.append_done(rows_, t);
    write_rows();
    return;
  }
  // One row (one line) per succeeded index, in index order: each waits until it is printed.
  std::string piece;
  format_.append_done(piece, t);
  rows_ok_ = 0;
  auto f = t.failed.begin();
  std::size_t at = 0;
  for (std::uint64_t i = t.begin; i < t.end && at < piece.size(); ++i) {
    if (f != t.failed.end() && *f == i) {
      ++f;
      continue;
    }
    const std::size_t nl = piece.find('\n', at);
    const std::size_t stop = nl == std::string::npos ? piece.size() : nl + 1;
    std::string row = piece.substr(at, stop - at);
    at = stop;
    if (printed_early_.erase(i) == 0) {  // its output is still held for order
      held_[i] += row;
      continue;
    }
    rows_ += row;
    ++rows_ok_;
  }
  if (!rows_.empty()) write_rows();
}

void Joblog::printed(std::span<const std::uint64_t> indices) {
  rows_.clear();
  rows_ok_ = 0;
  for (std::uint64_t i : indices) {
    const auto h = held_.find(i);
    if (h == held_.end()) {  // delivered within the commit that reports it: the row comes next
      printed_early_.insert(i);
      continue;
    }
    rows_ += h->second;
    ++rows_ok_;
    held_.erase(h);
  }
  if (!rows_.empty()) write_rows();
}

void Joblog::on_failure(const FailureRecord& f) {
  rows_.clear();
  rows_ok_ = 0;
  if (format_.append_failure(rows_, f)) write_rows();
}

JoblogRows::JoblogRows() : steady0_(std::chrono::steady_clock::now()), wall0_(std::chrono::system_clock::now()) {}

double JoblogRows::wall_seconds(std::chrono::steady_clock::time_point t) const {
  const auto wall = wall0_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(t - steady0_);
  return std::chrono::duration<double>(wall.time_since_epoch()).count();
}

std::uint64_t JoblogRows::append_done(std::string& out, const TasksDone& t) const {
  // Tasks of a piece are timed together; each row gets the piece's mean and its share of the span.
  const double per_task = std::chrono::duration<double>(t.stop - t.start).count() / static_cast<double>(t.end - t.begin);
  const double t0 = wall_seconds(t.start);
  std::uint64_t ok = 0;
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
    if (inputs) row.inputs = inputs(i);
    row.host = host;
    append_row(out, row);
    ++ok;
  }
  return ok;
}

bool JoblogRows::append_failure(std::string& out, const FailureRecord& f) const {
  if (!f.index) return false;  // a worker that died between tasks: no task attempt to record
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
  if (inputs) row.inputs = inputs(row.index);
  row.host = host;
  append_row(out, row);
  return true;
}

}  // namespace taskfarm
