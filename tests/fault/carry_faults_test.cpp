// A hostile worker's carried result (a descriptor passed with a Done) is validated by the
// master: a missing, extra, misplaced or bogus descriptor, an unsealed or short memfd, bad
// records in it — each kills that worker as a protocol violator, with a message that says what
// was wrong; the master neither crashes nor hangs, and every descriptor it received is closed.
#include <gtest/gtest.h>
#include <dirent.h>

#include <string>

#include "taskfarm/farm.hpp"

using namespace taskfarm;

namespace {

struct Case {
  const char* mode;
  const char* says;  // part of the protocol failure's message
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.mode; }

std::size_t open_fds() {
  std::size_t n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (::readdir(d) != nullptr) ++n;
  ::closedir(d);
  return n;
}

class HostileCarry : public testing::TestWithParam<Case> {};

}  // namespace

TEST_P(HostileCarry, KillsTheWorkerAsFaultyAndLeaksNoDescriptor) {
  const std::size_t fds_before = open_fds();
  {
    FarmOptions o;
    o.workers = 1;
    o.retries = 0;
    o.max_start_failures = 1;  // the first worker killed without progress ends the run
    Farm farm = Farm::program(o, CARRY_WORKER, {"--mode", GetParam().mode});
    JobSpec job;
    job.extent = {4};
    job.results = ResultMode::blobs;
    const auto t0 = std::chrono::steady_clock::now();
    RunReport r = farm.run(job);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << "the master did not notice at once";
    EXPECT_EQ(r.succeeded, 0u);
    EXPECT_EQ(r.unfinished_count(), 4u);
    ASSERT_FALSE(r.failures.empty());
    const FailureRecord& f = r.failures.back();
    EXPECT_EQ(f.cause, FailureCause::protocol) << f.describe();
    EXPECT_NE(f.message.find(GetParam().says), std::string::npos) << f.describe();
  }
  EXPECT_EQ(open_fds(), fds_before) << "a descriptor the worker sent was left open";
}

INSTANTIATE_TEST_SUITE_P(
    Modes, HostileCarry,
    testing::Values(Case{"no-fd", "one entry and one descriptor (has 1 entries, 0 descriptors)"},
                    Case{"two-fds", "one entry and one descriptor (has 1 entries, 2 descriptors)"},
                    Case{"fd-on-hello", "descriptor(s) attached to a Hello message"},
                    Case{"fd-on-plain-done", "descriptor(s) attached to a Done message that carries none"},
                    Case{"pipe-fd", "is not a memfd"},
                    Case{"unsealed", "not sealed against writing and shrinking"},
                    Case{"write-sealed-only", "not sealed against writing and shrinking"},
                    Case{"short", "holds 5 bytes, the Done says"},
                    Case{"bad-records", "result record longer than"},
                    Case{"huge-sparse", "trailing bytes"},
                    Case{"empty-datagram", "shorter than a header"}),
    [](const testing::TestParamInfo<Case>& p) {
      std::string n = p.param.mode;
      for (char& c : n)
        if (c == '-') c = '_';
      return n;
    });
