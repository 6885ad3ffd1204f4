// FanoutObserver: passes each report of a run on to several observers, in the order added (the
// `taskfarm` binary adds the joblog early, so its rows are written before most else reacts).
// It does not own them. Used on the run's thread.
#pragma once

#include <vector>

#include "taskfarm/farm.hpp"

namespace taskfarm {

class FanoutObserver : public FarmObserver {
 public:
  /// Adds `o` (nullptr: nothing), which must outlive the runs it is attached to.
  void add(FarmObserver* o) {
    if (o != nullptr) observers_.push_back(o);
  }

  void on_worker_started(int slot, pid_t pid) override {
    for (auto* o : observers_) o->on_worker_started(slot, pid);
  }
  void on_chunk_started(int slot, pid_t pid, std::uint64_t b, std::uint64_t e, std::uint32_t attempt) override {
    for (auto* o : observers_) o->on_chunk_started(slot, pid, b, e, attempt);
  }
  void on_tasks_done(const TasksDone& t) override {
    for (auto* o : observers_) o->on_tasks_done(t);
  }
  void on_chunk_returned(int slot, pid_t pid, std::uint64_t b, std::uint64_t e, std::uint32_t attempt) override {
    for (auto* o : observers_) o->on_chunk_returned(slot, pid, b, e, attempt);
  }
  void on_result(const IndexResult& r) override {
    for (auto* o : observers_) o->on_result(r);
  }
  void on_failure(const FailureRecord& f) override {
    for (auto* o : observers_) o->on_failure(f);
  }
  void on_tick(const FarmTick& t) override {
    for (auto* o : observers_) o->on_tick(t);
  }
  void on_stall(const WorkerLiveness& w) override {
    for (auto* o : observers_) o->on_stall(w);
  }

 private:
  std::vector<FarmObserver*> observers_;
};

}  // namespace taskfarm
