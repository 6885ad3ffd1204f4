// StdoutWriter: the master's standard output (tasks' captured stdout, --events lines). Whole
// pieces are buffered and written with write(2), so a task's output is never split by another
// task's; a file is copied whole (write_file). A reader that goes away (EPIPE; SIGPIPE is ignored) is reported once to `on_closed`,
// which stops the run, and later writes are dropped. Farm's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

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
  bool closed() const noexcept { return closed_; }

 private:
  void failed(int error);

  std::function<void(int)> on_failed_;
  int fd_;
  std::string buf_;
  bool closed_ = false;
  Progress* progress_ = nullptr;
};

}  // namespace taskfarm::cli
