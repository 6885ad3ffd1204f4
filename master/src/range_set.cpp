#include "taskfarm/range_set.hpp"

#include <algorithm>

#include "taskfarm/error.hpp"

namespace taskfarm {

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

std::vector<IndexRange> RangeSet::ranges() const { return {ranges_.begin(), ranges_.end()}; }

std::vector<IndexRange> RangeSet::complement(std::uint64_t n) const {
  std::vector<IndexRange> gaps;
  std::uint64_t next = 0;
  for (const auto& [b, e] : ranges_) {
    if (b >= n) break;
    if (b > next) gaps.emplace_back(next, b);
    next = std::max(next, e);
  }
  if (next < n) gaps.emplace_back(next, n);
  return gaps;
}

std::optional<std::uint64_t> index_space_size(const std::vector<std::uint64_t>& extent) {
  std::uint64_t n = 1;
  for (const std::uint64_t e : extent)
    if (__builtin_mul_overflow(n, e, &n)) return std::nullopt;
  return n;
}

void check_ranges(const std::vector<IndexRange>& ranges, std::uint64_t n, const std::string& what) {
  std::uint64_t end = 0;
  for (const auto& [b, e] : ranges) {
    const std::string range = "[" + std::to_string(b) + ", " + std::to_string(e) + ")";
    if (b >= e) throw Error(what + ": range " + range + " is empty");
    if (b < end) throw Error(what + ": range " + range + " overlaps or precedes the range before it");
    if (e > n) throw Error(what + ": range " + range + " reaches past the index space of " + std::to_string(n) + " tasks");
    end = e;
  }
}

}  // namespace taskfarm
