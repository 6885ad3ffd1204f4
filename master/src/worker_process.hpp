// ChildProcess: the one owner of a process the master started (spawn.hpp) — its pid (leader of
// its own process group), pidfd and stderr pipe. WorkerProcess adds what a farm worker also has:
// its channel and slot segment. Destroying either kills the process group and reaps it, so no
// path leaves a zombie or an orphan. Master side, one thread.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>

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

class ChildProcess {
 public:
  ChildProcess(pid_t pid, UniqueFd pidfd, UniqueFd stderr_fd);
  ChildProcess(ChildProcess&& o) noexcept;
  ChildProcess& operator=(ChildProcess&&) = delete;
  ChildProcess(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const noexcept { return pid_; }
  int pidfd() const noexcept { return pidfd_.get(); }
  int stderr_fd() const noexcept { return stderr_.get(); }

  /// Sends `sig` to the process group (the process and anything it started).
  void kill_group(int sig) noexcept;
  /// Reaps the process if it has ended; nullopt while it runs. Never blocks.
  std::optional<ExitStatus> try_reap();
  /// Kills the group and reaps, waiting at most ~5 s for the kernel to finish the exit. Nullopt
  /// if it could not be reaped (still not ended — stuck in the kernel — or waitid failed): it is
  /// then given up, said once on stderr, and never waited for again (not by the destructor either).
  std::optional<ExitStatus> kill_and_reap() noexcept;
  /// Reaped (or its status taken by another wait()): the pid is no longer ours.
  bool reaped() const noexcept { return reaped_; }

  /// Reads what the process wrote to stderr (at most ~1 MiB per call, so a flood cannot hold the
  /// event loop); forwards complete lines if `forward` — a line longer than 64 KiB is forwarded
  /// cut, and says so; a last line without newline is forwarded at EOF, or when `last` (the
  /// process is gone, though a child of it may still hold the pipe). Keeps a tail.
  /// Forwarded lines go to `to` if it is set, else to this process's stderr.
  void drain_stderr(bool forward, bool last = false, const std::function<void(std::string_view)>* to = nullptr);
  /// The last ~2 KiB the process wrote to stderr; if it wrote more, a first line says how many
  /// earlier bytes were not kept.
  std::string stderr_tail() const;

 private:
  pid_t pid_ = 0;
  UniqueFd pidfd_;
  UniqueFd stderr_;
  bool reaped_ = false;
  bool given_up_ = false;  // kill_and_reap could not reap it: not waited for again
  std::string tail_, partial_;
  std::uint64_t stderr_bytes_ = 0;    // written in all, for the tail's "not kept" line
  std::uint64_t skipping_line_ = 0;   // > 0: bytes dropped of a line too long to forward whole
  void forward_lines(bool forward, bool at_eof, const std::function<void(std::string_view)>* to);
};

/// A farm worker: its process, and the channel and slot segment the master shares with it.
class WorkerProcess : public ChildProcess {
 public:
  WorkerProcess(ChildProcess process, Channel channel, ShmSegment slot)
      : ChildProcess(std::move(process)), channel_(std::move(channel)), slot_(std::move(slot)) {}
  WorkerProcess(WorkerProcess&&) noexcept = default;
  /// Kills and reaps the worker before its channel closes and its slot is released.
  ~WorkerProcess();

  Channel& channel() noexcept { return channel_; }
  int channel_fd() const noexcept { return channel_.fd(); }
  ShmSegment& slot() noexcept { return slot_; }
  ShmSegment take_slot() noexcept { return std::move(slot_); }

 private:
  Channel channel_;
  ShmSegment slot_;
};

}  // namespace taskfarm
