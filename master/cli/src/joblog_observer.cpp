#include "joblog_observer.hpp"

#include "taskfarm/error.hpp"

namespace taskfarm::cli {

JoblogObserver::JoblogObserver(JoblogFile file, std::function<void(const std::string&)> on_failed)
    : file_(std::move(file)), on_failed_(std::move(on_failed)), steady0_(ChunkLedger::Clock::now()),
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

double JoblogObserver::wall_seconds(ChunkLedger::Clock::time_point t) const {
  const auto wall = wall0_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(t - steady0_);
  return std::chrono::duration<double>(wall.time_since_epoch()).count();
}

void JoblogObserver::on_worker_started(int slot, pid_t) { ledger_.worker_started(slot, ChunkLedger::Clock::now()); }

void JoblogObserver::on_chunk_started(int slot, pid_t, std::uint64_t begin, std::uint64_t end, std::uint32_t attempt) {
  ledger_.chunk_dispatched(slot, begin, end, attempt, ChunkLedger::Clock::now());
}

void JoblogObserver::on_chunk_done(int slot, pid_t pid, std::uint64_t begin, std::uint64_t end,
                                   std::uint32_t attempt, std::chrono::nanoseconds elapsed) {
  const auto [start, stop] = ledger_.place_done(slot, begin, end, attempt, elapsed, ChunkLedger::Clock::now());
  const std::vector<std::uint64_t> failed = ledger_.take_failed(begin, end, attempt);
  const std::uint64_t ran = end - begin;
  // Tasks of a chunk are timed together; each row gets the chunk's mean and its share of the span.
  const double per_task = std::chrono::duration<double>(stop - start).count() / static_cast<double>(ran);
  const double t0 = wall_seconds(start);
  rows_.clear();
  rows_ok_ = 0;
  auto f = failed.begin();
  for (std::uint64_t i = begin; i < end; ++i) {
    if (f != failed.end() && *f == i) {
      ++f;
      continue;
    }
    JoblogRow row;
    row.index = i;
    row.slot = slot;
    row.pid = pid;
    row.start = t0 + per_task * static_cast<double>(i - begin);
    row.runtime = per_task;
    row.attempt = attempt;
    append_row(rows_, row);
    ++rows_ok_;
  }
  write_rows();
}

void JoblogObserver::on_failure(const FailureRecord& f) {
  if (!f.index) return;  // a worker that died between tasks: no task attempt to record
  const auto now = ChunkLedger::Clock::now();
  ChunkLedger::Clock::time_point start = now;
  if (ended_worker(f)) start = ledger_.place_death(f.slot, f.chunk_begin, f.attempt, now);
  else ledger_.task_failed(*f.index, f.attempt);
  JoblogRow row;
  row.index = *f.index;
  row.slot = f.slot;
  row.pid = f.pid;
  row.start = wall_seconds(start);
  row.runtime = std::chrono::duration<double>(now - start).count();
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
