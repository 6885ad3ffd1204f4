// The master's own death: SIGKILL leaves no worker behind (they die with it) and its segments
// are swept by the next start; SIGINT stops in order with exit 130 and nothing left.
#include <gtest/gtest.h>
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "taskfarm/shm_segment.hpp"

namespace {

struct MiniMaster {
  pid_t pid = 0;
  FILE* out = nullptr;
  std::vector<pid_t> workers;
};

// Starts mini_master and reads the pids of its first `want` workers (a blocking read of its
// stdout; the ctest TIMEOUT bounds it).
MiniMaster start_mini_master(std::vector<std::string> extra = {}, std::size_t want = 2) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_addclose(&fa, fds[0]);
  std::vector<char*> argv{const_cast<char*>(MINI_MASTER), const_cast<char*>(FAULT_WORKER)};
  for (auto& a : extra) argv.push_back(a.data());
  argv.push_back(nullptr);
  MiniMaster m;
  if (::posix_spawn(&m.pid, MINI_MASTER, &fa, nullptr, argv.data(), environ) != 0) throw std::runtime_error("spawn");
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  m.out = ::fdopen(fds[0], "r");
  int pid = 0;
  while (m.workers.size() < want && std::fscanf(m.out, " worker %d", &pid) == 1) m.workers.push_back(pid);
  return m;
}

std::vector<std::string> segments_of(pid_t pid) {
  std::vector<std::string> names;
  const std::string prefix = "taskfarm-" + std::to_string(pid) + "-";
  DIR* d = ::opendir("/dev/shm");
  while (const dirent* e = d ? ::readdir(d) : nullptr)
    if (std::string(e->d_name).rfind(prefix, 0) == 0) names.emplace_back(e->d_name);
  if (d) ::closedir(d);
  return names;
}

// Waits until every pid in `pids` has ended; returns the time it took, or -1 on the deadline.
double wait_all_gone(const std::vector<pid_t>& pids, std::chrono::milliseconds deadline) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<int> fds;
  for (pid_t p : pids) {
    const int fd = static_cast<int>(::syscall(SYS_pidfd_open, p, 0));
    if (fd >= 0) fds.push_back(fd);  // already gone (and reaped) otherwise
  }
  bool all = true;
  for (int fd : fds) {
    pollfd p{fd, POLLIN, 0};
    const auto left = deadline - (std::chrono::steady_clock::now() - t0);
    if (::poll(&p, 1, static_cast<int>(std::max<long>(0, std::chrono::duration_cast<std::chrono::milliseconds>(left).count()))) != 1) all = false;
    ::close(fd);
  }
  return all ? std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() : -1;
}

}  // namespace

TEST(MasterDeath, WorkersDieWithASigkilledMasterAndItsSegmentsAreSwept) {
  MiniMaster m = start_mini_master();
  ASSERT_EQ(m.workers.size(), 2u);
  ASSERT_FALSE(segments_of(m.pid).empty());
  ASSERT_EQ(::kill(m.pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(m.pid, &status, 0), m.pid);
  const double ms = wait_all_gone(m.workers, std::chrono::milliseconds(2000));
  EXPECT_GE(ms, 0) << "workers outlived their master";
  std::printf("workers gone %.2f ms after the master was reaped\n", ms);
  const auto left = segments_of(m.pid);
  EXPECT_FALSE(left.empty()) << "a SIGKILLed master cannot clean up; the sweep must";
  const auto removed = taskfarm::sweep_dead_segments().removed;
  for (const auto& name : left) EXPECT_NE(std::find(removed.begin(), removed.end(), name), removed.end()) << name;
  EXPECT_TRUE(segments_of(m.pid).empty());
  std::fclose(m.out);
}

// A worker program is bound to its master from its first instruction, not from its run_worker
// call: one still loading (here: blocked before run_worker) dies with a SIGKILLed master too.
TEST(MasterDeath, WorkerNotYetInRunWorkerDiesWithASigkilledMaster) {
  const std::string dir = testing::TempDir() + "/early-" + std::to_string(::getpid());
  ASSERT_EQ(std::system(("rm -rf " + dir + " && mkdir -p " + dir).c_str()), 0);
  // A fresh program farm starts no second worker before the first one's Hello (probe_first):
  // one worker, blocked before run_worker.
  MiniMaster m = start_mini_master({"--fault", "slow-start", "--marker-dir", dir}, 1);
  ASSERT_EQ(m.workers.size(), 1u);
  ASSERT_EQ(::kill(m.pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(m.pid, &status, 0), m.pid);
  const double ms = wait_all_gone(m.workers, std::chrono::milliseconds(2000));
  EXPECT_GE(ms, 0) << "a worker that had not called run_worker outlived its master";
  for (pid_t w : m.workers) ::kill(w, SIGKILL);  // ours either way (the test started them)
  taskfarm::sweep_dead_segments();
  std::fclose(m.out);
  std::system(("rm -rf " + dir).c_str());
}

TEST(MasterDeath, SigintStopsInOrderWithExit130AndLeavesNothing) {
  MiniMaster m = start_mini_master();
  ASSERT_EQ(m.workers.size(), 2u);
  ASSERT_EQ(::kill(m.pid, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(m.pid, &status, 0), m.pid);  // bounded by the ctest TIMEOUT
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 130);
  EXPECT_GE(wait_all_gone(m.workers, std::chrono::milliseconds(1000)), 0);
  EXPECT_TRUE(segments_of(m.pid).empty());
  std::fclose(m.out);
}
