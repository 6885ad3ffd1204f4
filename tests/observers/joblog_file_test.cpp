// Writing the joblog when the file system says no: a failed write (here past RLIMIT_FSIZE, as
// on a full disk) leaves whole rows only and is reported once, so the run can stop like an
// interruption and a --resume can read the file; appending after a torn last line keeps the
// rows whole; a FIFO is refused without blocking. Failures are provoked in a forked child.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>

#include "taskfarm/error.hpp"
#include "taskfarm/joblog.hpp"

namespace taskfarm {
namespace {

/// Runs `body` in a forked child; returns what it wrote to the pipe, or "TIMEOUT" if it did not
/// finish within `timeout` (it is killed then).
std::string in_child(const std::function<std::string()>& body, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return "pipe2 failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[0]);
    std::string out;
    try {
      out = body();
    } catch (const std::exception& e) {
      out = std::string("escaped: ") + e.what();
    }
    [[maybe_unused]] auto n = ::write(p[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(p[1]);
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd pfd{p[0], POLLIN, 0};
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) == 0) {
      timed_out = true;
      break;
    }
    char buf[4096];
    const ssize_t n = ::read(p[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(p[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);  // it ended or was just killed
  return timed_out ? "TIMEOUT" : out;
}

class TempPath {
 public:
  TempPath() : path_(::testing::TempDir() + "joblog-file-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++)) {}
  ~TempPath() { ::unlink(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  static inline int counter_ = 0;
  std::string path_;
};

JoblogFile new_joblog(const std::string& path, std::uint64_t tasks) {
  return JoblogFile::create(UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)), path,
                            RunIdentity{{tasks}, "", "", "", ""});
}

std::string rows_of(std::uint64_t begin, std::uint64_t end) {
  std::string rows;
  for (std::uint64_t i = begin; i < end; ++i) {
    JoblogRow r;
    r.index = i;
    append_row(rows, r);
  }
  return rows;
}

TEST(JoblogFile, FailedWriteLeavesWholeRowsAndSaysWhy) {
  TempPath f;
  const std::string out = in_child([&] {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit small{1000, 1000};  // the header and some rows; a write of 7 rows crosses it
    ::setrlimit(RLIMIT_FSIZE, &small);
    JoblogFile log = new_joblog(f.path(), 1000);
    for (std::uint64_t i = 0; i < 1000; i += 7) {
      try {
        log.write(rows_of(i, i + 7));
      } catch (const Error& e) {
        return std::to_string(i) + " " + e.what();
      }
    }
    return std::string("no write failed");
  });
  const auto space = out.find(' ');
  ASSERT_NE(space, std::string::npos) << out;
  EXPECT_NE(out.find("cannot write joblog " + f.path() + ": File too large"), std::string::npos) << out;
  const std::uint64_t written = std::stoull(out.substr(0, space));
  const EarlierRun run = read_joblog(f.path());  // whole rows: it reads
  EXPECT_EQ(run.done.count(), written) << "rows of the failed write are in the file";
  EXPECT_EQ(run.done.ranges(), (std::vector<IndexRange>{{0, written}}));
  struct stat st {};
  ASSERT_EQ(::stat(f.path().c_str(), &st), 0);
  std::ifstream in(f.path(), std::ios::binary);
  in.seekg(-1, std::ios::end);
  EXPECT_EQ(in.get(), '\n') << "the file ends in a torn row";
}

// The observer reports the first failed write once, writes nothing after it, and never throws
// into the farm (an exception there used to end the run as "0 succeeded" and lose the output).
TEST(JoblogFile, ObserverReportsAFailedWriteOnceAndStopsWriting) {
  TempPath f;
  const std::string out = in_child([&] {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit small{1000, 1000};
    ::setrlimit(RLIMIT_FSIZE, &small);
    int calls = 0;
    std::string message;
    Joblog obs(new_joblog(f.path(), 1000), {{0, 1000}}, [&](const std::string& why) {
      ++calls;
      message = why;
    });
    const auto t0 = std::chrono::steady_clock::now();
    for (std::uint64_t i = 0; i < 1000; i += 7)
      obs.on_tasks_done(TasksDone{0, 42, i, i + 7, 0, {}, t0, t0 + std::chrono::microseconds(10)});
    return std::to_string(calls) + " " + (message == obs.error() ? message : "error() differs");
  });
  EXPECT_EQ(out.rfind("1 cannot write joblog " + f.path(), 0), 0u) << out;
  EXPECT_NO_THROW(read_joblog(f.path()));
}

TEST(JoblogFile, AppendAfterATornLastLineKeepsEveryRowWhole) {
  TempPath f;
  { new_joblog(f.path(), 6).write(rows_of(0, 2)); }
  std::ofstream(f.path(), std::ios::binary | std::ios::app) << "5\t0\t1\t2.00";  // a master killed mid-write
  {
    JoblogFile log = JoblogFile::append(f.path());
    log.write(rows_of(3, 4));
  }
  const EarlierRun run = read_joblog(f.path());
  EXPECT_EQ(run.done.ranges(), (std::vector<IndexRange>{{0, 2}, {3, 4}}));
}

TEST(JoblogFile, AppendRefusesAFifoWithoutBlocking) {
  TempPath f;
  ASSERT_EQ(::mkfifo(f.path().c_str(), 0644), 0);
  const std::string out = in_child([&] {
    try {
      JoblogFile::append(f.path());
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("opened");
  });
  EXPECT_EQ(out, "cannot open joblog: '" + f.path() + "' is a FIFO, not a regular file");
}

// Joblog::resume reads the earlier joblog before it appends: that read refuses a FIFO (no writer:
// an open would block for ever) and a device (/dev/zero: an endless read) by kind, too.
TEST(JoblogFile, ResumeRefusesAFifoOrADeviceWithoutReadingIt) {
  TempPath f;
  ASSERT_EQ(::mkfifo(f.path().c_str(), 0644), 0);
  const RunIdentity job{{10}, "", "", "", ""};
  for (const std::string& path : {f.path(), std::string("/dev/zero")}) {
    const std::string out = in_child(
        [&] {
          try {
            Joblog::resume(path, job);
          } catch (const Error& e) {
            return std::string(e.what());
          }
          return std::string("opened");
        },
        std::chrono::seconds(5));
    EXPECT_EQ(out, "cannot read joblog: '" + path + "' is a " + (path == f.path() ? "FIFO" : "character device") +
                       ", not a regular file");
  }
}

TEST(Joblog, HeldOkRowIsWrittenOnlyOnceItsOutputIsPrinted) {
  // -k: a piece of tasks 0..3 commits; task 1 was printed as it was delivered (before the
  // commit was reported), task 2 failed, tasks 0 and 3 wait for their turn to print.
  TempPath f;
  Joblog log(new_joblog(f.path(), 10), {{0, 10}});
  log.hold_until_printed();
  const std::uint64_t early[] = {1};
  log.printed(early);
  const std::uint64_t failed[] = {2};
  const auto t0 = std::chrono::steady_clock::now();
  log.on_tasks_done(TasksDone{0, 1, 0, 4, 0, failed, t0, t0});
  auto ok = [&] { return read_joblog(f.path()).done.ranges(); };
  EXPECT_EQ(ok(), (std::vector<IndexRange>{{1, 2}})) << "a row for output not printed";
  const std::uint64_t later[] = {0, 3};
  log.printed(later);
  EXPECT_EQ(ok(), (std::vector<IndexRange>{{0, 2}, {3, 4}}));
  EXPECT_EQ(log.recorded_ok(), 3u);
}

}  // namespace
}  // namespace taskfarm
