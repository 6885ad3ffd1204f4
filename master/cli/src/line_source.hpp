// LineSource: what `--input-lines` and `:::: FILE` read their lines from — standard input ("-"),
// a regular file, or a FIFO or pipe (`:::: <(find ...)`, `mkfifo`), GNU parallel's sources.
// A directory, device or socket is refused by its kind before it is opened (/dev/zero would be
// read up to the limit). A FIFO is opened with O_NONBLOCK, since open() would block until a
// writer comes: one that no process opens for writing within a deadline is an error, not a
// hang; once a writer is there, a slow one is waited for as long as it lives. Main thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "taskfarm/unique_fd.hpp"

namespace taskfarm::cli {

class LineSource {
 public:
  /// How long a FIFO may wait for its first writer (a message on stderr after a second says so).
  static constexpr std::chrono::milliseconds kWriterWait{60'000};

  /// Opens `path` ("-": standard input) for `option` ("--input-lines", "::::"). Throws
  /// UsageError naming the option and the path when it is of the wrong kind or cannot be opened.
  LineSource(const std::string& path, const std::string& option, std::chrono::milliseconds writer_wait = kWriterWait);

  /// Up to `size` bytes into `buffer`; 0 at the end of the input. Throws UsageError on a read
  /// error, or when no writer opened a FIFO within the deadline.
  std::size_t read(char* buffer, std::size_t size);

  /// One read(2) of what is there now, for a source a poll found readable (LineFeed): the bytes
  /// read, 0 at the end of the input, -1 when nothing is there yet. Call read() first: once
  /// it returned bytes, a FIFO has had its writer, so 0 is the end. Throws UsageError on an error.
  std::ptrdiff_t read_ready(char* buffer, std::size_t size);
  int fd() const noexcept { return fd_; }

  /// The source as messages name it: "--input-lines: 'PATH'", ":::: 'PATH'".
  const std::string& who() const noexcept { return who_; }
  static std::string who(const std::string& path, const std::string& option);

 private:
  void wait_for_data();

  UniqueFd owned_;
  int fd_ = 0;
  bool named_fifo_ = false;   ///< a FIFO a writer may still open: a 0 read is no end until one came
  bool writer_seen_ = true;
  std::chrono::steady_clock::time_point opened_;
  std::chrono::milliseconds writer_wait_;
  bool told_waiting_ = false;
  std::string who_;
};

}  // namespace taskfarm::cli
