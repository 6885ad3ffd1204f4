// StdoutWriter's queue (queue_when_full, h12 F17): a pipe that is not read never blocks the
// writer; what it does not take waits in order, the stderr side behind it; then() says when a
// task's output is out, or that it never will be (the reader went away, a stop given up on).
#include "stdout_writer.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "exec_output.hpp"
#include "task_output.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm::cli {
namespace {

struct Pipe {
  UniqueFd r, w;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) == 0) r.reset(fds[0]), w.reset(fds[1]);
  }
  // Everything the pipe holds now (it never blocks: O_NONBLOCK on a descriptor of our own).
  std::string take() {
    std::string got;
    char buf[65536];
    for (;;) {
      pollfd p{r.get(), POLLIN, 0};
      if (::poll(&p, 1, 0) != 1) return got;
      const ssize_t n = ::read(r.get(), buf, sizeof buf);
      if (n <= 0) return got;
      got.append(buf, static_cast<std::size_t>(n));
    }
  }
};

UniqueFd file_with(const std::string& text) {
  char name[] = "/tmp/taskfarm-writer-test-XXXXXX";
  UniqueFd fd(::mkstemp(name));
  ::unlink(name);
  if (fd && ::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
    fd.reset();
  ::lseek(fd.get(), 0, SEEK_SET);
  return fd;
}

TEST(StdoutWriterQueue, AnUnreadPipeNeverBlocksAndWhatWaitsComesOutInOrder) {
  Pipe out, err;
  ASSERT_TRUE(out.w && err.w);
  StdoutWriter o(nullptr, out.w.get()), e(nullptr, err.w.get());
  o.queue_when_full(1 << 20);
  e.follow(o);
  const std::string big(200000, 'a');  // more than a pipe holds
  std::vector<std::string> said;
  o.write(big);
  o.flush();
  // (Returned without a reader: a blocking write would never have.)
  EXPECT_TRUE(o.busy());
  EXPECT_GE(o.fd(), 0);  // the Farm waits on it
  EXPECT_FALSE(o.full());
  UniqueFd f = file_with(std::string(100000, 'b'));
  EXPECT_EQ(o.write_file(f.get()), 100000u);  // taken: its range waits
  f.reset();                                  // (the queue holds a descriptor of its own)
  e.write("after both\n");
  e.flush();
  o.then([&said](bool all_out) { said.push_back(all_out ? "out" : "dropped"); });
  EXPECT_TRUE(said.empty());
  EXPECT_EQ(e.bytes_out(), 0u) << "stderr went ahead of the stdout before it";
  std::string got_out, got_err;
  for (int round = 0; round < 1000 && o.busy(); ++round) {
    got_out += out.take();
    got_err += err.take();
    o.writable();
  }
  got_out += out.take();
  got_err += err.take();
  EXPECT_FALSE(o.busy());
  EXPECT_EQ(o.fd(), -1);
  EXPECT_EQ(got_out, big + std::string(100000, 'b'));
  EXPECT_EQ(got_err, "after both\n");
  EXPECT_EQ(said, std::vector<std::string>{"out"});
  EXPECT_EQ(o.bytes_out(), 300000u);
}

TEST(StdoutWriterQueue, FullOnceTheTextWaitingPassesItsBound) {
  Pipe out;
  StdoutWriter o(nullptr, out.w.get());
  bool also = false;
  o.queue_when_full(100000, [&also] { return also; });
  o.write(std::string(65536 + 50000, 'x'));  // the pipe takes 64 KiB
  o.flush();
  EXPECT_FALSE(o.full()) << o.queued_bytes();
  o.write(std::string(60000, 'y'));
  o.flush();
  EXPECT_TRUE(o.full()) << o.queued_bytes();
  out.take();
  o.writable();
  EXPECT_FALSE(o.full());
  also = true;
  EXPECT_TRUE(o.full());
}

TEST(StdoutWriterQueue, AReaderThatGoesAwayDropsWhatWaitsAndSaysSo) {
  struct sigaction ignore {
  }, before{};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &before);  // as taskfarm run does (StopSignals)
  Pipe out;
  int failed = 0;
  StdoutWriter o([&failed](int error) { failed = error; }, out.w.get());
  o.queue_when_full(1 << 20);
  o.write(std::string(200000, 'a'));
  o.flush();
  bool all_out = true;
  o.then([&all_out](bool a) { all_out = a; });
  out.r.reset();
  o.writable();
  EXPECT_EQ(failed, EPIPE);
  EXPECT_FALSE(all_out);
  EXPECT_FALSE(o.busy());
  EXPECT_TRUE(o.closed());
  ::sigaction(SIGPIPE, &before, nullptr);
}

TEST(StdoutWriterQueue, DrainGivesUpAfterItsPatienceOnceAStopCame) {
  Pipe out;
  StdoutWriter o(nullptr, out.w.get());
  o.queue_when_full(1 << 20);
  o.write(std::string(200000, 'a'));
  o.flush();
  bool all_out = true;
  o.then([&all_out](bool a) { all_out = a; });
  volatile std::sig_atomic_t stop = SIGTERM;
  const auto t0 = std::chrono::steady_clock::now();
  o.drain(&stop, std::chrono::milliseconds(200));
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(o.gave_up());
  EXPECT_FALSE(all_out);
  EXPECT_FALSE(o.busy());
  EXPECT_LT(waited, std::chrono::seconds(5));  // (a deadline for the test, not a timing claim)
}

