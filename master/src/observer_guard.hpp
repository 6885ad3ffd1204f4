// ObserverGuard: how the engine calls the user's FarmObserver. What an observer throws is the
// user's error, never a worker's: the guard catches it, keeps the first one and says so through
// `on_throw` (the Dispatcher ends the run there: docs/design.md §12), and the observer hears
// nothing more of that run; Supervisor::run rethrows it to the caller once the workers are
// stopped and reaped. Only on_result passes a throw on: the Dispatcher fails that index's
// delivery (an imap sink's throw), as documented. One thread: the Farm's.
#pragma once

#include <exception>
#include <functional>
#include <utility>

#include "taskfarm/farm.hpp"

namespace taskfarm {

class ObserverGuard : public FarmObserver {
 public:
  explicit ObserverGuard(std::function<void()> on_throw) : on_throw_(std::move(on_throw)) {}

  /// The observer of the next run (nullptr: none); forgets an earlier run's exception.
  void attach(FarmObserver* o) noexcept {
    o_ = o;
    error_ = nullptr;
  }
  /// The first exception the observer threw in this run (null if none); cleared.
  std::exception_ptr take_error() noexcept { return std::exchange(error_, nullptr); }

  void on_worker_started(int slot, pid_t pid) override {
    guard([&] { o_->on_worker_started(slot, pid); });
  }
  void on_chunk_started(int slot, pid_t pid, std::uint64_t b, std::uint64_t e, std::uint32_t attempt) override {
    guard([&] { o_->on_chunk_started(slot, pid, b, e, attempt); });
  }
  void on_tasks_done(const TasksDone& t) override {
    guard([&] { o_->on_tasks_done(t); });
  }
  void on_chunk_returned(int slot, pid_t pid, std::uint64_t b, std::uint64_t e, std::uint32_t attempt) override {
    guard([&] { o_->on_chunk_returned(slot, pid, b, e, attempt); });
  }
  void on_result(const IndexResult& r) override {
    if (live()) o_->on_result(r);  // a throw fails this index's delivery (the Dispatcher catches it)
  }
  void on_failure(const FailureRecord& f) override {
    guard([&] { o_->on_failure(f); });
  }
  void on_tick(const FarmTick& t) override {
    guard([&] { o_->on_tick(t); });
  }
  void on_stall(const WorkerLiveness& w) override {
    guard([&] { o_->on_stall(w); });
  }

 private:
  bool live() const noexcept { return o_ != nullptr && !error_; }
  template <class F>
  void guard(F&& call) {
    if (!live()) return;
    try {
      call();
    } catch (...) {
      error_ = std::current_exception();
      on_throw_();
    }
  }

  std::function<void()> on_throw_;
  FarmObserver* o_ = nullptr;
  std::exception_ptr error_;
};

}  // namespace taskfarm
