// RangeSet: a set of task indices held as sorted, disjoint, non-adjacent [begin, end) ranges,
// so that its memory grows with the number of runs of indices, never with the index space.
// A resume records in one the indices an earlier run finished (read_joblog) and runs the
// complement; the Dispatcher records in one what a run delivered, per committed piece, so that
// a run that ends early names every index it did not deliver (missing()). Plain value type; any
// thread, one at a time.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace taskfarm {

/// [begin, end) of task indices, as JobSpec::ranges and CallOptions::only hold them.
using IndexRange = std::pair<std::uint64_t, std::uint64_t>;

class RangeSet {
 public:
  /// Adds [begin, end), merging it with the ranges it overlaps or touches. Empty ranges
  /// (begin >= end) add nothing. O(log ranges); no allocation when it extends the range before.
  void insert(std::uint64_t begin, std::uint64_t end);
  /// Adds one index (< 2^64 - 1: an index lies inside an index space of at most 2^64 - 1).
  void insert(std::uint64_t index) { insert(index, index + 1); }
  /// Removes one index, splitting its range; nothing if it is not in the set.
  void erase(std::uint64_t index);
  void clear() noexcept {
    ranges_.clear();
    count_ = 0;
  }

  bool contains(std::uint64_t index) const;
  /// Indices in the set.
  std::uint64_t count() const noexcept { return count_; }
  /// Disjoint ranges held: the memory the set uses.
  std::size_t range_count() const noexcept { return ranges_.size(); }
  /// The set as ranges, ascending.
  std::vector<IndexRange> ranges() const;
  /// [0, n) without the set, as ranges, ascending.
  std::vector<IndexRange> complement(std::uint64_t n) const;
  /// The indices of `within` (sorted, disjoint ranges) that are neither in the set nor in
  /// `except` (sorted indices), as sorted ranges.
  std::vector<IndexRange> missing(const std::vector<IndexRange>& within, const std::vector<std::uint64_t>& except) const;

  bool operator==(const RangeSet&) const = default;

 private:
  std::map<std::uint64_t, std::uint64_t> ranges_;  // begin → end; disjoint, non-adjacent
  std::uint64_t count_ = 0;
};

/// The number of tasks of an index space, the product of `extent`; nullopt if it is 2^64 or
/// more. Every product of numbers from outside (a command line, a joblog) goes through it.
std::optional<std::uint64_t> index_space_size(const std::vector<std::uint64_t>& extent);

/// Throws Error unless `ranges` are ascending, disjoint, non-empty and inside [0, n): what a
/// run may be asked to cover (JobSpec::ranges, CallOptions::only). The message starts with
/// `what`, which names where the ranges came from, and names the first offending range.
void check_ranges(const std::vector<IndexRange>& ranges, std::uint64_t n, const std::string& what);

}  // namespace taskfarm
