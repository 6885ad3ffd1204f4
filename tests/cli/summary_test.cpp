// The end of a run: the exit-status table and the summary's wording of what is missing.
#include <gtest/gtest.h>

#include <csignal>

#include "summary.hpp"

namespace taskfarm::cli {
namespace {

RunReport report(std::uint64_t tasks, std::uint64_t failed) {
  RunReport r;
  r.tasks = tasks;
  r.succeeded = tasks - failed;
  r.workers = 2;
  r.wall = std::chrono::seconds(2);
  for (std::uint64_t i = 0; i < failed; ++i) {
    FailureRecord f;
    f.cause = FailureCause::signal;
    f.signal = SIGSEGV;
    f.index = i * 2;
    f.final = true;
    r.failures.push_back(f);
  }
  return r;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

TEST(ExitStatus, FollowsTheTable) {
  EXPECT_EQ(exit_status(report(10, 0), 0), 0);
  EXPECT_EQ(exit_status(report(10, 1), 0), 1);
  EXPECT_EQ(exit_status(report(300, 100), 0), 100);
  EXPECT_EQ(exit_status(report(300, 101), 0), 101);
  EXPECT_EQ(exit_status(report(300, 250), 0), 101);
  RunReport farm = report(10, 0);
  farm.succeeded = 0;
  farm.farm_error = "workers keep failing";
  EXPECT_EQ(exit_status(farm, 0), 3);
  RunReport stopped = report(10, 2);
  stopped.interrupted = true;
  EXPECT_EQ(exit_status(stopped, SIGINT), 130);
  EXPECT_EQ(exit_status(stopped, SIGTERM), 143);
  RunReport short_run = report(10, 0);
  short_run.succeeded = 9;  // a task neither done nor failed, with no reason given
  EXPECT_EQ(exit_status(short_run, 0), 3);
}

TEST(Summary, IndexRangesAreCompressedAndCapped) {
  EXPECT_EQ(format_index_ranges({}), "");
  EXPECT_EQ(format_index_ranges({3}), "3");
  EXPECT_EQ(format_index_ranges({3, 7, 8, 9, 12}), "3, 7-9, 12");
  EXPECT_EQ(format_index_ranges({1, 3, 5, 7}, 2), "1, 3, ... (2 more)");
}

TEST(Summary, RangeListCountsWhatItDoesNotList) {
  EXPECT_EQ(format_range_list({{3, 4}, {7, 10}}, 0), "3, 7-9");
  EXPECT_EQ(format_range_list({{3, 4}, {7, 10}}, 5), "3, 7-9, ... (5 more)");
  EXPECT_EQ(format_range_list({{3, 4}, {7, 10}}, 5, 1), "3, ... (8 more)");
  EXPECT_EQ(format_range_list({}, 4), "... (4 more)");
}

TEST(Summary, SaysWhatFailedAndThatTheOutputIsIncomplete) {
  SummaryContext c;
  c.total = 40;
  c.output = "out.npy";
  c.joblog = "j.tsv";
  c.resume_hint = "taskfarm run --resume ...";
  const std::string s = format_summary(report(40, 2), c);
  EXPECT_TRUE(contains(s, "taskfarm: 40 tasks: 38 succeeded, 2 failed, 0 retries, 2 workers, 2.000 s, 19.0 tasks/s\n")) << s;
  EXPECT_TRUE(contains(s, "failure: ")) << s;
  EXPECT_TRUE(contains(s, "SIGSEGV")) << s;
  EXPECT_TRUE(contains(s, "failed indices: 0, 2\n")) << s;
  EXPECT_TRUE(contains(s, "out.npy is INCOMPLETE: 2 of 40 tasks missing; to compute only those: taskfarm run --resume")) << s;
}

TEST(Summary, ListsTwentyFailuresAndCountsTheRest) {
  SummaryContext c;
  c.total = 100;
  const std::string s = format_summary(report(100, 25), c);
  std::size_t n = 0;
  for (std::size_t p = s.find("failure: "); p != std::string::npos; p = s.find("failure: ", p + 1)) ++n;
  EXPECT_EQ(n, 20u);
  EXPECT_TRUE(contains(s, "... and 5 more failures")) << s;
}

TEST(Summary, SaysAnInterruptionAndWhatIsNotDone) {
  RunReport r = report(50, 0);
  r.succeeded = 20;
  r.interrupted = true;
  SummaryContext c;
  c.total = 50;
  c.stop_signal = SIGTERM;
  c.output = "o.npy";
  const std::string s = format_summary(r, c);
  EXPECT_TRUE(contains(s, "interrupted by SIGTERM: 30 of 50 tasks not done")) << s;
  EXPECT_TRUE(contains(s, "o.npy is INCOMPLETE: 30 of 50 tasks missing; add --joblog")) << s;
}

// A stop once every task ran, while their output waited for a reader (h13b N8): not "0 of 20000
// tasks not done" beside "the other 15534 run again on --resume".
TEST(Summary, AStopAfterEveryTaskRanSaysSo) {
  RunReport r = report(20000, 0);
  r.interrupted = true;
  SummaryContext c;
  c.total = 20000;
  c.stop_signal = SIGTERM;
  c.joblog = "j.tsv";
  c.joblog_recorded = 4466;
  const std::string s = format_summary(r, c);
  EXPECT_TRUE(contains(s, "interrupted by SIGTERM: every one of the 20000 tasks had run\n")) << s;
  EXPECT_FALSE(contains(s, "0 of 20000 tasks not done")) << s;
  EXPECT_TRUE(contains(s, "the joblog records 4466 of the 20000 tasks that succeeded; the other 15534 run again on --resume"))
      << s;
}

TEST(Summary, CompleteRunSaysNothingMissing) {
  SummaryContext c;
  c.total = 10;
  c.output = "o.npy";
  const std::string s = format_summary(report(10, 0), c);
  EXPECT_FALSE(contains(s, "INCOMPLETE")) << s;
  EXPECT_FALSE(contains(s, "failure")) << s;
}

// After the joblog stopped being written, the counts a user acts on are the joblog's: the tasks
// that succeeded after its last whole row are in the output but a --resume runs them again.
TEST(Summary, AfterAJoblogFailureCountsWhatTheJoblogRecords) {
  RunReport r = report(5000, 0);
  r.succeeded = 1794;
  r.interrupted = true;
  SummaryContext c;
  c.total = 5000;
  c.output = "out.npy";
  c.joblog = "j.tsv";
  c.resume_hint = "taskfarm run --resume ...";
  c.stop_reason = "cannot write joblog j.tsv: No space left on device";
  c.joblog_recorded = 1327;
  const std::string s = format_summary(r, c);
  EXPECT_TRUE(contains(s, "stopped: cannot write joblog j.tsv: No space left on device: 3206 of 5000 tasks not done")) << s;
  EXPECT_TRUE(contains(s, "the joblog records 1327 of the 1794 tasks that succeeded; the other 467")) << s;
  EXPECT_TRUE(contains(s, "out.npy is INCOMPLETE: 3673 of 5000 tasks missing")) << s;
}

TEST(Summary, WorkersAreSaidReplacedOnlyAsManyAsWere) {
  RunReport r = report(10, 0);
  r.succeeded = 0;
  r.worker_deaths = 5;
  r.workers_replaced = 4;  // the farm gave up after the fifth
  r.farm_error = "workers keep dying";
  std::string s = format_summary(r, SummaryContext{});
  EXPECT_TRUE(contains(s, "5 workers died (4 replaced)\n")) << s;
  r.worker_deaths = 2;  // --timeout kills of the last tasks: nothing left to replace them for
  r.workers_replaced = 0;
  s = format_summary(r, SummaryContext{});
  EXPECT_TRUE(contains(s, "2 workers died\n")) << s;
  EXPECT_FALSE(contains(s, "replaced")) << s;
  r.workers_replaced = 2;
  EXPECT_TRUE(contains(format_summary(r, SummaryContext{}), "2 workers died and were replaced")) << s;
}

// A culprit's line breaks, tabs and escape sequences are shown, not sent (outside pass h12 F7).
TEST(OneLine, ControlCharactersOfACulpritAreShownNotSent) {
  EXPECT_EQ(one_line("plain '/x/y.npy'"), "plain '/x/y.npy'");
  EXPECT_EQ(one_line("'no\nsuch\x1b[31mcmd'"), "'no\\nsuch\\x1b[31mcmd'");
  EXPECT_EQ(one_line("a\tb\x7f"), "a\\tb\\x7f");
  EXPECT_EQ(one_line("caf\xc3\xa9"), "caf\xc3\xa9") << "UTF-8 stays as it is";
  // C1 controls (CSI as U+009B) and bytes that are not UTF-8 do not reach the terminal (h12b N6).
  EXPECT_EQ(one_line("no\xc2\x9b" "2Jcmd"), "no\\xc2\\x9b2Jcmd");
  EXPECT_EQ(one_line("a\x9b" "31mb \xff\xc3"), "a\\x9b31mb \\xff\\xc3");
  EXPECT_EQ(one_line("\xc2\xa0\xe2\x82\xac"), "\xc2\xa0\xe2\x82\xac") << "U+00A0 and U+20AC are printable";
}

}  // namespace
}  // namespace taskfarm::cli
