// Issue 7, item 3: start-up to first result with 2 workers.
//  startup.fork          new Pool, imap_unordered over 2 trivial tasks: until the first result
//                        reaches the sink (sweep of dead segments, slot segments, 2 forks,
//                        handshake, first task). Pool teardown is not timed.
//  startup.fork_reused   the same call on a Pool that already ran: fork mode forks its workers
//                        in every call, so this is the per-call start cost.
//  startup.program       new Farm::program of bench_worker (exec, handshake) to the first result.
//  startup.program_reused, startup.warm_fork_reused
//                        a call of 2 tasks on a warm Farm::program / WarmPool that ran before,
//                        to its first result, in turns, with no fork between the calls (the
//                        same calls made between the forks above are in the rows' extra).
//  startup.submit        Pool::submit(f).get() of a trivial call on a Pool that ran before: a
//                        process per call (fork, handshake, result, exit, reap), one at a time.
//  startup.submit_batch  the same per call, 20 submitted before the first get (2 run at once).
//                        Their baseline: fork of a child that writes 8 bytes into a pipe, read,
//                        waitpid — the floor of a process per call.
// Baseline: posix_spawn of bench_child, a trivial C++ program that exits, until it is reaped.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <optional>
#include <vector>

#include "kernels.hpp"
#include "measure.hpp"
#include "row.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/farm.hpp"
#include "taskfarm/pool.hpp"
#include "taskfarm/warm_pool.hpp"

extern char** environ;

