// Farm::Impl: the engine's state, shared by the event loop (farm.cpp) and the handling of
// failures, deaths and deadlines (farm_failures.cpp). Private to master/src; one thread.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "index_ranges.hpp"
#include "scheduler.hpp"
#include "spawn.hpp"
#include "taskfarm/detail/protocol.hpp"
#include "taskfarm/detail/slot.hpp"
#include "taskfarm/farm.hpp"
#include "worker_process.hpp"

namespace taskfarm {

using Clock = std::chrono::steady_clock;

/// A chunk a worker holds: queued or running, possibly partly committed.
struct Held {
  ChunkTask task;
  std::uint64_t committed = 0;  // indices [task.begin, committed) are in place
  std::map<std::uint64_t, FailureRecord> failed;  // kernel threw at these indices
  std::chrono::steady_clock::time_point assigned_at{};  // when it was handed out
};

/// A result held back for ordered delivery, and where it came from.
struct PendingResult {
  std::string value, text;
  std::uint32_t attempt = 0;
  int slot = -1;
};

/// One worker slot: its process (while it has one) and what the master knows about it.
struct SlotRun {
  std::optional<WorkerProcess> proc;
  ShmSegment seg;               // the slot segment while no process holds it
  std::deque<Held> held;
  std::uint64_t held_indices = 0;  // Σ (end - committed) over `held`
  bool hello = false;
  bool retiring = false;        // max_tasks_per_worker reached: Stop once idle
  bool stop_sent = false;
  bool chaos_killed = false;
  std::optional<FailureCause> kill_cause;  // why the master killed it (timeout, protocol)
  std::string kill_message;
  Clock::time_point kill_deadline{};       // TERM sent: KILL at this time
  Clock::time_point spawned_at{};          // the handshake is due by spawned_at + start_timeout
  Clock::time_point last_end{};            // when its last committed piece ended (or its spawn)
  std::uint64_t job_sent = 0;
  std::uint64_t assigned = 0;   // indices assigned since spawn
  Clock::time_point retry_at{};  // a spawn failed for want of resources: not again before this
  int spawn_failures = 0;        // in a row, for the backoff
  // Liveness (farm_liveness.cpp): the slot's progress fields as the last tick saw them.
  std::uint64_t seen_chunk = kNoChunk, seen_index = 0, seen_done = 0;
  std::int64_t seen_started = 0;
  std::int64_t seen_since_ns = 0;  // monotonic_ns() of the first tick that saw them so
  bool stall_reported = false;
};

struct Farm::Impl {
  FarmOptions opt;
  bool fork_mode = false;
  std::string program;
  std::vector<std::string> args;
  std::size_t n_workers = 1;  // as asked (FarmOptions::workers resolved)
  std::vector<SlotRun> slots;
  UniqueFd epoll, stop_fd;
  std::atomic<bool> stop_requested{false};
  bool greeted = false;      // some worker of this farm has completed its handshake
  std::uint64_t job_id = 0;
  SpawnLimits spawn_limits;  // decided with the worker count, at creation
  std::mt19937_64 rng;

  // Per run:
  const JobSpec* job = nullptr;
  FarmObserver* obs = nullptr;
  const ForkKernelFactory* factory = nullptr;
  std::optional<Scheduler> sched;
  std::size_t run_workers = 1;  // slots [0, run_workers) work in this run: min(n_workers, tasks)
  RunReport report;
  std::uint64_t final_failures = 0;
  int deaths_without_progress = 0;
  int spawn_failures_in_a_row = 0;  // over all slots; reset by a successful spawn
  bool halting_now = false;
  Clock::time_point next_chaos{};
  // Ordered delivery.
  std::uint64_t frontier = 0;
  std::map<std::uint64_t, PendingResult> pending;
  std::size_t pending_bytes = 0;  // Σ bytes held in `pending`
  std::set<std::uint64_t> skipped;  // finally failed: the frontier passes over them
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;  // of this run, in order
  IndexRanges delivered;  // indices that succeeded in this run (per committed piece)

