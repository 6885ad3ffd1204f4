// Dispatcher: the engine's policy — which chunk goes to which worker, what a failure costs
// (only the running index is charged; the rest of its chunk goes back uncharged), retries,
// halt, deaths without progress, chaos accounting, spawn backoff, ordered delivery, and every
// FarmObserver event about tasks. Pure logic: it makes no system call and reads no clock —
// times come in with the events. The Supervisor (supervisor.hpp) turns what the OS and the
// workers say into its events and carries out the commands it queues; tests drive it with a
// scripted fake worker (tests/farm/dispatcher_test.cpp). One thread: the Farm's.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "observer_guard.hpp"
#include "scheduler.hpp"
#include "taskfarm/range_set.hpp"
#include "taskfarm/range_feed.hpp"
#include "taskfarm/detail/protocol.hpp"
#include "taskfarm/detail/slot.hpp"
#include "taskfarm/farm.hpp"
#include "worker_process.hpp"  // ExitStatus

namespace taskfarm {

using Clock = std::chrono::steady_clock;

/// What the Dispatcher asks of the Supervisor, carried out in the order queued. The outcome of
/// a `start` comes back as on_started or on_spawn_failed; a send that fails as on_send_failed.
struct Command {
  enum class Kind : std::uint8_t {
    start,   ///< start a worker in `slot`
    assign,  ///< send `chunks` to the worker in `slot`, after a Job message if `send_job`
    stop,    ///< send Stop: the worker runs what it holds, reports it and exits
    kill,    ///< kill its process group: SIGKILL, or SIGTERM and SIGKILL after kill_grace
    more,    ///< JobSpec::feed: ask it for more ranges (RangeFeed::want_more); no slot
  };
  Kind kind = Kind::start;
  int slot = -1;
  bool send_job = false;              // assign
  std::vector<proto::Chunk> chunks;   // assign (may be empty with send_job)
  bool term_first = false;            // kill
  std::optional<FailureCause> cause;  // kill: what it will be reported as; none = fault injection
};

/// A worker could not be started. `fatal`: it never will be (the program cannot be executed);
/// else for want of resources (EAGAIN under RLIMIT_NPROC, ENOMEM, out of descriptors).
struct SpawnFailure {
  int error = 0;
  std::string what;
  bool fatal = false;
};

/// A message could not be sent: the channel is closed (the worker is gone or going), or the
/// worker does not read it (then it is killed as faulty).
struct SendFailure {
  bool closed = false;
  bool was_stop = false;  // the message was a Stop (so the worker was not told to stop)
  std::string what;
};

/// A worker's process ended: how, and what its slot segment said it was running.
struct WorkerGone {
  ExitStatus status;
  std::uint64_t current_chunk = kNoChunk;
  std::uint64_t current_index = 0;
  std::string stderr_tail;
  bool delivering = false;              // it was talking to the master (sending results, waiting for room)
  std::uint64_t last_chunk = kNoChunk;  // the chunk it began last
};

/// A deadline the Supervisor watches passed: the handshake (start_timeout after the start),
/// the running task (task_timeout after its stamp in the slot segment), or the exit of a worker
/// whose channel hung up (kHungUpGrace after it did) while it was not told to stop; or
/// `unserved`: a worker that greeted and holds work has begun none of it kUnservedGrace after
/// its start while another worker idles with nothing left to hand out (idle_worker_waiting); or
/// `serve`: with a task timeout, such a worker has begun none of it start_timeout + task_timeout
/// after its start, whether or not another idles (every worker may be stuck so).
enum class Overdue : std::uint8_t { start, task, hung_up, unserved, serve };
/// How long a worker whose channel hung up has to exit on its own (an exiting process closes
/// its descriptors after releasing its memory, so its exit follows at once).
inline constexpr std::chrono::milliseconds kHungUpGrace{1000};
inline constexpr std::chrono::milliseconds kUnservedGrace{1000};

/// Where the per-index records of a committed piece are (the worker's arena, or a memfd that
/// came with the Done): the Supervisor's side of reading them. Called once per piece with
/// records, only after the Dispatcher has checked the piece; `consumed` once they are decoded.
class PieceRecords {
 public:
  virtual ~PieceRecords() = default;
  /// The piece's records. Throws ProtocolError if the worker's claim is invalid, and
  /// CarryUnmappable if this process cannot map a valid carried result.
  virtual std::span<const char> read(const proto::ChunkDone& c) = 0;
  virtual void consumed(const proto::ChunkDone& c) = 0;
  /// The file read() mapped (a carried piece's memfd: its records start at offset 0), until
  /// consumed(); -1 for records in the arena.
  virtual int file() const noexcept { return -1; }
  /// Keeps read()'s records (and file()) valid past consumed() for as long as it is held:
  /// ordered delivery holds a large result so rather than copy it. nullptr for the arena.
  virtual std::shared_ptr<const void> keep() const { return nullptr; }
};

class Dispatcher {
 public:
  struct Config {
    FarmOptions options;
    std::size_t workers = 1;       // FarmOptions::workers, resolved
    std::string worker_name;       // what a worker that never said Hello is called in messages
    bool stop_when_drained = false;  // fork mode: Stop each worker once nothing is left to hand out
    /// Program mode: until a worker of this farm has said Hello, one worker runs alone for
    /// `probe_grace`, and one that exits before its Hello ends the run — a program that is not a
    /// worker program (an `echo {}`) runs once, not -j times. After the grace the others start
    /// without waiting for the Hello: a Python worker that imports NumPy before taskfarm says
    /// Hello only after ~0.15 s, which the others would otherwise wait out one after the other.
    bool probe_first = false;
    Clock::duration probe_grace = std::chrono::milliseconds(50);
    /// The last stderr lines of the worker in a slot, for the record of a kernel's exception.
    std::function<std::string(int slot)> stderr_tail;
  };
  explicit Dispatcher(Config config);
  Dispatcher(const Dispatcher&) = delete;  // holds a reference into itself (opt_)
  Dispatcher& operator=(const Dispatcher&) = delete;

