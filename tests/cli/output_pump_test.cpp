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
                         exec_error, [&](pid_t pid) { r.write_error = pump.copy(pid, out, err, r.failed); });
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

}  // namespace
}  // namespace taskfarm::exec
