// Issue 4: crash safety, measured as whole runs, each beside a baseline from the same run.
//  crash_cases.seeds_fork     the seeds' case: 40 tasks of 50 ms (busy wait), 2 workers,
//  crash_cases.seeds_program  retries 0; task 7 SIGKILLs its own worker halfway. Total time of
//                             the run against the same run without the kill, alternating. Every
//                             crashed run is checked (not timed): the 39 others returned their
//                             values and the one failure names index 7 and SIGKILL.
//  crash_cases.master_death   a program-mode master (bench_master: 2 workers on long busy
//                             tasks) is SIGKILLed once both workers said they run a task; time
//                             until all its workers are gone (a pidfd poll of each). Baseline: a
//                             bare parent (bench_child parent 2) with 2 busy PR_SET_PDEATHSIG
//                             children, killed the same way. After each kill the dead master's
//                             segments are swept and none may remain.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "kernels.hpp"
#include "measure.hpp"
#include "row.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/farm.hpp"
#include "taskfarm/pool.hpp"
#include "taskfarm/shared_array.hpp"
#include "taskfarm/shm_segment.hpp"
#include "taskfarm/unique_fd.hpp"

extern char** environ;

namespace taskfarm::bench {
namespace {

constexpr int kWorkers = 2;
constexpr std::uint64_t kCrashAt = 7;
constexpr int kWaitMs = 10'000;  // for anything the bench waits on: a hang is an error

// ---- the seeds' case ------------------------------------------------------------------------

/// Checks a fault-free run: every index returned its value.
void check_clean(const std::vector<FailureRecord>& failures, std::uint64_t n,
                 const std::function<std::int64_t(std::uint64_t)>& value, const char* who) {
  if (!failures.empty()) throw Error(std::string(who) + ", no kill: " + failures[0].describe());
  for (std::uint64_t i = 0; i < n; ++i)
    if (value(i) != static_cast<std::int64_t>(trivial_value(i)))
      throw Error(std::string(who) + ", no kill: wrong value at index " + std::to_string(i));
}

/// Checks a crashed run: the other n - 1 indices returned their values, and the one final
/// failure is index 7, killed by SIGKILL, and says so.
void check_crashed(const std::vector<FailureRecord>& failures, std::uint64_t n,
                   const std::function<std::int64_t(std::uint64_t)>& value, const char* who) {
  const std::string what = std::string(who) + " with the kill: ";
  if (failures.size() != 1)
    throw Error(what + std::to_string(failures.size()) + " failures reported, expected 1");
  const FailureRecord& f = failures[0];
  const std::string text = f.describe();
  if (!f.final || f.index != kCrashAt || f.cause != FailureCause::signal || f.signal != SIGKILL ||
      text.find("index 7 ") == std::string::npos || text.find("SIGKILL") == std::string::npos)
    throw Error(what + "expected index 7 finally failed by SIGKILL, got: " + text);
  for (std::uint64_t i = 0; i < n; ++i)
    if (i != kCrashAt && value(i) != static_cast<std::int64_t>(trivial_value(i)))
      throw Error(what + "wrong or missing value at index " + std::to_string(i));
}

void seeds(const BenchArgs& args) {
  const std::uint64_t n = args.pick<std::uint64_t>(40, 12);
  const auto length =
      args.pick(std::chrono::microseconds(50'000), std::chrono::microseconds(4'000));
  const int reps = args.reps_or(5, 1);

  PoolOptions po;
  po.workers = kWorkers;
  po.retries = 0;  // index 7 fails finally at its first crash: the report must name it
  Pool pool(po);
  auto fork_run = [&](std::uint64_t crash_at) {
    const auto t0 = Clock::now();
    MapResult<std::uint64_t> r = pool.try_map<std::uint64_t>(
        n, [length, crash_at](std::uint64_t i) { return seeds_task(i, length, crash_at); });
    const double ms = ms_since(t0);
    auto value = [&r](std::uint64_t i) { return static_cast<std::int64_t>(r.values[i]); };
    if (crash_at == kNoCrash)
      check_clean(r.failures, n, value, "fork mode");
    else
      check_crashed(r.failures, n, value, "fork mode");
    return ms;
  };

  auto out = SharedArray<std::int64_t>::create({n});
  FarmOptions fo;
  fo.workers = kWorkers;
  fo.retries = 0;
  const std::string us = std::to_string(length.count());
  Farm calm = Farm::program(fo, BENCH_WORKER, {"seeds_task", us, "-1"});
  Farm crashing = Farm::program(fo, BENCH_WORKER, {"seeds_task", us, std::to_string(kCrashAt)});
  JobSpec job;
  job.extent = {n};
  job.output_handle = out.handle();
  auto program_run = [&](Farm& farm, bool crash) {
    std::fill(out.data(), out.data() + n, -1);
    const auto t0 = Clock::now();
    const RunReport r = farm.run(job);
    const double ms = ms_since(t0);
    auto value = [&out](std::uint64_t i) { return out.data()[i]; };
    if (!r.farm_error.empty()) throw Error("program mode: " + r.farm_error);
    if (crash)
      check_crashed(r.failures, n, value, "program mode");
    else
      check_clean(r.failures, n, value, "program mode");
    return ms;
  };
  JobSpec warmup = job;
  warmup.extent = {std::min<std::uint64_t>(n, kCrashAt)};  // starts the workers, no crash
  calm.run(warmup);
  crashing.run(warmup);
  pool.try_map<std::uint64_t>(2, [](std::uint64_t i) { return trivial_value(i); });

  Samples fork_free, fork_crash, program_free, program_crash;
  for (int r = 0; r < reps; ++r) {
    // Alternate which goes first, so a drift in the machine's load favours neither.
    if (r % 2 == 0) {
      fork_free.add(fork_run(kNoCrash));
      fork_crash.add(fork_run(kCrashAt));
      program_free.add(program_run(calm, false));
      program_crash.add(program_run(crashing, true));
    } else {
      fork_crash.add(fork_run(kCrashAt));
      fork_free.add(fork_run(kNoCrash));
      program_crash.add(program_run(crashing, true));
      program_free.add(program_run(calm, false));
    }
  }

  const std::string base = "the same run without the kill, alternating";
  const double task_ms = static_cast<double>(length.count()) / 1e3;
  auto emit_seeds = [&](const char* name, const char* mode, const Samples& crash,
                        const Samples& free) {
    Row row(name,
            std::to_string(n) + " tasks of " + std::to_string(length.count() / 1000) +
                " ms (busy wait), 2 workers, " + mode +
                ", retries 0: task 7 SIGKILLs its worker halfway; total time",
            "ms", "lower", crash, base, free);
    Samples diff;
    for (std::size_t k = 0; k < crash.size(); ++k) diff.add(crash.values()[k] - free.values()[k]);
    row.extra = {{"tasks", static_cast<double>(n)},
                 {"task_ms", task_ms},
                 {"paired_difference_ms_median", diff.median()},
                 {"checked_runs", static_cast<double>(crash.size())}};
    row.note = "every crashed run checked: " + std::to_string(n - 1) +
               " values right, one final failure: index 7, SIGKILL";
    emit(row);
  };
  emit_seeds("crash_cases.seeds_fork", "Pool fork mode (try_map)", fork_crash, fork_free);
  emit_seeds("crash_cases.seeds_program", "warm program-mode workers", program_crash, program_free);
}

// ---- master death -----------------------------------------------------------------------------

UniqueFd open_pidfd(pid_t pid) {
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) throw_errno("pidfd_open " + std::to_string(pid));
  return UniqueFd(fd);
}

/// A child process with its stdout on a pipe that we read line by line, with a deadline.
class Spawned {
 public:
  explicit Spawned(std::vector<std::string> argv) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
    out_.reset(fds[0]);
    UniqueFd write_end(fds[1]);
    posix_spawn_file_actions_t fa;
    ::posix_spawn_file_actions_init(&fa);
    ::posix_spawn_file_actions_adddup2(&fa, write_end.get(), 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, argv[0].c_str(), &fa, nullptr, args.data(), environ);
    ::posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw SystemError("posix_spawn " + argv[0], rc);
    pidfd_ = open_pidfd(pid_);
  }
  Spawned(const Spawned&) = delete;
  Spawned& operator=(const Spawned&) = delete;
  ~Spawned() {
    if (pidfd_) {
      ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
      ::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), nullptr, WEXITED);
    }
  }

  pid_t pid() const noexcept { return pid_; }
  int pidfd() const noexcept { return pidfd_.get(); }

  /// The next line of its stdout; throws if none comes within kWaitMs.
  std::string read_line() {
    const auto deadline = Clock::now() + std::chrono::milliseconds(kWaitMs);
    for (;;) {
      if (const auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd p{out_.get(), POLLIN, 0};
      if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1)
        throw Error("no line from pid " + std::to_string(pid_) + " within 10 s");
      char chunk[256];
      const ssize_t got = ::read(out_.get(), chunk, sizeof chunk);
      if (got <= 0) throw Error("stdout of pid " + std::to_string(pid_) + " ended");
      buf_.append(chunk, static_cast<std::size_t>(got));
    }
  }

  /// SIGKILLs it now; returns the time just before the signal.
  Clock::time_point kill() {
    const auto t0 = Clock::now();
    if (::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0) != 0)
      throw_errno("pidfd_send_signal " + std::to_string(pid_));
    return t0;
  }
  void reap() {
    if (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), nullptr, WEXITED) != 0)
      throw_errno("waitid " + std::to_string(pid_));
    pidfd_.reset();
  }

 private:
  pid_t pid_ = 0;
  UniqueFd pidfd_, out_;
  std::string buf_;
};