  // ---- a run -----------------------------------------------------------------------------
  /// Starts a run of `job` (its read-only input handle already applied). `chaos_entropy` seeds
  /// fault injection when FarmOptions::chaos_seed is 0.
  void begin_run(const JobSpec& job, FarmObserver* observer, Clock::time_point now, std::uint64_t chaos_entropy);
  /// Ends the run after the Supervisor stopped what it stops: results held for order go out,
  /// and every index neither delivered nor finally failed goes to RunReport::unfinished.
  RunReport end_run();
  std::uint64_t total() const noexcept { return report_.tasks; }
  std::size_t run_workers() const noexcept { return run_workers_; }
  std::size_t slot_count() const noexcept { return slots_.size(); }
  /// The run's observer as the engine must call it (ObserverGuard), or nullptr: the Supervisor's
  /// on_tick and on_stall go through it too.
  FarmObserver* observer() noexcept { return obs_; }
  /// What the run's observer threw (it ended the run), to rethrow once the workers are stopped.
  std::exception_ptr take_observer_error() noexcept { return guard_.take_error(); }

  // ---- events ----------------------------------------------------------------------------
  /// One pass over the run's slots: start a worker where one is due (one start at a time: the
  /// pass goes on once its outcome is known), top the others up with chunks.
  void plan(Clock::time_point now);
  void on_started(int slot, pid_t pid, Clock::time_point now);
  void on_spawn_failed(int slot, const SpawnFailure& f, Clock::time_point now);
  /// A message from the worker in `slot` (its Done's records through `records`).
  void on_message(int slot, const proto::Message& m, PieceRecords& records, Clock::time_point now);
  /// Its channel said something that is not a valid message: it is killed as faulty.
  void on_protocol_error(int slot, const std::string& what);
  void on_send_failed(int slot, const SendFailure& f);
  void on_overdue(int slot, Overdue what);
  /// Time passed: fault injection strikes when due.
  void on_time(Clock::time_point now);
  /// The worker in `slot` ended and was reaped; its messages were all handed in before this.
  void on_gone(int slot, const WorkerGone& g, Clock::time_point now);
  /// The Supervisor reaped the worker in `slot` while stopping workers: nothing is charged.
  void on_released(int slot);
  void on_stop_requested();
  /// JobSpec::outlet is full (or no longer): while it is, no chunk is handed out and no worker
  /// started; what the workers hold runs on.
  void hold_new_work(bool held) noexcept { hold_new_work_ = held; }
  // dispatcher_feed.cpp — a run with JobSpec::feed (docs/design.md §17).
  /// The feed brought ranges (ascending, starting at or after the end of the run's last range,
  /// inside the extent; else Error). They go out after what the run has.
  void on_ranges_added(const std::vector<IndexRange>& ranges);
  /// The feed will bring nothing more: the run ends once what it has is done.
  void on_source_closed() noexcept { feed_open_ = false; asked_ = false; }
  bool feed_open() const noexcept { return feed_open_; }

