// Supervisor: the only part of the engine that touches processes and time — pids, pidfds,
// signals, one epoll over every worker's pidfd, channel and stderr pipe (and an eventfd for
// stop requests), the slot segments, and every deadline: the handshake, the task timeout,
// TERM → KILL, sends, stopping, ticks. It turns what the OS and the workers say into
// Dispatcher events and carries out the Dispatcher's commands, starting workers through a
// Launcher. It decides nothing about what runs or what a failure costs (docs/design.md §13).
// Driven from one thread (the Farm's); it starts no threads, so forking stays safe.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "dispatcher.hpp"
#include "launcher.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm {

class Supervisor {
 public:
  Supervisor(FarmOptions options, std::size_t workers, std::unique_ptr<Launcher> launcher);
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  /// Runs one job to completion (or halt / stop request); `job` has its read-only input handle.
  /// It is begin(), step() until it says the run is over, then end().
  RunReport run(const JobSpec& job, FarmObserver* observer);
  /// A run stepped by its caller between calls of its own (Pool::submit, design §8): begin it,
  /// step() it as often as wanted, end() it. `job` and `observer` must outlive the run.
  void begin(const JobSpec& job, FarmObserver* observer);
  /// One pass of the loop: plan, carry out commands, deadlines, ticks, then waits for events at
  /// most `max_wait_ms` (and never past the next deadline). False once the run is over
  /// (finished, halted, stopped): then end() it.
  bool step(int max_wait_ms);
  /// Ends the run: stops the workers it must (fork mode, halt, interruption), settles the report.
  RunReport end();
  /// Ends a run that cannot go on (a step threw): every worker is SIGKILLed and reaped; the
  /// report is lost.
  void abandon() noexcept;
  bool running() const noexcept { return job_ != nullptr; }
  /// Async-signal-safe: a running run() stops dispatching, stops its workers and returns.
  void request_stop() noexcept;
  /// Stops every worker in order (Stop, TERM, KILL after a grace) and reaps it.
  void close();

  const FarmOptions& options() const noexcept { return opt_; }
  std::size_t workers() const noexcept { return n_workers_; }
  Launcher& launcher() noexcept { return *launcher_; }

 private:
  // One worker slot: its process while it has one, and what only the OS side needs of it.
  struct WorkerSlot {
    std::optional<WorkerProcess> proc;
    ShmSegment seg;                      // the slot segment while no process holds it
    Clock::time_point spawned_at{};      // the handshake is due by spawned_at + start_timeout
    Clock::time_point kill_deadline{};   // TERM sent: KILL at this time
    Clock::time_point hung_up_at{};      // its channel hung up while it lives (Overdue::hung_up)
    // Liveness (supervisor_liveness.cpp): the slot's progress words as the last tick saw them.
    std::uint64_t seen_chunk = kNoChunk, seen_index = 0, seen_done = 0;
    std::int64_t seen_started = 0;
    std::int64_t seen_since_ns = 0;      // monotonic_ns() of the first tick that saw them so
    bool stall_reported = false;
    // During a reported stall (stall_check): the process the last line said is stopped (0: none),
    // its context switches and the time then; the one the last look found stopped; and when to
    // look through the process group again for one stopped since.
    pid_t stopped_said = 0;
    std::int64_t said_switches = -1;
    std::int64_t said_at_ns = 0;
    pid_t seen_stopped = 0;
    std::int64_t next_scan_ns = 0;
  };
  class Records;  // PieceRecords over a slot's arena, or a carried memfd

  // Carries out every queued Dispatcher command (and those its events queue meanwhile).
  void execute();
  void start_worker(std::size_t i);
  bool send(std::size_t i, const proto::Message& m);
  void drain_channel(std::size_t i);
  void poll_once(int timeout_ms);
  void on_exit(std::size_t i, ExitStatus st);
  void check_deadlines(Clock::time_point now);
  int wait_ms(Clock::time_point now) const;
  // JobSpec::feed's fd is readable: its ranges, or its end, go to the Dispatcher.
  void read_feed();
  // JobSpec::outlet: watches the descriptor it waits on (if any) for writing, and tells the
  // Dispatcher whether it is full (no new chunks meanwhile). Before each planning pass.
  void sync_outlet();
  void unwatch_outlet();

  // Liveness (supervisor_liveness.cpp): looks at every worker of the run, reports on_tick and stalls.
  void tick(Clock::time_point now);
  // Whether ticks are wanted: someone hears them, or a stall is to be said on stderr.
  bool ticking() const {
    return opt_.tick_interval.count() > 0 &&
           (obs_ != nullptr || (opt_.stall_to_stderr && opt_.stall_warning.count() > 0));
  }
  WorkerLiveness observe(std::size_t i, std::int64_t now_ns);
  // A busy worker without progress for stall_warning: reported at once, and again whenever what
  // is stopped in it changes (another step stopped, the same command stopped again).
  void stall_check(WorkerSlot& s, const WorkerLiveness& w, std::int64_t now_ns);

  // Stopping (supervisor_stop.cpp).
  // Stops every worker: Stop message (or straight SIGKILL when `now`), then reaps with a
  // deadline, escalating TERM → KILL.
  void stop_all(bool now);
  // Sends Stop to every worker not yet told (SIGKILL to one that never said Hello); no waiting.
  void send_stops();
  // Waits (at most timeout_ms) until some worker's pidfd is readable. Only pidfds: channels
  // and stderr pipes already at EOF would make epoll return at once and spin.
  void wait_for_exits(int timeout_ms);
  // The pids of this farm's live workers (what descendants:: must never touch).
  std::vector<pid_t> worker_pids() const;
  // reap_descendants: kills and reaps every escaped descendant (end of a run, close).
  std::uint64_t kill_strays();
  void release(std::size_t i);

  void watch(int fd, std::uint64_t data);
  void unwatch(int fd);
  std::vector<int> master_fds(std::size_t except) const;

  FarmOptions opt_;
  std::size_t n_workers_;
  std::unique_ptr<Launcher> launcher_;
  Dispatcher d_;
  std::vector<WorkerSlot> slots_;
  UniqueFd epoll_, stop_fd_;
  std::atomic<bool> stop_requested_{false};

  // Per run.
  const JobSpec* job_ = nullptr;
  // The run's .npy output and input as its workers reach them: through this process's
  // descriptor of each file, held for the run (pin_file), not by path.
  std::string output_handle_, input_handle_;
  UniqueFd output_pin_, input_pin_;
  FarmObserver* obs_ = nullptr;
  Clock::time_point run_start_{}, next_tick_{};
  bool first_step_ = false;
  int outlet_fd_ = -1;         // JobSpec::outlet's descriptor, watched for EPOLLOUT
  bool outlet_polled_ = false;  // ... which epoll cannot watch: writable() is called at every step
  // .npy headers written over and put back before a worker started (RunReport::restored_headers).
  std::vector<std::string> restored_;
};

}  // namespace taskfarm
