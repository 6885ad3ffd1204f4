// Farm: the engine. Owns a set of worker processes (forked, or worker programs started with
// vfork + exec), hands them chunks of an index space, watches them through pidfds, retries
// and isolates failures, and reports every attempt to an observer. Pool (fork mode) and the
// `taskfarm` binary (program mode) are thin faces over it.
// A Farm is driven from one thread; it starts no threads of its own (so forking stays safe).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "taskfarm/failure.hpp"

namespace taskfarm {

class RangeFeed;
class Outlet;  // range_feed.hpp
class JobRunner;  // worker side: runs the indices of a job (worker/include/taskfarm/worker.hpp)
struct JobInfo;

/// GNU parallel's --halt: what a final failure does to the rest of the run.
enum class Halt : std::uint8_t {
  never,  ///< finish everything else, report all failures at the end (default)
  now,    ///< stop at once: kill running workers
  soon,   ///< stop dispatching, let running chunks finish
};

struct FarmOptions {
  int workers = -1;                  ///< >0 exact; -1 all usable CPUs; -2 all but one; ...
  std::uint64_t chunk = 0;           ///< indices per chunk; 0 = auto (adapts to task time)
  int retries = 2;                   ///< further attempts per index after the first
  Halt halt = Halt::never;
  std::uint64_t halt_after = 1;      ///< final failures that trigger `halt`
  std::chrono::milliseconds task_timeout{0};      ///< 0 = none; TERM, grace, KILL
  std::chrono::milliseconds kill_grace{200};      ///< TERM → KILL grace on timeout
  std::uint64_t memory_limit = 0;    ///< bytes of address space per worker (RLIMIT_AS); 0 = none
  std::uint64_t max_tasks_per_worker = 0;         ///< recycle a worker after this many; 0 = never
  std::size_t arena_bytes = 16u << 20;            ///< per-worker shared buffer for variable-size results
  double chaos_rate = 0;             ///< fault injection: SIGKILL a random busy worker this often per second
  std::uint64_t chaos_seed = 0;      ///< 0 = random
  int max_start_failures = 5;        ///< consecutive worker deaths without progress before the run stops
  /// A worker must complete its handshake (say Hello: run_worker does it first thing) within
  /// this; else it is killed with cause `start`. If no worker of the farm has ever done so, the
  /// run stops at once with that cause (the program is not a worker program). 0 = no limit.
  std::chrono::milliseconds start_timeout{5000};
  /// How often the farm looks at its workers while a run waits (FarmObserver::on_tick, stalls),
  /// whatever else happens. 0 = never.
  std::chrono::milliseconds tick_interval{1000};
  /// A worker that shows no progress for this long while it holds work (the same task, or work
  /// it does not start) is reported once per stall, and again whenever what is stopped in it
  /// changes (another process stopped, or the same one resumed and stopped again): a line on
  /// stderr (stall_to_stderr) and FarmObserver::on_stall. It is not killed: that is task_timeout's job. 0 = never.
  std::chrono::milliseconds stall_warning{60000};
  /// Write the stall report on stderr ("taskfarm: slot 1 (pid 4122) has shown no progress for
  /// 60 s on task 7; it is stopped ..."), with or without an observer: a call that waits on a
  /// stuck or stopped worker is never silent. Off where an observer says it instead (the
  /// taskfarm binary clears its progress bar first).
  bool stall_to_stderr = true;
  bool set_thread_env = true;        ///< OMP/BLAS *_NUM_THREADS = max(1, cpus / workers) unless set
  bool forward_stderr = true;        ///< copy worker stderr lines to ours (the tail is kept regardless)
  /// Where forwarded stderr goes (whole lines, on the Farm's thread): null writes it to this
  /// process's stderr as it comes. `taskfarm run` queues it with its other output, so that a
  /// stderr nobody reads (`2>&1 | less`) never blocks the run.
  std::function<void(std::string_view)> forward_stderr_to;
  /// A worker's standard output outside a task's capture — what a worker program prints before
  /// run_worker (an import banner) or after it, or every print of a job that does not capture —
  /// goes into its stderr pipe (forwarded, kept in failures' tails) instead of this process's
  /// stdout. For a master whose stdout carries the tasks' output (`taskfarm run`: it would land
  /// between them, or break --events' JSON lines).
  bool stdout_to_stderr = false;
  /// Fork mode refuses to fork (throws Error) while this process has other threads: a worker
  /// forked while another thread holds a lock (malloc's, or yours) deadlocks on it. Set this
  /// only if no other thread can hold a lock at the call.
  bool fork_with_threads = false;
  /// Leave no descendant behind: this process becomes a child subreaper, so a process a task
  /// starts that leaves its worker's process group (setsid) and outlives the worker is
  /// reparented here instead of to init; exited ones are reaped on each tick, and at the end of
  /// every run (and at close) the rest are killed and reaped. It takes *every* child of this
  /// process that is not a worker of this farm for such a descendant: set it only in a program
  /// whose other children may be killed at the end of a run (the `taskfarm` binary sets it; a
  /// Pool that also runs submit() must not). It stays a subreaper once set.
  bool reap_descendants = false;
};

/// How a job's per-index results come back.
enum class ResultMode : std::uint8_t {
  none,   ///< the kernel writes into shared arrays (or nothing)
  blobs,  ///< each index produces one byte string (a cereal archive, or captured text)
};

/// One run over an index space: the [0, n) of `extent` (row-major), or only `ranges`.
struct JobSpec {
  std::vector<std::uint64_t> extent;  ///< index-space shape; n = product
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;  ///< if non-empty: only these [b, e)
  std::string kernel;                 ///< program mode: kernel name ("" = the only one)
  std::string output_handle;          ///< AnySharedArray handle workers attach as output, or ""
  std::string input_handle;           ///< input array handle, or ""; workers map it read-only (a write faults)
  std::string lines_handle;           ///< input lines segment (see InputLines), or ""
  ResultMode results = ResultMode::none;
  bool capture_stdout = false;        ///< each index's stdout comes back as text
  bool ordered = false;               ///< deliver results in index order (bounded reorder window)
  /// Non-null: more ranges arrive while the run goes on (range_feed.hpp); `ranges` are its first
  /// ones (may be empty). With `ordered`, results go out in index order as the ranges come.
  RangeFeed* feed = nullptr;
  /// Non-null: where the results go can fall behind (outlet.hpp): the run writes to it as it
  /// takes more and hands out no new chunk while it is full, never blocking on it.
  Outlet* outlet = nullptr;
};

/// One index's result bytes, as delivered to the observer.
struct IndexResult {
  std::uint64_t index;
  std::span<const char> value;  ///< ResultMode::blobs: the kernel's bytes
  std::span<const char> text;   ///< capture_stdout: what the task printed
  /// Where `text` lies in a file, if it does: a descriptor valid during the call (the sealed
  /// memfd a large result came in, docs/design.md §3), and the offset of `text` in it; else -1.
  /// An observer that keeps the text past the call may keep a duplicate of it, not a copy.
  int text_fd = -1;
  std::uint64_t text_offset = 0;
};

/// Per-task event: a committed piece [begin, end) of one chunk, run at one attempt by one
/// worker. Every index in it succeeded except those in `failed` (each reported by on_failure
/// before this). A chunk whose results fill the arena is committed in several pieces, each
/// reported as it commits, so a worker that dies later loses none of them.
struct TasksDone {
  int slot = -1;
  pid_t pid = 0;
  std::uint64_t begin = 0, end = 0;
  std::uint32_t attempt = 0;
  std::span<const std::uint64_t> failed;  ///< indices of [begin, end) that failed, ascending
  /// When the piece ran, as the master places it (steady clock): stop - start is what the worker
  /// measured; start is never before the chunk was handed out nor before the worker's previous
  /// piece ended. Its tasks are timed together: each took about (stop - start) / (end - begin).
  std::chrono::steady_clock::time_point start{}, stop{};
  std::uint64_t succeeded() const noexcept { return end - begin - failed.size(); }
};

/// What the master sees of one worker at a tick (FarmObserver::on_tick, on_stall).
struct WorkerLiveness {
  int slot = -1;
  pid_t pid = 0;
  bool started = false;  ///< has completed its handshake
  bool busy = false;     ///< holds work (running, or queued for it)
  std::optional<std::uint64_t> index;  ///< the task it is running, as its slot segment says
  /// How long it has shown no progress: no new task, no chunk finished. Measured from the
  /// first tick that saw the current state (so up to one tick short), or exactly from the
  /// task's start when the slot stamps it (with a task timeout; the first task of a chunk).
  /// For an idle worker, how long it has been idle.
  std::chrono::nanoseconds since_progress{0};
  /// Its state letter in /proc/PID/stat, read for a worker that showed no progress since the
  /// last tick ('?' otherwise): 'R', 'S', 'D', 'T' (stopped), 't' (traced), 'Z'.
  char state = '?';
  /// Stopped by a signal ('T': SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU), which SIGCONT ends. A tracing
  /// stop ('t': a debugger, or strace between two system calls) is not: SIGCONT does not end it.
  bool stopped() const noexcept { return state == 'T'; }
  bool traced() const noexcept { return state == 't'; }
  /// The process that runs its task when the task is a process of its own (the command
  /// `taskfarm run --exec` runs: TaskContext::set_task_process), read with `state`: 0 if none,
  /// or if the pid its slot names is neither its child nor in its process group.
  pid_t task_pid = 0;
  char task_state = '?';  ///< that process's state letter, as `state`
  bool task_stopped() const noexcept { return task_state == 'T'; }
  /// In a stall report (on_stall) where neither it nor its task's process is stopped: a stopped
  /// process of its process group, if any — what its task started (a step of a script that
  /// `kill -STOP` stopped); 0 otherwise. At a tick (on_tick), the one the stall's last look found
  /// stopped, while the stall lasts (the group is not scanned for it at every tick).
  pid_t stopped_pid = 0;
  /// In a stall report: what it says is stopped was said to be stopped in this stall before,
  /// and has run since (resumed, then stopped again: a command that reads /dev/tty from the
  /// background stops at every read).
  bool stopped_again = false;
  /// The stall report: "slot 1 (pid 4122) has shown no progress for 60 s on task 7; it is
  /// stopped (SIGSTOP?): kill -CONT 4122 resumes it; <timeout_hint>" — with a task_pid, what
  /// holds the task is that process: "...; its command (pid 4130) is stopped (SIGSTOP?): kill
  /// -CONT 4130 resumes it", or "...; its command is pid 4130"; with a stopped_pid, "...; pid 4131
  /// in its process group is stopped (SIGSTOP?): kill -CONT 4131 resumes it". `timeout_hint` names the option
  /// that would kill a stuck task (empty when one is set: nothing to add).
  std::string describe_stall(std::string_view timeout_hint) const;
};

/// The periodic liveness view of a run.
struct FarmTick {
  std::chrono::nanoseconds elapsed{0};  ///< since the run started
  std::vector<WorkerLiveness> workers;  ///< the run's worker slots that have a process
};

/// Everything a run reports, in the order it happens. Called on the Farm's thread.
///
/// An observer that throws: from on_result, that index's result was not handed over — it fails
/// (cause `exception`, "its result could not be handed over in the master: …") and is retried
/// like a kernel's throw (an imap sink's throw is this case). From any other callback, the run
/// ends there, as with Halt::now: nothing more is handed out, the workers are stopped and reaped
/// (none is blamed or counted as a death), the observer hears nothing more of the run, and
/// Farm::run — so the Pool call — rethrows that very exception.
class FarmObserver {
 public:
  virtual ~FarmObserver() = default;
  virtual void on_worker_started(int /*slot*/, pid_t /*pid*/) {}
  virtual void on_chunk_started(int /*slot*/, pid_t /*pid*/, std::uint64_t /*begin*/,
                                std::uint64_t /*end*/, std::uint32_t /*attempt*/) {}
  /// A piece of a chunk committed: which of its tasks succeeded, which failed, and when it ran.
  virtual void on_tasks_done(const TasksDone&) {}
  /// The unstarted rest [begin, end) of a chunk came back: a first chunk (sent before any task
  /// time was known) ran out of its time budget. It is handed out again, at the same attempt.
  virtual void on_chunk_returned(int /*slot*/, pid_t /*pid*/, std::uint64_t /*begin*/, std::uint64_t /*end*/,
                                 std::uint32_t /*attempt*/) {}
  /// Per-index results (ResultMode::blobs or capture_stdout); in index order if JobSpec::ordered.
  virtual void on_result(const IndexResult&) {}
  /// A failed attempt (FailureRecord::final says whether its index will be retried; runtime how
  /// long it ran), or a worker that died with no index to charge (no `index`: between tasks, at
  /// start, or killed by chaos fault injection).
  virtual void on_failure(const FailureRecord&) {}
  /// Every FarmOptions::tick_interval while a run goes on, events or not: what each worker is
  /// doing and for how long (--progress redraws from it, so it moves on time).
  virtual void on_tick(const FarmTick&) {}
  /// A worker has shown no progress for FarmOptions::stall_warning while holding work: once per
  /// stall (it is reported again only after it has moved on and stalled anew).
  virtual void on_stall(const WorkerLiveness&) {}
};

/// What a run did.
struct RunReport {
  std::uint64_t tasks = 0;        ///< indices in the run
  std::uint64_t succeeded = 0;
  std::uint64_t retries = 0;      ///< attempts beyond the first, over all indices
  std::uint64_t worker_deaths = 0;  ///< workers that died unexpectedly
  std::uint64_t workers_replaced = 0;  ///< workers started in place of ones that died (none once the work is out)
  std::uint64_t chaos_kills = 0;  ///< of those, killed by fault injection (never charged to an index)
  std::uint64_t failed_spawns = 0;  ///< worker starts that failed for want of resources (retried)
  std::uint64_t strays_killed = 0;  ///< descendants that escaped their worker, killed at the end (reap_descendants)
  std::vector<FailureRecord> failures;  ///< final failures (one per failed index) and farm-level ones
  bool halted = false;            ///< stopped early by the halt policy
  bool interrupted = false;       ///< stopped by request_stop() (SIGINT/SIGTERM in the CLI)
  std::string farm_error;         ///< non-empty: the farm itself could not run (e.g. workers die at start)
  /// Indices that neither succeeded nor finally failed, as sorted [begin, end) ranges: the run
  /// ended (farm_error, halted, interrupted) before their results were delivered. Empty when
  /// the run finished.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> unfinished;
  /// .npy files this process maps read-write (create_npy, open_npy) whose header a worker wrote
  /// over during the run — a stray write just before the first element. Farm::run wrote the
  /// header back, so the file loads again; data near its start may be damaged too, so the run
  /// is not complete (Pool calls throw TaskFailed, `taskfarm run` exits 103).
  std::vector<std::string> restored_headers;
  std::chrono::nanoseconds wall{0};
  std::size_t workers = 0;
  /// Indices that finally failed, sorted.
  std::vector<std::uint64_t> failed_indices() const;
  /// How many indices `unfinished` holds (tasks = succeeded + finally failed + this).
  std::uint64_t unfinished_count() const noexcept;
};

/// "a worker wrote over the .npy header of PATH (restored); data near the start may be damaged
/// too": how RunReport::restored_headers is said (TaskFailed, `taskfarm run`).
std::string restored_header_message(const std::string& path);

/// What a forked worker runs: builds the JobRunner for each job inside the child.
using ForkKernelFactory = std::function<std::unique_ptr<JobRunner>()>;
/// What a warm forked worker runs: builds, inside the worker, the JobRunner of each job from
/// what the job says (it runs long after the fork: it must not read the master's memory as it
/// is at the run).
using WarmRunnerFactory = std::function<std::unique_ptr<JobRunner>(const JobInfo&)>;

class Farm {
 public:
  /// Program mode: workers are `program args...` started with vfork + exec (found on PATH by
  /// Boost.Process); warm across runs.
  static Farm program(FarmOptions options, std::string program, std::vector<std::string> args = {});
  /// Fork mode: workers are forked from this process at each run() (so they see its memory as
  /// it is at the call) and run `factory()`'s JobRunner. Forks from the calling thread.
  static Farm fork(FarmOptions options);
  /// Warm fork mode (WarmPool): workers are forked from this process when a run first needs
  /// them and kept across runs, like program mode's; each builds its jobs' runners with `make`.
  static Farm fork_warm(FarmOptions options, WarmRunnerFactory make);

  Farm(Farm&&) noexcept;
  Farm& operator=(Farm&&) noexcept;
  ~Farm();  ///< stops and reaps every worker, removes every segment

  /// Runs one job to completion (or halt / stop). `factory` is used in fork mode only.
  RunReport run(const JobSpec& job, FarmObserver* observer = nullptr,
                const ForkKernelFactory& factory = {});
  /// Async-signal-safe: makes a running run() stop dispatching, stop workers and return.
  void request_stop() noexcept;
  /// Stops workers in order (Stop, then TERM, then KILL after a grace), reaps them.
  void close();

  std::size_t worker_count() const noexcept;
  const FarmOptions& options() const noexcept;

 private:
  struct Impl;
  explicit Farm(std::unique_ptr<Impl>);
  std::unique_ptr<Impl> impl_;
};

/// Usable CPUs: the affinity mask, further limited by a cgroup v2 cpu.max quota.
int usable_cpus();
/// joblib's n_jobs: N > 0 → N; -1 → all usable CPUs; -2 → all but one; ...; never below 1.
/// Throws Error for 0.
int resolve_workers(int requested);

}  // namespace taskfarm
