// The Dispatcher's policy on what a failure costs — charging, retries, isolation, halt, deaths
// and failed starts, chaos, recycling — against a scripted fake worker (fake_worker.hpp): no
// processes, no timing.
#include <gtest/gtest.h>

#include <cerrno>
#include <signal.h>

#include "fake_worker.hpp"

using namespace taskfarm;
using namespace taskfarm::fake;
using namespace std::chrono_literals;

TEST(Dispatcher, ChargesOnlyTheRunningIndexAndRequeuesTheRestOfItsChunkUncharged) {
  Fake f(fixed_chunks(4));
  f.begin(12);
  f.step();
  ASSERT_EQ(f.starts, 1);
  f.hello(0);
  f.done(0, 2);                       // [0, 2) of [0, 4) committed
  f.gone(0, killed_by(SIGSEGV), 2);   // died running index 2
  ASSERT_EQ(f.rec.failures.size(), 1u);
  const FailureRecord& r = f.rec.failures[0];
  EXPECT_EQ(r.index, 2u);
  EXPECT_EQ(r.attempt, 0u);
  EXPECT_FALSE(r.final);
  EXPECT_EQ(r.cause, FailureCause::signal);
  EXPECT_EQ(r.signal, SIGSEGV);
  EXPECT_EQ(r.pid, 100);
  EXPECT_EQ(r.stderr_tail, "last words\n");
  const std::size_t before = f.rec.chunks.size();
  f.step();  // a new worker; what the dead one held goes out again, retries first, in index order
  ASSERT_EQ(f.starts, 2);
  const auto again = chunks_from(f.rec, before);
  ASSERT_GE(again.size(), 2u);
  EXPECT_EQ(again[0], std::make_tuple(0, 2ull, 3ull, 1u)) << "the running index: charged one attempt";
  EXPECT_EQ(again[1], std::make_tuple(0, 3ull, 4ull, 0u)) << "the rest of its chunk: uncharged";
  const RunReport rep = f.run([](std::uint64_t, std::uint32_t) { return Fake::Outcome::ok; });
  EXPECT_EQ(rep.succeeded, 12u);
  EXPECT_EQ(rep.retries, 1u);
  EXPECT_EQ(rep.worker_deaths, 1u);
  EXPECT_TRUE(rep.failures.empty());
  EXPECT_TRUE(rep.unfinished.empty());
}

TEST(Dispatcher, PoisonIndexIsIsolatedAndFailsFinallyWhenItsRetriesAreSpent) {
  Fake f(fixed_chunks(4), 2);
  f.begin(40);
  const RunReport rep = f.run([](std::uint64_t i, std::uint32_t) { return i == 7 ? Fake::Outcome::crash : Fake::Outcome::ok; });
  EXPECT_EQ(rep.failed_indices(), std::vector<std::uint64_t>{7});
  EXPECT_EQ(rep.succeeded, 39u);
  EXPECT_EQ(rep.retries, 2u);
  EXPECT_EQ(rep.worker_deaths, 3u);
  const auto seven = f.rec.of(7);
  ASSERT_EQ(seven.size(), 3u);
  for (std::uint32_t a = 0; a < 3; ++a) {
    EXPECT_EQ(seven[a].attempt, a);
    EXPECT_EQ(seven[a].final, a == 2);
    EXPECT_EQ(seven[a].chunk_end - seven[a].chunk_begin, a == 0 ? 4u : 1u) << "after its first crash 7 runs alone";
  }
  EXPECT_EQ(f.rec.failures.size(), 3u) << "no other index is ever charged";
}

TEST(Dispatcher, KernelExceptionChargesItsIndexAndTheWorkerGoesOn) {
  Fake f(fixed_chunks(4, 1), 1);
  f.begin(8);
  const RunReport rep = f.run([](std::uint64_t i, std::uint32_t) { return i == 5 ? Fake::Outcome::fail : Fake::Outcome::ok; });
  EXPECT_EQ(rep.failed_indices(), std::vector<std::uint64_t>{5});
  EXPECT_EQ(rep.worker_deaths, 0u);
  EXPECT_EQ(rep.succeeded, 7u);
  ASSERT_EQ(f.rec.of(5).size(), 2u);
  EXPECT_EQ(f.rec.of(5)[0].exception_type, "std::runtime_error");
  EXPECT_EQ(f.rec.of(5)[0].pid, 100) << "the worker that ran it";
  EXPECT_EQ(f.starts, 1);
}

