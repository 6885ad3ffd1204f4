// A kill storm: SIGKILLs at random moments against workers running tiny tasks — inside
// channel operations, between tasks, while idle, right after start. The output must stay
// bit-identical to the serial loop, with no hang, no leaked segment and no zombie.
// TASKFARM_STORM_KILLS raises the number of kills for soak runs (default 1000).
#include <gtest/gtest.h>
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "taskfarm/farm.hpp"
#include "taskfarm/shared_array.hpp"

using namespace taskfarm;

namespace {

// Worker pids as the farm announces them; the killer thread picks from them.
struct Pids : FarmObserver {
  std::mutex mu;
  std::vector<pid_t> live;
  void on_worker_started(int, pid_t pid) override {
    std::lock_guard lock(mu);
    live.push_back(pid);
    if (live.size() > 16) live.erase(live.begin());
  }
  pid_t pick(std::mt19937& rng) {
    std::lock_guard lock(mu);
    return live.empty() ? 0 : live[rng() % live.size()];
  }
};

// Kills `pid` only if it is still a child of this process (pidfd pins its identity).
bool kill_if_ours(pid_t pid, std::mt19937& rng) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return false;
  std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
  std::string comm_and_rest;
  std::getline(st, comm_and_rest);
  const auto close_paren = comm_and_rest.rfind(')');
  int ppid = 0;
  char state = 0;
  if (close_paren != std::string::npos) std::sscanf(comm_and_rest.c_str() + close_paren + 1, " %c %d", &state, &ppid);
  bool killed = false;
  if (ppid == ::getpid() && state != 'Z') {
    killed = ::syscall(SYS_pidfd_send_signal, fd, SIGKILL, nullptr, 0) == 0;
    // Wait for the death itself (an event, with a deadline), then a random pause of up to
    // ~1.5 ms measured by polling the same pidfd, so kills land at varied moments.
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 1000);
    pollfd none{-1, 0, 0};
    ::poll(&none, 1, static_cast<int>(rng() % 2));
  }
  ::close(fd);
  return killed;
}

std::size_t children_of_this_process() {
  std::size_t n = 0;
  DIR* d = ::opendir("/proc/self/task");
  while (const dirent* e = d ? ::readdir(d) : nullptr) {
    if (e->d_name[0] == '.') continue;
    std::ifstream c(std::string("/proc/self/task/") + e->d_name + "/children");
    std::string pid;
    while (c >> pid) ++n;
  }
  if (d) ::closedir(d);
  return n;
}

std::size_t my_segments() {
  std::size_t n = 0;
  const std::string prefix = "taskfarm-" + std::to_string(::getpid()) + "-";
  DIR* d = ::opendir("/dev/shm");
  while (const dirent* e = d ? ::readdir(d) : nullptr)
    if (std::string(e->d_name).rfind(prefix, 0) == 0) ++n;
  if (d) ::closedir(d);
  return n;
}

}  // namespace

TEST(KillStorm, ThousandRandomKillsLeaveTheOutputBitIdentical) {
  const char* env = std::getenv("TASKFARM_STORM_KILLS");
  const std::uint64_t target = env ? std::strtoull(env, nullptr, 10) : 1000;
  const std::size_t segments_before = my_segments();
  {
    FarmOptions o;
    o.workers = 3;
    o.chunk = 16;
    o.retries = 1'000'000;          // external kills charge the running index: never give up
    o.max_start_failures = 1'000'000;  // workers killed right after start are expected here
    o.forward_stderr = false;
    Farm farm = Farm::program(o, FAULT_WORKER);
    const std::uint64_t n = 20000;
    auto out = SharedArray<std::int64_t>::create({n});
    JobSpec job;
    job.extent = {n};
    job.output_handle = out.handle();

    Pids pids;
    std::atomic<std::uint64_t> kills{0};
    std::atomic<bool> done{false};
    std::thread killer([&] {
      std::mt19937 rng(42);
      while (!done && kills < target)
        if (pid_t pid = pids.pick(rng); pid != 0 && kill_if_ours(pid, rng)) ++kills;
    });
    std::uint64_t runs = 0;
    while (kills < target && runs < 100000) {
      std::memset(out.data(), 0xff, n * sizeof(std::int64_t));
      RunReport r = farm.run(job, &pids);
      ++runs;
      ASSERT_TRUE(r.farm_error.empty()) << r.farm_error;
      ASSERT_TRUE(r.failures.empty()) << r.failures.front().describe();
      ASSERT_EQ(r.succeeded, n);
      for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(out.view().element({i}), static_cast<std::int64_t>(i * i)) << "index " << i << " run " << runs;
    }
    done = true;
    killer.join();
    EXPECT_GE(kills.load(), target);
    farm.close();
    std::printf("%llu kills over %llu runs\n", static_cast<unsigned long long>(kills.load()), static_cast<unsigned long long>(runs));
  }
  EXPECT_EQ(children_of_this_process(), 0u) << "zombies or live workers left";
  EXPECT_EQ(my_segments(), segments_before) << "segments leaked";
}
