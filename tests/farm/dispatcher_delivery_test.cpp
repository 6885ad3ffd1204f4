// The Dispatcher's side of what workers report: a Done checked against what the worker holds
// (else it is killed as faulty), pieces, returned probes, ordered delivery, per-task events —
// against a scripted fake worker (fake_worker.hpp): no processes, no timing.
#include <gtest/gtest.h>
#include <signal.h>

#include "fake_worker.hpp"

using namespace taskfarm;
using namespace taskfarm::fake;
using namespace std::chrono_literals;

TEST(Dispatcher, OrderedDeliveryPassesOverAFinallyFailedIndex) {
  Fake f(fixed_chunks(1, 0), 2);
  f.begin(4, /*ordered=*/true, ResultMode::blobs);
  f.step();
  f.hello(0);
  f.hello(1);
  // Slot 0 holds [0,1) and [1,2); slot 1 holds [2,3) and [3,4).
  ASSERT_EQ(f.w[0].queue.front().begin, 0u);
  ASSERT_EQ(f.w[1].queue.front().begin, 2u);
  for (std::uint64_t i : {2u, 3u}) {
    TextRecords r;
    r.bytes = TextRecords::of(i, i + 1);
    f.done(1, std::nullopt, &r);
  }
  EXPECT_TRUE(f.rec.results.empty()) << "2 and 3 wait for 0 and 1";
  TextRecords r0;
  r0.bytes = TextRecords::of(0, 1);
  f.done(0, std::nullopt, &r0);
  EXPECT_EQ(f.rec.results, std::vector<std::uint64_t>{0});
  f.task_error(0, 1);
  TextRecords r1;
  r1.bytes = TextRecords::of(1, 2);
  f.done(0, std::nullopt, &r1);  // 1 failed finally (retries 0)
  EXPECT_EQ(f.rec.results, (std::vector<std::uint64_t>{0, 2, 3})) << "in order, past the failed 1";
  EXPECT_EQ(r0.consumed_pieces + r1.consumed_pieces, 2) << "each piece's records are released once decoded";
  const RunReport rep = f.d.end_run();
  EXPECT_EQ(rep.failed_indices(), std::vector<std::uint64_t>{1});
  EXPECT_EQ(rep.succeeded, 3u);
}

