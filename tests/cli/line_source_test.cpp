// Sources of lines (--input-lines, :::: FILE) that are FIFOs: a FIFO no process opens for
// writing is an error at the deadline, not a hang in open(); a writer that came and went
// without writing is an empty input at once; a writer that holds the FIFO open and is slow is
// waited for past the deadline. A test that hangs fails by its ctest TIMEOUT.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "input_lines_file.hpp"
#include "line_source.hpp"
#include "usage_error.hpp"

namespace taskfarm::cli {
namespace {

using namespace std::chrono_literals;

class FifoSource : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string dir = (std::filesystem::temp_directory_path() / "tf-line-source-XXXXXX").string();
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    fifo_ = dir_ + "/fifo";
    ASSERT_EQ(::mkfifo(fifo_.c_str(), 0600), 0);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_, fifo_;
};

TEST_F(FifoSource, WithoutAWriterIsRefusedAtTheDeadlineNotAwaitedForever) {
  const auto start = std::chrono::steady_clock::now();
  try {
    (void)read_input_lines(fifo_, 1 << 20, '\n', "::::", false, 200ms);
    FAIL() << "a FIFO without a writer was read as empty";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(":::: '" + fifo_ + "' is a FIFO that no process opened for writing within 200 ms"),
              std::string::npos)
        << e.what();
  }
  EXPECT_GE(std::chrono::steady_clock::now() - start, 200ms);
  EXPECT_TRUE(std::filesystem::is_fifo(fifo_)) << "the FIFO was removed";
}

TEST_F(FifoSource, WhoseWriterCameAndWentWithoutWritingIsEmptyAtOnce) {
  LineSource in(fifo_, "--input-lines");  // the default deadline: a minute
  const int w = ::open(fifo_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);  // a reader is there: no block
  ASSERT_GE(w, 0);
  ::close(w);
  char buffer[16];
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(in.read(buffer, sizeof buffer), 0u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 20s) << "waited for the deadline instead of seeing the writer leave";
}

/// Whether thread `tid` of this process sleeps (blocked in a system call), from /proc.
bool sleeping(pid_t tid) {
  std::ifstream stat("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] == 'S';
}

TEST_F(FifoSource, WhoseWriterIsSlowIsWaitedForPastTheDeadline) {
  LineSource in(fifo_, "::::", 0ms);  // the deadline has passed before the first read
  const int w = ::open(fifo_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);  // the writer: open, silent
  ASSERT_GE(w, 0);
  std::promise<pid_t> reader_tid;
  std::string got;
  std::atomic<bool> done{false};
  std::thread reader([&] {
    reader_tid.set_value(static_cast<pid_t>(::syscall(SYS_gettid)));
    char buffer[16];
    try {
      got.assign(buffer, in.read(buffer, sizeof buffer));
    } catch (const UsageError& e) {
      got = std::string("refused: ") + e.what();
    }
    done = true;
  });
  // Write once the reader is blocked waiting (or has already given up: then the test fails).
  const pid_t tid = reader_tid.get_future().get();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done && !sleeping(tid) && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_EQ(::write(w, "late\n", 5), 5);
  ::close(w);
  reader.join();
  EXPECT_EQ(got, "late\n") << "a writer that holds the FIFO open was cut off at the deadline";
}

}  // namespace
}  // namespace taskfarm::cli
