// FailureRecord's one-line description: attempts are numbered as in the field, the joblog,
// --events and --trace (0 = the first), so a reader can match a summary line to a joblog row.
#include <gtest/gtest.h>

#include <csignal>

#include "taskfarm/failure.hpp"
#include "taskfarm/pool.hpp"

namespace taskfarm {
namespace {

TEST(FailureRecordTest, DescribeNumbersAttemptsAsTheFieldDoes) {
  FailureRecord f;
  f.cause = FailureCause::signal;
  f.signal = SIGSEGV;
  f.index = 7;
  f.attempt = 2;
  f.slot = 1;
  f.pid = 4122;
  EXPECT_EQ(f.describe(), "index 7 (attempt 2, slot 1, pid 4122): killed by SIGSEGV");
}

TEST(FailureRecordTest, DescribeOfAWorkerDeathHasNoIndex) {
  FailureRecord f;
  f.cause = FailureCause::exit;
  f.exit_code = 3;
  EXPECT_EQ(f.describe(), "worker (attempt 0, slot -1, pid 0): worker exited with code 3");
}

// TaskFailed's first line names the first failure, not only a count (F18).
TEST(FailureRecordTest, TaskFailedNamesTheFirstFailure) {
  FailureRecord f;
  f.cause = FailureCause::signal;
  f.signal = SIGSEGV;
  f.index = 7;
  f.slot = 1;
  f.pid = 4122;
  EXPECT_EQ(std::string(TaskFailed({f}).what()), "1 task failed: index 7 (attempt 0, slot 1, pid 4122): killed by SIGSEGV");
  FailureRecord g = f;
  g.index = 9;
  const std::string two = TaskFailed({f, g}).what();
  EXPECT_EQ(two.rfind("2 tasks failed, the first: index 7 (attempt 0, slot 1, pid 4122): killed by SIGSEGV\n", 0), 0u) << two;
}

}  // namespace
}  // namespace taskfarm