TEST(Dispatcher, HaltNowStopsAtTheFirstFinalFailure) {
  FarmOptions o = fixed_chunks(1, 0);
  o.halt = Halt::now;
  Fake f(o, 2);
  f.begin(100);
  // Index 1 is slot 0's second chunk (the fake runs the first live worker that can move).
  const RunReport rep = f.run([](std::uint64_t i, std::uint32_t) { return i == 1 ? Fake::Outcome::crash : Fake::Outcome::ok; });
  EXPECT_TRUE(f.d.halting_now());
  EXPECT_TRUE(rep.halted);
  EXPECT_EQ(rep.failed_indices(), std::vector<std::uint64_t>{1});
  EXPECT_LT(rep.succeeded, 99u);
  EXPECT_EQ(rep.succeeded + 1 + rep.unfinished_count(), 100u) << "every index is accounted for";
}

TEST(Dispatcher, HaltSoonStopsDispatchingButLetsHeldChunksFinish) {
  FarmOptions o = fixed_chunks(2, 0);
  o.halt = Halt::soon;
  Fake f(o, 2);
  f.begin(20);
  f.step();
  f.hello(0);
  f.hello(1);
  ASSERT_FALSE(f.w[1].queue.empty());
  f.gone(0, killed_by(SIGSEGV), 0);  // slot 0 dies running index 0: final at once (retries 0)
  EXPECT_TRUE(f.rec.failures.back().final);
  EXPECT_FALSE(f.d.halting_now()) << "soon: the other worker is not killed";
  EXPECT_TRUE(f.kills.empty());
  const std::size_t handed_out = f.rec.chunks.size();
  while (!f.w[1].queue.empty()) f.done(1);  // it finishes what it holds
  f.step();
  EXPECT_EQ(f.rec.chunks.size(), handed_out) << "nothing new goes out after the final failure";
  EXPECT_EQ(f.starts, 2) << "and no worker is started for it";
  EXPECT_TRUE(f.d.finished());
  const RunReport rep = f.d.end_run();
  EXPECT_TRUE(rep.halted);
  EXPECT_EQ(rep.worker_deaths, 1u);
  EXPECT_EQ(rep.succeeded + 1 + rep.unfinished_count(), 20u);
}

TEST(Dispatcher, DeathsWithoutProgressStopTheRunWithTheCause) {
  FarmOptions o = fixed_chunks(4);
  o.max_start_failures = 3;
  Fake f(o, 1);
  f.begin(8);
  for (int k = 0; k < 3; ++k) {
    f.step();
    f.hello(0);
    f.gone(0, exited(3));  // between tasks: no index to charge
  }
  EXPECT_TRUE(f.d.halting_now());
  const RunReport rep = f.d.end_run();
  EXPECT_NE(rep.farm_error.find("workers keep dying without completing a task: 3 in a row, before any task succeeded"), std::string::npos)
      << rep.farm_error;
  EXPECT_NE(rep.farm_error.find("last words"), std::string::npos) << "its stderr comes with the cause";
  EXPECT_EQ(rep.worker_deaths, 3u);
  EXPECT_TRUE(rep.failed_indices().empty());
  EXPECT_EQ(rep.unfinished_count(), 8u);
}

TEST(Dispatcher, ProgressResetsTheCountOfDeathsWithoutProgress) {
  FarmOptions o = fixed_chunks(4);
  o.max_start_failures = 2;
  Fake f(o, 1);
  f.begin(8);
  f.step();
  f.hello(0);
  f.gone(0, exited(3));
  f.step();
  f.hello(0);
  f.done(0);  // progress
  f.gone(0, exited(3));
  EXPECT_FALSE(f.d.halting_now());
}

TEST(Dispatcher, NeverGreetedStartTimeoutStopsTheRunAtOnce) {
  Fake f(fixed_chunks(4), 2);
  f.begin(8);
  f.step();
  ASSERT_EQ(f.starts, 2);
  f.d.on_overdue(0, Overdue::start);
  f.execute();
  ASSERT_EQ(f.kills.size(), 1u);
  EXPECT_EQ(f.kills[0].cause, FailureCause::start);
  EXPECT_FALSE(f.kills[0].term_first);
  f.gone(0, killed_by(SIGKILL));
  EXPECT_TRUE(f.d.halting_now()) << "no worker of this farm has ever greeted: the next will not either";
  const RunReport rep = f.d.end_run();
  EXPECT_NE(rep.farm_error.find("./fake did not start the taskfarm protocol within 5 s"), std::string::npos) << rep.farm_error;
  ASSERT_FALSE(rep.failures.empty());
  EXPECT_EQ(rep.failures.back().cause, FailureCause::start);
}