  // ---- commands --------------------------------------------------------------------------
  bool has_command() const noexcept { return head_ < commands_.size(); }
  Command take_command();

  // ---- what the Supervisor asks ----------------------------------------------------------
  /// Nothing is held and nothing more will be handed out: the run's loop may end.
  bool finished() const noexcept;
  bool halting_now() const noexcept { return halting_now_; }
  bool live(int slot) const noexcept { return at(slot).live; }
  bool greeted(int slot) const noexcept { return at(slot).hello; }
  /// Nothing is left to hand out and a worker that could take work holds none (Overdue::unserved).
  bool idle_worker_waiting() const noexcept;
  /// Killed with a cause (its messages are no longer read).
  bool killing(int slot) const noexcept { return at(slot).kill_cause.has_value(); }
  bool busy(int slot) const noexcept { return !at(slot).held.empty(); }
  bool stop_sent(int slot) const noexcept { return at(slot).stop_sent; }
  std::uint64_t job_id() const noexcept { return job_id_; }
  /// When the Dispatcher next wants on_time or plan without any event: fault injection, the end
  /// of a spawn backoff. Clock::time_point::max() if never.
  Clock::time_point next_wakeup(Clock::time_point now) const noexcept;
  /// The index the worker in `slot` runs, if its slot segment's words name a task of a chunk it
  /// holds and has not committed; `first` says whether it is its chunk's first index.
  std::optional<std::uint64_t> running(int slot, std::uint64_t chunk, std::uint64_t index, bool& first) const noexcept;

 private:
  // A chunk a worker holds: queued or running, possibly partly committed.
  struct Held {
    ChunkTask task;
    std::uint64_t committed = 0;                     // [task.begin, committed) are in place
    std::map<std::uint64_t, FailureRecord> failed;   // kernel threw (or delivery failed) at these
    Clock::time_point assigned_at{};                 // when it was handed out
  };
  // A result held back for ordered delivery, and where it came from.
  struct Pending {
    std::string value, text;
    std::uint32_t attempt = 0;
    int slot = -1;
    // Or, for a large result that came in a memfd: its mapping kept, not copied (h14 F1).
    std::shared_ptr<const void> kept;
    std::span<const char> kept_value, kept_text;
    int text_fd = -1;
    std::uint64_t text_offset = 0;
    std::size_t size() const noexcept { return kept ? kept_value.size() + kept_text.size() : value.size() + text.size(); }
  };
  struct Slot {
    bool live = false;            // a worker process is in the slot
    pid_t pid = 0;
    std::deque<Held> held;
    std::uint64_t held_indices = 0;  // Σ (end - committed) over `held`
    bool fed = false;             // handed chunks since its last Done: no more until it reports
    bool hello = false;
    bool retiring = false;        // max_tasks_per_worker reached: Stop once idle
    bool stop_sent = false;
    bool chaos_killed = false;
    bool hung_up = false;         // killed: its channel hung up and it did not exit (Overdue::hung_up)
    std::optional<FailureCause> kill_cause;  // why it was killed (timeout, protocol, start)
    std::string kill_message;
    std::uint64_t job_sent = 0;
    std::uint64_t assigned = 0;   // indices assigned since its start
    Clock::time_point last_end{};  // when its last committed piece ended (or its start)
    Clock::time_point retry_at{};  // a start failed for want of resources: not again before this
    int spawn_failures = 0;        // in a row, for the backoff
    bool died = false;             // its last worker died unexpectedly: the next start replaces it
  };

  const Slot& at(int slot) const noexcept { return slots_[static_cast<std::size_t>(slot)]; }
  void queue(Command c) { commands_.push_back(std::move(c)); }
  void plan_from(std::size_t first, Clock::time_point now);
  void top_up(std::size_t i, Clock::time_point now);
  void kill(std::size_t i, FailureCause cause, std::string message, bool term_first = false);
  std::size_t live_workers() const noexcept;
  bool any_held() const noexcept;
  bool any_live() const noexcept;
  /// Config::probe_first: whether the other workers still wait for the first one's Hello.
  bool probe_holds(Clock::time_point now) const noexcept;
  void schedule_chaos(Clock::time_point now);
  void fail_run(FailureRecord f, std::string farm_error);
  // Queues `more` once the run's unassigned indices are at the feed's low water (dispatcher_feed.cpp).
  void ask_if_low();

