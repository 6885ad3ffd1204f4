// ThreadCalls: Pool::submit on the threads backend — each call on a std::thread of its own, at
// most `workers` at once (no isolation, no timeout: a thread cannot be killed or limited, which
// is why the backend refuses task_timeout and memory_limit). A call that throws is retried up
// to `retries`, then fails with the FailureRecord map's tasks get. A thread is joined when its
// call has finished, or by the destructor (which waits for the running calls: as long as the
// user's own calls take). Master side: the Pool's thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "calls.hpp"

namespace taskfarm::detail {

class ThreadCalls final : public Calls {
 public:
  ThreadCalls(std::size_t workers, int retries) : workers_(workers), retries_(retries) {}
  ThreadCalls(const ThreadCalls&) = delete;
  ThreadCalls& operator=(const ThreadCalls&) = delete;
  /// Waits for the running calls' threads; unfinished calls become `closed`.
  ~ThreadCalls() override;

  std::shared_ptr<Call> submit(std::function<void(std::string&)> run) override;
  void poll(std::chrono::milliseconds timeout) override;
  std::size_t completed() const noexcept override { return completed_; }
  std::size_t in_flight() const noexcept override { return pending_.size() + running_.size(); }

 private:
  struct Running {
    std::shared_ptr<Call> call;
    std::uint32_t attempt = 0;
    std::thread thread;
    bool finished = false;          // guarded by mu_
    std::string out;                // guarded by mu_: the value's bytes
    std::optional<FailureRecord> failure;  // guarded by mu_: what it threw
  };
  void start_pending();

  std::size_t workers_;
  int retries_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::shared_ptr<Call>, std::uint32_t>> pending_;  // with its attempt
  std::vector<std::unique_ptr<Running>> running_;
  std::size_t completed_ = 0;
  std::uint64_t next_id_ = 0;
};

}  // namespace taskfarm::detail
