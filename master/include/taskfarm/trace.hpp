// Trace: an observer that writes a Chrome trace (JSON array format, which Perfetto and
// chrome://tracing open): one track per worker slot, one slice per chunk attempt ("ok", or
// "crashed" when its worker died), instant markers for crashes, kernel exceptions and worker
// starts. Each callback's records go to the file with one write(2), whole, as they happen, so
// the trace of a master killed at any instant is readable (both tools accept an array without
// its closing bracket, and the file never ends inside a record); finish() closes it. The
// `taskfarm` binary's --trace. Attach it to a Farm::run or a Pool call; used on that call's thread.
#pragma once

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "taskfarm/detail/staged_file.hpp"
#include "taskfarm/farm.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm {

class Trace : public FarmObserver {
 public:
  /// A new trace at `path`, there at once where nothing was. A regular file at `path` is replaced
  /// whole (by rename, never truncated or written) by finish() or the destructor, and only by a
  /// trace written whole; until then the trace waits under a temporary name beside it. A FIFO,
  /// device or directory is refused. `title` names the process track. Throws Error naming the path.
  static Trace create(const std::string& path, const std::string& title = "taskfarm");
  /// Writes into `file`, a new empty file (the CLI's StagedFile, published under `path` once a
  /// task ended); throws SystemError naming `path`.
  Trace(UniqueFd file, const std::string& path, const std::string& title);
  /// The same, its own records under process id `track` rather than this process's pid (an
  /// --mpi run's rank 0: each node's records under its rank).
  Trace(UniqueFd file, const std::string& path, const std::string& title, int track);
  /// Records for a trace another process writes (an --mpi node's, which rank 0 writes): each
  /// callback's records go to `sink`, whole, each preceded by ",\n" (what append() takes), under
  /// process id `track`, timed from this construction. No file, no process name, no brackets.
  using Sink = std::function<void(std::string_view records)>;
  Trace(Sink sink, int track);
  /// Closes the array if finish() was not called (errors unreported; a file of the user's is
  /// replaced only if every write succeeded).
  ~Trace() override;
  Trace(Trace&&) noexcept = default;
  Trace& operator=(Trace&&) = delete;

  void on_worker_started(int slot, pid_t pid) override;
  void on_tasks_done(const TasksDone& t) override;
  void on_failure(const FailureRecord& f) override;

  /// Names process `track` `title` (an --mpi run's other nodes).
  void name_process(int track, const std::string& title);
  /// Writes records a sink-mode Trace made (whole, each preceded by ",\n") with one write(2).
  void append(std::string_view records);

  /// Whether a write failed (the file keeps the whole records before it; nothing more is
  /// written): a trace that replaces a file of the user's does so only while this is false.
  bool write_failed() const noexcept { return write_errno_ != 0; }

  /// Closes the JSON array and the file, and (create()) puts it over a file of the user's; throws
  /// SystemError naming the file if writing failed (the user's file then stays as it was).
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
  detail::StagedFile staged_;  // create() over a file of the user's: published once written whole
  Sink sink_;             // sink mode: where the records go instead of file_
  std::string path_;
  int pid_;
  bool first_ = true;
  std::string pending_;   // whole records not yet written
  int write_errno_ = 0;   // the first write failure; later batches are dropped
  std::uint64_t written_ = 0;  // bytes of whole batches in the file
  std::chrono::steady_clock::time_point t0_;
  std::vector<bool> named_;
};

}  // namespace taskfarm
