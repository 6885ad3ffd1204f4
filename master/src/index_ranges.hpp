// IndexRanges: a set of task indices kept as disjoint [begin, end) ranges, merged on insert.
// The farm records in it which indices a run delivered, per committed piece (never per index),
// so that a run that ends early can name every index it did not deliver. Master side, one thread.
#pragma once

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

namespace taskfarm {

using IndexRange = std::pair<std::uint64_t, std::uint64_t>;  // [begin, end)

class IndexRanges {
 public:
  /// Adds [begin, end), merging with touching or overlapping ranges. O(log ranges).
  void insert(std::uint64_t begin, std::uint64_t end);
  /// Removes one index (splitting its range). O(log ranges).
  void erase(std::uint64_t index);
  /// The indices of `within` (sorted, disjoint ranges) that are neither in this set nor in
  /// `except` (sorted indices), as sorted ranges.
  std::vector<IndexRange> missing(const std::vector<IndexRange>& within, const std::vector<std::uint64_t>& except) const;
  void clear() noexcept { ranges_.clear(); }
  std::size_t ranges() const noexcept { return ranges_.size(); }

 private:
  std::map<std::uint64_t, std::uint64_t> ranges_;  // begin → end
};

}  // namespace taskfarm
