// A run whose ranges arrive while it runs (JobSpec::feed, a node of an MPI run, design §17):
// ranges join the run, `more` goes out once at low water, and the run ends only when the feed is
// closed — against the scripted fake worker, no processes.
#include <gtest/gtest.h>
#include <signal.h>

#include "fake_worker.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/range_feed.hpp"
#include "taskfarm/range_set.hpp"

using namespace taskfarm;
using namespace taskfarm::fake;

namespace {

// The Dispatcher reads only low_water() of the feed; the Supervisor does the rest.
struct ScriptedFeed : RangeFeed {
  std::uint64_t low = 0;
  int fd() const override { return -1; }
  Batch read() override { return {}; }
  void want_more() override {}
  std::uint64_t low_water() const override { return low; }
};

// What the pieces committed cover; fails the test if an index is committed twice.
RangeSet committed(const Recorder& r) {
  RangeSet s;
  for (const auto& [b, e] : r.done) {
    for (std::uint64_t i = b; i < e; ++i) EXPECT_FALSE(s.contains(i)) << "index " << i << " committed twice";
    s.insert(b, e);
  }
  return s;
}

}  // namespace

TEST(DispatcherFeed, RangesArriveWhileRunningAndTheRunEndsOnlyWhenTheFeedCloses) {
  ScriptedFeed feed;
  Fake f(fixed_chunks(4), 2);
  f.job.feed = &feed;
  f.job.ranges = {{0, 8}};
  f.begin(100);
  // Each `more` gets the next answer; the last one closes the feed.
  std::vector<std::vector<IndexRange>> answers{{{8, 20}}, {{40, 50}, {60, 63}}};
  int answered = 0;
  bool finished_while_open = false;
  f.idle = [&] {
    if (f.d.finished()) finished_while_open = true;
    if (f.asked == answered) return false;
    if (answered < static_cast<int>(answers.size())) f.d.on_ranges_added(answers[static_cast<std::size_t>(answered)]);
    else f.d.on_source_closed();
    ++answered;
    return true;
  };
  const RunReport rep = f.run([](std::uint64_t i, std::uint32_t a) { return i == 45 && a == 0 ? Fake::Outcome::crash : Fake::Outcome::ok; });
  EXPECT_FALSE(finished_while_open) << "an open feed keeps the run going with nothing held";
  EXPECT_EQ(answered, 3) << "asked once per answer, then told it is closed";
  EXPECT_EQ(rep.tasks, 8u + 12u + 10u + 3u);
  EXPECT_EQ(rep.succeeded, rep.tasks) << "index 45 crashed once and was retried";
  EXPECT_EQ(rep.retries, 1u);
  EXPECT_TRUE(rep.unfinished.empty());
  EXPECT_EQ(committed(f.rec).ranges(), (std::vector<IndexRange>{{0, 20}, {40, 50}, {60, 63}}))
      << "exactly the ranges fed, each index once";
}

TEST(DispatcherFeed, AsksOnceAtLowWaterAndAgainOnlyAfterAnAnswer) {
  ScriptedFeed feed;
  feed.low = 4;
  Fake f(fixed_chunks(2), 1);
  f.job.feed = &feed;
  f.job.ranges = {{0, 10}};
  f.begin(10000);
  f.step();
  f.hello(0);
  EXPECT_EQ(f.asked, 0) << "6 indices not handed out: above the low water of 4";
  f.done(0);
  f.step();
  EXPECT_EQ(f.asked, 1) << "4 left: at the low water";
  f.done(0);
  f.step();
  f.step();
  EXPECT_EQ(f.asked, 1) << "one request is out: not asked again";
  f.d.on_ranges_added({});  // an answer with nothing in it (rank 0 has nothing right now)
  f.step();
  EXPECT_EQ(f.asked, 2);
  // Its worker takes up to ~6 ms of queued work (at the fake's 1 µs a task, 512 chunks of 2):
  // the low water counts only what no worker holds yet.
  f.d.on_ranges_added({{10, 5000}});
  f.step();
  EXPECT_EQ(f.asked, 2) << "plenty again";
  EXPECT_FALSE(f.d.finished());
}

