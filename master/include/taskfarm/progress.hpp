// Progress: an observer that draws a run's progress on a terminal or a log. ProgressMode::bar,
// one line redrawn in place (at most 10 times a second): a bar, done/total, rate, ETA and
// failures; ProgressMode::lines, a plain line every 2 seconds. Counts a task done when its chunk
// commits or it finally fails. Redraws when the Farm reports something, and on its ticks
// (FarmOptions::tick_interval, events or not: the Farm runs no threads, and neither does this),
// so it moves on time and shows the worker that has gone longest without progress ("slot 1 on
// 7 for 1:05, stopped"). The `taskfarm` binary's --progress. Used on the run's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "taskfarm/farm.hpp"

namespace taskfarm {

/// How Progress draws: not at all; a bar redrawn in place (a terminal); a line every 2 s (a log).
enum class ProgressMode : std::uint8_t { off, bar, lines };

class Progress : public FarmObserver {
 public:
  /// `total` tasks in this run (more done than that is said, "N done, more than the T tasks
  /// Progress was told", never drawn as N/T); `fd` is where it draws (stderr; write(2), best effort).
  Progress(ProgressMode mode, std::uint64_t total, int fd = 2);

  /// The run's tasks are now `total`, and more may come unless `all` (a run fed while it runs,
  /// such as a streamed input): until then no percentage or ETA is drawn, "N/T+ so far".
  void set_total(std::uint64_t total, bool all);

  void on_tasks_done(const TasksDone& t) override;
  void on_failure(const FailureRecord& f) override;
  void on_tick(const FarmTick& t) override;

  /// Who holds the run up as the caller sees it, shown where the slowest worker is and before
  /// it ("rank 2 (node7) silent for 0:05": `taskfarm run --mpi`'s rank 0, whose ticks have no
  /// workers); empty: none.
  void set_holdup(std::string text) { holdup_ = std::move(text); }

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
  bool open_ = false;  ///< more tasks may come (set_total)
  int fd_;
  std::uint64_t done_ = 0, failed_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_{};
  bool drawn_ = false;
  std::optional<WorkerLiveness> slowest_;  // the busy worker longest without progress, if notable
  std::string holdup_;
};

}  // namespace taskfarm
