// AsyncRunner: Pool::submit's engine. Each submitted call runs in a process of its own,
// forked when a slot is free (at most `workers` at once) from whichever Pool call drives it —
// submit(), completed(), or a Future's ready()/wait_for()/get(); there is no background
// thread, so forking stays safe. The result comes back through a pipe; a crash is seen on the
// task's pidfd and retried like any other task. Master side, one thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "taskfarm/failure.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm::detail {

struct AsyncTask {
  std::function<void(std::string&)> run;  // in the child: computes and serialises the result
  // closed: its AsyncRunner was destroyed (the Pool closed) before it finished; it never will.
  enum class State { pending, running, done, failed, closed } state = State::pending;
  std::string bytes;                      // the result (done), or what the pipe held so far
  std::optional<FailureRecord> failure;   // failed: the final attempt's record
  std::uint64_t id = 0;
  std::uint32_t attempt = 0;
  pid_t pid = 0;
  UniqueFd pidfd, pipe;
  std::chrono::steady_clock::time_point started{};
  // Threads backend: the thread running it, and what it left.
  std::thread thread;
  bool thread_finished = false;  // guarded by AsyncRunner::mu_
  std::string thread_out;        // guarded by AsyncRunner::mu_
};

class AsyncRunner {
 public:
  /// `threads`: run each call on a thread instead of a forked process (no isolation).
  /// `fork_with_threads`: fork even while this process has other threads (FarmOptions).
  AsyncRunner(std::size_t workers, int retries, std::chrono::milliseconds timeout, bool threads,
              bool fork_with_threads = false)
      : workers_(workers), retries_(retries), timeout_(timeout), threads_(threads), fork_with_threads_(fork_with_threads) {}
  AsyncRunner(const AsyncRunner&) = delete;
  AsyncRunner& operator=(const AsyncRunner&) = delete;
  ~AsyncRunner();  ///< kills and reaps every task still running; unfinished ones become `closed`

  /// Queues a call. Fork mode: throws Error (queuing nothing) while this process has other
  /// threads, unless fork_with_threads.
  std::shared_ptr<AsyncTask> submit(std::function<void(std::string&)> run);
  /// Starts what may start, handles what finished; waits at most `timeout` for an event.
  void poll(std::chrono::milliseconds timeout);
  /// Drives until `task` is done or failed, or `timeout` passes; true if it finished.
  bool wait(const AsyncTask& task, std::chrono::milliseconds timeout);
  /// Drives until completed() reaches `count`, nothing is in flight, or `timeout` passes.
  void wait_completed(std::size_t count, std::chrono::milliseconds timeout);

  std::size_t completed() const noexcept { return completed_; }
  std::size_t in_flight() const noexcept { return pending_.size() + running_.size(); }

 private:
  void start(const std::shared_ptr<AsyncTask>& t);
  void start_pending();  // starts queued calls into free slots
  void finish(const std::shared_ptr<AsyncTask>& t);
  void read_pipe(AsyncTask& t);
  void start_thread(const std::shared_ptr<AsyncTask>& t);
  void poll_threads(std::chrono::milliseconds timeout);
  void settle(const std::shared_ptr<AsyncTask>& t, std::string out, bool exited_ok, FailureRecord f);

  std::size_t workers_;
  int retries_;
  std::chrono::milliseconds timeout_;
  bool threads_;
  bool fork_with_threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<AsyncTask>> pending_;
  std::vector<std::shared_ptr<AsyncTask>> running_;
  std::size_t completed_ = 0;
  std::uint64_t next_id_ = 0;
};

}  // namespace taskfarm::detail
