// The Dispatcher's side of a run whose ranges arrive while it runs (JobSpec::feed, a node of an
// MPI run): ranges join the Scheduler's fresh work, the run asks for more at low water, and it
// may end only once the feed is closed (docs/design.md §17).
#include <string>

#include "dispatcher.hpp"
#include "taskfarm/error.hpp"

namespace taskfarm {

void Dispatcher::on_ranges_added(const std::vector<IndexRange>& ranges) {
  // The run's ranges stay sorted and disjoint: end_run names the unfinished ones from them.
  std::uint64_t last = ranges_.empty() ? 0 : ranges_.back().second;
  const std::uint64_t known_end = last;
  std::vector<IndexRange> fresh;
  fresh.reserve(ranges.size());
  for (auto [b, e] : ranges) {
    if (e <= b) continue;
    if (b < last || e > extent_size_)
      throw Error("range feed: [" + std::to_string(b) + ", " + std::to_string(e) + ") is not after index " +
                  std::to_string(last) + " inside an index space of " + std::to_string(extent_size_));
    fresh.emplace_back(b, e);
    last = e;
  }
  asked_ = false;  // an answer came: ask again at the next low water
  if (fresh.empty()) return;
  // An ordered run whose frontier reached the end of what it was fed goes on from the new ranges
  // (a gap before them holds nothing that will ever be delivered).
  if (ranges_.empty() || frontier_ >= known_end) {
    frontier_ = fresh.front().first;
    sched_->set_frontier(frontier_);
  }
  ranges_.insert(ranges_.end(), fresh.begin(), fresh.end());
  sched_->add(fresh);
  report_.tasks = sched_->total();
}

void Dispatcher::ask_if_low() {
  if (!feed_open_ || asked_ || sched_->stopped() || halting_now_ || sched_->unassigned() > low_water_) return;
  asked_ = true;
  queue(Command{Command::Kind::more, -1, false, {}, false, {}});
}

}  // namespace taskfarm
