// Scheduler: which indices go out next — chunking (fixed, or auto from measured task time),
// retries before fresh work, the ordered-delivery window, halting. Pure logic: no processes,
// no clocks of its own (times are passed in), so it is tested without any OS.
// Used by Farm on its one thread.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

namespace taskfarm {

struct ChunkTask {
  std::uint64_t id = 0, begin = 0, end = 0;
  std::uint32_t attempt = 0;
  std::uint64_t budget_ns = 0;  // a probe: the worker hands back what it has not run by then
  /// Suspects of a death after their tasks returned (Dispatcher::on_gone): this chunk goes to a
  /// worker that holds nothing else, and it gets nothing more until it has reported it, so that
  /// the worker delivers it on its own (it flushes when its queue is empty).
  bool alone = false;
  std::uint64_t size() const noexcept { return end - begin; }
};

struct SchedulerConfig {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;  // [begin, end) to run, in order
  std::uint64_t chunk = 0;  // 0 = auto
  std::size_t workers = 1;
  int retries = 2;
  bool ordered = false;     // bound fresh work to a window above the delivery frontier
  bool open = false;        // more ranges may come (add): the run's size is not known
};

class Scheduler {
 public:
  explicit Scheduler(SchedulerConfig config);

  /// The next chunk to hand out, at most `max_size` indices, or nullopt if nothing may go out now.
  /// A chunk to run alone goes out first when one waits, and only to a caller who may take one
  /// (`alone_ok`: its worker holds nothing); nothing goes to the others meanwhile.
  std::optional<ChunkTask> next(std::uint64_t max_size = ~std::uint64_t{0}, bool alone_ok = true);
  /// How many chunks one worker should hold (queued + running) to never run dry.
  std::size_t depth() const noexcept;
  /// Feeds the auto-chunking estimate: `indices` took `elapsed_ns` in a worker.
  void measured(std::uint64_t indices, std::uint64_t elapsed_ns) noexcept;
  /// Appends fresh ranges to run after the ones it has (a RangeFeed's; ascending, disjoint).
  void add(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges);
  /// Puts [begin, end) back to be handed out again at `attempt` (before fresh work), in chunks
  /// to run alone if `alone` (each of today's chunk size at most, with no budget).
  void requeue(std::uint64_t begin, std::uint64_t end, std::uint32_t attempt, bool alone = false);
  /// Whether an index that failed at `attempt` gets another one (attempt + 1 <= retries).
  bool may_retry(std::uint32_t attempt) const noexcept;
  /// Ordered mode: everything below `index` has been delivered.
  void set_frontier(std::uint64_t index) noexcept { frontier_ = index; }
  /// Ordered mode: while `hold`, nothing goes out but the work that starts at the frontier (the
  /// master holds as many results waiting for their turn as it will).
  void hold_ahead(bool hold) noexcept { hold_ahead_ = hold; }
  /// Stops handing out anything (halt policy, interruption).
  void stop() noexcept { stopped_ = true; }

  bool stopped() const noexcept { return stopped_; }
  /// Nothing left to hand out (in-flight chunks are the farm's business). Exact from the moment
  /// the last index went out: a worker started on a stale "not drained" gets nothing, and in
  /// fork mode then gets work submitted after its fork (Pool::submit, design §8).
  bool drained() const noexcept { return retry_.empty() && remaining_ == 0; }
  std::uint64_t total() const noexcept { return total_; }
  /// Indices not handed out: fresh ones and those waiting for a retry.
  std::uint64_t unassigned() const noexcept { return remaining_ + retry_indices_; }
  /// The chunk size auto mode would pick now (fixed size otherwise).
  std::uint64_t chunk_size() const noexcept;
  /// Auto mode before any measurement: chunks are probes of a fair share with a time budget.
  bool probing() const noexcept { return fixed_chunk_ == 0 && ns_per_index_ <= 0; }

 private:
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges_;
  std::size_t range_ = 0;     // current range
  std::uint64_t cursor_ = 0;  // next fresh index within ranges_[range_]
  std::uint64_t fixed_chunk_;
  std::size_t workers_;
  int retries_;
  bool ordered_;
  std::deque<ChunkTask> retry_;
  std::uint64_t retry_indices_ = 0;  // in retry_
  std::uint64_t next_id_ = 0;
  std::uint64_t total_ = 0;
  std::uint64_t remaining_ = 0;  // fresh indices not yet handed out
  double ns_per_index_ = 0;      // ns_sum_ / index_sum_; 0 = unknown
  double ns_sum_ = 0, index_sum_ = 0;  // decayed per commit
  std::uint64_t frontier_ = 0;
  bool hold_ahead_ = false;
  bool stopped_ = false;
};

}  // namespace taskfarm