/// How the children of a killed parent ended.
struct Ended {
  double ms = 0;          ///< from the kill until the last one ended
  int by_sigkill = 0;     ///< killed by SIGKILL (PR_SET_PDEATHSIG)
  std::string otherwise;  ///< how the others ended, e.g. "exit 4"
};

/// Waits until every process in `pidfds` has ended (a pidfd poll, timed from `t0`), then reaps
/// each: we are their subreaper, so orphans come back to us.
Ended all_gone(Clock::time_point t0, std::vector<UniqueFd>& pidfds, const char* who) {
  std::vector<pollfd> left;
  for (const auto& fd : pidfds) left.push_back({fd.get(), POLLIN, 0});
  const auto deadline = t0 + std::chrono::milliseconds(kWaitMs);
  while (!left.empty()) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (ms.count() <= 0 || ::poll(left.data(), left.size(), static_cast<int>(ms.count())) < 0)
      throw Error(std::string(who) + ": " + std::to_string(left.size()) +
                  " of its children still alive 10 s after the kill");
    std::erase_if(left, [](const pollfd& p) { return p.revents != 0; });
  }
  Ended e;
  e.ms = ms_since(t0);
  for (const auto& fd : pidfds) {
    siginfo_t si{};
    if (::waitid(P_PIDFD, static_cast<id_t>(fd.get()), &si, WEXITED) != 0)
      throw_errno(std::string(who) + ": waitid of an orphaned child (are we its subreaper?)");
    if (si.si_code == CLD_KILLED && si.si_status == SIGKILL)
      ++e.by_sigkill;
    else
      e.otherwise +=
          (si.si_code == CLD_EXITED ? " exit " : " signal ") + std::to_string(si.si_status);
  }
  return e;
}