  // dispatcher_results.cpp: a Done's pieces, their records, (ordered) delivery.
  void on_done(std::size_t i, const proto::Done& d, PieceRecords& records, Clock::time_point now);
  void on_task_error(std::size_t i, const proto::TaskError& e);
  static Held* find_held(Slot& s, std::uint64_t chunk_id) noexcept;
  void commit(std::size_t i, const proto::ChunkDone& c, PieceRecords& records, Clock::time_point now);
  // When chunk `h` of a slot began to run, as far as the master can place it (its previous
  // piece's end, the chunk's hand-out), at the latest `now`.
  static Clock::time_point began(const Slot& s, const Held* h, Clock::time_point now) noexcept;
  void read_records(std::size_t i, std::uint64_t begin, std::uint64_t end, const proto::ChunkDone& c, Held& h,
                    PieceRecords& records);
  void decode_records(std::size_t i, std::uint64_t begin, std::uint64_t end, Held& h, std::span<const char> rec,
                      const PieceRecords* records = nullptr);
  void deliver(std::size_t i, const IndexResult& r, Held& h, const PieceRecords* records = nullptr);
  bool hand_over(std::uint64_t index, const Pending& p, bool may_retry);
  void advance_frontier();

  // dispatcher_failures.cpp: failed tasks, deaths, failed starts.
  void task_failed(std::size_t i, FailureRecord f, const ChunkTask& t);
  /// The held chunks a dead worker ran whose results the master has not all had, in order:
  /// those up to `last_chunk` (the slot's) with indices not committed. Empty if none.
  static std::vector<const Held*> unheard_chunks(const Slot& s, std::uint64_t last_chunk);
  static std::string describe_unheard(const std::vector<const Held*>& unheard);
  void halt_if_due();
  void spawn_failed(std::size_t i, const SpawnFailure& f, Clock::time_point now);

  Config cfg_;
  const FarmOptions& opt_;
  std::vector<Slot> slots_;
  std::vector<bool> benched_;  // stopped for Overdue::unserved: not started again in this run
  bool benched(std::size_t i) const noexcept { return i < benched_.size() && benched_[i]; }
  bool greeted_ = false;  // some worker of this farm has completed its handshake
  Clock::time_point probe_started_{};  // probe_first: when the first worker, alone, was started
  std::uint64_t job_id_ = 0;
  std::mt19937_64 rng_;
  std::vector<Command> commands_;
  std::size_t head_ = 0;  // commands_[head_, end) are still to be carried out

  // Per run.
  const JobSpec* job_ = nullptr;
  ObserverGuard guard_;            // the user's observer, called so that what it throws ends the run
  FarmObserver* obs_ = nullptr;    // &guard_ while a run has an observer
  std::optional<Scheduler> sched_;
  std::size_t run_workers_ = 1;  // slots [0, run_workers_) work in this run
  RunReport report_;
  std::uint64_t final_failures_ = 0;
  int deaths_without_progress_ = 0;
  int spawn_failures_in_a_row_ = 0;  // over all slots; reset by a successful start
  bool halting_now_ = false;
  bool starting_ = false;            // a start command is out: plan() waits for its outcome
  bool hold_new_work_ = false;       // the run's outlet is full: nothing new is handed out
  Clock::time_point next_chaos_{};
  // Ordered delivery.
  std::uint64_t frontier_ = 0;
  std::map<std::uint64_t, Pending> pending_;
  std::size_t pending_bytes_ = 0;     // Σ bytes held in pending_
  std::set<std::uint64_t> skipped_;   // finally failed: the frontier passes over them
  std::vector<std::uint64_t> failed_here_;  // of the piece being committed (reused: no allocation per piece)
  std::vector<IndexRange> ranges_;    // of this run, in order
  RangeSet delivered_;                 // indices that succeeded in this run (per committed piece)
  // A run with a feed.
  bool feed_open_ = false;            // more ranges may come
  bool asked_ = false;                // a `more` is out and nothing came since
  std::uint64_t low_water_ = 0;
  std::uint64_t extent_size_ = 0;     // the job's index space: added ranges must lie inside
};

}  // namespace taskfarm