TEST(DispatcherFeed, AStoppedRunNamesWhatItWasFedAndDidNotFinishAsUnfinished) {
  ScriptedFeed feed;
  Fake f(fixed_chunks(4), 1);
  f.job.feed = &feed;
  f.begin(100);
  f.step();
  EXPECT_EQ(f.starts, 0) << "no work yet: no worker is started for nothing";
  EXPECT_EQ(f.asked, 1) << "an empty run asks at once";
  f.d.on_ranges_added({{10, 20}, {30, 34}});
  f.step();
  ASSERT_EQ(f.starts, 1);
  f.hello(0);
  f.done(0);  // [10, 14)
  f.d.on_stop_requested();
  EXPECT_TRUE(f.d.finished() || f.d.halting_now());
  f.d.on_released(0);  // what the Supervisor reports as it stops the workers
  const RunReport rep = f.d.end_run();
  EXPECT_EQ(rep.succeeded, 4u);
  EXPECT_EQ(rep.unfinished, (std::vector<IndexRange>{{14, 20}, {30, 34}})) << "a resume runs exactly these";
}

TEST(DispatcherFeed, ForkModeStopsItsWorkersOnlyOnceTheFeedIsClosed) {
  ScriptedFeed feed;
  Fake f(fixed_chunks(4), 1, /*fork_mode=*/true);
  f.job.feed = &feed;
  f.job.ranges = {{0, 4}};
  f.begin(100);
  f.step();
  f.hello(0);
  f.done(0);
  f.step();
  EXPECT_FALSE(f.w[0].told_to_stop) << "drained, but more may come: the warm worker stays";
  f.d.on_source_closed();
  f.step();
  EXPECT_TRUE(f.w[0].told_to_stop);
  EXPECT_TRUE(f.d.finished());
}

TEST(DispatcherFeed, RangesOutOfOrderOrOutsideTheIndexSpaceAreRefused) {
  ScriptedFeed feed;
  Fake f(fixed_chunks(4), 1);
  f.job.feed = &feed;
  f.job.ranges = {{10, 20}};
  f.begin(100);
  EXPECT_THROW(f.d.on_ranges_added({{5, 8}}), Error) << "before the run's last range";
  EXPECT_THROW(f.d.on_ranges_added({{90, 101}}), Error) << "past the index space";
  EXPECT_NO_THROW(f.d.on_ranges_added({{20, 30}}));
}

TEST(DispatcherFeed, OrderedRunFollowsTheRangesAsTheyComeAcrossAGap) {
  // `taskfarm run --exec -k` from a stream: an ordered run with a feed. Once all it was fed is
  // delivered, its frontier goes on at the next range fed, past a gap wider than the ordered
  // window (4096) that holds nothing to wait for — else that range is never handed out.
  ScriptedFeed feed;
  Fake f(fixed_chunks(4), 1);
  f.job.feed = &feed;
  f.job.ranges = {{0, 4}};
  f.begin(100000, /*ordered=*/true, ResultMode::blobs);
  f.step();
  f.hello(0);
  TextRecords r0;
  r0.bytes = TextRecords::of(0, 4);
  f.done(0, std::nullopt, &r0);
  f.step();
  EXPECT_EQ(f.asked, 1);
  f.d.on_ranges_added({{10000, 10004}});
  f.step();
  ASSERT_FALSE(f.w[0].queue.empty()) << "the range past the gap is handed out";
  EXPECT_EQ(f.w[0].queue.front().begin, 10000u);
  TextRecords r1;
  r1.bytes = TextRecords::of(10000, 10004);
  f.done(0, std::nullopt, &r1);
  EXPECT_EQ(f.rec.results, (std::vector<std::uint64_t>{0, 1, 2, 3, 10000, 10001, 10002, 10003}))
      << "delivered in order as they come, not held until the feed closes";
  f.d.on_source_closed();
  f.step();
  EXPECT_TRUE(f.d.finished());
  EXPECT_EQ(f.d.end_run().succeeded, 8u);
}
