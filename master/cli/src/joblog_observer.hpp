// JoblogObserver: writes the joblog (joblog.hpp) as the run goes — a row for every attempt of
// every task: "ok" rows when their chunk piece commits, "retried"/"failed" rows when an
// attempt fails. Each commit's rows reach the file in one write(2), so the joblog of a master
// killed with SIGKILL lists exactly the tasks whose results are in place. A write that fails
// (disk full, file too large) is reported once to `on_failed`, which stops the run like an
// interruption; no row is written after it, so the file holds only whole rows of done work.
// Farm's thread.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "joblog.hpp"
#include "taskfarm/farm.hpp"

namespace taskfarm::cli {

class JoblogObserver : public FarmObserver {
 public:
  /// `on_failed(message)` is called once, on the first write that fails.
  JoblogObserver(JoblogFile file, std::function<void(const std::string&)> on_failed);

  void on_tasks_done(const TasksDone& t) override;
  void on_failure(const FailureRecord& f) override;

  /// Why writing stopped ("cannot write joblog j.tsv: No space left on device"), or "".
  const std::string& error() const noexcept { return error_; }
  /// Tasks whose "ok" row reached the file in this run (what a --resume will not run again).
  std::uint64_t recorded_ok() const noexcept { return recorded_ok_; }

 private:
  double wall_seconds(std::chrono::steady_clock::time_point t) const;
  void write_rows();

  JoblogFile file_;
  std::function<void(const std::string&)> on_failed_;
  std::string error_;
  std::chrono::steady_clock::time_point steady0_;
  std::chrono::system_clock::time_point wall0_;
  std::string rows_;
  std::uint64_t rows_ok_ = 0;      // "ok" rows in rows_
  std::uint64_t recorded_ok_ = 0;  // "ok" rows written
};

}  // namespace taskfarm::cli