// A burst of tasks' output given up on after a stop midway (h13 F2): the tasks out whole are
// printed (recorded done), the one cut is said, the rest not.
TEST(StdoutWriterQueue, TaskOutputGivenUpOnRecordsTheTasksOutWholeAndNamesTheCutOne) {
  Pipe out;
  StdoutWriter o(nullptr, out.w.get());
  o.queue_when_full(1 << 20);
  std::vector<std::uint64_t> printed, cut;
  TaskOutput tasks(
      o,
      [&printed](std::span<const std::uint64_t> i) {
        printed.insert(printed.end(), i.begin(), i.end());
      },
      [&cut](std::uint64_t i) { cut.push_back(i); });
  const std::string text(30000, 't');  // three of them: the empty pipe takes 65536 bytes
  for (std::uint64_t i = 0; i < 3; ++i)
    tasks.on_result(IndexResult{i, {}, std::span<const char>(text.data(), text.size())});
  tasks.finish();  // one burst, one mark
  EXPECT_TRUE(printed.empty());
  EXPECT_EQ(tasks.waiting(), 3u);
  volatile std::sig_atomic_t stop = SIGTERM;
  o.drain(&stop, std::chrono::milliseconds(50));
  ASSERT_TRUE(o.gave_up());
  EXPECT_EQ(o.bytes_out(), 65536u) << "a pipe of another size: the test's numbers assume 64 KiB";
  EXPECT_EQ(printed, (std::vector<std::uint64_t>{0, 1}));
  EXPECT_EQ(cut, (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(tasks.waiting(), 0u);
}

// Small files go out as text: an unread pipe takes 64 KiB of them, not one page each for 16
// (h13 F11: a stop then recorded at most 16 --exec tasks).
TEST(StdoutWriterQueue, SmallFilesShareThePipesPages) {
  Pipe out;
  StdoutWriter o(nullptr, out.w.get());
  o.queue_when_full(1 << 20);
  for (int k = 0; k < 100; ++k) {
    UniqueFd f = file_with("task " + std::to_string(k % 10) + "\n");  // 7 bytes
    EXPECT_EQ(o.write_file(f.get()), 7u);
    o.flush();
  }
  EXPECT_EQ(o.bytes_out(), 700u) << "the pipe took one page per file";
  EXPECT_FALSE(o.busy());
}

TEST(StdoutWriterQueue, ThenIsAtOnceWhenNothingWaits) {
  Pipe out;
  StdoutWriter o(nullptr, out.w.get());
  o.queue_when_full(1 << 20);
  o.write("line\n");
  bool all_out = false;
  o.then([&all_out](bool a) { all_out = a; });  // (flushes first)
  EXPECT_TRUE(all_out);
  EXPECT_EQ(out.take(), "line\n");
}

// --exec with stdout taken and stderr unread (h13c P1): a task's stderr that waits holds the
// next task's output as its stdout would, so ExecOutput's queue grows and the run holds at its
// bound (Outputs::full) — tasks did run on, printing their stdout, while stderr piled up.
TEST(ExecOutputQueue, AnUnreadStderrHoldsTheNextTasksOutput) {
  char dir_name[] = "/tmp/taskfarm-exec-output-test-XXXXXX";
  ASSERT_NE(::mkdtemp(dir_name), nullptr);
  const std::string spool = dir_name;
  const auto put = [&spool](std::uint64_t index, exec::Stream s, const std::string& text) {
    std::ofstream(exec::task_output_path(spool, index, s), std::ios::binary) << text;
  };
  put(0, exec::Stream::out, "out 0\n");
  put(0, exec::Stream::err, std::string(200000, 'e') + "\n");  // more than a pipe holds
  put(1, exec::Stream::out, "out 1\n");
  put(1, exec::Stream::err, "err 1\n");
  UniqueFd out_file = file_with("");
  Pipe err;
  ASSERT_TRUE(out_file && err.w);
  StdoutWriter o(nullptr, out_file.get()), e(nullptr, err.w.get());
  o.queue_when_full(1 << 20);
  e.queue_when_full(1 << 20);
  std::vector<std::uint64_t> printed;
  {
    ExecOutput x(spool, o, e, /*keep_order=*/false, nullptr, {{0, 2}},
                 [&printed](std::span<const std::uint64_t> done) {
                   printed.insert(printed.end(), done.begin(), done.end());
                 });
    const auto stdout_now = [&out_file] {
      std::string got(4096, '\0');
      const ssize_t n = ::pread(out_file.get(), got.data(), got.size(), 0);
      got.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
      return got;
    };
    x.on_result(IndexResult{0, {}, {}});
    EXPECT_TRUE(e.busy()) << "task 0's stderr all in the pipe: the test proves nothing";
    x.on_result(IndexResult{1, {}, {}});
    EXPECT_EQ(stdout_now(), "out 0\n") << "task 1 printed while task 0's stderr waited";
    EXPECT_EQ(x.waiting(), 1u);
    EXPECT_TRUE(printed.empty()) << "a task recorded done before its stderr went out";
    // The reader comes: task 0's stderr out, then task 1 whole.
    std::string got_err;
    for (int round = 0; round < 1000 && (e.busy() || x.waiting() > 0); ++round) {
      got_err += err.take();
      e.writable();
    }
    got_err += err.take();
    EXPECT_EQ(got_err, std::string(200000, 'e') + "\nerr 1\n");
    EXPECT_EQ(stdout_now(), "out 0\nout 1\n");
    EXPECT_EQ(printed, (std::vector<std::uint64_t>{0, 1}));
  }
  std::filesystem::remove_all(spool);
}

}  // namespace
}  // namespace taskfarm::cli
