// Program mode: worker programs started with Boost.Process, results into a shared array or
// back as values; a worker program started by hand refuses with exit 2.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "taskfarm/error.hpp"
#include "taskfarm/farm.hpp"
#include "taskfarm/range_set.hpp"
#include "taskfarm/range_feed.hpp"
#include "taskfarm/serialize.hpp"
#include "taskfarm/shared_array.hpp"

using namespace taskfarm;

TEST(ProgramMode, WorkersWriteIntoTheOutputArray) {
  FarmOptions o;
  o.workers = 2;
  Farm farm = Farm::program(o, FAULT_WORKER);
  auto out = SharedArray<std::int64_t>::create({5000});
  JobSpec job;
  job.extent = {5000};
  job.output_handle = out.handle();
  for (int run = 0; run < 3; ++run) {  // warm workers across runs
    RunReport r = farm.run(job);
    EXPECT_EQ(r.succeeded, 5000u);
    EXPECT_TRUE(r.failures.empty());
    for (std::size_t i = 0; i < 5000; ++i) ASSERT_EQ(out.view().element({i}), static_cast<std::int64_t>(i * i));
  }
}

// Warm workers keep the last run's arrays mapped while the next run names the same ones. A run
// that names another array, or a .npy path that is a new file by now, must get the new one.
TEST(ProgramMode, EachRunWritesTheArrayItNames) {
  FarmOptions o;
  o.workers = 2;
  Farm farm = Farm::program(o, FAULT_WORKER);
  auto a = SharedArray<std::int64_t>::create({300});
  auto b = SharedArray<std::int64_t>::create({300});
  auto run_into = [&farm](const std::string& handle) {
    JobSpec job;
    job.extent = {300};
    job.output_handle = handle;
    EXPECT_EQ(farm.run(job).succeeded, 300u);
  };
  auto filled = [](const ArrayView<std::int64_t>& v) {
    for (std::size_t i = 0; i < 300; ++i)
      if (v.element({i}) != static_cast<std::int64_t>(i * i)) return false;
    return true;
  };
  run_into(a.handle());
  ASSERT_TRUE(filled(a.view()));
  std::fill(a.view().begin(), a.view().end(), 0);
  run_into(a.handle());  // the same array again: the warm workers' mapping of it
  ASSERT_TRUE(filled(a.view()));
  std::fill(a.view().begin(), a.view().end(), 0);
  run_into(b.handle());
  EXPECT_TRUE(filled(b.view()));
  EXPECT_EQ(a.view().element({299}), 0) << "a run that named b wrote into a";
  run_into(a.handle());
  EXPECT_TRUE(filled(a.view()));

  // A segment the user names, removed and created again under the same name between runs.
  const std::string name = "taskfarm-test-" + std::to_string(::getpid()) + "-renamed";
  const std::string handle = "shm:i8:300:" + name;
  for (int round = 0; round < 2; ++round) {
    ::shm_unlink(("/" + name).c_str());
    const int fd = ::shm_open(("/" + name).c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::ftruncate(fd, 300 * sizeof(std::int64_t)), 0);
    void* p = ::mmap(nullptr, 300 * sizeof(std::int64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    ASSERT_NE(p, MAP_FAILED);
    run_into(handle);
    EXPECT_TRUE(filled(ArrayView<std::int64_t>(static_cast<std::int64_t*>(p), {300})))
        << "round " << round << ": the workers wrote into the segment's previous incarnation";
    ::munmap(p, 300 * sizeof(std::int64_t));
  }
  ::shm_unlink(("/" + name).c_str());

  char dir[] = "/tmp/taskfarm-npy-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/out.npy";
  for (int round = 0; round < 2; ++round) {  // the same path, a new file each time
    std::remove(path.c_str());
    auto f = SharedArray<std::int64_t>::create_npy(path, {300});
    run_into(f.handle());
    EXPECT_TRUE(filled(f.view())) << "round " << round << ": the workers wrote into an older file";
  }
  std::remove(path.c_str());
  ::rmdir(dir);
}

TEST(ProgramMode, ValuesComeBackInOrderWhenAsked) {
  FarmOptions o;
  o.workers = 2;
  Farm farm = Farm::program(o, FAULT_WORKER);
  struct Collect : FarmObserver {
    std::vector<std::int64_t> got;
    void on_result(const IndexResult& r) override {
      EXPECT_EQ(r.index, got.size());
      got.push_back(detail::deserialize<std::int64_t>(r.value));
    }
  } obs;
  JobSpec job;
  job.extent = {1000};
  job.results = ResultMode::blobs;
  job.ordered = true;
  farm.run(job, &obs);
  ASSERT_EQ(obs.got.size(), 1000u);
  for (std::size_t i = 0; i < 1000; ++i) EXPECT_EQ(obs.got[i], static_cast<std::int64_t>(i * i));
}

TEST(ProgramMode, CapturedStdoutComesBackPerTask) {
  FarmOptions o;
  o.workers = 2;
  Farm farm = Farm::program(o, FAULT_WORKER, {"--print"});
  struct Collect : FarmObserver {
    std::vector<std::string> text;
    void on_result(const IndexResult& r) override { text.emplace_back(r.text.data(), r.text.size()); }
  } obs;
  JobSpec job;
  job.extent = {50};
  job.results = ResultMode::blobs;
  job.capture_stdout = true;
  job.ordered = true;
  farm.run(job, &obs);
  ASSERT_EQ(obs.text.size(), 50u);
  for (std::size_t i = 0; i < 50; ++i) EXPECT_EQ(obs.text[i], "task " + std::to_string(i) + "\n");
}

TEST(ProgramMode, WorkerStartedByHandSaysHowAndExits2) {
  std::string cmd = std::string("env -u TASKFARM_WORKER ") + FAULT_WORKER + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char line[1024] = {};
  ASSERT_NE(std::fgets(line, sizeof line, p), nullptr);
  const int status = ::pclose(p);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(std::string(line).find("taskfarm worker program"), std::string::npos) << line;
  EXPECT_NE(std::string(line).find("taskfarm run"), std::string::npos) << line;
}

TEST(ProgramMode, MissingProgramIsAClearError) {
  try {
    Farm::program(FarmOptions{}, "/nonexistent/worker");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/worker"), std::string::npos) << e.what();
  }
}

// JobSpec::ranges from a caller of the Farm meet the rule CallOptions::only meets in Pool:
// a bad range is an Error naming it, before any worker is asked to run it.
TEST(ProgramMode, BadJobRangesAreAClearError) {
  FarmOptions o;
  o.workers = 1;
  Farm farm = Farm::program(o, FAULT_WORKER);
  auto message = [&farm](std::vector<IndexRange> ranges) {
    JobSpec job;
    job.extent = {10};
    job.ranges = std::move(ranges);
    try {
      farm.run(job);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({{4, 4}}).find("JobSpec::ranges: range [4, 4) is empty"), std::string::npos) << message({{4, 4}});
  EXPECT_NE(message({{0, 5}, {3, 7}}).find("range [3, 7) overlaps"), std::string::npos) << message({{0, 5}, {3, 7}});
  EXPECT_NE(message({{5, 11}}).find("range [5, 11) reaches past the index space of 10"), std::string::npos);
  JobSpec good;  // and the Farm is still usable: the selected ranges, no more
  good.extent = {10};
  good.ranges = {{2, 4}, {7, 10}};
  EXPECT_EQ(farm.run(good).succeeded, 5u);
}

// A run fed its ranges while it runs (JobSpec::feed, what a node of an MPI run gets): the
// Supervisor watches the feed's fd among its workers' and asks at low water. Each `want_more`
// makes the next batch readable through a pipe; the last batch closes the feed. Every fed index
// is written exactly as the serial loop would, and nothing outside the fed ranges is touched.
TEST(ProgramMode, RangesFedWhileRunningAreAllRunAndTheRunEndsWhenTheFeedCloses) {
  struct PipeFeed : RangeFeed {
    int p[2] = {-1, -1};
    std::vector<Batch> batches;
    std::size_t next = 0;
    int asked = 0;
    PipeFeed() { EXPECT_EQ(::pipe2(p, O_CLOEXEC | O_NONBLOCK), 0); }
    ~PipeFeed() override {
      ::close(p[0]);
      ::close(p[1]);
    }
    int fd() const override { return p[0]; }
    void want_more() override {
      ++asked;
      EXPECT_EQ(::write(p[1], "x", 1), 1);
    }
    Batch read() override {
      char c;
      EXPECT_EQ(::read(p[0], &c, 1), 1);
      return next < batches.size() ? batches[next++] : Batch{{}, true};
    }
    std::uint64_t low_water() const override { return 0; }
  };
  FarmOptions o;
  o.workers = 2;
  o.chunk = 7;
  Farm farm = Farm::program(o, FAULT_WORKER);
  auto out = SharedArray<std::int64_t>::create({3000});
  std::fill(out.view().begin(), out.view().end(), -1);
  PipeFeed feed;
  feed.batches = {{{{100, 400}}, false}, {{{400, 401}, {1000, 2000}}, false}, {{{2500, 3000}}, true}};
  JobSpec job;
  job.extent = {3000};
  job.ranges = {{0, 50}};
  job.output_handle = out.handle();
  job.feed = &feed;
  const RunReport r = farm.run(job);
  EXPECT_EQ(r.tasks, 50u + 300u + 1u + 1000u + 500u);
  EXPECT_EQ(r.succeeded, r.tasks);
  EXPECT_TRUE(r.unfinished.empty());
  EXPECT_EQ(feed.asked, 3) << "asked once per batch; the third closed the feed";
  auto fed = [](std::size_t i) { return i < 50 || (i >= 100 && i < 401) || (i >= 1000 && i < 2000) || i >= 2500; };
  for (std::size_t i = 0; i < 3000; ++i)
    ASSERT_EQ(out.view().element({i}), fed(i) ? static_cast<std::int64_t>(i * i) : -1) << "index " << i;
}

// Outside pass F11: workers start all through a run (retries, recycling, crashes), and each
// opened the .npy output by its path: a file renamed onto that path during the run — not one
// taskfarm made — was written by the later workers, the results split between two files. They
// reach it through the master's descriptor of the file now, held for the run.
TEST(ProgramMode, AFileRenamedOntoTheOutputPathDuringARunIsNotWritten) {
  char dir[] = "/tmp/taskfarm-npy-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/out.npy", theirs = std::string(dir) + "/theirs.npy";
  auto out = SharedArray<std::int64_t>::create_npy(path, {40});
  auto user = SharedArray<std::int64_t>::create_npy(theirs, {40});
  std::fill(user.view().begin(), user.view().end(), -7);
  struct RenameOnFirstDone : FarmObserver {
    std::string from, to;
    bool done = false;
    void on_tasks_done(const TasksDone&) override {
      if (!done) {
        EXPECT_EQ(std::rename(from.c_str(), to.c_str()), 0);
      }
      done = true;
    }
  } rename;
  rename.from = theirs;
  rename.to = path;
  FarmOptions o;
  o.workers = 2;
  o.chunk = 1;
  o.max_tasks_per_worker = 1;  // a fresh worker for every task: most start after the rename
  Farm farm = Farm::program(o, FAULT_WORKER);
  JobSpec job;
  job.extent = {40};
  job.output_handle = "npy:i8:40:" + path;
  const RunReport r = farm.run(job, &rename);
  EXPECT_EQ(r.succeeded, 40u);
  ASSERT_TRUE(rename.done);
  for (std::size_t i = 0; i < 40; ++i) {
    EXPECT_EQ(out.view().element({i}), static_cast<std::int64_t>(i * i)) << "index " << i << " is missing from the run's file";
    EXPECT_EQ(user.view().element({i}), -7) << "index " << i << " was written into the file renamed onto the path";
  }
  std::remove(path.c_str());
  ::rmdir(dir);
}
