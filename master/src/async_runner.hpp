// AsyncRunner: Pool::submit's engine. In fork mode each submitted call runs in a process of its
// own, started through spawn.cpp like every process the master starts (own process group, bound
// to the master's life, memory limit checked, thread-count environment, stderr on a pipe, other
// calls' descriptors closed), at most `workers` at once. It has no thread of its own, so forking
// stays safe: it makes progress whenever the Pool drives it (submit(), completed(), in_flight(),
// wait_any(), a Future's ready()/wait_for()/get()). A result comes back through a pipe; an end
// is seen on the call's pidfd; a call past the task timeout gets SIGTERM to its process group,
// then SIGKILL after the grace; failures are classified like map's and retried like them.
// The threads backend runs each call on a std::thread of its own instead (no isolation, no
// timeout: a thread cannot be killed), joined when the call has finished, or by the destructor.
// Master side: used from the Pool's thread only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "spawn.hpp"
#include "taskfarm/failure.hpp"
#include "taskfarm/unique_fd.hpp"
#include "worker_process.hpp"

namespace taskfarm::detail {

struct AsyncTask {
  std::function<void(std::string&)> run;  // computes and serialises the result (in the child, or on a thread)
  // closed: its AsyncRunner was destroyed (the Pool closed) before it finished; it never will.
  enum class State { pending, running, done, failed, closed } state = State::pending;
  std::string bytes;                      // the result (done), or what the pipe held so far
  std::optional<FailureRecord> failure;   // failed: the final attempt's record
  std::uint64_t id = 0;
  std::uint32_t attempt = 0;
  // Fork mode, while it runs: its process and the pipe its result comes through.
  std::optional<ChildProcess> proc;
  UniqueFd pipe;
  std::chrono::steady_clock::time_point started{};
  bool timed_out = false;                          // SIGTERM sent at the task timeout
  std::chrono::steady_clock::time_point kill_at{};  // then SIGKILL at this time ({} once sent)
  // Threads backend: the thread running it, and what it left.
  std::thread thread;
  bool thread_finished = false;  // guarded by AsyncRunner::mu_
  std::string thread_out;        // guarded by AsyncRunner::mu_
};

/// How an AsyncRunner runs its calls (from PoolOptions).
struct AsyncOptions {
  std::size_t workers = 1;             ///< calls running at once
  int retries = 0;                     ///< further attempts after a failure
  std::chrono::milliseconds timeout{0};      ///< per attempt; 0 = none (fork mode only)
  std::chrono::milliseconds kill_grace{200};  ///< SIGTERM → SIGKILL
  bool threads = false;                ///< a thread per call instead of a process
  bool fork_with_threads = false;      ///< fork even while this process has other threads
  bool forward_stderr = true;          ///< copy the calls' stderr lines to ours (the tail is kept anyway)
  SpawnLimits limits;                  ///< memory limit and thread environment of each process
};

class AsyncRunner {
 public:
  explicit AsyncRunner(AsyncOptions options) : opt_(std::move(options)) {}
  AsyncRunner(const AsyncRunner&) = delete;
  AsyncRunner& operator=(const AsyncRunner&) = delete;
  /// Kills and reaps every call's process still running (waiting ~5 s at most for each);
  /// unfinished calls become `closed`. On the threads backend it waits for the running calls'
  /// threads: a thread cannot be killed, so that wait is as long as the user's own calls.
  ~AsyncRunner();

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
  void poll_processes(std::chrono::milliseconds timeout);
  void check_deadline(AsyncTask& t, std::chrono::steady_clock::time_point now);
  void finish(const std::shared_ptr<AsyncTask>& t);
  void start_thread(const std::shared_ptr<AsyncTask>& t);
  void poll_threads(std::chrono::milliseconds timeout);
  /// Records the outcome of one attempt: a value, or a failure that is retried or final.
  void settle(const std::shared_ptr<AsyncTask>& t, std::string out, bool exited_ok, FailureRecord f);

  AsyncOptions opt_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<AsyncTask>> pending_;
  std::vector<std::shared_ptr<AsyncTask>> running_;
  std::size_t completed_ = 0;
  std::uint64_t next_id_ = 0;
};

}  // namespace taskfarm::detail
