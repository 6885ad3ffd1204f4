// WorkerProcess: the one owner of a running worker — its pid (and process group), pidfd,
// channel, stderr pipe and slot segment. Destroying it kills the worker's whole process
// group and reaps it, so no path leaves a zombie or an orphan. Master side, one thread.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "taskfarm/detail/channel.hpp"
#include "taskfarm/shm_segment.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm {

/// How a process ended (from waitid).
struct ExitStatus {
  bool signaled = false;
  int code = 0;  ///< exit code, or signal number if `signaled`
  bool unknown = false;  ///< reaped by another wait() in this process: gone, status lost
};

class WorkerProcess {
 public:
  WorkerProcess(pid_t pid, UniqueFd pidfd, Channel channel, UniqueFd stderr_fd, ShmSegment slot);
  WorkerProcess(WorkerProcess&& o) noexcept;
  WorkerProcess& operator=(WorkerProcess&&) = delete;
  WorkerProcess(const WorkerProcess&) = delete;
  ~WorkerProcess();

  pid_t pid() const noexcept { return pid_; }
  int pidfd() const noexcept { return pidfd_.get(); }
  int stderr_fd() const noexcept { return stderr_.get(); }
  Channel& channel() noexcept { return channel_; }
  int channel_fd() const noexcept { return channel_.fd(); }
  ShmSegment& slot() noexcept { return slot_; }
  ShmSegment take_slot() noexcept { return std::move(slot_); }

  /// Sends `sig` to the worker's process group (the worker and anything it started).
  void kill_group(int sig) noexcept;
  /// Reaps the worker if it has ended; nullopt while it runs. Never blocks.
  std::optional<ExitStatus> try_reap();
  /// Kills the group and reaps, waiting at most ~1 s for the kernel to finish the exit.
  ExitStatus kill_and_reap() noexcept;
  bool reaped() const noexcept { return reaped_; }

  /// Reads what the worker wrote to stderr (at most ~1 MiB per call, so a flood cannot hold the
  /// event loop); forwards complete lines if `forward` — a line longer than 64 KiB is forwarded
  /// cut, and says so; a last line without newline is forwarded at EOF, or when `last` (the
  /// worker is gone, though a child of it may still hold the pipe). Keeps a tail.
  void drain_stderr(bool forward, bool last = false);
  /// The last ~2 KiB the worker wrote to stderr; if it wrote more, a first line says how many
  /// earlier bytes were not kept.
  std::string stderr_tail() const;

 private:
  pid_t pid_ = 0;
  UniqueFd pidfd_;
  Channel channel_;
  UniqueFd stderr_;
  ShmSegment slot_;
  bool reaped_ = false;
  std::string tail_, partial_;
  std::uint64_t stderr_bytes_ = 0;    // written in all, for the tail's "not kept" line
  std::uint64_t skipping_line_ = 0;   // > 0: bytes dropped of a line too long to forward whole
  void forward_lines(bool forward, bool at_eof);
};

}  // namespace taskfarm
