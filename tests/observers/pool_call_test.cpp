// A Pool call with CallOptions: its observer hears every task once, `only` runs exactly the
// ranges given, and what a call cannot do is refused naming it. A joblog written by one call
// and resumed by the next, through the library alone: the second computes only what the first
// did not record, and the output equals the serial loop bit for bit.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "taskfarm/event_stream.hpp"
#include "taskfarm/fanout_observer.hpp"
#include "taskfarm/joblog.hpp"
#include "taskfarm/pool.hpp"
#include "taskfarm/shared_array.hpp"
#include "taskfarm/worker.hpp"
#include "test_support.hpp"

namespace taskfarm {
namespace {

/// The options of a call that `observer` hears.
CallOptions observed_by(FarmObserver* observer) {
  CallOptions call;
  call.observer = observer;
  return call;
}

/// The options of a call that runs only `ranges`.
CallOptions only(std::vector<IndexRange> ranges) {
  CallOptions call;
  call.only = std::move(ranges);
  return call;
}

double f(std::uint64_t i) { return std::sin(static_cast<double>(i) * 0.01) * std::sqrt(static_cast<double>(i) + 1.0); }

/// Counts, per index, the successes the per-task events report.
struct Tally final : FarmObserver {
  std::map<std::uint64_t, int> ok;
  void on_tasks_done(const TasksDone& t) override {
    auto failed = t.failed.begin();
    for (std::uint64_t i = t.begin; i < t.end; ++i) {
      if (failed != t.failed.end() && *failed == i) ++failed;
      else ++ok[i];
    }
  }
};

/// Each index of the joblog at `path` with an "ok" row, and how many rows say so.
std::map<std::uint64_t, int> ok_rows(const std::string& path) {
  std::ifstream in(path);
  std::map<std::uint64_t, int> rows;
  std::string line;
  for (int n = 0; std::getline(in, line); ++n)
    if (n >= 2 && line.find("\tok\t") != std::string::npos) ++rows[std::stoull(line.substr(0, line.find('\t')))];
  return rows;
}

PoolOptions two_workers() {
  PoolOptions o;
  o.workers = 2;
  o.chunk = 7;
  return o;
}

TEST(PoolCall, ObserverHearsEveryTaskOnceBesideTheCallsOwnResults) {
  Pool pool(two_workers());
  Tally tally;
  std::vector<std::uint64_t> sunk;
  pool.imap<double>(300, f, [&](std::uint64_t i, double&& v) {
    EXPECT_EQ(v, f(i));
    sunk.push_back(i);
  }, observed_by(&tally));
  ASSERT_EQ(sunk.size(), 300u);
  for (std::uint64_t i = 0; i < 300; ++i) EXPECT_EQ(sunk[i], i) << "imap keeps its order with an observer";
  ASSERT_EQ(tally.ok.size(), 300u);
  for (const auto& [i, n] : tally.ok) EXPECT_EQ(n, 1) << "index " << i;

  Tally of_map;
  const std::vector<double> values = pool.map<double>(100, f, observed_by(&of_map));
  for (std::uint64_t i = 0; i < 100; ++i) EXPECT_EQ(values[i], f(i));
  EXPECT_EQ(of_map.ok.size(), 100u);
}

/// The worker processes this process has now (a fork-mode call reaps its own before it returns).
std::size_t children_of_this_process() {
  std::ifstream c("/proc/self/task/" + std::to_string(::getpid()) + "/children");
  EXPECT_TRUE(c.is_open()) << "no /proc/self/task/<pid>/children: the check would prove nothing";
  std::size_t n = 0;
  for (std::string pid; c >> pid;) ++n;
  return n;
}

// The hostile tester's F7: an observer's sink that throws inside on_tasks_done. It is the
// caller's error: the call ends with that exception, no worker is killed for it (it used to be
// killed as a protocol offender and the exception vanished), nothing is left behind, and the
// Pool's next call works.
TEST(PoolCall, AnObserverThatThrowsEndsTheCallWithItsExceptionAndBlamesNoWorker) {
  PoolOptions o;
  o.workers = 2;
  o.chunk = 1;
  Pool pool(o);
  int lines = 0;
  EventStream events([&](std::string_view) {
    if (++lines == 10) throw std::runtime_error("sink is full");
  });
  FanoutObserver observers;
  observers.add(&events);
  std::string what;
  try {
    pool.for_each(100, [](std::uint64_t) {}, observed_by(&observers));
  } catch (const std::runtime_error& e) {
    what = e.what();
  }
  EXPECT_EQ(what, "sink is full") << "the observer's own exception reaches the caller unchanged";
  EXPECT_EQ(lines, 10) << "the observer hears nothing more once it threw";
  EXPECT_EQ(children_of_this_process(), 0u) << "the call's workers are reaped";

  Tally tally;
  pool.for_each(100, [](std::uint64_t) {}, observed_by(&tally));
  EXPECT_EQ(tally.ok.size(), 100u);
  EXPECT_EQ(pool.last_report().worker_deaths, 0u);
  EXPECT_EQ(pool.last_report().succeeded, 100u);
}

TEST(PoolCall, OnlyRunsExactlyTheRangesGiven) {
  Pool pool(two_workers());
  auto out = SharedArray<std::int64_t>::create({100});
  for (std::uint64_t i = 0; i < 100; ++i) out.data()[i] = -1;
  std::int64_t* y = out.data();
  pool.for_each(100, [y](std::uint64_t i) { y[i] = static_cast<std::int64_t>(i); },
                only({{3, 10}, {50, 61}}));
  EXPECT_EQ(pool.last_report().tasks, 18u);
  EXPECT_EQ(pool.last_report().succeeded, 18u);
  for (std::uint64_t i = 0; i < 100; ++i) {
    const bool in = (i >= 3 && i < 10) || (i >= 50 && i < 61);
    EXPECT_EQ(y[i], in ? static_cast<std::int64_t>(i) : -1) << "index " << i;
  }

  std::vector<std::uint64_t> sunk;
  pool.imap<double>(100, f, [&](std::uint64_t i, double&&) { sunk.push_back(i); },
                    only({{98, 100}}));
  EXPECT_EQ(sunk, (std::vector<std::uint64_t>{98, 99}));

  Tally none;
  pool.for_each(100, [](std::uint64_t) { throw std::runtime_error("nothing may run"); },
                {.observer = &none, .only = std::vector<IndexRange>{}});
  EXPECT_EQ(pool.last_report().tasks, 0u);
  EXPECT_TRUE(none.ok.empty());
}

TEST(PoolCall, WhatACallCannotDoIsRefusedNamingIt) {
  Pool pool(two_workers());
  auto nothing = [](std::uint64_t) { return 0.0; };
  EXPECT_NE(test::error_of([&] { pool.map<double>(10, nothing, only({{0, 5}})); }).find("map and try_map return a value for every index"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { pool.try_map<double>(10, nothing, only({{0, 5}})); }).find("use for_each, imap or imap_unordered"),
            std::string::npos);
  auto each = [&](std::vector<IndexRange> r) { return test::error_of([&] { pool.for_each(10, nothing, only(r)); }); };
  EXPECT_NE(each({{3, 3}}).find("only: range [3, 3) is empty"), std::string::npos) << each({{3, 3}});
  EXPECT_NE(each({{0, 5}, {4, 6}}).find("range [4, 6) overlaps or precedes"), std::string::npos);
  EXPECT_NE(each({{5, 6}, {0, 2}}).find("range [0, 2) overlaps or precedes"), std::string::npos);
  EXPECT_NE(each({{8, 11}}).find("range [8, 11) reaches past the index space of 10 tasks"), std::string::npos);

  PoolOptions threads;
  threads.backend = Backend::threads;
  threads.workers = 2;
  Pool on_threads(threads);
  Tally tally;
  EXPECT_NE(test::error_of([&] { on_threads.for_each(10, nothing, observed_by(&tally)); }).find("CallOptions::observer needs the fork backend"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { on_threads.for_each(10, nothing, only({{0, 1}})); }).find("CallOptions::only needs the fork backend"),
            std::string::npos);
}

// One worker and fixed chunks: the chunks before the one holding index 100 commit (and their
// rows are written) before its exception ends the run (halt now), so the first call records at
// least those 96 tasks, and never index 100. The second call resumes from the joblog alone.
TEST(PoolCall, JoblogOfAHaltedCallResumesComputingOnlyWhatItDidNotRecord) {
  test::TempDir dir;
  const std::uint64_t n = 400;
  const RunIdentity job{{n}, dir.file("out.npy"), "float64", "", ""};
  PoolOptions o;
  o.workers = 1;
  o.chunk = 16;
  o.retries = 0;
  o.halt = Halt::now;
  std::uint64_t fail_at = 100;
  auto kernel = [&fail_at](double* y) {
    return [y, &fail_at](std::uint64_t i) {
      if (i == fail_at) throw std::runtime_error("the first run stops here");
      y[i] = f(i);
    };
  };
  std::uint64_t recorded = 0;
  {
    auto out = SharedArray<double>::create_npy(dir.file("out.npy"), {n});
    Joblog log = Joblog::create(dir.file("run.joblog"), job);
    EXPECT_EQ(log.todo(), (std::vector<IndexRange>{{0, n}}));
    Pool pool(o);
    EXPECT_THROW(pool.for_each(n, kernel(out.data()), {.observer = &log, .only = log.todo()}), TaskFailed);
    EXPECT_TRUE(pool.last_report().halted);
    recorded = log.recorded_ok();
  }
  const std::map<std::uint64_t, int> first = ok_rows(dir.file("run.joblog"));
  EXPECT_GE(recorded, 96u);
  EXPECT_LT(recorded, n);
  EXPECT_EQ(first.size(), recorded);
  EXPECT_EQ(first.count(100), 0u) << "the index that failed is recorded as done";

  fail_at = n;  // the second run fails nowhere
  auto out = SharedArray<double>::open_npy(dir.file("out.npy"));
  Joblog log = Joblog::resume(dir.file("run.joblog"), job);
  EXPECT_EQ(log.earlier_done(), recorded);
  Tally computed;
  FanoutObserver both;
  both.add(&log);
  both.add(&computed);
  Pool pool(o);
  pool.for_each(n, kernel(out.data()), {.observer = &both, .only = log.todo()});
  EXPECT_EQ(pool.last_report().tasks, n - recorded);
  EXPECT_EQ(computed.ok.size(), n - recorded) << "the resume computes only what the first run did not record";
  for (const auto& [i, times] : computed.ok) EXPECT_EQ(first.count(i), 0u) << "index " << i << " was recorded already";

  const std::map<std::uint64_t, int> rows = ok_rows(dir.file("run.joblog"));
  EXPECT_EQ(rows.size(), n);
  for (const auto& [i, times] : rows) EXPECT_EQ(times, 1) << "index " << i << " has " << times << " ok rows";
  for (std::uint64_t i = 0; i < n; ++i) {
    const double want = f(i);
    EXPECT_EQ(std::memcmp(&out.data()[i], &want, sizeof want), 0) << "index " << i << " differs from the serial loop";
  }
}

TEST(PoolCall, ResumeOfAnotherJobOrOfNoJoblogIsRefusedNamingIt) {
  test::TempDir dir;
  { Joblog::create(dir.file("run.joblog"), RunIdentity{{10}, "a.npy", "float64", "", ""}); }
  EXPECT_NE(test::error_of([&] { Joblog::resume(dir.file("run.joblog"), RunIdentity{{10}, "b.npy", "float64", "", ""}); })
                .find("wrote 'a.npy', this run 'b.npy'"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { Joblog::resume(dir.file("run.joblog"), RunIdentity{{11}, "a.npy", "float64", "", ""}); })
                .find("had index space 10, this run 11"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { Joblog::resume(dir.file("none.joblog"), RunIdentity{{10}, "", "", "", ""}); })
                .find("(no earlier run to resume)"),
            std::string::npos);
  EXPECT_EQ(Joblog::resume(dir.file("run.joblog"), RunIdentity{{10}, "a.npy", "float64", "", ""}).todo(),
            (std::vector<IndexRange>{{0, 10}}))
      << "no row recorded: everything is left";
}

TEST(PoolCall, JoblogCreateReplacesAFileWholeAndLeavesAFifoAlone) {
  test::TempDir dir;
  const std::string path = dir.file("run.joblog");
  std::ofstream(path) << "a file of yours\n";
  ASSERT_EQ(::link(path.c_str(), dir.file("other-name").c_str()), 0);
  { Joblog::create(path, RunIdentity{{5}, "", "", "", ""}); }
  std::string kept;
  std::getline(std::ifstream(dir.file("other-name")), kept);
  EXPECT_EQ(kept, "a file of yours") << "the old file was written, not replaced";
  EXPECT_NO_THROW(read_joblog(path));

  const std::string fifo = dir.file("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_NE(test::error_of([&] { Joblog::create(fifo, RunIdentity{{5}, "", "", "", ""}); }).find("FIFO"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_NE(test::error_of([&] { Joblog::create(path, RunIdentity{{5}, "a\tb.npy", "", "", ""}); }).find("holds a tab"),
            std::string::npos);
}

// The same observer serves a Farm as it serves a Pool: the library's two faces.
TEST(FarmRun, JoblogRecordsEveryTaskOfAFarmRun) {
  struct Nothing final : JobRunner {
    void run(std::uint64_t, std::string&) override {}
  };
  test::TempDir dir;
  Joblog log = Joblog::create(dir.file("farm.joblog"), RunIdentity{{50}, "", "", "", ""});
  FarmOptions o;
  o.workers = 2;
  Farm farm = Farm::fork(o);
  JobSpec job;
  job.extent = {50};
  job.ranges = {{10, 50}};
  const RunReport r = farm.run(job, &log, [] { return std::make_unique<Nothing>(); });
  EXPECT_EQ(r.succeeded, 40u);
  EXPECT_EQ(log.recorded_ok(), 40u);
  EXPECT_EQ(read_joblog(dir.file("farm.joblog")).done.ranges(), (std::vector<IndexRange>{{10, 50}}));
}

}  // namespace
}  // namespace taskfarm
