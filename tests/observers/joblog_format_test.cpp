// The joblog's format: identity lines and rows, reading them back (what a resume trusts),
// the ranges a resume runs, and the checks that an earlier run is the same job.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "taskfarm/error.hpp"
#include "taskfarm/joblog_file.hpp"

namespace taskfarm {
namespace {

class TempFile {
 public:
  TempFile() : path_(::testing::TempDir() + "joblog-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++)) {}
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }
  void write(const std::string& text) const { std::ofstream(path_, std::ios::binary) << text; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

/// A new joblog at `path`, as a run makes one (its file: an empty new file).
JoblogFile new_joblog(const std::string& path, const RunIdentity& id) {
  return JoblogFile::create(UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)), path, id);
}

RunIdentity sample_identity() { return RunIdentity{{10, 3}, "/tmp/out x.npy", "int32", "10x3x4", ""}; }

TEST(Joblog, IdentityLineRoundTrips) {
  const RunIdentity id = sample_identity();
  EXPECT_EQ(parse_identity(format_identity(id)), id);
  EXPECT_EQ(parse_identity(format_identity(RunIdentity{{5}, "", "", "", ""})), (RunIdentity{{5}, "", "", "", ""}));
  EXPECT_FALSE(parse_identity("index\tslot"));
  EXPECT_FALSE(parse_identity("# taskfarm joblog 2\textent=5\toutput=\tdtype=\tshape="));
  EXPECT_FALSE(parse_identity("# taskfarm joblog 1\textent=5x\toutput=\tdtype=\tshape="));
  RunIdentity runs = sample_identity();
  runs.runs = "commands (--exec)";
  EXPECT_EQ(parse_identity(format_identity(runs)), runs);
  EXPECT_EQ(format_identity(sample_identity()).find("runs="), std::string::npos) << "not written when not recorded";
  EXPECT_FALSE(parse_identity("# taskfarm joblog 1\textent=5\toutput=\tdtype=\tshape=\truns="));
  EXPECT_FALSE(parse_identity("# taskfarm joblog 1\textent=5\toutput=\tdtype=\tshape=\tkind=x"));
}

TEST(Joblog, RowsAreTenTabSeparatedColumns) {
  std::string s;
  JoblogRow row;
  row.index = 7;
  row.slot = 1;
  row.pid = 1234;
  row.start = 1700000000.25;
  row.runtime = 0.5;
  row.attempt = 2;
  row.outcome = "failed";
  row.signal = 11;
  row.cause = "signal";
  append_row(s, row);
  EXPECT_EQ(s, "7\t1\t1234\t1700000000.250\t0.500000\t2\tfailed\t0\t11\tsignal\n");
}

TEST(Joblog, ReadsWhatWasWrittenAndIgnoresATornLastLine) {
  TempFile f;
  {
    JoblogFile log = new_joblog(f.path(), RunIdentity{{6}, "", "", "", ""});
    std::string rows;
    for (std::uint64_t i : {0u, 2u, 3u}) {
      JoblogRow r;
      r.index = i;
      append_row(rows, r);
    }
    JoblogRow retried;
    retried.index = 4;
    retried.outcome = "retried";
    append_row(rows, retried);
    rows += "5\t0\t1\t2.000\t0.1\t0\tok";  // a master killed mid-write: no '\n'
    log.write(rows);
  }
  const EarlierRun run = read_joblog(f.path());
  EXPECT_EQ(run.identity.extent, std::vector<std::uint64_t>{6});
  EXPECT_EQ(run.tasks, 6u);
  EXPECT_EQ(run.done.ranges(), (std::vector<IndexRange>{{0, 1}, {2, 4}}));
  EXPECT_EQ(run.done.count(), 3u);
}

TEST(Joblog, AppendAddsRowsAfterTheEarlierOnes) {
  TempFile f;
  new_joblog(f.path(), RunIdentity{{3}, "", "", "", ""});
  {
    JoblogFile log = JoblogFile::append(f.path());
    std::string rows;
    JoblogRow r;
    r.index = 1;
    append_row(rows, r);
    log.write(rows);
  }
  EXPECT_EQ(read_joblog(f.path()).done.ranges(), (std::vector<IndexRange>{{1, 2}}));
}

TEST(Joblog, HostColumnOfAnMpiRunIsWrittenReadAndMustNotBeEmpty) {
  // The joblog rank 0 of `taskfarm run --mpi` writes: a last column naming each attempt's node.
  TempFile f;
  const std::string head = format_identity(RunIdentity{{3}, "", "", "", ""}) + "\n" + joblog_columns_with_host + "\n";
  std::string rows;
  JoblogRow r;
  r.index = 2;
  r.host = "node7:3";
  append_row(rows, r);
  EXPECT_EQ(rows.substr(rows.size() - 9), "\tnode7:3\n");
  f.write(head + rows);
  const EarlierRun run = read_joblog(f.path());
  EXPECT_TRUE(run.has_host);
  EXPECT_FALSE(run.has_inputs);
  EXPECT_EQ(run.done.ranges(), (std::vector<IndexRange>{{2, 3}}));
  f.write(head + "1\t0\t1\t0.000\t0.000000\t0\tok\t0\t0\t-\t\n");  // an empty host
  EXPECT_THROW(read_joblog(f.path()), Error);
  f.write(head + "1\t0\t1\t0.000\t0.000000\t0\tok\t0\t0\t-\n");  // no host column
  EXPECT_THROW(read_joblog(f.path()), Error);
}

TEST(Joblog, InputsAndHostColumnsOfAnMpiExecRunAreWrittenAndRead) {
  // `taskfarm run --mpi --exec` with inputs: each row's inputs fingerprint, then its node.
  TempFile f;
  const std::string head = format_identity(RunIdentity{{3}, "", "", "", ""}) + "\n" + joblog_columns_with_inputs_host + "\n";
  std::string rows;
  JoblogRow r;
  r.index = 1;
  r.inputs = 0xabcdef;
  r.host = "node7:3";
  append_row(rows, r);
  EXPECT_EQ(rows.substr(rows.size() - 26), "\t0000000000abcdef\tnode7:3\n");
  f.write(head + rows);
  const EarlierRun run = read_joblog(f.path(), [](std::uint64_t) { return std::uint64_t{0xabcdef}; });
  EXPECT_TRUE(run.has_host);
  EXPECT_TRUE(run.has_inputs);
  EXPECT_EQ(run.done.ranges(), (std::vector<IndexRange>{{1, 2}}));
  EXPECT_THROW(read_joblog(f.path(), [](std::uint64_t) { return std::uint64_t{1}; }), Error) << "other inputs";
  f.write(head + "1\t0\t1\t0.000\t0.000000\t0\tok\t0\t0\t-\t0000000000abcdef\t\n");  // an empty host
  EXPECT_THROW(read_joblog(f.path()), Error);
  f.write(head + "1\t0\t1\t0.000\t0.000000\t0\tok\t0\t0\t-\tnode7:3\n");  // no inputs column
  EXPECT_THROW(read_joblog(f.path()), Error);
}

TEST(Joblog, RefusesWhatIsNotAJoblogOfThisRun) {
  TempFile f;
  EXPECT_THROW(read_joblog(f.path()), Error);  // missing
  f.write("Seq\tHost\tStarttime\n1\t:\t0\n");   // GNU parallel's
  EXPECT_THROW(read_joblog(f.path()), Error);
  f.write(format_identity(RunIdentity{{3}, "", "", "", ""}) + "\n" + joblog_columns + "\n" +
          "9\t0\t1\t0.000\t0.000000\t0\tok\t0\t0\t-\n");  // index outside [0, 3)
  EXPECT_THROW(read_joblog(f.path()), Error);
}

TEST(Joblog, RowWithAnyColumnUnlikeTaskfarmsIsRefusedNamingLineAndColumn) {
  TempFile f;
  const std::string head = format_identity(RunIdentity{{3}, "", "", "", ""}) + "\n" + joblog_columns + "\n" +
                           "0\t0\t1\t0.000\t0.000000\t0\tok\t0\t0\t-\n";
  auto message = [&](const std::string& row) {
    f.write(head + row + "\n");
    try {
      read_joblog(f.path());
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  const std::pair<std::string, std::string> cases[] = {
      {"1\t0\t1\t0.000\t0.000000\t0\tmaybe\t0\t0\t-", "outcome 'maybe' is none of ok, retried, failed"},
      {"1\t0\t1\t0.000\t0.000000\t0\tOK\t0\t0\t-", "outcome 'OK'"},
      {"1\tx\t1\t0.000\t0.000000\t0\tok\t0\t0\t-", "slot 'x' is not a number"},
      {"1\t0\t1\tnoon\t0.000000\t0\tok\t0\t0\t-", "start 'noon' is not a number"},
      {"1\t0\t1\t0.000\t0.000000\t-1\tok\t0\t0\t-", "attempt '-1' is not a number"},
      {"1\t0\t1\t0.000\t0.000000\t0\tok\t0\t0", "9 columns, not 10"},
      {"7\t0\t1\t0.000\t0.000000\t0\tok\t0\t0\t-", "index 7 is outside [0, 3)"},
  };
  for (const auto& [row, problem] : cases) {
    const std::string what = message(row);
    EXPECT_NE(what.find("line 4 is not a row of this run: " + problem), std::string::npos) << row << " -> " << what;
  }
  EXPECT_EQ(message("1\t-1\t0\t1700000000.250\t0.500000\t2\tfailed\t0\t11\tsignal"), "(accepted)");
}

TEST(Joblog, IndexSpaceOfTwoTo64TasksOrMoreIsNotAJoblog) {
  TempFile f;
  auto message = [&](const std::string& extent) {
    f.write("# taskfarm joblog 1\textent=" + extent + "\toutput=\tdtype=\tshape=\n" + joblog_columns + "\n");
    try {
      read_joblog(f.path());
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(message("4294967296x4294967296").find("has 2^64 tasks or more"), std::string::npos);
  EXPECT_NE(message("18446744073709551616").find("is not a taskfarm joblog"), std::string::npos);
  EXPECT_NE(message("0").find("is not a taskfarm joblog"), std::string::npos);
  EXPECT_EQ(message("18446744073709551615"), "");  // the largest index space there is: fine
}

TEST(Joblog, ResumeStateOfAHugeIndexSpaceIsItsDoneRanges) {
  TempFile f;
  std::string text = format_identity(RunIdentity{{18446744073709551615ull}, "", "", "", ""}) + "\n" + joblog_columns + "\n";
  for (std::uint64_t i : {5ull, 3ull, 4ull, 18446744073709551614ull, 7ull}) {
    JoblogRow r;
    r.index = i;
    append_row(text, r);
  }
  f.write(text);
  const EarlierRun run = read_joblog(f.path());
  EXPECT_EQ(run.tasks, 18446744073709551615ull);
  EXPECT_EQ(run.done.ranges(), (std::vector<IndexRange>{{3, 6}, {7, 8}, {18446744073709551614ull, 18446744073709551615ull}}));
  EXPECT_EQ(run.done.complement(run.tasks),
            (std::vector<IndexRange>{{0, 3}, {6, 7}, {8, 18446744073709551614ull}}));
}

TEST(Joblog, LineLongerThanAnyJoblogWritesIsRefused) {
  TempFile f;
  f.write(format_identity(RunIdentity{{3}, "", "", "", ""}) + "\n" + joblog_columns + "\n" + std::string(1 << 20, '7') + "\n");
  try {
    read_joblog(f.path());
    FAIL() << "a 1 MiB line was read as a row";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 3 is too long"), std::string::npos) << e.what();
  }
}

TEST(Resume, RefusesAnotherJobNamingTheDifference) {
  EarlierRun earlier;
  earlier.identity = sample_identity();
  earlier.tasks = 30;
  earlier.done.insert(0, 4);
  earlier.done.insert(5, 30);
  const ResumePlan plan = plan_resume(earlier, sample_identity(), "j.tsv");
  EXPECT_EQ(plan.ranges, (std::vector<IndexRange>{{4, 5}}));
  EXPECT_EQ(plan.done, 29u);

  auto message = [&](RunIdentity now) {
    try {
      plan_resume(earlier, now, "j.tsv");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  RunIdentity other = sample_identity();
  other.extent = {30};
  EXPECT_NE(message(other).find("index space 10x3, this run 30"), std::string::npos) << message(other);
  other = sample_identity();
  other.output = "/tmp/else.npy";
  EXPECT_NE(message(other).find("wrote '/tmp/out x.npy', this run '/tmp/else.npy'"), std::string::npos);
  other = sample_identity();
  other.dtype = "float64";
  EXPECT_NE(message(other).find("made a int32 10x3x4 output"), std::string::npos);
  // Outside pass F9: an --exec resume took a worker program's joblog for "all done", and ran nothing.
  earlier.identity.runs = "a worker program";
  other = sample_identity();
  other.runs = "commands (--exec)";
  EXPECT_NE(message(other).find("ran its tasks as a worker program, this run as commands (--exec)"), std::string::npos)
      << message(other);
  other.runs = "";  // an embedding program's Joblog records no kind: trusted as before
  EXPECT_EQ(message(other), "");
}

}  // namespace
}  // namespace taskfarm