std::size_t segments_of(pid_t pid) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/dev/shm"))
    if (segment_owner_pid(e.path().filename().string()) == pid) ++n;
  return n;
}

struct MasterDeath {
  Ended workers;           ///< kill → every worker ended, and how
  std::size_t leaked = 0;  ///< segments the dead master left, before the sweep
};

MasterDeath kill_farm_master() {
  Spawned master({BENCH_MASTER});
  std::set<pid_t> busy;
  while (busy.size() < kWorkers) {
    std::istringstream line(master.read_line());
    std::string word;
    int pid = 0;
    if (!(line >> word >> pid) || word != "running")
      throw Error("a worker of bench_master printed an unexpected line");
    busy.insert(pid);
  }
  std::vector<UniqueFd> workers;
  for (const pid_t pid : busy) workers.push_back(open_pidfd(pid));
  MasterDeath d;
  d.workers = all_gone(master.kill(), workers, "bench_master");
  master.reap();
  d.leaked = segments_of(master.pid());
  sweep_dead_segments();
  if (const std::size_t left = segments_of(master.pid()); left != 0)
    throw Error(std::to_string(left) + " segments of the killed master pid " +
                std::to_string(master.pid()) + " survived sweep_dead_segments()");
  return d;
}

Ended kill_bare_parent() {
  Spawned parent({BENCH_CHILD, "parent", std::to_string(kWorkers)});
  std::vector<UniqueFd> children;
  for (int k = 0; k < kWorkers; ++k) children.push_back(open_pidfd(std::stoi(parent.read_line())));
  const Ended e = all_gone(parent.kill(), children, "bench_child parent");
  parent.reap();
  if (e.by_sigkill != kWorkers)
    throw Error("a bare PR_SET_PDEATHSIG child ended otherwise than by SIGKILL:" + e.otherwise);
  return e;
}

void master_death(const BenchArgs& args) {
  const int reps = args.reps_or(21, 2);
  // Orphaned workers come back to us, so that we can reap them and see how they died.
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) throw_errno("prctl(PR_SET_CHILD_SUBREAPER)");
  Samples farm, bare;
  double leaked = 0, by_sigkill = 0;
  std::string otherwise;
  for (int r = 0; r < reps; ++r) {
    bare.add(kill_bare_parent().ms);
    const MasterDeath d = kill_farm_master();
    farm.add(d.workers.ms);
    by_sigkill += d.workers.by_sigkill;
    otherwise += d.workers.otherwise;
    leaked += static_cast<double>(d.leaked);
  }
  Row row("crash_cases.master_death",
          "SIGKILL of a program-mode master (2 workers on busy tasks) until both workers ended",
          "ms", "lower", farm,
          "bare parent with 2 busy PR_SET_PDEATHSIG children: SIGKILL until both ended", bare);
  row.extra = {{"workers", static_cast<double>(kWorkers * reps)},
               {"workers_ended_by_sigkill", by_sigkill},
               {"segments_left_by_killed_master_per_rep", leaked / reps},
               {"segments_left_after_sweep", 0}};
  row.note = "after every kill sweep_dead_segments() removed the dead master's segments";
  if (!otherwise.empty()) row.note += "; workers that ended otherwise than by SIGKILL:" + otherwise;
  emit(row);
}

}  // namespace
}  // namespace taskfarm::bench

int main(int argc, char** argv) {
  using namespace taskfarm::bench;
  return bench_main("bench_crash_cases", argc, argv, [](const BenchArgs& args) {
    if (args.wants("seeds")) seeds(args);
    if (args.wants("master_death")) master_death(args);
  });
}
