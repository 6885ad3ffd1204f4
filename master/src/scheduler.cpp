#include "scheduler.hpp"

#include <algorithm>
#include <cmath>
#include <initializer_list>

namespace taskfarm {
namespace {
constexpr double kTargetChunkNs = 2e6;    // auto: a chunk should take about 2 ms
constexpr double kTargetQueueNs = 6e6;    // keep about 6 ms of work queued per worker
constexpr double kMinChunkNs = 20e3;      // guided tail floor: a chunk is worth its round trip
constexpr double kDecay = 0.7;            // weight of the past in the time-per-index estimate
constexpr std::uint64_t kProbeBudgetNs = 1'000'000;  // what a first chunk may take before it stops
constexpr std::size_t kMaxDepth = 512;
constexpr std::uint64_t kOrderedWindowMin = 4096;

std::uint64_t saturating_mul(std::initializer_list<std::uint64_t> factors) noexcept {
  std::uint64_t p = 1;
  for (std::uint64_t f : factors)
    if (__builtin_mul_overflow(p, f, &p)) return ~std::uint64_t{0};
  return p;
}
}  // namespace

Scheduler::Scheduler(SchedulerConfig c)
    : ranges_(std::move(c.ranges)), fixed_chunk_(c.chunk), workers_(std::max<std::size_t>(1, c.workers)),
      retries_(c.retries), ordered_(c.ordered) {
  ranges_.erase(std::remove_if(ranges_.begin(), ranges_.end(), [](auto r) { return r.second <= r.first; }), ranges_.end());
  for (auto [b, e] : ranges_) total_ += e - b;
  remaining_ = total_;
  // A fixed chunk larger than the run is the whole run: nothing downstream sees a size that
  // only overflow arithmetic could make sense of.
  if (fixed_chunk_ != 0 && !c.open) fixed_chunk_ = std::min(fixed_chunk_, std::max<std::uint64_t>(total_, 1));
  if (!ranges_.empty()) cursor_ = ranges_[0].first;
}

std::uint64_t Scheduler::chunk_size() const noexcept {
  if (fixed_chunk_ != 0) return fixed_chunk_;
  if (probing()) {
    // Nothing measured yet: each worker's share, with a budget (see next()). Trivial tasks then
    // finish in one chunk per worker; long ones stop after an index or two. The ordered window
    // bounds read-ahead, so there a probe is a share of the window's minimum.
    const std::uint64_t share = (total_ + workers_ - 1) / workers_;
    return std::max<std::uint64_t>(1, ordered_ ? std::min<std::uint64_t>(share, kOrderedWindowMin / workers_) : share);
  }
  const double want = kTargetChunkNs / ns_per_index_;
  // Guided tail: never more than a fair share of what is left, so the workers finish together,
  // but not below what pays for its messages (trivial tasks would end in single-index chunks).
  const double fair = static_cast<double>(unassigned()) / static_cast<double>(2 * workers_);
  const double floor = kMinChunkNs / ns_per_index_;
  const double size = std::min(want, std::max({1.0, fair, floor}));
  return static_cast<std::uint64_t>(std::clamp(size, 1.0, 1e12));
}

std::size_t Scheduler::depth() const noexcept {
  if (ns_per_index_ <= 0) return 2;
  const double chunk_ns = ns_per_index_ * static_cast<double>(chunk_size());
  const double d = std::ceil(kTargetQueueNs / std::max(chunk_ns, 1.0));
  return static_cast<std::size_t>(std::clamp(d, 2.0, static_cast<double>(kMaxDepth)));
}

void Scheduler::measured(std::uint64_t indices, std::uint64_t elapsed_ns) noexcept {
  if (indices == 0) return;
  // Decayed sums, so each index weighs the same: a first chunk of one cold index must not
  // outweigh the thousand-index chunk after it (per-chunk averaging ramped up over ~5 round trips).
  ns_sum_ = kDecay * ns_sum_ + static_cast<double>(elapsed_ns);
  index_sum_ = kDecay * index_sum_ + static_cast<double>(indices);
  ns_per_index_ = std::max(1.0, ns_sum_ / index_sum_);
}

std::optional<ChunkTask> Scheduler::next(std::uint64_t max_size, bool alone_ok) {
  if (stopped_ || max_size == 0) return std::nullopt;
  const std::uint64_t budget = probing() ? kProbeBudgetNs : 0;
  // Held: only the retry that starts at the frontier (if that index is waiting for one) may go;
  // everything below the frontier is delivered, so the frontier's own index is never fresh work.
  const bool holding = ordered_ && hold_ahead_;
  if (!retry_.empty() && (!holding || retry_.front().begin <= frontier_)) {
    // Long retries (the rest of a probe, of a crashed chunk) go out in today's chunk size.
    ChunkTask& front = retry_.front();
    if (front.alone && !alone_ok) return std::nullopt;
    ChunkTask t = front;
    t.end = t.begin + std::min({t.size(), chunk_size(), max_size});
    front.begin = t.end;
    if (front.begin == front.end) retry_.pop_front();
    retry_indices_ -= t.size();
    t.id = next_id_++;
    t.budget_ns = t.alone ? 0 : budget;  // a probe's rest would come back without its `alone`
    return t;
  }
  while (range_ < ranges_.size() && cursor_ >= ranges_[range_].second) {
    if (++range_ < ranges_.size()) cursor_ = ranges_[range_].first;
  }
  if (range_ >= ranges_.size() || holding) return std::nullopt;
  std::uint64_t size = std::min(chunk_size(), max_size);
  if (ordered_) {
    // Saturating: a huge fixed chunk must not wrap the window (or its end) to something small.
    const std::uint64_t window = std::max(kOrderedWindowMin, saturating_mul({4, workers_, size, depth()}));
    const std::uint64_t window_end = frontier_ + std::min(window, ~std::uint64_t{0} - frontier_);
    if (cursor_ >= window_end) return std::nullopt;
    size = std::min(size, window_end - cursor_);
  }
  // Clamped to the range first: cursor + size could wrap past 2^64 (a --chunk beyond the index
  // space, a range that does not start at 0) into an inverted chunk.
  const std::uint64_t end = cursor_ + std::min(size, ranges_[range_].second - cursor_);
  ChunkTask t{next_id_++, cursor_, end, 0, budget};
  remaining_ -= end - cursor_;
  cursor_ = end;
  return t;
}

void Scheduler::add(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& ranges) {
  const bool was_drained = range_ >= ranges_.size();
  const std::size_t first = ranges_.size();
  for (auto [b, e] : ranges) {
    if (e <= b) continue;
    ranges_.emplace_back(b, e);
    total_ += e - b;
    remaining_ += e - b;
  }
  // next() left range_ past the end (or on an exhausted range it skips): start at the new ones.
  if (was_drained && first < ranges_.size()) {
    range_ = first;
    cursor_ = ranges_[first].first;
  }
}

void Scheduler::requeue(std::uint64_t begin, std::uint64_t end, std::uint32_t attempt, bool alone) {
  if (end <= begin) return;
  // Keep retries in index order so ordered delivery is not held up behind later work.
  ChunkTask t{0, begin, end, attempt, 0, alone};
  auto pos = std::find_if(retry_.begin(), retry_.end(), [&](const ChunkTask& r) { return r.begin > begin; });
  retry_.insert(pos, t);
  retry_indices_ += t.size();
}

bool Scheduler::may_retry(std::uint32_t attempt) const noexcept {
  return static_cast<int>(attempt) < retries_;
}

}  // namespace taskfarm