TEST(Dispatcher, OneStuckStartAmongGreetedWorkersIsOneFailedWorker) {
  Fake f(fixed_chunks(4), 2);
  f.begin(8);
  f.step();
  f.hello(1);
  f.d.on_overdue(0, Overdue::start);
  f.execute();
  f.gone(0, killed_by(SIGKILL));
  EXPECT_FALSE(f.d.halting_now());
  f.step();
  EXPECT_EQ(f.starts, 3) << "replaced";
}

// Outside pass h12 F13: a worker that greeted and was handed work, then never served (stuck
// after `import taskfarm`), held it for ever while the other idled. Once nothing is left to hand
// out and a worker idles, it is stopped: not a death without progress, nothing charged, its work
// to the idle one, its slot not started again in this run.
TEST(Dispatcher, GreetedWorkerThatNeverServesIsStoppedOnceAnotherIdles) {
  Fake f(fixed_chunks(4), 2);
  f.begin(8);
  f.step();
  f.hello(0);
  f.hello(1);
  EXPECT_FALSE(f.d.idle_worker_waiting()) << "both hold work";
  f.done(1);
  EXPECT_TRUE(f.d.idle_worker_waiting());
  f.d.on_overdue(0, Overdue::unserved);
  f.execute();
  ASSERT_EQ(f.kills.size(), 1u);
  EXPECT_EQ(f.kills[0].slot, 0);
  f.gone(0, killed_by(SIGKILL));
  EXPECT_FALSE(f.d.halting_now());
  ASSERT_EQ(f.rec.failures.size(), 1u);
  EXPECT_FALSE(f.rec.failures[0].index) << "no task is charged";
  EXPECT_EQ(f.rec.failures[0].error, ETIMEDOUT);
  EXPECT_NE(f.rec.failures[0].message.find("slot 0 (pid "), std::string::npos) << f.rec.failures[0].message;
  EXPECT_NE(f.rec.failures[0].message.find("had not begun its work"), std::string::npos);
  f.step();
  EXPECT_EQ(f.starts, 2) << "its slot is not started again in this run";
  f.done(1);
  const RunReport rep = f.d.end_run();
  EXPECT_EQ(rep.succeeded, 8u);
  EXPECT_TRUE(rep.failures.empty());
}

// With a task timeout, one that has begun none of its work start_timeout + task_timeout after
// its start is a failed start even with nobody idle (every worker may be stuck so; h12b N7):
// killed, a death without progress, replaced; the run stops after max_start_failures in a row.
TEST(Dispatcher, GreetedWorkerThatNeverServesPastItsDeadlineIsAFailedStart) {
  FarmOptions o = fixed_chunks(4);
  o.task_timeout = 500ms;
  o.max_start_failures = 2;
  Fake f(o, 1);
  f.begin(8);
  for (int attempt = 0; attempt < 2; ++attempt) {
    f.step();
    f.hello(0);
    f.d.on_overdue(0, Overdue::serve);
    f.execute();
    ASSERT_EQ(f.kills.size(), static_cast<std::size_t>(attempt + 1));
    EXPECT_EQ(f.kills.back().cause, FailureCause::start);
    f.gone(0, killed_by(SIGKILL));
  }
  EXPECT_TRUE(f.d.halting_now()) << "two failed starts in a row";
  const RunReport rep = f.d.end_run();
  EXPECT_NE(rep.farm_error.find("greeted but had begun none of the work it was given"), std::string::npos) << rep.farm_error;
  EXPECT_EQ(rep.succeeded, 0u);
}

TEST(Dispatcher, WorkerExitingBeforeItsHandshakeIsNotAWorkerProgram) {
  FarmOptions o = fixed_chunks(4);
  o.max_start_failures = 2;
  Fake f(o, 1);
  f.begin(8);
  f.step();
  f.gone(0, exited(5));
  f.step();
  f.gone(0, exited(5));
  const RunReport rep = f.d.end_run();
  EXPECT_NE(rep.farm_error.find("./fake exited with code 5 before starting the taskfarm protocol: it is not a worker program"),
            std::string::npos)
      << rep.farm_error;
  EXPECT_NE(rep.farm_error.find("(2 workers in a row)"), std::string::npos) << rep.farm_error;
}

