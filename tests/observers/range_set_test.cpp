// RangeSet, the done ranges a resume keeps (memory of its runs, never of its indices), and the
// checked size of an index space.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "taskfarm/range_set.hpp"

namespace taskfarm {
namespace {

using IndexRanges = std::vector<IndexRange>;

TEST(RangeSet, MergesOverlappingAndTouchingRangesInAnyOrder) {
  RangeSet s;
  EXPECT_EQ(s.complement(5), (IndexRanges{{0, 5}}));
  s.insert(3);
  s.insert(1);
  s.insert(2);  // joins [1, 2) and [3, 4)
  EXPECT_EQ(s.ranges(), (IndexRanges{{1, 4}}));
  s.insert(10, 20);
  s.insert(30, 40);
  s.insert(15, 35);  // swallows the tail of one and the head of the other
  EXPECT_EQ(s.ranges(), (IndexRanges{{1, 4}, {10, 40}}));
  s.insert(12);      // already in
  s.insert(7, 7);    // empty
  EXPECT_EQ(s.ranges(), (IndexRanges{{1, 4}, {10, 40}}));
  EXPECT_EQ(s.count(), 33u);
  EXPECT_EQ(s.range_count(), 2u);
  s.insert(0, 100);
  EXPECT_EQ(s.ranges(), (IndexRanges{{0, 100}}));
  EXPECT_EQ(s.count(), 100u);
  EXPECT_TRUE(s.contains(99));
  EXPECT_FALSE(s.contains(100));
}

TEST(RangeSet, ComplementIsTheGapsUpToN) {
  RangeSet s;
  s.insert(0, 2);
  s.insert(4, 5);
  s.insert(8, 12);
  EXPECT_EQ(s.complement(10), (IndexRanges{{2, 4}, {5, 8}}));
  EXPECT_EQ(s.complement(20), (IndexRanges{{2, 4}, {5, 8}, {12, 20}}));
  EXPECT_EQ(s.complement(1), IndexRanges{});
}

TEST(RangeSet, MemoryIsItsRunsNotItsIndices) {
  RangeSet s;
  for (std::uint64_t i = 0; i < 100000; ++i) s.insert((i * 7919) % 100000);  // every index, scattered
  EXPECT_EQ(s.range_count(), 1u);
  EXPECT_EQ(s.count(), 100000u);
  // Matches a plain bitmap on random inserts.
  RangeSet r;
  std::vector<bool> bits(1000);
  std::uint64_t x = 12345;
  for (int k = 0; k < 3000; ++k) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const std::uint64_t b = (x >> 33) % 1000, len = (x >> 20) % 7;
    r.insert(b, std::min<std::uint64_t>(b + len, 1000));
    for (std::uint64_t i = b; i < std::min<std::uint64_t>(b + len, 1000); ++i) bits[i] = true;
    if (k % 100 != 0) continue;
    IndexRanges want;
    for (std::uint64_t i = 0; i < 1000; ++i)
      if (!bits[i] && (want.empty() || want.back().second != i)) want.emplace_back(i, i + 1);
      else if (!bits[i]) ++want.back().second;
    ASSERT_EQ(r.complement(1000), want) << "after " << k << " inserts";
  }
}

TEST(IndexSpace, SizeRefusesProductsOf2To64OrMore) {
  EXPECT_EQ(index_space_size({}), 1u);
  EXPECT_EQ(index_space_size({7, 9, 4}), 252u);
  EXPECT_EQ(index_space_size({18446744073709551615ull}), 18446744073709551615ull);
  EXPECT_EQ(index_space_size({4294967295ull, 4294967297ull}), 18446744073709551615ull);
  EXPECT_EQ(index_space_size({4294967296ull, 4294967296ull}), std::nullopt);
  EXPECT_EQ(index_space_size({2, 2, 2, 2, 2, 2, 2, 144115188075855872ull}), std::nullopt);
}

// What the Dispatcher uses it for: the indices a run delivered, and those it did not.
TEST(RangeSet, DeliveredMergesTouchingAndOverlappingRanges) {
  RangeSet r;
  r.insert(10, 20);
  r.insert(30, 40);
  r.insert(20, 25);  // touches the first
  EXPECT_EQ(r.range_count(), 2u);
  EXPECT_EQ(r.count(), 25u);
  r.insert(22, 32);  // extends the first in place, reaching into the second
  EXPECT_EQ(r.range_count(), 1u);
  EXPECT_EQ(r.count(), 30u);
  r.insert(5, 35);   // spans both
  EXPECT_EQ(r.range_count(), 1u);
  EXPECT_EQ(r.count(), 35u);
  r.insert(50, 50);  // empty: nothing
  EXPECT_EQ(r.range_count(), 1u);
  EXPECT_EQ(r.missing({{0, 60}}, {}), (std::vector<IndexRange>{{0, 5}, {40, 60}}));
}

TEST(RangeSet, DeliveredMissingSkipsDeliveredAndFailedIndicesWithinTheRunsRanges) {
  RangeSet r;
  r.insert(0, 3);
  r.insert(4, 8);
  r.insert(12, 15);
  // The run covered [0, 10) and [12, 20); 3 and 16 finally failed.
  EXPECT_EQ(r.missing({{0, 10}, {12, 20}}, {3, 16}), (std::vector<IndexRange>{{8, 10}, {15, 16}, {17, 20}}));
  EXPECT_EQ(r.missing({{0, 8}}, {3}), std::vector<IndexRange>{});
  const std::uint64_t top = ~std::uint64_t{0};
  EXPECT_EQ(r.missing({{top - 3, top}}, {top - 2}), (std::vector<IndexRange>{{top - 3, top - 2}, {top - 1, top}}));
  RangeSet none;
  EXPECT_EQ(none.missing({{0, 4}}, {0, 3}), (std::vector<IndexRange>{{1, 3}}));
}

TEST(RangeSet, DeliveredEraseSplitsTheRangeHoldingTheIndex) {
  RangeSet r;
  r.insert(0, 10);
  r.erase(0);
  r.erase(5);
  r.erase(9);
  r.erase(20);  // not in the set: nothing
  EXPECT_EQ(r.range_count(), 2u);
  EXPECT_EQ(r.count(), 7u);
  EXPECT_EQ(r.missing({{0, 12}}, {}), (std::vector<IndexRange>{{0, 1}, {5, 6}, {9, 12}}));
}

}  // namespace
}  // namespace taskfarm
