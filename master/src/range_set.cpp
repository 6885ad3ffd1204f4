#include "taskfarm/range_set.hpp"

#include <algorithm>
#include <iterator>

#include "taskfarm/error.hpp"

namespace taskfarm {

void RangeSet::insert(std::uint64_t begin, std::uint64_t end) {
  if (begin >= end) return;
  auto it = ranges_.upper_bound(begin);  // the first range starting after `begin`
  if (it != ranges_.begin() && std::prev(it)->second >= begin) {
    // Touches the range before: extend it in place (the usual case, a chunk after its
    // neighbour: no allocation), absorbing the ranges it now reaches.
    auto prev = std::prev(it);
    if (prev->second >= end) return;
    count_ += end - prev->second;
    prev->second = end;
    for (; it != ranges_.end() && it->first <= prev->second; it = ranges_.erase(it)) {
      const std::uint64_t reach = std::max(prev->second, it->second);
      count_ -= std::min(it->second, prev->second) - it->first;  // the overlap was counted twice
      prev->second = reach;
    }
    return;
  }
  // Swallow every range that overlaps or touches [begin, end).
  for (; it != ranges_.end() && it->first <= end; it = ranges_.erase(it)) {
    count_ -= it->second - it->first;
    end = std::max(end, it->second);
  }
  ranges_.emplace_hint(it, begin, end);
  count_ += end - begin;
}

void RangeSet::erase(std::uint64_t index) {
  auto it = ranges_.upper_bound(index);
  if (it == ranges_.begin() || std::prev(it)->second <= index) return;  // not in the set
  auto range = std::prev(it);
  const std::uint64_t end = range->second;
  if (range->first == index) ranges_.erase(range);
  else range->second = index;
  if (index + 1 < end) ranges_.emplace_hint(it, index + 1, end);
  --count_;
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

std::vector<IndexRange> RangeSet::missing(const std::vector<IndexRange>& within, const std::vector<std::uint64_t>& except) const {
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