// `taskfarm run -- echo {}` (no --exec): echo must run once, not once per -j, and the run end.
TEST(Dispatcher, ProgramModeFirstWorkerExitingBeforeHelloRunsAloneAndEndsTheRun) {
  Dispatcher::Config c = Fake::config(fixed_chunks(4), 4, false);
  c.probe_first = true;
  Fake f(std::move(c));
  f.begin(16);
  f.step();
  f.step();
  EXPECT_EQ(f.starts, 1) << "no worker of this farm has greeted yet: the others wait for the first one's Hello";
  f.gone(0, exited(0));
  EXPECT_TRUE(f.d.halting_now()) << "the first exit before a Hello ends the run, not the fifth";
  f.step();
  EXPECT_EQ(f.starts, 1);
  const RunReport rep = f.d.end_run();
  EXPECT_NE(rep.farm_error.find("./fake exited with code 0 before starting the taskfarm protocol: it is not a worker program"),
            std::string::npos)
      << rep.farm_error;
}

TEST(Dispatcher, ProgramModeStartsTheOtherWorkersOnceTheFirstHasGreeted) {
  Dispatcher::Config c = Fake::config(fixed_chunks(4), 4, false);
  c.probe_first = true;
  Fake f(std::move(c));
  f.begin(16);
  f.step();
  ASSERT_EQ(f.starts, 1);
  f.hello(0);
  f.step();
  EXPECT_EQ(f.starts, 4) << "after the first Hello every worker starts";
  const RunReport rep = f.run([](std::uint64_t, std::uint32_t) { return Fake::Outcome::ok; });
  EXPECT_EQ(rep.succeeded, 16u);
}

// A Python worker that imports NumPy before taskfarm says Hello only after ~0.15 s: the others
// start once the probe's grace has passed, not one after the other behind that import.
TEST(Dispatcher, ProgramModeStartsTheOtherWorkersOnceTheProbesGraceHasPassed) {
  Dispatcher::Config c = Fake::config(fixed_chunks(4), 4, false);
  c.probe_first = true;
  c.probe_grace = 50ms;
  Fake f(std::move(c));
  f.begin(16);
  f.step();
  ASSERT_EQ(f.starts, 1);
  EXPECT_EQ(f.d.next_wakeup(f.now), f.now + 50ms) << "the grace's end is a deadline of the loop";
  f.now += 49ms;
  f.step();
  EXPECT_EQ(f.starts, 1) << "within the grace the first runs alone";
  f.now += 1ms;
  f.step();
  EXPECT_EQ(f.starts, 4) << "after the grace every worker starts, Hello or not";
  EXPECT_EQ(f.d.next_wakeup(f.now), Clock::time_point::max());
  f.gone(0, exited(0));
  EXPECT_TRUE(f.d.halting_now()) << "the probe exiting before any Hello still ends the run";
}

TEST(Dispatcher, ChaosKillIsNeverChargedToAnIndex) {
  FarmOptions o = fixed_chunks(4);
  o.chaos_rate = 1000;
  o.chaos_seed = 7;
  Fake f(o, 1);
  f.begin(8);
  f.step();
  f.hello(0);
  f.now += 1h;  // fault injection is due
  f.d.on_time(f.now);
  f.execute();
  ASSERT_EQ(f.kills.size(), 1u);
  EXPECT_FALSE(f.kills[0].cause.has_value()) << "a chaos kill has no cause of the worker's";
  f.gone(0, killed_by(SIGKILL), 1);  // it was running index 1
  ASSERT_EQ(f.rec.failures.size(), 1u);
  EXPECT_FALSE(f.rec.failures[0].index.has_value());
  EXPECT_NE(f.rec.failures[0].message.find("not charged"), std::string::npos);
  const std::size_t before = f.rec.chunks.size();
  f.step();
  EXPECT_EQ(chunks_from(f.rec, before).front(), std::make_tuple(0, 0ull, 4ull, 0u)) << "its chunk again, same attempt";
  f.d.on_time(f.now);  // not due again yet (the next kill is scheduled after now)
  f.execute();
  EXPECT_EQ(f.kills.size(), 1u);
  const RunReport rep = f.run([](std::uint64_t, std::uint32_t) { return Fake::Outcome::ok; });
  EXPECT_EQ(rep.chaos_kills, 1u);
  EXPECT_EQ(rep.worker_deaths, 1u);
  EXPECT_EQ(rep.retries, 0u);
  EXPECT_EQ(rep.succeeded, 8u);
}

