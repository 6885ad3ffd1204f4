// The worker's output pump (worker/exec/src/output_pump.cpp): a command's stdout and stderr
// reach their files whole; a file that refuses a write (/dev/full: ENOSPC, as a full --tmpdir)
// is reported, and the command is not blocked by it; a background process that keeps the pipes
// open does not hold the task. tests/cli/exec.sh full_tmpdir_stops_the_run does it end to end.
#include "child_process.hpp"
#include "output_pump.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <vector>

#include "file_text.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm::exec {
namespace {

UniqueFd memfile(const char* name) { return UniqueFd(::memfd_create(name, MFD_CLOEXEC)); }

std::string contents(int fd) { return test::file_text(fd); }

struct Ran {
  CommandStatus status;
  int write_error = 0;
  Stream failed = Stream::out;
};

Ran run_sh(const std::string& script, int out, int err) {
  UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  OutputPump pump;
  Ran r;
  std::string exec_error;
  r.status = run_command("/bin/sh", {"sh", "-c", script}, StandardFds{null.get(), pump.command_stdout(), pump.command_stderr()},
                         exec_error, [](pid_t) {}, [&](pid_t pid) { r.write_error = pump.copy(pid, out, err, r.failed); });
  EXPECT_EQ(exec_error, "");
  return r;
}

TEST(OutputPump, CopiesBothStreamsWhole) {
  UniqueFd out = memfile("out"), err = memfile("err");
  // 3 MiB: more than a pipe holds, so the copy runs while the command writes.
  const Ran r = run_sh("head -c 3145728 /dev/zero | tr '\\0' x; echo tail; echo oops >&2; exit 3", out.get(), err.get());
  EXPECT_EQ(r.status.exit_code, 3);
  EXPECT_EQ(r.write_error, 0);
  EXPECT_EQ(contents(out.get()), std::string(3145728, 'x') + "tail\n");
  EXPECT_EQ(contents(err.get()), "oops\n");
}

TEST(OutputPump, FullFileIsReportedAndTheCommandRunsToItsEnd) {
  UniqueFd full(::open("/dev/full", O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(full) << "no /dev/full";
  UniqueFd err = memfile("err");
  // It prints more than a pipe holds: were the rest not read (and dropped), it would block.
  const Ran r = run_sh("head -c 1048576 /dev/zero; echo still here >&2", full.get(), err.get());
  EXPECT_EQ(r.status.exit_code, 0);
  EXPECT_EQ(r.write_error, ENOSPC);
  EXPECT_EQ(r.failed, Stream::out);
  EXPECT_EQ(contents(err.get()), "still here\n");
}

TEST(OutputPump, BackgroundProcessHoldingThePipesDoesNotHoldTheTask) {
  UniqueFd out = memfile("out"), err = memfile("err");
  // The background process keeps stdout and stderr open until a pipe of ours is closed: the copy
  // must end when the command exits, not when the pipes close.
  int gate[2];
  ASSERT_EQ(::pipe2(gate, O_CLOEXEC), 0);
  UniqueFd gate_r(gate[0]), gate_w(gate[1]);
  const std::string script = "cat <&" + std::to_string(gate[0]) + " >/dev/null & echo started";
  // The gate's read end reaches the command (not close-on-exec there), its write end stays ours.
  ASSERT_EQ(::fcntl(gate[0], F_SETFD, 0), 0);
  const auto t0 = std::chrono::steady_clock::now();
  const Ran r = run_sh(script, out.get(), err.get());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  gate_w.reset();  // the background cat ends now
  EXPECT_EQ(r.status.exit_code, 0);
  EXPECT_EQ(contents(out.get()), "started\n");
}

// The worker names its command in its slot for the master's stall report (F42): from its start
// until it has ended, and cleared before it is reaped — while the slot names a pid, that pid is
// the command's (a zombie at worst), never a process that reused it.
TEST(RunCommand, NamesTheCommandUntilItEndedBeforeReapingIt) {
  UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  UniqueFd out = memfile("out"), err = memfile("err");
  std::vector<pid_t> named;
  std::vector<char> state_when_cleared;
  pid_t copied = 0;
  std::string exec_error;
  const CommandStatus st = run_command(
      "/bin/sh", {"sh", "-c", "exit 4"}, StandardFds{null.get(), out.get(), err.get()}, exec_error,
      [&](pid_t pid) {
        if (pid == 0 && !named.empty()) {  // the command it named: still there, ended, not reaped
          const UniqueFd f(::open(("/proc/" + std::to_string(named.back()) + "/stat").c_str(), O_RDONLY | O_CLOEXEC));
          const std::string stat = f ? test::file_text(f.get()) : std::string();
          const auto paren = stat.rfind(')');
          state_when_cleared.push_back(paren != std::string::npos && paren + 2 < stat.size() ? stat[paren + 2] : '?');
        }
        named.push_back(pid);
      },
      [&](pid_t pid) { copied = pid; });
  EXPECT_EQ(st.exit_code, 4);
  ASSERT_EQ(named.size(), 2u);
  EXPECT_GT(named[0], 0);
  EXPECT_EQ(named[0], copied);
  EXPECT_EQ(named[1], 0);
  EXPECT_EQ(state_when_cleared, std::vector<char>{'Z'}) << "cleared after it was reaped";
  EXPECT_NE(::access(("/proc/" + std::to_string(named[0])).c_str(), F_OK), 0) << "reaped in the end";
}

}  // namespace
}  // namespace taskfarm::exec
