#include "index_ranges.hpp"

#include <algorithm>
#include <iterator>

namespace taskfarm {

void IndexRanges::insert(std::uint64_t begin, std::uint64_t end) {
  if (end <= begin) return;
  auto it = ranges_.upper_bound(begin);  // the first range starting after `begin`
  if (it != ranges_.begin() && std::prev(it)->second >= begin) {
    // Touches the range before: extend it in place (the usual case, a chunk after its
    // neighbour: no allocation), absorbing the ranges it now reaches.
    auto prev = std::prev(it);
    if (prev->second >= end) return;
    prev->second = end;
    for (; it != ranges_.end() && it->first <= prev->second; it = ranges_.erase(it)) prev->second = std::max(prev->second, it->second);
    return;
  }
  for (; it != ranges_.end() && it->first <= end; it = ranges_.erase(it)) end = std::max(end, it->second);
  ranges_.emplace_hint(it, begin, end);
}

void IndexRanges::erase(std::uint64_t index) {
  auto it = ranges_.upper_bound(index);
  if (it == ranges_.begin() || std::prev(it)->second <= index) return;  // not in the set
  auto range = std::prev(it);
  const std::uint64_t end = range->second;
  if (range->first == index) ranges_.erase(range);
  else range->second = index;
  if (index + 1 < end) ranges_.emplace_hint(it, index + 1, end);
}

std::vector<IndexRange> IndexRanges::missing(const std::vector<IndexRange>& within, const std::vector<std::uint64_t>& except) const {
  std::vector<IndexRange> out;
  auto add = [&out, &except](std::uint64_t b, std::uint64_t e) {  // [b, e) minus `except`
    auto push = [&out](std::uint64_t lo, std::uint64_t hi) {
      if (lo >= hi) return;
      if (!out.empty() && out.back().second == lo) out.back().second = hi;
      else out.emplace_back(lo, hi);
    };
    for (auto x = std::lower_bound(except.begin(), except.end(), b); b < e; ++x) {
      if (x == except.end() || *x >= e) return push(b, e);
      push(b, *x);
      b = *x + 1;  // *x < e: no overflow
    }
  };
  for (auto [b, e] : within) {
    auto it = ranges_.upper_bound(b);
    if (it != ranges_.begin() && std::prev(it)->second > b) b = std::prev(it)->second;  // b is delivered
    for (; b < e; ++it) {
      const std::uint64_t gap_end = it != ranges_.end() ? std::min(it->first, e) : e;
      add(b, gap_end);
      if (it == ranges_.end()) break;
      b = std::max(b, it->second);
    }
  }
  return out;
}

}  // namespace taskfarm