TEST(Dispatcher, WorkerRetiresAfterMaxTasksAndIsReplaced) {
  FarmOptions o = fixed_chunks(4);
  o.max_tasks_per_worker = 10;
  Fake f(o, 1);
  f.begin(25);
  f.step();
  std::uint64_t held = 0;
  for (const auto& c : f.w[0].queue) held += c.end - c.begin;
  EXPECT_LE(held, 10u);
  const RunReport rep = f.run([](std::uint64_t, std::uint32_t) { return Fake::Outcome::ok; });
  EXPECT_EQ(rep.succeeded, 25u);
  EXPECT_EQ(f.starts, 3) << "10 + 10 + 5";
  EXPECT_EQ(rep.worker_deaths, 0u) << "a retired worker that exits 0 when told is no death";
  EXPECT_TRUE(f.rec.failures.empty());
}

TEST(Dispatcher, ForkModeStopsEachWorkerOnceNothingIsLeftToHandOutAndStartsNoOther) {
  Fake f(fixed_chunks(4), 2, /*fork_mode=*/true);
  f.begin(8);
  f.step();
  f.hello(0);
  f.hello(1);
  f.done(0);  // slot 0 finishes first
  f.step();   // nothing is left to hand out: both are told, the busy one with what it holds
  EXPECT_TRUE(f.w[0].told_to_stop);
  EXPECT_TRUE(f.w[1].told_to_stop);
  f.gone(0, exited(0));
  for (int k = 0; k < 3; ++k) f.step();
  EXPECT_EQ(f.starts, 2) << "no worker is started (only to be stopped) while the last one finishes";
  f.done(1);
  f.gone(1, exited(0));
  EXPECT_TRUE(f.d.finished());
  const RunReport rep = f.d.end_run();
  EXPECT_EQ(rep.succeeded, 8u);
  EXPECT_EQ(rep.worker_deaths, 0u);
}

TEST(Dispatcher, ExitZeroMidTaskIsAFailureOfThatTask) {
  Fake f(fixed_chunks(4, 0), 1, /*fork_mode=*/true);
  f.begin(4);
  const RunReport rep = f.run([](std::uint64_t i, std::uint32_t) { return i == 2 ? Fake::Outcome::exit_clean : Fake::Outcome::ok; });
  EXPECT_EQ(rep.failed_indices(), std::vector<std::uint64_t>{2});
  EXPECT_EQ(rep.failures[0].cause, FailureCause::exit);
  EXPECT_EQ(rep.worker_deaths, 1u) << "told to stop, but it still held work";
}

TEST(Dispatcher, SpawnFailureForWantOfResourcesBacksOffWhileTheOthersWork) {
  Fake f(fixed_chunks(4), 2);
  f.spawn_failures.push_back(SpawnFailure{EAGAIN, "fork of a worker: Resource temporarily unavailable", false});
  f.begin(40);
  f.step();  // slot 0 fails, slot 1 starts
  EXPECT_EQ(f.starts, 2);
  EXPECT_FALSE(f.w[0].live);
  EXPECT_TRUE(f.w[1].live);
  ASSERT_EQ(f.rec.failures.size(), 1u);
  EXPECT_NE(f.rec.failures[0].message.find("carrying on with 0 of 2 workers"), std::string::npos) << f.rec.failures[0].message;
  EXPECT_EQ(f.d.next_wakeup(f.now), f.now + 50ms) << "the first backoff";
  f.step();
  EXPECT_EQ(f.starts, 2) << "not before its backoff";
  f.now += 50ms;
  f.step();
  EXPECT_EQ(f.starts, 3);
  EXPECT_TRUE(f.w[0].live);
  const RunReport rep = f.run([](std::uint64_t, std::uint32_t) { return Fake::Outcome::ok; });
  EXPECT_EQ(rep.succeeded, 40u);
  EXPECT_EQ(rep.failed_spawns, 1u);
  EXPECT_TRUE(rep.farm_error.empty());
}

TEST(Dispatcher, NoWorkerAtAllStopsTheRunAfterMaxStartFailures) {
  FarmOptions o = fixed_chunks(4);
  o.max_start_failures = 3;
  Fake f(o, 1);
  for (int k = 0; k < 3; ++k) f.spawn_failures.push_back(SpawnFailure{EAGAIN, "fork: EAGAIN", false});
  f.begin(8);
  for (int k = 0; k < 3 && !f.d.halting_now(); ++k) {
    f.step();
    f.now += 10s;
  }
  EXPECT_TRUE(f.d.halting_now());
  const RunReport rep = f.d.end_run();
  EXPECT_EQ(rep.farm_error, "cannot start any worker: fork: EAGAIN (3 attempts in a row)");
  EXPECT_EQ(rep.failed_spawns, 3u);
  EXPECT_EQ(f.rec.failures.size(), 2u) << "said once per streak, and once when the run stops";
}

