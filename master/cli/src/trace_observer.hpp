// TraceObserver: writes --trace, a Chrome trace (JSON array format, which Perfetto and
// chrome://tracing open): one track per worker slot, one slice per chunk attempt ("ok", or
// "crashed" when its worker died), instant markers for crashes, kernel exceptions and worker
// starts. Each callback's records go to the file with one write(2), whole, as they happen, so
// the trace of a master killed at any instant is readable (both tools accept an array without
// its closing bracket, and the file never ends inside a record); finish() closes it. Farm's
// thread.
#pragma once

#include <cstdio>
#include <memory>
#include <string>

#include "taskfarm/farm.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm::cli {

class TraceObserver : public FarmObserver {
 public:
  /// Writes into `file`, a new empty file (the run's StagedFile, published under `path` when the
  /// run starts); throws SystemError naming `path`. `title` names the process track.
  TraceObserver(UniqueFd file, const std::string& path, const std::string& title);
  ~TraceObserver() override;
  TraceObserver(const TraceObserver&) = delete;
  TraceObserver& operator=(const TraceObserver&) = delete;

  void on_worker_started(int slot, pid_t pid) override;
  void on_tasks_done(const TasksDone& t) override;
  void on_failure(const FailureRecord& f) override;

  /// Closes the JSON array and the file; throws SystemError naming the file if writing failed.
  void finish();

 private:
  double micros(std::chrono::steady_clock::time_point t) const;
  void emit(const std::string& event);  // adds a record to the batch
  void flush() noexcept;                 // writes the batch; a failure is kept for finish()
  void name_track(int slot);

  struct FileCloser {
    void operator()(std::FILE* f) const noexcept { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, FileCloser> file_;
  std::string path_;
  int pid_;
  bool first_ = true;
  std::string pending_;   // whole records not yet written
  int write_errno_ = 0;   // the first write failure; later batches are dropped
  std::uint64_t written_ = 0;  // bytes of whole batches in the file
  std::chrono::steady_clock::time_point t0_;
  std::vector<bool> named_;
};

}  // namespace taskfarm::cli
