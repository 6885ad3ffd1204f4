#include "chunk_ledger.hpp"

#include <algorithm>

namespace taskfarm::cli {

bool ended_worker(const FailureRecord& f) noexcept {
  return f.cause != FailureCause::exception && f.cause != FailureCause::memory;
}

void ChunkLedger::worker_started(int s, Clock::time_point now) {
  Slot& sl = slot(s);
  sl.last_end = now;
  sl.dispatched.clear();
}

void ChunkLedger::chunk_dispatched(int s, std::uint64_t begin, std::uint64_t end, std::uint32_t attempt,
                                   Clock::time_point now) {
  slot(s).dispatched[{begin, attempt}] = Slot::Dispatched{end, now};
}

void ChunkLedger::task_failed(std::uint64_t index, std::uint32_t attempt) { failed_.insert({index, attempt}); }

std::vector<std::uint64_t> ChunkLedger::take_failed(std::uint64_t begin, std::uint64_t end, std::uint32_t attempt) {
  std::vector<std::uint64_t> out;
  for (auto it = failed_.lower_bound({begin, 0}); it != failed_.end() && it->first < end;) {
    if (it->second == attempt) {
      out.push_back(it->first);
      it = failed_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

std::pair<ChunkLedger::Clock::time_point, ChunkLedger::Clock::time_point> ChunkLedger::place_done(
    int s, std::uint64_t begin, std::uint64_t end, std::uint32_t attempt, std::chrono::nanoseconds elapsed,
    Clock::time_point now) {
  Slot& sl = slot(s);
  Clock::time_point start = std::max(now - elapsed, sl.last_end);
  // The chunk this piece belongs to: the one handed out at the greatest begin <= the piece's.
  auto d = sl.dispatched.upper_bound({begin, ~std::uint32_t{0}});
  while (d != sl.dispatched.begin()) {
    --d;
    if (d->first.second != attempt || d->second.end < end) continue;
    start = std::max(start, d->second.at);
    if (d->second.end == end) sl.dispatched.erase(d);  // its last piece
    break;
  }
  const Clock::time_point stop = start + elapsed;
  sl.last_end = stop;
  return {start, stop};
}

ChunkLedger::Clock::time_point ChunkLedger::place_death(int s, std::uint64_t chunk_begin, std::uint32_t attempt,
                                                        Clock::time_point now) {
  Slot& sl = slot(s);
  Clock::time_point start = sl.last_end;
  if (const auto d = sl.dispatched.find({chunk_begin, attempt}); d != sl.dispatched.end())
    start = std::max(start, d->second.at);
  sl.dispatched.clear();
  sl.last_end = now;
  return std::min(start, now);
}

}  // namespace taskfarm::cli