TEST(Dispatcher, FatalSpawnFailureStopsTheRunAtOnce) {
  Fake f(fixed_chunks(4), 2);
  f.spawn_failures.push_back(SpawnFailure{ENOEXEC, "cannot start worker program ./fake: Exec format error", true});
  f.begin(8);
  f.step();
  EXPECT_EQ(f.starts, 1) << "no second start once the program cannot be executed";
  EXPECT_TRUE(f.d.halting_now());
  const RunReport rep = f.d.end_run();
  EXPECT_EQ(rep.farm_error, "cannot start worker program ./fake: Exec format error");
  ASSERT_EQ(rep.failures.size(), 1u);
  EXPECT_EQ(rep.failures[0].error, ENOEXEC);
}

TEST(Dispatcher, TaskTimeoutKillsWithTermFirstAndChargesTheIndexAsTimeout) {
  FarmOptions o = fixed_chunks(4, 0);
  o.task_timeout = 200ms;
  o.kill_grace = 50ms;
  Fake f(o, 1);
  f.begin(4);
  f.step();
  f.hello(0);
  f.d.on_overdue(0, Overdue::task);
  f.execute();
  ASSERT_EQ(f.kills.size(), 1u);
  EXPECT_TRUE(f.kills[0].term_first);
  f.gone(0, killed_by(SIGTERM), 1);
  ASSERT_EQ(f.rec.failures.size(), 1u);
  EXPECT_EQ(f.rec.failures[0].cause, FailureCause::timeout);
  EXPECT_EQ(f.rec.failures[0].message, "ran longer than 200 ms; sent SIGTERM, then SIGKILL after 50 ms");
}

TEST(Dispatcher, WorkerCrashingOnItsOwnWhileTimedOutDiesOfItsOwnCause) {
  FarmOptions o = fixed_chunks(4, 0);
  o.task_timeout = 200ms;
  Fake f(o, 1);
  f.begin(4);
  f.step();
  f.hello(0);
  f.d.on_overdue(0, Overdue::task);
  f.execute();
  f.gone(0, killed_by(SIGSEGV), 1);
  EXPECT_EQ(f.rec.failures.at(0).cause, FailureCause::signal);
}

TEST(Dispatcher, NoWorkerHoldsMoreThanItsShareOfTheUnfinishedWork) {
  Fake f(fixed_chunks(10), 2);
  f.begin(100);
  f.step();
  f.hello(0);
  f.hello(1);
  f.done(0);  // measured: a worker may now hold hundreds of chunks (Scheduler::depth) but for its share
  f.step();
  std::uint64_t held[2] = {0, 0};
  for (std::size_t s = 0; s < 2; ++s)
    for (const auto& c : f.w[s].queue) held[s] += c.end - c.begin;
  const std::uint64_t unfinished = 100 - 10;  // committed: [0, 10)
  for (std::size_t s = 0; s < 2; ++s) EXPECT_LE(held[s], (unfinished + 1) / 2) << "slot " << s;
  EXPECT_GT(held[0], 10u) << "it was topped up";
}


// A worker stuck on a long task gets no more work queued behind it. Held chunks are not taken
// back, so what the planning pass gave it would wait for that task while the others idle: the
// first measurement raises the depth (Scheduler::depth) from 2 to hundreds, and the pass used to
// top up the silent worker first, in slot order (CI, stop 19: task 4 waited behind task 0).
TEST(Dispatcher, ASilentWorkerIsToppedUpOnlyOnceItHasReported) {
  Fake f(fixed_chunks(1), 2);
  f.begin(6, /*ordered=*/true);
  f.step();
  f.hello(0);
  f.hello(1);
  f.step();
  ASSERT_EQ(f.w[0].queue.size(), 2u);  // [0, 1) and [1, 2): slot 0 is stuck in task 0
  ASSERT_EQ(f.w[1].queue.size(), 2u);  // [2, 3) and [3, 4)
  f.done(1);  // measured: the depth is now far above 2
  f.step();
  EXPECT_EQ(f.w[0].queue.size(), 2u) << "the silent worker was given more behind its stuck task";
  f.done(1);
  f.step();
  f.done(1);
  f.step();
  f.done(1);
  f.step();
  EXPECT_TRUE(f.w[1].queue.empty());
  std::uint64_t committed = 0;
  for (const auto& [b, e] : f.rec.done) committed += e - b;
  EXPECT_EQ(committed, 4u) << "tasks 2..5 all ran on the worker that reports";
}

