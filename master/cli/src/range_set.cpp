#include "range_set.hpp"

#include <algorithm>

namespace taskfarm::cli {

void RangeSet::insert(std::uint64_t begin, std::uint64_t end) {
  if (begin >= end) return;
  // The first range that could touch [begin, end) is the last one starting at or before it.
  auto it = ranges_.upper_bound(begin);
  if (it != ranges_.begin() && std::prev(it)->second >= begin) --it;
  // Swallow every range that overlaps or touches [begin, end).
  while (it != ranges_.end() && it->first <= end) {
    begin = std::min(begin, it->first);
    end = std::max(end, it->second);
    count_ -= it->second - it->first;
    it = ranges_.erase(it);
  }
  ranges_.emplace_hint(it, begin, end);
  count_ += end - begin;
}

bool RangeSet::contains(std::uint64_t index) const {
  auto it = ranges_.upper_bound(index);
  return it != ranges_.begin() && std::prev(it)->second > index;
}

IndexRanges RangeSet::ranges() const { return IndexRanges(ranges_.begin(), ranges_.end()); }

IndexRanges RangeSet::complement(std::uint64_t n) const {
  IndexRanges gaps;
  std::uint64_t next = 0;
  for (const auto& [b, e] : ranges_) {
    if (b >= n) break;
    if (b > next) gaps.emplace_back(next, b);
    next = std::max(next, e);
  }
  if (next < n) gaps.emplace_back(next, n);
  return gaps;
}

}  // namespace taskfarm::cli
