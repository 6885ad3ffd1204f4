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

void ChunkLedger::chunk_dispatched(int s, std::uint64_t begin, std::uint32_t attempt, Clock::time_point now) {
  slot(s).dispatched[{begin, attempt}] = now;
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
    int s, std::uint64_t chunk_begin, std::uint32_t attempt, bool chunk_complete, std::chrono::nanoseconds elapsed,
    Clock::time_point now) {
  Slot& sl = slot(s);
  const auto d = sl.dispatched.find({chunk_begin, attempt});
  Clock::time_point start = std::max(now - elapsed, sl.last_end);
  if (d != sl.dispatched.end()) {
    start = std::max(start, d->second);
    if (chunk_complete) sl.dispatched.erase(d);
  }
  const Clock::time_point end = start + elapsed;
  sl.last_end = end;
  return {start, end};
}

ChunkLedger::Clock::time_point ChunkLedger::place_death(int s, std::uint64_t chunk_begin, std::uint32_t attempt,
                                                        Clock::time_point now) {
  Slot& sl = slot(s);
  Clock::time_point start = sl.last_end;
  if (const auto d = sl.dispatched.find({chunk_begin, attempt}); d != sl.dispatched.end())
    start = std::max(start, d->second);
  sl.dispatched.clear();
  sl.last_end = now;
  return std::min(start, now);
}

}  // namespace taskfarm::cli