// F40: a task that closes its process's descriptors (close_range, as daemonising code does)
// returns normally, and its worker dies only when it sends the results: no task is running then.
// Charging nothing let each fresh worker die the same way until the run gave up with the poison
// unnamed; the suspects are what the worker ran since the master last heard from it.
TEST(Dispatcher, ADeathAfterTasksReturnedIsolatesWhatWasNotDeliveredAndChargesOnlyTheTaskThatDoesIt) {
  Fake f(fixed_chunks(4), 2);
  f.begin(40);
  const RunReport rep = f.run([](std::uint64_t i, std::uint32_t) { return i == 7 ? Fake::Outcome::breaks_channel : Fake::Outcome::ok; });
  EXPECT_TRUE(rep.farm_error.empty()) << rep.farm_error;
  EXPECT_EQ(rep.failed_indices(), std::vector<std::uint64_t>{7});
  EXPECT_EQ(rep.succeeded, 39u);
  EXPECT_EQ(rep.retries, 2u);
  EXPECT_TRUE(rep.unfinished.empty());
  const auto seven = f.rec.of(7);
  ASSERT_EQ(seven.size(), 3u);
  for (std::uint32_t a = 0; a < 3; ++a) {
    EXPECT_EQ(seven[a].attempt, a);
    EXPECT_EQ(seven[a].final, a == 2);
    EXPECT_EQ(seven[a].cause, FailureCause::exit);
    EXPECT_NE(seven[a].message.find("died after this task returned, before its result reached the master"), std::string::npos)
        << seven[a].message;
  }
  int isolating = 0;
  for (const FailureRecord& r : f.rec.failures) {
    if (r.index) {
      EXPECT_EQ(*r.index, 7u) << "no other index is ever charged";
    } else {
      ++isolating;
      EXPECT_NE(r.message.find("run again, each piece delivered on its own"), std::string::npos) << r.message;
    }
  }
  EXPECT_GE(isolating, 2) << "[4, 8) and what was queued behind it, then its halves";
  EXPECT_EQ(rep.worker_deaths, static_cast<std::uint64_t>(isolating) + 3);
}

TEST(Dispatcher, SuspectsRunAloneEachDeliveredBeforeTheirWorkerGetsMore) {
  Fake f(fixed_chunks(4));
  f.begin(12);
  f.step();
  f.hello(0);
  ASSERT_EQ(f.w[0].queue.size(), 2u);  // [0, 4) and [4, 8)
  const std::uint64_t second = f.w[0].queue.back().id;
  f.gone_after(0, exited(3), /*delivering=*/true, second);  // both ran; neither reached the master
  ASSERT_EQ(f.rec.failures.size(), 1u);
  EXPECT_FALSE(f.rec.failures[0].index) << "several suspects: none is charged";
  EXPECT_NE(f.rec.failures[0].message.find("indices 0-3, 4-7 run again"), std::string::npos) << f.rec.failures[0].message;
  const std::size_t before = f.rec.chunks.size();
  f.step();
  f.hello(0);
  const auto again = chunks_from(f.rec, before);
  ASSERT_EQ(again.size(), 1u) << "a suspect piece is the only chunk its worker holds";
  EXPECT_EQ(again[0], std::make_tuple(0, 0ull, 4ull, 0u)) << "uncharged";
  f.done(0);
  f.step();
  const auto next = chunks_from(f.rec, before + 1);
  ASSERT_EQ(next.size(), 1u) << "and the next one only once it reported";
  EXPECT_EQ(next[0], std::make_tuple(0, 4ull, 8ull, 0u));
  f.gone_after(0, exited(3), /*delivering=*/true);  // [4, 8) alone dies again: its halves
  const std::size_t halves = f.rec.chunks.size();
  f.step();
  f.hello(0);
  f.done(0);
  f.step();
  const auto split = chunks_from(f.rec, halves);
  ASSERT_EQ(split.size(), 2u);
  EXPECT_EQ(split[0], std::make_tuple(0, 4ull, 6ull, 0u));
  EXPECT_EQ(split[1], std::make_tuple(0, 6ull, 8ull, 0u));
  f.gone_after(0, exited(3), /*delivering=*/false);  // between tasks, after [6, 8) ran
  f.step();
  f.hello(0);
  f.done(0);  // [6, 7)
  f.step();
  f.gone_after(0, killed_by(SIGSEGV), /*delivering=*/false);  // [7, 8) alone: the one suspect is charged
  const auto seven = f.rec.of(7);
  ASSERT_EQ(seven.size(), 1u);
  EXPECT_EQ(seven[0].signal, SIGSEGV);
  EXPECT_EQ(seven[0].chunk_begin, 7u);
  EXPECT_EQ(seven[0].chunk_end, 8u);
  const RunReport rep = f.run([](std::uint64_t, std::uint32_t) { return Fake::Outcome::ok; });
  EXPECT_EQ(rep.succeeded, 12u);
  EXPECT_EQ(rep.retries, 1u);
  EXPECT_TRUE(rep.failures.empty());
}

