// CallEngine: Pool::submit in fork mode, on the farm's engine (docs/design.md §8, §13). The
// calls are the indices of one run of a Supervisor with a ForkLauncher, whose ranges arrive
// while it runs (a RangeFeed, design §17): call k is index k, run by a worker forked after
// call k was submitted — it holds one task (max_tasks_per_worker = 1), so it sees the caller's
// memory as it was at least at the submit, as the closure needs. Its value comes back as map's
// blob results do (the arena, a carried memfd when large); its failures, timeouts, memory
// limit, retries and stderr are the Dispatcher's and the Supervisor's, exactly as a map's task.
// The run is stepped by whoever drives the Pool (no thread of its own, so forking stays safe),
// and ended whenever no call is left in flight, so no worker outlives the calls.
// Master side: the Pool's thread.
#pragma once

#include <unordered_map>
#include <vector>

#include "calls.hpp"
#include "supervisor.hpp"
#include "taskfarm/range_feed.hpp"

namespace taskfarm::detail {

class CallEngine final : public Calls {
 public:
  /// `options` as the Pool's; `mark` is the Pool's task mark (task_mark.hpp), set in its workers.
  CallEngine(FarmOptions options, std::size_t workers, const void* mark);
  CallEngine(const CallEngine&) = delete;
  CallEngine& operator=(const CallEngine&) = delete;
  /// Kills and reaps every call's worker still running; unfinished calls become `closed`.
  ~CallEngine() override;

  std::shared_ptr<Call> submit(std::function<void(std::string&)> run) override;
  void poll(std::chrono::milliseconds timeout) override;
  std::size_t completed() const noexcept override { return completed_; }
  std::size_t in_flight() const noexcept override { return calls_.size(); }

 private:
  using Table = std::unordered_map<std::uint64_t, std::shared_ptr<Call>>;
  // The run's view of the calls submitted since its last read (an eventfd wakes its loop).
  class Feed final : public RangeFeed {
   public:
    Feed();
    int fd() const override { return event_.get(); }
    Batch read() override;
    void want_more() override {}  // every call is handed over as it is submitted
    std::uint64_t low_water() const override { return 0; }
    void add(std::uint64_t id);
    void close();  // the run takes nothing more: it ends once what it has is done
    void reopen() noexcept { closed_ = false; }
    bool empty() const noexcept { return fresh_.empty(); }

   private:
    void signal();
    UniqueFd event_;
    std::vector<IndexRange> fresh_;
    bool closed_ = false;
  };
  // Hears the run's results and final failures and settles the calls they belong to.
  class Settler final : public FarmObserver {
   public:
    explicit Settler(CallEngine& e) : e_(e) {}
    void on_result(const IndexResult& r) override;
    void on_failure(const FailureRecord& f) override;

   private:
    CallEngine& e_;
  };

  void settle(std::uint64_t id, std::string* bytes, const FailureRecord* failure);
  void step(int max_wait_ms);  // one step of the run, ending it when it is over
  void end_run();
  void end_if_idle();

  bool fork_with_threads_;
  Table calls_;  // unfinished calls by id (a worker's copy holds its own call's closure)
  ForkKernelFactory factory_;
  Supervisor supervisor_;
  Feed feed_;
  Settler settler_{*this};
  JobSpec job_;
  bool open_ = false;  // a run is going on
  std::size_t completed_ = 0;
  std::uint64_t next_id_ = 0;
};

}  // namespace taskfarm::detail