  Impl();
  void watch(int fd, std::uint64_t data);
  void unwatch(int fd);
  SpawnLimits limits() const;

  std::vector<int> master_fds(std::size_t except) const;

  // ---- spawning ---------------------------------------------------------------------------
  void spawn(std::size_t i);

  // ---- messages ---------------------------------------------------------------------------
  bool send(std::size_t i, const proto::Message& m);
  void top_up(std::size_t i);

  void drain_channel(std::size_t i);
  void handle(std::size_t i, const proto::Message& m);

  static Held* find_held(SlotRun& s, std::uint64_t chunk_id);
  // When the chunk `h` of slot i began to run, as far as the master can place it (its previous
  // piece's end, the chunk's hand-out), at the latest `now`.
  Clock::time_point began(const SlotRun& s, const Held* h, Clock::time_point now) const;
  // `carried`: the descriptor that came with the Done, for an entry whose records it carries.
  void commit(std::size_t i, const proto::ChunkDone& c, UniqueFd carried = {});

  void deliver_records(std::size_t i, std::uint64_t begin, std::uint64_t end, const proto::ChunkDone& c, UniqueFd carried);
  // Decodes one record per index of [begin, end) from `rec` and delivers those not failed.
  void decode_records(std::size_t i, std::uint64_t begin, std::uint64_t end, Held& h, std::span<const char> rec);
  // Hands one result to the observer (or holds it for order). If the observer throws
  // (decoding, memory, the user's sink), the index fails like a kernel's exception.
  void deliver(std::size_t i, const IndexResult& r, Held& h);
  // Hands a result held for order to the observer; if that throws, the index (counted
  // succeeded at its commit) fails: requeued when `may_retry` and it has attempts left
  // (returns false: the frontier waits for it), else finally.
  bool hand_over(std::uint64_t index, const PendingResult& p, bool may_retry);
  void halt_if_due();
  // At the end of a run: results held back for order are delivered, and every index neither
  // delivered nor finally failed goes to report.unfinished (a run that ended early).
  void settle_unfinished();

  void advance_frontier();

  // An index failed (kernel threw, or its worker died running it): retry or give up.
  void task_failed(std::size_t i, FailureRecord f, const ChunkTask& t);

  // ---- deaths -----------------------------------------------------------------------------
  void kill_worker(std::size_t i, FailureCause cause, std::string message);
  void on_exit(std::size_t i, ExitStatus st);

  void check_deadlines(Clock::time_point now);
  // Liveness (farm_liveness.cpp): looks at every worker of the run, reports on_tick and stalls.
  void tick(Clock::time_point now);
  WorkerLiveness observe(std::size_t i, std::int64_t now_ns);
  Clock::time_point run_start{}, next_tick{};
  // What a worker that never said Hello is told it is (program path, or "a forked worker").
  std::string worker_name() const;
  void schedule_chaos(Clock::time_point now);
  int wait_ms(Clock::time_point now) const;

  bool busy() const;

  // One round of waiting and handling events.
  void poll_once(int timeout_ms);

  // ---- a run ------------------------------------------------------------------------------
  RunReport run(const JobSpec& j, FarmObserver* o, const ForkKernelFactory* f);
  void loop();

  // Starts a worker in slot i (unless it is backing off after a failed spawn). A spawn that
  // fails for want of resources (EAGAIN, ENOMEM, EMFILE, ...) is retried with backoff while the
  // others work; only when no worker runs and starts keep failing does the run stop, with that
  // cause. Any other spawn failure (the program cannot be executed) stops the run at once.
  void start_or_fail(std::size_t i);
  void spawn_failed(std::size_t i, int err, const std::string& what);
  std::size_t live_workers() const;

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
  void release_slot(std::size_t i);
};

}  // namespace taskfarm
