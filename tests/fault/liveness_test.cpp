// No silent hang: a worker that never starts the protocol is stopped at a deadline with a cause
// that says what is wrong; a stuck or stopped worker is visible on time (ticks, stalls); a
// spawn that fails leaves the run going with fewer workers.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>

#include "taskfarm/farm.hpp"
#include "taskfarm/shared_array.hpp"

using namespace taskfarm;
using namespace std::chrono_literals;

namespace {

/// Whether this process has no child left (every worker reaped).
bool no_children() {
  siginfo_t info{};
  return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 && errno == ECHILD;
}

RunReport run_program(FarmOptions o, const std::string& program, std::vector<std::string> args, std::uint64_t n = 3) {
  o.forward_stderr = false;
  Farm farm = Farm::program(o, program, std::move(args));
  JobSpec job;
  job.extent = {n};
  return farm.run(job);
}

}  // namespace

// `taskfarm run --tasks 3 --timeout 2s -- sleep 100` waited forever: the task timeout starts with
// a task, and sleep never asks for one.
TEST(StartDeadline, ProgramThatNeverSaysHelloStopsTheRunWithTheCause) {
  FarmOptions o;
  o.workers = 2;
  o.task_timeout = 2s;
  o.start_timeout = 300ms;
  const auto t0 = std::chrono::steady_clock::now();
  const RunReport r = run_program(o, "sleep", {"100"});
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_NE(r.farm_error.find("sleep did not start the taskfarm protocol within 300 ms — is it a worker program (does it "
                              "call run_worker)?"),
            std::string::npos)
      << r.farm_error;
  ASSERT_FALSE(r.failures.empty());
  EXPECT_EQ(r.failures.back().cause, FailureCause::start);
  EXPECT_FALSE(r.failures.back().index.has_value());
  EXPECT_EQ(r.succeeded, 0u);
  EXPECT_TRUE(no_children());
}

TEST(StartDeadline, ProgramThatExitsBeforeItsHandshakeIsNotAWorkerProgram) {
  FarmOptions o;
  o.workers = 2;
  const RunReport r = run_program(o, "true", {});
  EXPECT_NE(r.farm_error.find("true exited with code 0 before starting the taskfarm protocol: it is not a worker program"),
            std::string::npos)
      << r.farm_error;
  EXPECT_EQ(r.succeeded, 0u);
  EXPECT_TRUE(no_children());
}

// A farm whose workers have greeted before: one stuck start is one failed worker, replaced;
// the run goes on.
TEST(StartDeadline, OneStuckStartAmongGoodOnesIsReplaced) {
  FarmOptions o;
  o.workers = 2;
  o.start_timeout = 300ms;
  o.forward_stderr = false;
  // fault_worker --fault slow-start: the first worker started in a fresh directory blocks
  // before run_worker (it finds no marker); every later one starts normally.
  const std::string dir = testing::TempDir() + "/slow-start-" + std::to_string(::getpid());
  ASSERT_EQ(std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str()), 0);
  Farm farm = Farm::program(o, FAULT_WORKER, {"--fault", "slow-start", "--marker-dir", dir});
  auto out = SharedArray<std::int64_t>::create({40});
  JobSpec job;
  job.extent = {40};
  job.output_handle = out.handle();
  const RunReport r = farm.run(job);
  EXPECT_TRUE(r.farm_error.empty()) << r.farm_error;
  EXPECT_EQ(r.succeeded, 40u);
  EXPECT_EQ(r.worker_deaths, 1u);
  for (std::size_t i = 0; i < 40; ++i) EXPECT_EQ(out.view().element({i}), static_cast<std::int64_t>(i * i));
  farm.close();
  EXPECT_TRUE(no_children());
  std::system(("rm -rf " + dir).c_str());
}
