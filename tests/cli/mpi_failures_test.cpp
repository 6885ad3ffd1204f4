// The failed tasks of `taskfarm run --mpi`, named at rank 0 (master/cli/src/mpi_failures.cpp):
// every node's `failures` text merged into the lines one machine prints for the same failures,
// each with its rank and host; bounded however many fail; a malformed text refused whole.
// tests/mpi/mpi_records.sh (exec) runs it end to end under mpirun.
#include "mpi_failures.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <regex>
#include <sstream>

#include "taskfarm/error.hpp"
#ifdef TASKFARM_WITH_MPI
#include "mpi_link.hpp"
#endif

namespace taskfarm::cli::mpi {
namespace {

FailureRecord failed(std::uint64_t index, int pid) {
  FailureRecord f;
  f.index = index;
  f.final = true;
  f.slot = pid % 2;
  f.pid = pid;
  f.task_process = true;
  if (index % 2 == 0) {
    f.cause = FailureCause::exit;
    f.exit_code = 3;
  } else {
    f.cause = FailureCause::signal;
    f.signal = SIGSEGV;
  }
  f.message = "./task.sh " + std::to_string(index);
  return f;
}

// The lines of a summary that name failures.
std::string failure_lines(const std::string& summary) {
  std::istringstream in(summary);
  std::string s;
  for (std::string line; std::getline(in, line);)
    if (line.rfind("taskfarm: failure", 0) == 0 || line.rfind("taskfarm: ... and", 0) == 0 ||
        line.rfind("taskfarm: failed indices", 0) == 0 || line.rfind("taskfarm: failed commands", 0) == 0)
      s += line + "\n";
  return s;
}

TEST(MpiFailureNames, SayWhatOneMachineSaysWithTheRankAndHost) {
  RunReport node0, node1, one_machine;
  for (std::uint64_t i : {2u, 7u, 9u}) node0.failures.push_back(failed(i, 100 + static_cast<int>(i)));
  for (std::uint64_t i : {4u, 8u}) node1.failures.push_back(failed(i, 200 + static_cast<int>(i)));
  for (std::uint64_t i : {2u, 4u, 7u, 8u, 9u})  // one machine names them as they come: here by index
    one_machine.failures.push_back(failed(i, (i == 4 || i == 8 ? 200 : 100) + static_cast<int>(i)));
  one_machine.tasks = 10;
  FailureNames names({"alpha:0", "beta:1"});
  names.add(1, encode_failures(node1));
  names.add(0, encode_failures(node0));
  SummaryContext c;
  c.retry_note = kExecRetryNote;
  const std::string mpi = format_failures(names.lines(), c);
  EXPECT_NE(mpi.find("taskfarm: failure: index 4 (attempt 0, slot 0, pid 204) on rank 1 (beta): command exited with code 3: "
                     "./task.sh 4\n"),
            std::string::npos)
      << mpi;
  EXPECT_NE(mpi.find("index 7 (attempt 0, slot 1, pid 107) on rank 0 (alpha): command killed by SIGSEGV"), std::string::npos) << mpi;
  EXPECT_NE(mpi.find("taskfarm: failed indices: 2, 4, 7-9\n"), std::string::npos) << mpi;
  EXPECT_EQ(std::regex_replace(mpi, std::regex(" on rank [0-9]+ \\([a-z]+\\)"), ""),
            failure_lines(format_summary(one_machine, c)));
}

TEST(MpiFailureNames, ManyFailuresAreBoundedAndCounted) {
  RunReport node0, node1;
  for (std::uint64_t i = 0; i < 20'000; ++i) (i % 4 == 1 ? node1 : node0).failures.push_back(failed(2 * i + 1, 1));
  const std::string text0 = encode_failures(node0), text1 = encode_failures(node1);
  EXPECT_LT(text0.size(), 20'000u + 16 * kFailureRangesSent);
  FailureNames names({"alpha:0", "beta:1"});
  names.add(0, text0);
  names.add(1, text1);
  SummaryContext c;
  c.joblog = "j.tsv";
  const std::string s = format_failures(names.lines(), c);
  std::size_t named = 0;
  for (std::size_t p = s.find("taskfarm: failure: "); p != std::string::npos; p = s.find("taskfarm: failure: ", p + 1)) ++named;
  EXPECT_EQ(named, kFailuresShown) << s;
  EXPECT_NE(s.find("taskfarm: failure: index 1 (attempt 0, slot 1, pid 1) on rank 0 (alpha): "), std::string::npos) << s;
  EXPECT_NE(s.find("taskfarm: failure: index 3 (attempt 0, slot 1, pid 1) on rank 1 (beta): "), std::string::npos) << s;
  EXPECT_NE(s.find("taskfarm: ... and 19980 more failures (every attempt is in j.tsv)\n"), std::string::npos) << s;
  // The first 50 of 20,000 single indices (1, 3, 5, ...): one machine's words exactly.
  std::string ranges;
  for (std::uint64_t i = 0; i < 50; ++i) ranges += std::to_string(2 * i + 1) + ", ";
  EXPECT_NE(s.find("taskfarm: failed indices: " + ranges + "... (19950 more)\n"), std::string::npos) << s;
}

TEST(MpiFailureNames, IndicesPastWhatANodeSentAreCountedNotListed) {
  // Two nodes whose failures interleave (0, 2, 4, ... and 1, 3, 5, ...): each sends its lowest
  // kFailureRangesSent single indices; together they are one range, cut where the first list
  // ends — every index listed failed, the rest counted.
  RunReport even, odd;
  for (std::uint64_t i = 0; i < 10'000; ++i) (i % 2 == 0 ? even : odd).failures.push_back(failed(i, 1));
  FailureNames names({"alpha:0", "beta:1"});
  names.add(0, encode_failures(even));
  names.add(1, encode_failures(odd));
  const FailureLines f = names.lines();
  ASSERT_EQ(f.failed.size(), 1u);
  EXPECT_EQ(f.failed[0], IndexRange(0, 2 * kFailureRangesSent));
  EXPECT_EQ(f.failed_unlisted, 10'000 - 2 * kFailureRangesSent);
  EXPECT_EQ(f.records, 10'000u);
}

TEST(MpiFailureNames, RankZeroKeepsABoundedListOfRanges) {
  // Many nodes, each a different stretch of single failed indices: rank 0 keeps the lowest
  // kFailureRangesKept ranges, and counts the rest.
  FailureNames names({"alpha:0"});
  const std::size_t nodes = 3 * kFailureRangesKept / kFailureRangesSent;
  for (std::size_t n = 0; n < nodes; ++n) {
    RunReport r;
    for (std::uint64_t i = 0; i < kFailureRangesSent; ++i) r.failures.push_back(failed(2 * (n * kFailureRangesSent + i), 1));
    names.add(0, encode_failures(r));
  }
  const FailureLines f = names.lines();
  EXPECT_LE(f.failed.size(), kFailureRangesKept);
  EXPECT_EQ(f.failed.front(), IndexRange(0, 1));
  EXPECT_EQ(f.failed.size() + f.failed_unlisted, nodes * kFailureRangesSent);
  EXPECT_EQ(f.described.size(), kFailuresShown);
}

TEST(MpiFailureNames, AFailureOfNoTaskComesLast) {
  RunReport r;
  FailureRecord start;
  start.cause = FailureCause::start;
  start.message = "no such program";
  r.failures.push_back(start);
  r.failures.push_back(failed(5, 9));
  FailureNames names({"alpha:0", "beta:1"});
  names.add(1, encode_failures(r));
  const FailureLines f = names.lines();
  ASSERT_EQ(f.described.size(), 2u);
  EXPECT_EQ(f.described[0].rfind("index 5 ", 0), 0u);
  EXPECT_EQ(f.described[1], "worker (attempt 0, slot -1, pid 0) on rank 1 (beta): could not start: no such program");
  EXPECT_EQ(f.records, 2u);
}

TEST(MpiFailureNames, AMalformedTextIsRefusedWhole) {
  RunReport r;
  for (std::uint64_t i : {1u, 5u}) r.failures.push_back(failed(i, 1));
  const std::string good = encode_failures(r);
  FailureNames names({"alpha:0"});
  EXPECT_THROW(names.add(0, good.substr(0, good.size() - 1)), Error);  // cut short
  EXPECT_THROW(names.add(0, good + "x"), Error);                        // bytes past its end
  EXPECT_THROW(names.add(0, ""), Error);
  std::string swapped = good;  // the two ranges [1,2) [5,6) out of order: [5,6) [1,2)
  const std::size_t at = 8 * 3 + 4 * 2;
  std::swap_ranges(swapped.begin() + static_cast<std::ptrdiff_t>(at), swapped.begin() + static_cast<std::ptrdiff_t>(at + 16),
                   swapped.begin() + static_cast<std::ptrdiff_t>(at + 16));
  EXPECT_THROW(names.add(0, swapped), Error);
  const FailureLines none = names.lines();
  EXPECT_TRUE(none.described.empty() && none.failed.empty() && none.records == 0 && none.failed_unlisted == 0);
  names.add(0, good);
  EXPECT_EQ(names.lines().described.size(), 2u);
}

TEST(MpiFailureNames, NothingFailedSendsNothing) { EXPECT_EQ(encode_failures(RunReport{}), ""); }

#ifdef TASKFARM_WITH_MPI
// Rank 0's relay writes the trace, joblog and events: under a file size limit (`ulimit -f` in a
// batch job) a write past it must fail (EFBIG, reported, exit 102) — with SIGXFSZ's default
// action it killed the relay and so the whole MPI job, the file cut mid-record (outside pass h11b).
TEST(MpiLink, AWritePastTheFileSizeLimitFailsInsteadOfKillingTheRelay) {
  char path[] = "/tmp/taskfarm-fsize-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::unlink(path);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    catch_stop_signals();  // what the relay installs before MPI_Init
    const rlimit lim{16, 16};
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(3);
    const char buf[64] = {};
    if (::write(fd, buf, sizeof buf) != 16) ::_exit(4);  // cut at the limit
    ::_exit(::write(fd, buf, sizeof buf) < 0 && errno == EFBIG ? 0 : 5);
  }
  ::close(fd);
  int status = 0;
  pid_t r = 0;
  for (int waited = 0; waited < 1000 && (r = ::waitpid(child, &status, WNOHANG)) == 0; ++waited) ::poll(nullptr, 0, 10);
  if (r == 0) {
    ::kill(child, SIGKILL);
    ::waitpid(child, &status, 0);
    FAIL() << "the child did not end within 10 s";
  }
  ASSERT_FALSE(WIFSIGNALED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}
#endif

}  // namespace
}  // namespace taskfarm::cli::mpi