namespace taskfarm::bench {
namespace {

constexpr int kWorkers = 2;

PoolOptions pool_options() {
  PoolOptions o;
  o.workers = kWorkers;
  return o;
}

/// Milliseconds from `t0` to the first result of a 2-task imap_unordered on `pool`.
double first_result_ms(Pool& pool, Clock::time_point t0) {
  std::optional<Clock::time_point> first;
  pool.imap_unordered<std::uint64_t>(
      2, [](std::uint64_t i) { return trivial_value(i); },
      [&first](std::uint64_t, std::uint64_t&&) {
        if (!first) first = Clock::now();
      });
  if (!first) throw Error("imap_unordered delivered no result");
  return 1e3 * seconds(t0, *first);
}

class FirstResult final : public FarmObserver {
 public:
  void on_result(const IndexResult&) override {
    if (!first) first = Clock::now();
  }
  std::optional<Clock::time_point> first;
};

double program_first_result_ms() {
  FarmOptions o;
  o.workers = kWorkers;
  JobSpec job;
  job.extent = {2};
  job.results = ResultMode::blobs;
  FirstResult obs;
  const auto t0 = Clock::now();
  Farm farm = Farm::program(o, BENCH_WORKER, {"set_result"});
  farm.run(job, &obs);
  if (!obs.first) throw Error("program mode delivered no result");
  return 1e3 * seconds(t0, *obs.first);  // farm's destructor (stopping workers) is not timed
}

/// Milliseconds from a call to its first result on a warm program-mode farm (2 tasks).
double program_reused_ms(Farm& farm) {
  JobSpec job;
  job.extent = {2};
  job.results = ResultMode::blobs;
  FirstResult obs;
  const auto t0 = Clock::now();
  farm.run(job, &obs);
  if (!obs.first) throw Error("program mode delivered no result");
  return 1e3 * seconds(t0, *obs.first);
}

/// Milliseconds from a call to its first result on a WarmPool that ran before (2 tasks).
double warm_reused_ms(WarmPool& pool) {
  std::optional<Clock::time_point> first;
  const auto t0 = Clock::now();
  pool.imap_unordered<std::uint64_t>(
      2, [](std::uint64_t i) { return trivial_value(i); },
      [&first](std::uint64_t, std::uint64_t&&) {
        if (!first) first = Clock::now();
      });
  if (!first) throw Error("WarmPool::imap_unordered delivered no result");
  return 1e3 * seconds(t0, *first);
}

/// Milliseconds per call of `n` trivial Pool::submit calls: one at a time, or all submitted first.
double submit_ms(Pool& pool, int n, bool batch) {
  std::uint64_t sum = 0, want = 0;
  const auto t0 = Clock::now();
  if (batch) {
    std::vector<Future<std::uint64_t>> calls;
    for (int i = 0; i < n; ++i) calls.push_back(pool.submit([](std::uint64_t k) { return trivial_value(k); }, static_cast<std::uint64_t>(i)));
    for (auto& c : calls) sum += c.get();
  } else {
    for (int i = 0; i < n; ++i) sum += pool.submit([](std::uint64_t k) { return trivial_value(k); }, static_cast<std::uint64_t>(i)).get();
  }
  const double ms = ms_since(t0) / n;
  for (int i = 0; i < n; ++i) want += trivial_value(static_cast<std::uint64_t>(i));
  if (sum != want) throw Error("Pool::submit results differ from the serial ones");
  return ms;
}

/// Milliseconds of the floor of a process per call: fork, the child writes 8 bytes into a pipe
/// and exits, the parent reads them and reaps it.
double fork_pipe_ms() {
  const auto t0 = Clock::now();
  int p[2];
  if (::pipe(p) != 0) throw_errno("pipe");
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    const std::uint64_t v = trivial_value(1);
    _exit(::write(p[1], &v, sizeof v) == sizeof v ? 0 : 1);
  }
  ::close(p[1]);
  std::uint64_t v = 0;
  const ssize_t got = ::read(p[0], &v, sizeof v);
  ::close(p[0]);
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) throw_errno("waitpid");
  const double ms = ms_since(t0);
  if (got != sizeof v || v != trivial_value(1) || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error("the forked child did not deliver its value");
  return ms;
}

double posix_spawn_ms() {
  char* argv[] = {const_cast<char*>(BENCH_CHILD), nullptr};
  const auto t0 = Clock::now();
  pid_t pid = 0;
  if (::posix_spawn(&pid, BENCH_CHILD, nullptr, nullptr, argv, environ) != 0)
    throw_errno("posix_spawn " BENCH_CHILD);
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) throw_errno("waitpid");
  const double ms = ms_since(t0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw Error("bench_child did not exit 0");
  return ms;
}

void startup(const BenchArgs& args) {
  const int reps = args.reps_or(32, 6);  // even: each order of the ABBA below as often
  Pool reused(pool_options());
  first_result_ms(reused, Clock::now());  // its slot segments exist from now on
  program_first_result_ms();              // page cache warm for bench_worker
  posix_spawn_ms();
  FarmOptions fo;
  fo.workers = kWorkers;
  Farm program_farm = Farm::program(fo, BENCH_WORKER, {"set_result"});
  program_reused_ms(program_farm);
  WarmPool warm_pool(pool_options());
  warm_reused_ms(warm_pool);
  submit_ms(reused, 2, false);
  Samples cold, warm, program, spawn, program_reused, warm_reused, submit_one, submit_batch, fork_pipe;
  Samples program_after_forks, warm_after_forks;
  for (int r = 0; r < reps; ++r) {
    {
      const auto t0 = Clock::now();
      Pool pool(pool_options());
      cold.add(first_result_ms(pool, t0));
    }
    warm.add(first_result_ms(reused, Clock::now()));
    program.add(program_first_result_ms());
    spawn.add(posix_spawn_ms());
    // Also after the forks above, in turns (ABBA): reported as the rows' context only. Every
    // fork write-protects the master's pages, and the first write to each after it is a fault
    // (14-28 us each on the bench's VM): which engine pays depends on whether its Supervisor
    // shares a page with heap chunks the fork-mode calls above write after their forks — the
    // heap layout, not the call's path (docs/performance.md, "Session 10 — WarmPool").
    if (r % 2 == 0) {
      program_after_forks.add(program_reused_ms(program_farm));
      warm_after_forks.add(warm_reused_ms(warm_pool));
    } else {
      warm_after_forks.add(warm_reused_ms(warm_pool));
      program_after_forks.add(program_reused_ms(program_farm));
    }
    submit_one.add(submit_ms(reused, 5, false));
    submit_batch.add(submit_ms(reused, 20, true));
    fork_pipe.add(fork_pipe_ms());
  }
  // The reused calls themselves: nothing forks between them (one call of each first takes the
  // faults of the forks above), in turns (ABBA).
  program_reused_ms(program_farm);
  warm_reused_ms(warm_pool);
  for (int r = 0; r < reps; ++r) {
    if (r % 2 == 0) {
      program_reused.add(program_reused_ms(program_farm));
      warm_reused.add(warm_reused_ms(warm_pool));
    } else {
      warm_reused.add(warm_reused_ms(warm_pool));
      program_reused.add(program_reused_ms(program_farm));
    }
  }
  const std::string base = "posix_spawn of a trivial C++ program until reaped";
  emit(Row("startup.fork", "new Pool, 2 workers: construction to first result of imap_unordered",
           "ms", "lower", cold, base, spawn));
  emit(Row("startup.fork_reused",
           "Pool that ran before, 2 workers (forks per call): call to first result", "ms", "lower",
           warm, base, spawn));
  emit(Row("startup.program",
           "new Farm::program, 2 bench_worker processes: construction to first result", "ms",
           "lower", program, base, spawn));
  Row program_row("startup.program_reused", "Farm::program that ran before, 2 warm workers: call to first result",
                  "ms", "lower", program_reused, base, spawn);
  program_row.extra = {{"after_other_forks_ms", program_after_forks.median()}};
  emit(program_row);
  Row warm_row("startup.warm_fork_reused", "WarmPool that ran before, 2 warm forked workers: call to first result",
               "ms", "lower", warm_reused, "startup.program_reused, same repetitions", program_reused);
  warm_row.extra = {{"after_other_forks_ms", warm_after_forks.median()},
                    {"program_after_other_forks_ms", program_after_forks.median()}};
  emit(warm_row);
  const std::string floor = "fork of a child that writes 8 bytes into a pipe, read, waitpid";
  emit(Row("startup.submit", "Pool::submit(f).get() of a trivial call, one at a time, on a Pool that ran before: ms per call",
           "ms", "lower", submit_one, floor, fork_pipe));
  emit(Row("startup.submit_batch", "20 trivial Pool::submit calls, then their get(): ms per call (2 run at once)",
           "ms", "lower", submit_batch, floor, fork_pipe));
}

}  // namespace
}  // namespace taskfarm::bench

int main(int argc, char** argv) {
  return taskfarm::bench::bench_main("bench_startup", argc, argv, taskfarm::bench::startup);
}