// A command run per task (--exec) that exits non-zero or dies by a signal is an exit or signal
// failure of its task — not an exception — and its worker goes on (nothing is killed).
TEST(Dispatcher, FailedTaskProcessIsAnExitOrSignalFailureAndTheWorkerGoesOn) {
  Fake f(fixed_chunks(4, 0), 1);
  f.begin(4, /*ordered=*/false, ResultMode::blobs);
  f.step();
  f.hello(0);
  f.process_failed(0, 1, 3, 0);
  f.process_failed(0, 2, 0, SIGSEGV);
  TextRecords r;
  r.bytes = TextRecords::of(0, 4);
  f.done(0, std::nullopt, &r);
  const auto one = f.rec.of(1), two = f.rec.of(2);
  ASSERT_EQ(one.size(), 1u);
  ASSERT_EQ(two.size(), 1u);
  EXPECT_EQ(one[0].cause, FailureCause::exit);
  EXPECT_EQ(one[0].exit_code, 3);
  EXPECT_TRUE(one[0].task_process);
  EXPECT_FALSE(one[0].ended_worker());
  EXPECT_EQ(one[0].stderr_tail, "gzip: no\n");
  EXPECT_NE(one[0].describe().find("command exited with code 3: gzip -9 'a b'"), std::string::npos) << one[0].describe();
  EXPECT_EQ(two[0].cause, FailureCause::signal);
  EXPECT_EQ(two[0].signal, SIGSEGV);
  EXPECT_NE(two[0].describe().find("command killed by SIGSEGV"), std::string::npos) << two[0].describe();
  EXPECT_EQ(f.rec.results, (std::vector<std::uint64_t>{0, 3}));
  const RunReport rep = f.d.end_run();
  EXPECT_EQ(rep.failed_indices(), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(rep.worker_deaths, 0u);
}

TEST(Dispatcher, OrderedHandOverThatThrowsIsRetriedThenFailsFinally) {
  for (int retries : {1, 0}) {
    Fake f(fixed_chunks(4, retries), 1);
    int throws = 0;
    f.rec.on_result_hook = [&](const IndexResult& r) {
      if (r.index == 2 && throws++ == 0) throw std::runtime_error("sink full");
    };
    f.begin(4, /*ordered=*/true, ResultMode::blobs);
    f.step();
    f.hello(0);
    TextRecords r;
    r.bytes = TextRecords::of(0, 4);
    f.done(0, std::nullopt, &r);
    const auto two = f.rec.of(2);
    ASSERT_EQ(two.size(), 1u);
    EXPECT_EQ(two[0].final, retries == 0);
    EXPECT_NE(two[0].message.find("could not be handed over in the master: sink full"), std::string::npos) << two[0].message;
    if (retries == 0) {
      EXPECT_EQ(f.rec.results, (std::vector<std::uint64_t>{0, 1, 3})) << "the frontier passes the failed index";
    } else {
      EXPECT_EQ(f.rec.results, (std::vector<std::uint64_t>{0, 1})) << "3 waits for 2's next attempt";
      f.step();
      ASSERT_EQ(f.w[0].queue.front().begin, 2u);
      EXPECT_EQ(f.w[0].queue.front().attempt, 1u);
      TextRecords again;
      again.bytes = TextRecords::of(2, 3);
      f.done(0, std::nullopt, &again);
      EXPECT_EQ(f.rec.results, (std::vector<std::uint64_t>{0, 1, 2, 3}));
    }
    const RunReport rep = f.d.end_run();
    EXPECT_EQ(rep.succeeded, retries == 0 ? 3u : 4u);
    EXPECT_EQ(rep.retries, retries == 0 ? 0u : 1u);
  }
}

TEST(Dispatcher, DoneForAChunkTheWorkerDoesNotHoldGetsItKilledAsFaulty) {
  Fake f(fixed_chunks(4), 1);
  f.begin(8);
  f.step();
  f.hello(0);
  proto::Done m{f.d.job_id(), {proto::ChunkDone{999, 4, 0, 0, 10, false, false}}};
  f.d.on_message(0, m, f.none, f.now);
  f.execute();
  ASSERT_EQ(f.kills.size(), 1u);
  EXPECT_EQ(f.kills[0].cause, FailureCause::protocol);
  EXPECT_TRUE(f.d.killing(0));
  f.done(0);  // what it says after that no longer counts
  EXPECT_TRUE(f.rec.done.empty());
  f.w[0].queue.push_front(proto::Chunk{0, 0, 4, 0, 0});
  f.gone(0, killed_by(SIGKILL), 1);
  ASSERT_EQ(f.rec.failures.size(), 1u);
  EXPECT_EQ(f.rec.failures[0].cause, FailureCause::protocol);
  EXPECT_EQ(f.rec.failures[0].index, 1u) << "the index it was running is charged";
  EXPECT_NE(f.rec.failures[0].message.find("Done for chunk 999 up to 4 that it does not hold"), std::string::npos)
      << f.rec.failures[0].message;
}

TEST(Dispatcher, DoneBeyondItsChunkOrForAnotherJobIsAProtocolFailure) {
  for (int k = 0; k < 3; ++k) {
    Fake f(fixed_chunks(4), 1);
    f.begin(8);
    f.step();
    if (k != 2) f.hello(0);
    const proto::Chunk c = f.w[0].queue.front();
    proto::Done m{f.d.job_id(), {proto::ChunkDone{c.id, k == 0 ? 5u : 4u, 0, 0, 10, false, false}}};
    if (k == 1) m.job_id = 77;
    f.d.on_message(0, m, f.none, f.now);
    f.execute();
    ASSERT_EQ(f.kills.size(), 1u) << k;
    EXPECT_EQ(f.kills[0].cause, FailureCause::protocol) << k;
  }
}

TEST(Dispatcher, PiecewiseCommitKeepsWhatWasCommittedWhenTheWorkerDies) {
  Fake f(fixed_chunks(8), 1);
  f.begin(8);
  f.step();
  f.hello(0);
  f.done(0, 2);
  f.done(0, 5);
  EXPECT_EQ(f.rec.done, (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{0, 2}, {2, 5}}));
  f.gone(0, killed_by(SIGKILL), 6);  // 5 ran and was not reported; it was running 6
  ASSERT_EQ(f.rec.failures.size(), 1u);
  EXPECT_EQ(f.rec.failures[0].index, 6u);
  const std::size_t before = f.rec.chunks.size();
  const RunReport rep = f.run([](std::uint64_t, std::uint32_t) { return Fake::Outcome::ok; });
  auto again = chunks_from(f.rec, before);
  std::sort(again.begin(), again.end());
  EXPECT_EQ(again, (std::vector<std::tuple<int, std::uint64_t, std::uint64_t, std::uint32_t>>{
                       {0, 5, 6, 0}, {0, 6, 7, 1}, {0, 7, 8, 0}}))
      << "only the running index is charged; 5 (run, not reported) and 7 go again uncharged; [0, 5) never again";
  EXPECT_EQ(rep.succeeded, 8u) << "the committed [0, 5) counted once";
}

