// The scheduler's logic without any process.
#include <gtest/gtest.h>

#include "scheduler.hpp"

using namespace taskfarm;

namespace {
SchedulerConfig config(std::uint64_t n, std::uint64_t chunk, std::size_t workers = 2) {
  SchedulerConfig c;
  c.ranges = {{0, n}};
  c.chunk = chunk;
  c.workers = workers;
  return c;
}
}  // namespace

TEST(Scheduler, FixedChunksCoverTheSpaceOnceInOrder) {
  Scheduler s(config(20, 7));
  std::vector<std::pair<std::uint64_t, std::uint64_t>> got;
  while (auto t = s.next()) got.emplace_back(t->begin, t->end);
  const std::vector<std::pair<std::uint64_t, std::uint64_t>> want{{0, 7}, {7, 14}, {14, 20}};
  EXPECT_EQ(got, want);
  EXPECT_TRUE(s.drained());
}

// drained() is what decides whether a worker is started: it must say so as soon as the last
// index went out, not at the next next() (a worker started then got nothing, and a fork-mode
// worker for submitted calls was then handed a call submitted after its fork).
TEST(Scheduler, DrainedAsSoonAsTheLastIndexIsHandedOutAndOpenAgainWhenRangesAreAdded) {
  SchedulerConfig c = config(0, 1);
  c.ranges = {{0, 1}};
  c.open = true;
  Scheduler s(c);
  EXPECT_FALSE(s.drained());
  ASSERT_TRUE(s.next());
  EXPECT_TRUE(s.drained()) << "the only index is out";
  s.add({{1, 2}});
  EXPECT_FALSE(s.drained());
  EXPECT_EQ(s.next()->begin, 1u);
  EXPECT_TRUE(s.drained());
  s.requeue(1, 2, 1);
  EXPECT_FALSE(s.drained()) << "a retry is work to hand out";
}

TEST(Scheduler, RequeuedWorkComesBeforeFreshWork) {
  Scheduler s(config(100, 10));
  auto a = s.next();
  s.requeue(a->begin + 3, a->end, 1);
  auto r = s.next();
  EXPECT_EQ(r->begin, 3u);
  EXPECT_EQ(r->end, 10u);
  EXPECT_EQ(r->attempt, 1u);
  EXPECT_EQ(s.next()->begin, 10u);
}

TEST(Scheduler, FirstChunksAreProbesOfAFairShareWithABudget) {
  Scheduler s(config(1000, 0, 2));
  EXPECT_TRUE(s.probing());
  auto a = s.next(), b = s.next();
  EXPECT_EQ(a->begin, 0u);
  EXPECT_EQ(a->end, 500u);
  EXPECT_EQ(b->end, 1000u);
  EXPECT_GT(a->budget_ns, 0u);
  EXPECT_GT(b->budget_ns, 0u);
  // The first worker ran 3 indices in its budget and handed back the rest: it goes out again
  // in the size the measurement asks for, without a budget, before fresh work.
  s.measured(3, 3'000'000);  // 1 ms per index: 2 ms chunks are 2 indices
  s.requeue(3, 500, 0);
  EXPECT_FALSE(s.probing());
  auto c = s.next();
  EXPECT_EQ(c->begin, 3u);
  EXPECT_EQ(c->end, 5u);
  EXPECT_EQ(c->budget_ns, 0u);
  EXPECT_EQ(c->attempt, 0u);
  EXPECT_EQ(s.next()->begin, 5u);
  EXPECT_EQ(s.unassigned(), 500u - 7u);
}

