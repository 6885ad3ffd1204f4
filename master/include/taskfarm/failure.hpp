// FailureRecord: how one task (or one worker) failed, as data the master reasons about.
// Produced by the master's supervisor and farm; safe to copy anywhere.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>

namespace taskfarm {

/// Why an attempt failed.
enum class FailureCause : std::uint8_t {
  signal,         ///< the worker was killed by a signal (see `signal`)
  exit,           ///< the worker exited (see `exit_code`) during or between tasks
  exception,      ///< the kernel threw (see `exception_type`, `message`)
  timeout,        ///< the task ran past the per-task timeout and was killed
  memory,         ///< the task exceeded the per-worker memory limit
  protocol,       ///< the worker sent something that is not a valid message; it was killed
  start,          ///< the worker program could not start (see `message`, `error`)
};

std::string_view to_string(FailureCause cause) noexcept;

struct FailureRecord {
  FailureCause cause = FailureCause::exit;
  std::optional<std::uint64_t> index;  ///< the task, when the failure is attributable to one
  std::uint64_t chunk_begin = 0, chunk_end = 0;
  std::uint32_t attempt = 0;  ///< 0 for the first attempt, as in describe(), the joblog, --events and --trace
  bool final = false;         ///< retries exhausted: this index will not be computed
  int slot = -1;              ///< worker slot
  pid_t pid = 0;
  int signal = 0;             ///< for FailureCause::signal / timeout
  int exit_code = 0;          ///< for FailureCause::exit
  int error = 0;              ///< errno, for FailureCause::start (ETIMEDOUT: a worker stopped for not serving)
  std::string exception_type; ///< for FailureCause::exception / memory
  std::string message;        ///< what(), or a sentence saying what happened
  std::string stderr_tail;    ///< the last lines the worker wrote to stderr (a command's own, for task_process)
  /// `signal`/`exit` are the task's own process's — a command run per task (`taskfarm run
  /// --exec`) exited non-zero or was killed, `message` says which command — not the worker's,
  /// which lives on.
  bool task_process = false;
  /// How long the failed attempt ran, as the master places it: for a failure that ended its
  /// worker, since its chunk started (or its previous piece ended); 0 for one reported as it
  /// happened (an exception: the worker went on).
  std::chrono::nanoseconds runtime{0};

  /// Whether the failure ended its worker (a crash, an exit, a kill for timeout or protocol),
  /// as opposed to a kernel's exception (or out-of-memory) or a failed command (task_process)
  /// after which the worker went on.
  bool ended_worker() const noexcept {
    return !task_process && cause != FailureCause::exception && cause != FailureCause::memory;
  }

  /// One line: "index 7 (attempt 0, slot 0, pid 123): killed by SIGSEGV" (attempt 0 = the first).
  std::string describe() const;
  /// What happened, without whose it was: "killed by SIGSEGV", "threw std::domain_error: bad 5".
  std::string describe_cause() const;
  /// Whose it was: "index 7 (attempt 0, slot 0, pid 123)" (describe() = this + ": " + the cause).
  std::string describe_whose() const;
};

namespace detail {
/// The one retry rule, wherever a task runs (farm workers, submitted calls, task threads): what
/// failed at `attempt` (0 = the first) is tried again while attempt < retries.
constexpr bool may_retry(std::uint32_t attempt, int retries) noexcept { return static_cast<std::int64_t>(attempt) < retries; }
}  // namespace detail

/// "SIGSEGV", "SIGKILL", ... ("signal 42" for unnamed ones).
std::string signal_name(int sig);

}  // namespace taskfarm