TEST(Dispatcher, ReturnedRestOfAProbeGoesBackAtTheSameAttempt) {
  FarmOptions o;  // auto chunks: the first is a probe of the whole share with a budget
  Fake f(o, 1);
  f.begin(1000);
  f.step();
  f.hello(0);
  ASSERT_EQ(f.w[0].queue.size(), 1u);
  const proto::Chunk probe = f.w[0].queue.front();
  ASSERT_GT(probe.budget_ns, 0u);
  ASSERT_EQ(probe.end, 1000u);
  proto::Done m{f.d.job_id(), {f.piece(0, 3, /*returned=*/true)}};
  f.d.on_message(0, m, f.none, f.now);
  f.execute();
  EXPECT_EQ(f.rec.done, (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{0, 3}}));
  EXPECT_EQ(f.rec.returned, (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{3, 1000}}));
  EXPECT_TRUE(f.rec.failures.empty());
  f.step();
  ASSERT_FALSE(f.w[0].queue.empty());
  EXPECT_EQ(f.w[0].queue.front().begin, 3u);
  EXPECT_EQ(f.w[0].queue.front().attempt, 0u);
  const RunReport rep = f.run([](std::uint64_t, std::uint32_t) { return Fake::Outcome::ok; });
  EXPECT_EQ(rep.succeeded, 1000u);
  EXPECT_EQ(rep.retries, 0u);
}

TEST(Dispatcher, ReturnedPieceOfAChunkWithoutBudgetIsAProtocolFailure) {
  Fake f(fixed_chunks(8), 1);
  f.begin(8);
  f.step();
  f.hello(0);
  proto::Done m{f.d.job_id(), {f.piece(0, 3, /*returned=*/true)}};
  f.d.on_message(0, m, f.none, f.now);
  f.execute();
  ASSERT_EQ(f.kills.size(), 1u);
  EXPECT_EQ(f.kills[0].cause, FailureCause::protocol);
}

TEST(Dispatcher, UnansweredStopIsNotAnExpectedExit) {
  Fake f(fixed_chunks(4), 1, /*fork_mode=*/true);
  f.begin(4);
  f.step();
  f.hello(0);
  f.d.on_send_failed(0, SendFailure{true, true, "closed"});  // the Stop never reached it
  f.done(0);
  f.gone(0, exited(0));
  const RunReport rep = f.d.end_run();
  EXPECT_EQ(rep.worker_deaths, 1u);
}

TEST(Dispatcher, WorkerNotReadingItsChannelIsKilledAsFaulty) {
  Fake f(fixed_chunks(4), 1);
  f.begin(8);
  f.step();
  f.d.on_send_failed(0, SendFailure{false, false, "send timed out"});
  f.execute();
  ASSERT_EQ(f.kills.size(), 1u);
  EXPECT_EQ(f.kills[0].cause, FailureCause::protocol);
}

TEST(Dispatcher, TasksDoneSaysWhichTasksFailedAndWhenThePieceRan) {
  Fake f(fixed_chunks(8, 0), 1);
  f.begin(8);
  f.step();  // started and handed [0, 8) at time 0
  f.hello(0);
  const std::uint64_t id = f.w[0].queue.front().id;
  f.now = Clock::time_point{} + 10ms;
  f.task_error(0, 1);
  f.d.on_message(0, proto::Done{f.d.job_id(), {proto::ChunkDone{id, 3, 0, 0, 4'000'000, false, false}}}, f.none, f.now);
  ASSERT_EQ(f.rec.pieces.size(), 1u);
  EXPECT_EQ(f.rec.piece_failed[0], std::vector<std::uint64_t>{1});
  EXPECT_EQ(f.rec.pieces[0].succeeded(), 2u);
  EXPECT_EQ(f.rec.pieces[0].start, Clock::time_point{} + 6ms) << "ended at the latest when its Done came, ran 4 ms";
  EXPECT_EQ(f.rec.pieces[0].stop, Clock::time_point{} + 10ms);
  EXPECT_EQ(f.rec.of(1).at(0).runtime, 0ns) << "an exception is reported as it happens";
  // The next piece came in the same batch of Done messages: it cannot have started before the
  // previous one ended.
  f.now = Clock::time_point{} + 11ms;
  f.d.on_message(0, proto::Done{f.d.job_id(), {proto::ChunkDone{id, 5, 0, 0, 5'000'000, false, false}}}, f.none, f.now);
  ASSERT_EQ(f.rec.pieces.size(), 2u);
  EXPECT_TRUE(f.rec.piece_failed[1].empty());
  EXPECT_EQ(f.rec.pieces[1].start, Clock::time_point{} + 10ms);
  EXPECT_EQ(f.rec.pieces[1].stop, Clock::time_point{} + 15ms);
  // It dies running 6 at 20 ms: that attempt ran since the previous piece ended.
  f.now = Clock::time_point{} + 20ms;
  f.w[0].upto = 5;
  f.gone(0, killed_by(SIGKILL), 6);
  ASSERT_EQ(f.rec.of(6).size(), 1u);
  EXPECT_EQ(f.rec.of(6)[0].runtime, 5ms);
}

