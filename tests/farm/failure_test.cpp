// FailureRecord's one-line description: attempts are numbered as in the field, the joblog,
// --events and --trace (0 = the first), so a reader can match a summary line to a joblog row.
#include <gtest/gtest.h>

#include <csignal>

#include "taskfarm/failure.hpp"

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

}  // namespace
}  // namespace taskfarm