TEST(Dispatcher, ADeathAfterEverythingItRanWasDeliveredChargesNothing) {
  Fake f(fixed_chunks(4));
  f.begin(12);
  f.step();
  f.hello(0);
  const std::uint64_t first = f.w[0].queue.front().id;
  f.done(0);                                                 // [0, 4) reached the master
  f.gone_after(0, killed_by(SIGKILL), /*delivering=*/false, first);  // killed before it began [4, 8)
  ASSERT_EQ(f.rec.failures.size(), 1u);
  EXPECT_FALSE(f.rec.failures[0].index);
  EXPECT_EQ(f.rec.failures[0].message.find("run again"), std::string::npos) << f.rec.failures[0].message;
  const RunReport rep = f.run([](std::uint64_t, std::uint32_t) { return Fake::Outcome::ok; });
  EXPECT_EQ(rep.succeeded, 12u);
  EXPECT_EQ(rep.retries, 0u);
}

// A thread a task left behind may strike while a later task runs, or after it returned: a lone
// suspect is charged only once it has killed a worker while it ran alone (outside pass F2).
TEST(Dispatcher, ALoneSuspectIsChargedOnlyOnceItKillsAWorkerItRanAloneIn) {
  Fake f(fixed_chunks(1, /*retries=*/0));  // a charge would fail it finally
  f.begin(4);
  f.step();
  f.hello(0);
  f.done(0);                                             // [0, 1) reached the master
  f.gone_after(0, killed_by(SIGSEGV), /*delivering=*/false);  // after [1, 2) returned
  ASSERT_EQ(f.rec.failures.size(), 1u);
  EXPECT_FALSE(f.rec.failures[0].index) << "index 1 may be innocent: not charged yet";
  EXPECT_NE(f.rec.failures[0].message.find("index 1 run again"), std::string::npos) << f.rec.failures[0].message;
  const RunReport rep = f.run([](std::uint64_t, std::uint32_t) { return Fake::Outcome::ok; });
  EXPECT_EQ(rep.succeeded, 4u) << "run alone, it succeeds: no innocent index fails";
  EXPECT_TRUE(rep.failures.empty());
}

// JobSpec::outlet full (standard output not read, h12 F17): no chunk is handed out and no worker
// started meanwhile; what the workers hold runs to its end; once it is not full, the run goes on.
TEST(Dispatcher, AFullOutletHoldsNewWorkWhileWhatIsHeldRunsOn) {
  Fake f(fixed_chunks(4), 2);
  f.begin(400);
  std::size_t chunks_at_hold = 0;
  bool held = false, released = false;
  f.idle = [&] {
    if (!held || released) return false;
    EXPECT_EQ(f.rec.chunks.size(), chunks_at_hold) << "a chunk was handed out while the outlet was full";
    std::uint64_t committed = 0;
    for (const auto& [b, e] : f.rec.done) committed += e - b;
    EXPECT_GT(committed, 0u) << "what the workers held ran on";
    EXPECT_LT(committed, 100u) << "the workers held all of it";
    EXPECT_FALSE(f.d.finished());
    released = true;
    f.d.hold_new_work(false);
    return true;
  };
  const RunReport rep = f.run([&](std::uint64_t i, std::uint32_t) {
    if (i == 0 && !held) {  // (the workers hold their first chunks: later ones could be all)
      held = true;
      chunks_at_hold = f.rec.chunks.size();
      f.d.hold_new_work(true);
    }
    return Fake::Outcome::ok;
  });
  EXPECT_TRUE(released) << "the run never stood still for the full outlet; chunks at hold " << chunks_at_hold << " of " << f.rec.chunks.size();
  EXPECT_EQ(rep.succeeded, 400u);
}
