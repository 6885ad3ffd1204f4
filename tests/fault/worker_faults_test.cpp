// One misbehaving worker program per way of failing: the cause is reported with the index,
// and every other index is correct.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <fstream>

#include "taskfarm/error.hpp"
#include "taskfarm/farm.hpp"
#include "taskfarm/shared_array.hpp"

using namespace taskfarm;

namespace {

struct Outcome {
  RunReport report;
  std::vector<std::int64_t> values;
};

Outcome run_fault(const std::string& fault, FarmOptions o = {}, std::uint64_t n = 40) {
  o.workers = 2;
  o.chunk = o.chunk == 0 ? 4 : o.chunk;
  o.forward_stderr = false;
  Farm farm = Farm::program(o, FAULT_WORKER, {"--fault", fault, "--at", "7"});
  auto out = SharedArray<std::int64_t>::create({n});
  JobSpec job;
  job.extent = {n};
  job.output_handle = out.handle();
  Outcome r{farm.run(job), {}};
  for (std::size_t i = 0; i < n; ++i) r.values.push_back(out.view().element({i}));
  return r;
}

// Index 7 failed finally with `cause`; all 39 others hold i * i.
const FailureRecord& expect_only_index_7_failed(const Outcome& r, FailureCause cause) {
  EXPECT_EQ(r.report.failed_indices(), std::vector<std::uint64_t>{7});
  for (std::size_t i = 0; i < r.values.size(); ++i) {
    if (i != 7) { EXPECT_EQ(r.values[i], static_cast<std::int64_t>(i * i)) << "index " << i; }
  }
  EXPECT_EQ(r.report.succeeded, r.values.size() - 1);
  static FailureRecord none;
  for (const auto& f : r.report.failures)
    if (f.index == 7u) {
      EXPECT_EQ(f.cause, cause) << f.describe();
      EXPECT_TRUE(f.final);
      EXPECT_EQ(f.attempt, 2u) << "retries = 2: the third attempt is the final one";
      EXPECT_GT(f.pid, 0);
      return f;
    }
  ADD_FAILURE() << "no failure record for index 7";
  return none;
}

}  // namespace

TEST(WorkerFaults, SegfaultIsReportedAsSigsegvAndIsolated) {
  const auto r = run_fault("segv");
  const auto& f = expect_only_index_7_failed(r, FailureCause::signal);
  EXPECT_EQ(f.signal, SIGSEGV);
  EXPECT_NE(f.describe().find("SIGSEGV"), std::string::npos) << f.describe();
  EXPECT_EQ(r.report.retries, 2u);
}

TEST(WorkerFaults, AbortIsReportedAsSigabrt) {
  const auto r = run_fault("abort");
  EXPECT_EQ(expect_only_index_7_failed(r, FailureCause::signal).signal, SIGABRT);
}

TEST(WorkerFaults, ExitDuringTaskIsReportedWithItsCode) {
  const auto r = run_fault("exit3");
  EXPECT_EQ(expect_only_index_7_failed(r, FailureCause::exit).exit_code, 3);
}

TEST(WorkerFaults, KernelExceptionIsReportedWithTypeAndMessage) {
  const auto r = run_fault("throw");
  const auto& f = expect_only_index_7_failed(r, FailureCause::exception);
  EXPECT_EQ(f.exception_type, "std::invalid_argument");
  EXPECT_EQ(f.message, "bad input at 7");
  EXPECT_EQ(r.report.worker_deaths, 0u) << "a throwing kernel does not cost the worker";
}

TEST(WorkerFaults, HangIsKilledAtTheTimeoutAndReportedAsTimeout) {
  FarmOptions o;
  o.task_timeout = std::chrono::milliseconds(200);
  o.kill_grace = std::chrono::milliseconds(50);
  const auto r = run_fault("hang", o);
  const auto& f = expect_only_index_7_failed(r, FailureCause::timeout);
  EXPECT_NE(f.message.find("200 ms"), std::string::npos) << f.message;
}

TEST(WorkerFaults, AllocationPastTheMemoryLimitIsReportedAsMemory) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ASan and TSan reserve terabytes of address space for shadow memory: RLIMIT_AS cannot apply";
#endif
  FarmOptions o;
  o.memory_limit = 1ull << 30;
  const auto r = run_fault("oom", o);
  const auto& f = expect_only_index_7_failed(r, FailureCause::memory);
  EXPECT_NE(f.message.find("1.0 GiB"), std::string::npos) << f.message;
}

TEST(WorkerFaults, GarbageOnTheChannelGetsTheWorkerKilledAsFaulty) {
  const auto r = run_fault("garbage");
  const auto& f = expect_only_index_7_failed(r, FailureCause::protocol);
  EXPECT_NE(f.message.find("magic"), std::string::npos) << f.describe();
}

TEST(WorkerFaults, LastStderrLinesComeWithTheFailure) {
  const auto r = run_fault("stderr");
  const auto& f = expect_only_index_7_failed(r, FailureCause::exit);
  EXPECT_NE(f.stderr_tail.find("about to fail on 7"), std::string::npos) << f.describe() << " tail: " << f.stderr_tail;
}

TEST(WorkerFaults, WorkerThatDiesBeforeItsHandshakeStopsTheRunWithTheCause) {
  const auto r = run_fault("early-exit");
  EXPECT_FALSE(r.report.farm_error.empty()) << r.report.succeeded << " " << r.report.failures.size();
  EXPECT_NE(r.report.farm_error.find("exited with code 5 before starting the taskfarm protocol: it is not a worker program"),
            std::string::npos)
      << r.report.farm_error;
  ASSERT_FALSE(r.report.failures.empty());
  EXPECT_EQ(r.report.failures.back().cause, FailureCause::start);
}

TEST(WorkerFaults, ProgramThatIsNotExecutableIsAClearError) {
  const std::string path = testing::TempDir() + "/not-executable-worker";
  std::ofstream(path) << "#!/bin/sh\n";
  ::chmod(path.c_str(), 0644);
  try {
    Farm::program(FarmOptions{}, path);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Permission denied"), std::string::npos) << e.what();
  }
}

TEST(WorkerFaults, HaltNowStopsAtTheFirstFinalFailure) {
  FarmOptions o;
  o.halt = Halt::now;
  o.retries = 0;
  o.chunk = 1;
  const auto r = run_fault("segv", o, 2000);
  EXPECT_TRUE(r.report.halted);
  EXPECT_EQ(r.report.failed_indices(), std::vector<std::uint64_t>{7});
  EXPECT_LT(r.report.succeeded, 2000u - 1);
}

TEST(WorkerFaults, HaltSoonStopsDispatchingAndLetsRunningChunksFinish) {
  FarmOptions o;
  o.halt = Halt::soon;
  o.retries = 0;
  o.chunk = 1;
  const auto r = run_fault("segv", o, 2000);
  EXPECT_TRUE(r.report.halted);
  EXPECT_EQ(r.report.failed_indices(), std::vector<std::uint64_t>{7});
  EXPECT_LT(r.report.succeeded, 2000u - 1) << "nothing new may be dispatched after the final failure";
  EXPECT_EQ(r.report.worker_deaths, 1u) << "soon: the other worker is not killed, it finishes what it holds";
  for (std::size_t i = 0; i < r.values.size(); ++i) {
    if (i != 7 && r.values[i] != 0) { EXPECT_EQ(r.values[i], static_cast<std::int64_t>(i * i)) << i; }
  }
}