TEST(Scheduler, OrderedProbesStayInsideTheReadAheadWindow) {
  SchedulerConfig c = config(1'000'000'000, 0, 2);
  c.ordered = true;
  Scheduler s(std::move(c));
  EXPECT_LE(s.next()->size(), 4096u);
}

TEST(Scheduler, AutoChunkGrowsForTrivialTasksAndStaysOneForSlowOnes) {
  Scheduler fast(config(1'000'000, 0));
  fast.measured(1000, 10'000);         // 10 ns per index
  EXPECT_GT(fast.next()->size(), 1000u);
  Scheduler slow(config(40, 0));
  slow.measured(1, 50'000'000);        // 50 ms per index
  EXPECT_EQ(slow.next()->size(), 1u);
}

TEST(Scheduler, AutoChunkShrinksTowardsTheEndSoWorkersFinishTogether) {
  Scheduler s(config(10'000, 0, 2));
  s.measured(1000, 1'000'000);  // 1 us per index: 2 ms chunks would be 2000 indices
  std::vector<std::uint64_t> sizes;
  while (auto t = s.next()) sizes.push_back(t->size());
  ASSERT_GT(sizes.size(), 10u);
  EXPECT_EQ(sizes.front(), 2000u);
  for (std::size_t k = 1; k < sizes.size(); ++k) EXPECT_LE(sizes[k], sizes[k - 1]) << "chunk " << k;
  // The tail stops at chunks worth ~20 us (20 indices here), not single indices; only the
  // remainder at the very end may be smaller.
  for (std::size_t k = 0; k + 1 < sizes.size(); ++k) EXPECT_GE(sizes[k], 20u) << "chunk " << k;
  EXPECT_LE(sizes.back(), 20u);
}

TEST(Scheduler, TrivialTasksNeedFewChunks) {
  Scheduler s(config(200'000, 0, 2));
  s.measured(1, 5'000);        // the first index, cold: 5 us
  s.measured(1000, 5'000);     // then 5 ns per index
  std::size_t chunks = 0;
  while (s.next()) ++chunks;
  EXPECT_LE(chunks, 20u) << "trivial tasks should not end in a long tail of tiny chunks";
}

TEST(Scheduler, EstimateWeighsEveryIndexAlike) {
  // A cold first index (50 us) followed by 10,000 at 10 ns: the estimate follows the many.
  Scheduler s(config(1'000'000, 0, 2));
  s.measured(1, 50'000);
  s.measured(10'000, 100'000);
  EXPECT_GT(s.chunk_size(), 50'000u);  // ~2 ms / 15 ns; a per-chunk average would give ~130
}

TEST(Scheduler, RetryBudgetIsPerAttempt) {
  SchedulerConfig c = config(10, 1);
  c.retries = 2;
  Scheduler s(c);
  EXPECT_TRUE(s.may_retry(0));
  EXPECT_TRUE(s.may_retry(1));
  EXPECT_FALSE(s.may_retry(2));
}

TEST(Scheduler, OrderedWindowHoldsFreshWorkUntilTheFrontierMoves) {
  SchedulerConfig c = config(1'000'000, 1000, 1);
  c.ordered = true;
  Scheduler s(c);
  std::uint64_t handed = 0;
  while (auto t = s.next()) handed = t->end;
  EXPECT_LT(handed, 1'000'000u) << "the window must bound read-ahead";
  s.set_frontier(handed);
  EXPECT_TRUE(s.next().has_value());
}

TEST(Scheduler, RangesSkipWhatIsDone) {
  SchedulerConfig c = config(0, 5);
  c.ranges = {{3, 5}, {10, 12}};
  Scheduler s(c);
  EXPECT_EQ(s.total(), 4u);
  auto a = s.next(), b = s.next();
  EXPECT_EQ(a->begin, 3u);
  EXPECT_EQ(a->end, 5u);
  EXPECT_EQ(b->begin, 10u);
  EXPECT_EQ(b->end, 12u);
  EXPECT_FALSE(s.next());
}

TEST(Scheduler, StopHandsOutNothingMore) {
  Scheduler s(config(100, 1));
  s.stop();
  EXPECT_FALSE(s.next());
}


// A fixed chunk far beyond the index space, over ranges that do not start at 0 (a --resume):
// cursor + chunk would wrap past 2^64 into an inverted chunk [3, 2), which a worker can only
// "commit" as nothing, and was then killed as a protocol violator.
TEST(Scheduler, ChunkBeyondTheIndexSpaceIsClampedToEachRange) {
  for (bool ordered : {false, true}) {
    SchedulerConfig c = config(0, ~std::uint64_t{0});
    c.ranges = {{3, 5}, {10, 12}, {~std::uint64_t{0} - 2, ~std::uint64_t{0}}};
    c.ordered = ordered;
    Scheduler s(c);
    // Delivered up to the end of each chunk; the frontier jumps the gap to the next range, as
    // Farm's ordered delivery does.
    auto frontier_after = [&c](std::uint64_t end) {
      for (auto [b, e] : c.ranges)
        if (end < e) return std::max(end, b);
      return end;
    };
    s.set_frontier(3);
    std::vector<std::pair<std::uint64_t, std::uint64_t>> got;
    while (auto t = s.next()) {
      got.emplace_back(t->begin, t->end);
      s.set_frontier(frontier_after(t->end));
    }
    const std::vector<std::pair<std::uint64_t, std::uint64_t>> want{
        {3, 5}, {10, 12}, {~std::uint64_t{0} - 2, ~std::uint64_t{0}}};
    EXPECT_EQ(got, want) << (ordered ? "ordered" : "unordered");
    EXPECT_TRUE(s.drained());
    EXPECT_EQ(s.unassigned(), 0u);
    EXPECT_LE(s.chunk_size(), s.total());
  }
}

// Ordered delivery holding too many bytes of results: nothing beyond the frontier goes out, but
// a retry of the frontier's own index does (else the frontier could never move again).
TEST(Scheduler, HoldAheadLetsOnlyTheFrontiersRetryOut) {
  SchedulerConfig c = config(100, 10);
  c.ordered = true;
  Scheduler s(c);
  auto a = s.next(), b = s.next();  // [0, 10), [10, 20)
  ASSERT_TRUE(a && b);
  s.set_frontier(3);          // 0..2 delivered, 3 crashed: retried below
  s.requeue(3, 4, 1);
  s.requeue(15, 20, 0);       // beyond the frontier
  s.hold_ahead(true);
  auto r = s.next();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->begin, 3u);
  EXPECT_EQ(r->end, 4u);
  EXPECT_FALSE(s.next()) << "held: neither the retry at 15 nor fresh work at 20";
  s.hold_ahead(false);
  EXPECT_EQ(s.next()->begin, 15u);
  EXPECT_EQ(s.next()->begin, 20u);
}

// Suspects of a death after their tasks returned (Dispatcher::on_gone) run alone: only a worker
// that holds nothing may take one, never with a probe's budget (its rest would come back without
// `alone`), in chunks of today's size at most; nothing else goes out to the others meanwhile.
TEST(Scheduler, AChunkToRunAloneGoesOnlyToAnIdleWorkerWithoutABudget) {
  Scheduler s(config(100, 0));  // auto: probing, so fresh chunks carry a budget
  ASSERT_TRUE(s.probing());
  auto first = s.next();
  ASSERT_TRUE(first);
  EXPECT_NE(first->budget_ns, 0u);
  s.requeue(10, 14, 1, /*alone=*/true);
  EXPECT_FALSE(s.drained());
  EXPECT_FALSE(s.next(~std::uint64_t{0}, /*alone_ok=*/false)) << "a busy worker gets nothing while it waits";
  auto alone = s.next(~std::uint64_t{0}, /*alone_ok=*/true);
  ASSERT_TRUE(alone);
  EXPECT_TRUE(alone->alone);
  EXPECT_EQ(alone->begin, 10u);
  EXPECT_EQ(alone->end, 14u);
  EXPECT_EQ(alone->attempt, 1u);
  EXPECT_EQ(alone->budget_ns, 0u);
  auto fresh = s.next(~std::uint64_t{0}, /*alone_ok=*/false);
  ASSERT_TRUE(fresh) << "fresh work goes on once no chunk to run alone waits";
  EXPECT_FALSE(fresh->alone);
}

TEST(Scheduler, AChunkToRunAloneIsCutToTodaysChunkSize) {
  Scheduler s(config(100, 3));
  s.requeue(20, 27, 0, /*alone=*/true);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> got;
  for (int k = 0; k < 3; ++k) {
    auto t = s.next();
    ASSERT_TRUE(t);
    EXPECT_TRUE(t->alone);
    got.emplace_back(t->begin, t->end);
  }
  EXPECT_EQ(got, (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{20, 23}, {23, 26}, {26, 27}}));
  EXPECT_FALSE(s.next()->alone);
}
