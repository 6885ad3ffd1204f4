// IndexRanges: the farm's record of delivered indices, and the undelivered ones it derives.
#include <gtest/gtest.h>

#include "index_ranges.hpp"

using namespace taskfarm;

TEST(IndexRanges, MergesTouchingAndOverlappingRanges) {
  IndexRanges r;
  r.insert(10, 20);
  r.insert(30, 40);
  r.insert(20, 25);  // touches the first
  EXPECT_EQ(r.ranges(), 2u);
  r.insert(5, 35);   // spans both
  EXPECT_EQ(r.ranges(), 1u);
  r.insert(50, 50);  // empty: nothing
  EXPECT_EQ(r.ranges(), 1u);
  EXPECT_EQ(r.missing({{0, 60}}, {}), (std::vector<IndexRange>{{0, 5}, {40, 60}}));
}

TEST(IndexRanges, MissingSkipsDeliveredAndFailedIndicesWithinTheRunsRanges) {
  IndexRanges r;
  r.insert(0, 3);
  r.insert(4, 8);
  r.insert(12, 15);
  // The run covered [0, 10) and [12, 20); 3 and 16 finally failed.
  EXPECT_EQ(r.missing({{0, 10}, {12, 20}}, {3, 16}), (std::vector<IndexRange>{{8, 10}, {15, 16}, {17, 20}}));
  EXPECT_EQ(r.missing({{0, 8}}, {3}), std::vector<IndexRange>{});
  const std::uint64_t top = ~std::uint64_t{0};
  EXPECT_EQ(r.missing({{top - 3, top}}, {top - 2}), (std::vector<IndexRange>{{top - 3, top - 2}, {top - 1, top}}));
  IndexRanges none;
  EXPECT_EQ(none.missing({{0, 4}}, {0, 3}), (std::vector<IndexRange>{{1, 3}}));
}

TEST(IndexRanges, EraseSplitsTheRangeHoldingTheIndex) {
  IndexRanges r;
  r.insert(0, 10);
  r.erase(0);
  r.erase(5);
  r.erase(9);
  r.erase(20);  // not in the set: nothing
  EXPECT_EQ(r.ranges(), 2u);
  EXPECT_EQ(r.missing({{0, 12}}, {}), (std::vector<IndexRange>{{0, 1}, {5, 6}, {9, 12}}));
}
