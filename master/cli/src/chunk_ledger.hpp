// ChunkLedger: turns the engine's chunk-level reports into the per-task and per-slot facts the
// joblog, trace and progress need. The engine reports each failed index (on_failure) before
// the commit of the chunk piece that holds it (on_chunk_done), and a worker runs its chunks one
// after another; from that, the ledger says which indices of a committed piece failed and
// when the piece ran. Each observer keeps its own; used on the Farm's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "taskfarm/failure.hpp"

namespace taskfarm::cli {

/// Whether `f` ended its worker (a crash, exit, timeout or protocol kill), as opposed to a
/// kernel exception after which the worker went on with its chunk.
bool ended_worker(const FailureRecord& f) noexcept;

class ChunkLedger {
 public:
  using Clock = std::chrono::steady_clock;

  /// A worker (re)started in `slot` at `now`: nothing of it ran before.
  void worker_started(int slot, Clock::time_point now);
  /// The chunk [begin, end) at `attempt` was handed to the worker in `slot` at `now`.
  void chunk_dispatched(int slot, std::uint64_t begin, std::uint64_t end, std::uint32_t attempt,
                        Clock::time_point now);
  /// `index` failed at `attempt` (FarmObserver::on_failure with an index).
  void task_failed(std::uint64_t index, std::uint32_t attempt);

  /// The indices of the committed piece [begin, end) at `attempt` that failed, ascending;
  /// forgets them.
  std::vector<std::uint64_t> take_failed(std::uint64_t begin, std::uint64_t end, std::uint32_t attempt);

  /// When the piece [begin, end) of a chunk that `slot` reports done at `now` after running
  /// `elapsed` ran: no earlier than the slot's previous piece ended (Done messages come in
  /// batches), nor than its chunk was handed out. A chunk may be reported whole or in pieces.
  std::pair<Clock::time_point, Clock::time_point> place_done(int slot, std::uint64_t begin, std::uint64_t end,
                                                             std::uint32_t attempt,
                                                             std::chrono::nanoseconds elapsed,
                                                             Clock::time_point now);
  /// When the chunk that `slot` was running when its worker died at `now` started: after its
  /// previous piece ended and after the chunk was handed out. Forgets the slot's chunks.
  Clock::time_point place_death(int slot, std::uint64_t chunk_begin, std::uint32_t attempt, Clock::time_point now);

 private:
  struct Slot {
    Clock::time_point last_end{};
    struct Dispatched {
      std::uint64_t end;
      Clock::time_point at;
    };
    std::map<std::pair<std::uint64_t, std::uint32_t>, Dispatched> dispatched;  // by (begin, attempt)
  };
  Slot& slot(int s) { return slots_[s]; }

  std::map<int, Slot> slots_;
  std::set<std::pair<std::uint64_t, std::uint32_t>> failed_;  // (index, attempt) not yet committed
};

}  // namespace taskfarm::cli