// What the observer throws is the user's error (F7 of the hostile test): the worker whose Done
// was being reported is not killed as a protocol offender, no death is counted, the run ends
// as with halt now, the observer hears nothing more, and the exception is kept for the caller.
TEST(Dispatcher, AnObserverThatThrowsEndsTheRunAndBlamesNoWorker) {
  Fake f(fixed_chunks(1), 2);
  f.begin(20);
  int pieces = 0;
  f.rec.on_done_hook = [&] {
    if (++pieces == 3) throw std::runtime_error("sink is full");
  };
  const RunReport rep = f.run([](std::uint64_t, std::uint32_t) { return Fake::Outcome::ok; });
  EXPECT_TRUE(f.kills.empty()) << "no worker is killed for the observer's throw";
  EXPECT_EQ(rep.worker_deaths, 0u);
  EXPECT_TRUE(rep.failures.empty());
  EXPECT_TRUE(f.d.halting_now()) << "the run ends there";
  EXPECT_EQ(pieces, 3) << "the observer hears nothing more of the run";
  EXPECT_EQ(f.rec.done.size(), 2u);
  const std::exception_ptr e = f.d.take_observer_error();
  ASSERT_TRUE(e);
  try {
    std::rethrow_exception(e);
  } catch (const std::runtime_error& x) {
    EXPECT_STREQ(x.what(), "sink is full");
  }
  EXPECT_FALSE(f.d.take_observer_error()) << "taken once";

  // The Supervisor stops and reaps the workers (halt now); the next run starts clean and the
  // same observer hears all of it.
  for (std::size_t slot = 0; slot < f.w.size(); ++slot) {
    if (f.w[slot].live) f.d.on_released(static_cast<int>(slot));
    f.w[slot] = Fake::Worker{};
  }
  f.rec.on_done_hook = nullptr;
  f.begin(20);
  const RunReport next = f.run([](std::uint64_t, std::uint32_t) { return Fake::Outcome::ok; });
  EXPECT_EQ(next.succeeded, 20u);
  EXPECT_FALSE(f.d.take_observer_error());
}

// The same from the other callbacks the Dispatcher makes: a worker's start, a failure.
TEST(Dispatcher, AnObserverThatThrowsOnAStartOrAFailureEndsTheRunToo) {
  {
    Fake f(fixed_chunks(1), 2);
    f.begin(20);
    f.rec.on_started_hook = [] { throw 42; };  // not even a std::exception
    f.step();
    EXPECT_TRUE(f.d.halting_now());
    EXPECT_EQ(f.starts, 1) << "no second worker is started";
    EXPECT_TRUE(f.rec.chunks.empty()) << "the observer hears nothing more";
    EXPECT_TRUE(f.kills.empty());
    const std::exception_ptr e = f.d.take_observer_error();
    ASSERT_TRUE(e);
    EXPECT_THROW(std::rethrow_exception(e), int);
    f.d.end_run();
  }
  {
    Fake f(fixed_chunks(1, 2), 1);
    f.begin(5);
    f.rec.on_failure_hook = [] { throw std::runtime_error("log is full"); };
    const RunReport rep = f.run([](std::uint64_t i, std::uint32_t) { return i == 2 ? Fake::Outcome::fail : Fake::Outcome::ok; });
    EXPECT_TRUE(f.kills.empty());
    EXPECT_EQ(rep.worker_deaths, 0u);
    EXPECT_TRUE(f.d.halting_now());
    ASSERT_TRUE(f.d.take_observer_error());
  }
}
