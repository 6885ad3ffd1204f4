// Progress: --progress on stderr. On a terminal, one line redrawn in place (at most 10 times a
// second): a bar, done/total, rate, ETA and failures. Elsewhere, a plain line every 2 seconds.
// Counts a task done when its chunk commits or it finally fails. Redraws when the Farm reports
// something, and on its ticks (every second, events or not: the Farm runs no threads, and
// neither does the CLI), so it moves on time and shows the worker that has gone longest
// without progress ("slot 1 on 7 for 1:05, stopped"). Farm's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "run_plan.hpp"
#include "taskfarm/farm.hpp"

namespace taskfarm::cli {

class Progress : public FarmObserver {
 public:
  /// `total` tasks in this run; `fd` is where it draws (stderr).
  Progress(ProgressMode mode, std::uint64_t total, int fd = 2);

  void on_tasks_done(const TasksDone& t) override;
  void on_failure(const FailureRecord& f) override;
  void on_tick(const FarmTick& t) override;

  /// Erases the bar so that other output starts on a clean line (it reappears on the next update).
  void clear();
  /// Draws the final state and ends the line.
  void finish();

  /// The text of one update, without '\r' or '\n' (for tests).
  std::string line(std::chrono::steady_clock::time_point now) const;

 private:
  void update(bool force);
  void put(const std::string& s);

  ProgressMode mode_;
  std::uint64_t total_;
  int fd_;
  std::uint64_t done_ = 0, failed_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_{};
  bool drawn_ = false;
  std::optional<WorkerLiveness> slowest_;  // the busy worker longest without progress, if notable
};

}  // namespace taskfarm::cli
