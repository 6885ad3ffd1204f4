// Calls: what runs Pool::submit's calls, seen from the Pool and its Futures. Fork mode runs them
// on the farm's engine (CallEngine, call_engine.hpp: one Dispatcher, Supervisor and Launcher,
// as map's); the threads backend on a thread each (ThreadCalls, thread_calls.hpp). Neither has
// a thread of its own watching the calls: they move on whenever the Pool drives them (submit,
// completed(), in_flight(), wait_any(), a Future's ready()/wait_for()/get()).
// Master side: used from the Pool's thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "taskfarm/failure.hpp"

namespace taskfarm::detail {

/// One submitted call, shared by its Future and what runs it.
struct Call {
  /// Computes the value and appends its serialised bytes (in a worker process, or on a thread).
  std::function<void(std::string&)> run;
  /// closed: what ran it was destroyed (the Pool closed) before it finished; it never will.
  enum class State { pending, done, failed, closed } state = State::pending;
  std::string bytes;                     // done: the value's bytes
  std::optional<FailureRecord> failure;  // failed: the final attempt's record
  std::uint64_t id = 0;
  bool finished() const noexcept { return state == State::done || state == State::failed; }
};

class Calls {
 public:
  virtual ~Calls() = default;
  /// Queues a call. Fork mode: throws Error (queuing nothing) while this process has other
  /// threads, unless fork_with_threads.
  virtual std::shared_ptr<Call> submit(std::function<void(std::string&)> run) = 0;
  /// Starts what may start, handles what finished; waits at most `timeout` for an event.
  virtual void poll(std::chrono::milliseconds timeout) = 0;
  virtual std::size_t completed() const noexcept = 0;
  virtual std::size_t in_flight() const noexcept = 0;

  /// Drives until `call` has finished or `timeout` passes; true if it has.
  bool wait(const Call& call, std::chrono::milliseconds timeout);
  /// Drives until completed() reaches `count`, nothing is in flight, or `timeout` passes.
  void wait_completed(std::size_t count, std::chrono::milliseconds timeout);
};

}  // namespace taskfarm::detail
