// A silent rank under `taskfarm run --mpi` (master/cli/src/mpi_watch.cpp, outside pass F44): a
// node master's pulse says how far its tasks are done; rank 0 names a rank that holds tasks and
// has sent nothing for --stall-warning, once per stall. Driven with a fake clock: no mpirun.
#include "mpi_watch.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mpi_wire.hpp"

namespace taskfarm::cli::mpi {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(MpiDoneFrontier, LowIsTheLowestTaskFedAndNotDone) {
  DoneFrontier f;
  EXPECT_EQ(f.low(), 0u);
  f.fed(10, 20);
  f.fed(30, 40);
  EXPECT_EQ(f.low(), 10u);
  f.done(12, 20);  // a later chunk first: 10 and 11 still run
  EXPECT_EQ(f.low(), 10u);
  f.done(10, 11);
  EXPECT_EQ(f.low(), 11u);
  f.done(11, 12);
  EXPECT_EQ(f.low(), 30u);
  f.done(31, 35);  // a hole: 30 not done
  EXPECT_EQ(f.low(), 30u);
  f.done(30, 31);
  EXPECT_EQ(f.low(), 35u);
  f.done(35, 40);
  EXPECT_EQ(f.low(), 40u);  // all done: the end of what was fed
}

// The pulse a NodePulse sends at its ticks, read from the other end of its socket.
std::optional<std::uint64_t> pulse_read(int fd) {
  auto m = recv_message(fd, 0);
  if (!m) return std::nullopt;
  EXPECT_EQ(m->wire.kind, Wire::pulse);
  return m->wire.v[0];
}

TEST(MpiNodePulse, SaysHowFarItsTasksAreDoneAndNotMoreOftenThanAsked) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  {
    NodePulse pulse(sv[0], std::chrono::milliseconds(3'600'000));  // one pulse in this test's time
    pulse.fed(0, 8);
    TasksDone t;
    t.begin = 0;
    t.end = 4;
    const std::uint64_t failed[] = {2};  // to be retried: not done
    t.failed = failed;
    pulse.on_tasks_done(t);
    pulse.on_tick(FarmTick{});
    EXPECT_EQ(pulse_read(sv[1]), 2u);
    FailureRecord f;
    f.index = 2;
    f.final = true;  // failed for good: done
    pulse.on_failure(f);
    pulse.on_tick(FarmTick{});
    EXPECT_EQ(pulse_read(sv[1]), std::nullopt);  // not due yet
  }
  {
    NodePulse pulse(sv[0], std::chrono::milliseconds(0));  // at every tick
    pulse.fed(0, 8);
    FailureRecord f;
    f.index = 0;
    f.final = false;  // retried: not done
    pulse.on_failure(f);
    f.final = true;
    f.index = 1;
    pulse.on_failure(f);
    pulse.on_tick(FarmTick{});
    EXPECT_EQ(pulse_read(sv[1]), 0u);
  }
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST(MpiRankWatch, NamesARankThatHoldsTasksAndIsSilentOncePerStall) {
  const Clock::time_point t0{};
  RankWatch w({"node0:0", "node1:1", "node7:2"}, 500ms, t0);
  w.granted(2, 120, 180);
  w.granted(1, 180, 240);
  w.heard(1, t0 + 400ms);
  EXPECT_TRUE(w.stalls(t0 + 499ms).empty());
  auto s = w.stalls(t0 + 500ms);  // rank 0 holds nothing; rank 1 was heard from since
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].rank, 2);
  EXPECT_EQ(s[0].describe(),
            "rank 2 (node7) has sent nothing for 0.5 s while holding tasks 120-179: is it stopped "
            "(kill -CONT resumes "
            "it) or its node overloaded?");
  EXPECT_EQ(
      s[0].event(),
      R"({"event":"stall","rank":2,"host":"node7","seconds":0.500,"silent":true,"tasks":"120-179"})"
      "\n");
  EXPECT_TRUE(w.stalls(t0 + 899ms).empty());  // said once per stall
  s = w.stalls(t0 + 900ms);                   // rank 1 now
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].rank, 1);
  EXPECT_TRUE(w.stalls(t0 + 5s).empty());
  // Heard from again (resumed), then silent again: said again, with what it still holds.
  w.heard(2, t0 + 6s);
  w.done_below(2, 150);
  EXPECT_TRUE(w.stalls(t0 + 6s + 499ms).empty());
  s = w.stalls(t0 + 6s + 700ms);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].rank, 2);
  EXPECT_EQ(s[0].tasks, (std::vector<IndexRange>{{150, 180}}));
}

TEST(MpiRankWatch, SaysNothingOfARankThatHoldsNothing) {
  const Clock::time_point t0{};
  RankWatch w({"a:0", "b:1"}, 500ms, t0);
  EXPECT_TRUE(w.stalls(t0 + 10s).empty());  // nothing handed out yet
  w.granted(1, 0, 10);
  w.granted(1, 20, 30);
  w.done_below(1, 30);  // everything it was handed is done: it waits for rank 0
  EXPECT_TRUE(w.stalls(t0 + 20s).empty());
  w.granted(1, 40, 50);
  w.reported(1);  // its node is done
  EXPECT_TRUE(w.stalls(t0 + 30s).empty());
  EXPECT_EQ(w.holdup(t0 + 30s), "");
}

TEST(MpiRankWatch, NeverSaysAnythingWithoutAStallWarning) {
  const Clock::time_point t0{};
  RankWatch w({"a:0", "b:1"}, 0ms, t0);  // (nodes then send no pulses)
  w.granted(1, 0, 10);
  EXPECT_TRUE(w.stalls(t0 + 1h).empty());
  EXPECT_EQ(w.holdup(t0 + 1h), "");
}

// A live node's pulses may be up to half of --stall-warning apart: --progress does not name a
// rank silent for less than three quarters of it, however long that is.
TEST(MpiRankWatch, ProgressWaitsLongerThanAPulseBeforeNamingARank) {
  const Clock::time_point t0{};
  RankWatch w({"a:0", "b:1"}, 60s, t0);
  w.granted(1, 0, 10);
  EXPECT_EQ(w.holdup(t0 + 30s), "");
  EXPECT_EQ(w.holdup(t0 + 45s), "rank 1 (b) silent for 0:45");
}

TEST(MpiRankWatch, ProgressNamesTheRankSilentLongest) {
  const Clock::time_point t0{};
  RankWatch w({"a:0", "b:1", "c:2"}, 500ms, t0);
  w.granted(1, 0, 10);
  w.granted(2, 10, 20);
  w.heard(1, t0 + 1s);
  EXPECT_EQ(w.holdup(t0 + 1900ms), "");  // under 2 s: not worth a mention
  EXPECT_EQ(w.holdup(t0 + 65s), "rank 2 (c) silent for 1:05");
  w.done_below(2, 20);
  EXPECT_EQ(w.holdup(t0 + 65s), "rank 1 (b) silent for 1:04");
}

TEST(MpiRankWatch, ListsAtMostThreeRangesOfTheTasksHeld) {
  const Clock::time_point t0{};
  RankWatch w({"a:0", "b:1"}, 1s, t0);
  for (std::uint64_t b = 0; b < 50; b += 10) w.granted(1, b, b + 4);
  auto s = w.stalls(t0 + 61s);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].describe(),
            "rank 1 (b) has sent nothing for 61 s while holding tasks 0-3, 10-13, 20-23, ... (8 "
            "more): is it stopped "
            "(kill -CONT resumes it) or its node overloaded?");
}

}  // namespace
}  // namespace taskfarm::cli::mpi
