// StdoutWriter: the master's standard output (tasks' captured stdout, --events lines). Whole
// pieces are buffered and written with write(2), so a task's output is never split by another
// task's; a file is copied whole (write_file). A reader that goes away (EPIPE; SIGPIPE is ignored) is reported once to `on_closed`,
// which stops the run, and later writes are dropped. Farm's thread.
#pragma once

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "taskfarm/unique_fd.hpp"

namespace taskfarm {
class Progress;
}  // namespace taskfarm

namespace taskfarm::cli {

class StdoutWriter {
 public:
  /// `on_failed(errno)`: the first write that failed (EPIPE: the reader went away).
  explicit StdoutWriter(std::function<void(int)> on_failed, int fd = 1);
  ~StdoutWriter();  ///< flushes
  StdoutWriter(const StdoutWriter&) = delete;
  StdoutWriter& operator=(const StdoutWriter&) = delete;

  /// The progress line to clear before writing (when both share a terminal), or nullptr.
  void set_progress(Progress* progress) noexcept { progress_ = progress; }
  /// Appends `text`; writes out once the buffer passes 64 KiB.
  void write(std::string_view text);
  /// Writes out what is buffered.
  void flush();
  /// Writes what is buffered, then the file `fd` from its position to its end, or `limit` bytes
  /// of it, in pieces (sendfile; read/write through a 64 KiB buffer where sendfile cannot):
  /// memory stays bounded whatever the file's size. Returns the bytes written; stops early if
  /// the reader went away.
  std::uint64_t write_file(int fd, std::uint64_t limit = ~std::uint64_t{0});
  /// Closed: the reader went away, a write failed, or it gave up after a stop (below).
  bool closed() const noexcept { return closed_; }
  /// The errno of the write that failed (EPIPE: the reader went away), or 0.
  int error() const noexcept { return error_; }

  /// Rank 0 under `--mpi` (F31): mpirun SIGKILLs rank 0 about 1 s after its SIGTERM, and rank 0
  /// must say why the job ends and remove its spool before. Once `*stop` is set (by a signal
  /// handler), this writer waits at most `patience` in all for standard output to take more,
  /// then gives up: gave_up(), closed(), later writes dropped. Before the stop a slow reader
  /// is waited for as ever. A pipe or terminal is written through a descriptor of its own,
  /// opened non-blocking (the one shared with other processes keeps its flags), so that no
  /// write blocks and every wait is a poll() in short slices that sees the flag.
  void give_up_after_stop(const volatile std::sig_atomic_t* stop, std::chrono::milliseconds patience);
  bool gave_up() const noexcept { return gave_up_; }
  /// Bytes written out so far, and those taken (written out or buffered).
  std::uint64_t bytes_out() const noexcept { return out_; }
  std::uint64_t bytes_taken() const noexcept { return out_ + buf_.size(); }

 private:
  void failed(int error);
  bool may_go_on();
  bool wait_writable();

  std::function<void(int)> on_failed_;
  int fd_;
  std::string buf_;
  bool closed_ = false;
  int error_ = 0;
  Progress* progress_ = nullptr;
  std::uint64_t out_ = 0;
  UniqueFd own_;  // a non-blocking descriptor of standard output's pipe or terminal
  const volatile std::sig_atomic_t* stop_ = nullptr;
  std::chrono::milliseconds patience_{0};
  std::chrono::steady_clock::time_point give_up_at_{};  // once the stop is seen
  bool stop_seen_ = false, gave_up_ = false;
};

}  // namespace taskfarm::cli
