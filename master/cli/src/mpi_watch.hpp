// Who holds a `taskfarm run --mpi` up when a rank falls silent (docs/design.md §17, "A silent
// rank"; outside pass F44). Each node master sends a pulse — how far its tasks are done — often
// enough that a live node is never silent for --stall-warning; rank 0 notes every rank's last
// message, and a rank that holds tasks and has sent nothing for that long is said once on
// stderr, named in --progress, and is a "stall" event. NodePulse: node master, main thread;
// RankWatch: rank 0's relay, main thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "taskfarm/farm.hpp"
#include "taskfarm/range_set.hpp"

namespace taskfarm::cli::mpi {

/// A node's tasks fed and not yet done (succeeded, or failed for good).
class DoneFrontier {
 public:
  /// Ranges come in ascending order, each after the last.
  void fed(std::uint64_t begin, std::uint64_t end);
  void done(std::uint64_t begin, std::uint64_t end);
  /// Every task fed below it is done: the lowest task fed and not done, else the end of the
  /// last range fed (0 before any). Never goes down.
  std::uint64_t low() const noexcept {
    return pending_.empty() ? fed_end_ : pending_.begin()->first;
  }

 private:
  std::map<std::uint64_t, std::uint64_t> pending_;  // begin → end, disjoint
  std::uint64_t fed_end_ = 0;
};

/// The node master's pulse up to rank 0: a `pulse` Wire (v[0]: DoneFrontier::low()) at the
/// first tick `every` after the last. The node ticks at least every `every` (mpi_node.cpp), so
/// a live node is never silent for twice that.
class NodePulse final : public FarmObserver {
 public:
  NodePulse(int fd, std::chrono::milliseconds every) : fd_(fd), every_(every) {}
  /// A range its feed got from rank 0.
  void fed(std::uint64_t begin, std::uint64_t end) { frontier_.fed(begin, end); }
  void on_tasks_done(const TasksDone& t) override;
  void on_failure(const FailureRecord& f) override;
  void on_tick(const FarmTick&) override;

 private:
  int fd_;
  std::chrono::milliseconds every_;
  std::optional<std::chrono::steady_clock::time_point> last_;  // the last pulse sent
  DoneFrontier frontier_;
};

/// A rank that held tasks and sent nothing for --stall-warning.
struct RankStall {
  int rank = 0;
  std::string host;  ///< its host name (without ":RANK")
  std::chrono::nanoseconds silent{0};
  std::vector<IndexRange> tasks;  ///< handed to it and not known done, ascending
  /// "rank 2 (node7) has sent nothing for 0.5 s while holding tasks 120-179: is it stopped ..."
  std::string describe() const;
  /// Its --events line:
  /// {"event":"stall","rank":2,"host":"node7","seconds":0.5,"silent":true,"tasks":"120-179"}
  std::string event() const;
};

/// Rank 0's watch over every rank's messages.
class RankWatch {
 public:
  using Clock = std::chrono::steady_clock;
  /// `hosts[r]`: rank r's "HOST:RANK"; `after`: --stall-warning (0: it never says anything).
  /// Every rank counts as heard from at `now`.
  RankWatch(const std::vector<std::string>& hosts, std::chrono::milliseconds after,
            Clock::time_point now);
  /// A message from `rank` (any).
  void heard(int rank, Clock::time_point now);
  /// Rank 0 handed [begin, end) to `rank`.
  void granted(int rank, std::uint64_t begin, std::uint64_t end);
  /// Its pulse: every task it was fed below `low` is done.
  void done_below(int rank, std::uint64_t low);
  /// Its node reported: it holds nothing more.
  void reported(int rank);
  /// The ranks that now hold tasks and have been silent for `after` or more, each once per
  /// stall: said again only after it was heard from and fell silent again.
  std::vector<RankStall> stalls(Clock::time_point now);
  /// For --progress: "rank 2 (node7) silent for 0:05" for the rank that holds tasks and has been
  /// silent longest, if 2 s or more (as Progress shows a worker) and 3/4 of `after` — else empty.
  std::string holdup(Clock::time_point now) const;

 private:
  struct Rank {
    std::string host;
    Clock::time_point heard;
    std::vector<IndexRange> held;  // ascending, clipped at its pulses' low
    bool said = false;             // this silence was said
  };
  std::vector<Rank> ranks_;
  std::chrono::milliseconds after_;
};

}  // namespace taskfarm::cli::mpi
