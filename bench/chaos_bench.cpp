// Issue 7, item 7: throughput of 1 ms tasks on 2 workers while one busy worker is SIGKILLed
// every 100 ms on average (FarmOptions::chaos_rate = 10, exponential gaps), against the same
// run without kills, alternating in every repetition. Auto chunking, as users run it.
//  chaos.program  warm program-mode workers (a killed one is re-executed)
//  chaos.fork     Pool fork mode (a killed one is re-forked)
#include <cstdio>
#include <exception>

#include "kernels.hpp"
#include "measure.hpp"
#include "row.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/farm.hpp"
#include "taskfarm/pool.hpp"

namespace taskfarm::bench {
namespace {

constexpr int kWorkers = 2;
constexpr double kKillsPerSecond = 10;
constexpr auto kTask = std::chrono::milliseconds(1);

struct Tally {
  double kills = 0, retries = 0;
};

void check(const RunReport& r, std::uint64_t n, const char* who) {
  if (r.succeeded != n || !r.failures.empty())
    throw Error(std::string(who) + ": " + std::to_string(r.succeeded) + " of " + std::to_string(n) +
                " succeeded");
}

void chaos(const BenchArgs& args) {
  const std::uint64_t n = args.pick<std::uint64_t>(2000, 400);  // 1 s (0.2 s) of work per run
  const int reps = args.reps_or(7, 1);

  FarmOptions fo;
  fo.workers = kWorkers;
  Farm calm = Farm::program(fo, BENCH_WORKER, {"spin_us", "1000"});
  fo.chaos_rate = kKillsPerSecond;
  Farm stormy = Farm::program(fo, BENCH_WORKER, {"spin_us", "1000"});
  JobSpec job;
  job.extent = {n};
  JobSpec warmup;
  warmup.extent = {20};
  calm.run(warmup);
  stormy.run(warmup);

  PoolOptions po;
  po.workers = kWorkers;
  Pool calm_pool(po);
  po.chaos_rate = kKillsPerSecond;
  Pool stormy_pool(po);
  auto task = [](std::uint64_t) { spin_for(kTask); };

  const auto dn = static_cast<double>(n);
  Samples program_calm, program_chaos, fork_calm, fork_chaos;
  Tally program_tally, fork_tally;
  for (int r = 0; r < reps; ++r) {
    RunReport rep = calm.run(job);
    check(rep, n, "program mode");
    program_calm.add(dn / std::chrono::duration<double>(rep.wall).count());
    rep = stormy.run(job);
    check(rep, n, "program mode with kills");
    program_chaos.add(dn / std::chrono::duration<double>(rep.wall).count());
    program_tally.kills += static_cast<double>(rep.chaos_kills);

    auto t0 = Clock::now();
    calm_pool.for_each(n, task);
    fork_calm.add(dn / seconds(t0, Clock::now()));
    check(calm_pool.last_report(), n, "fork mode");
    t0 = Clock::now();
    stormy_pool.for_each(n, task);
    fork_chaos.add(dn / seconds(t0, Clock::now()));
    check(stormy_pool.last_report(), n, "fork mode with kills");
    fork_tally.kills += static_cast<double>(stormy_pool.last_report().chaos_kills);
  }
  const std::string base = "the same run without kills, alternating";
  Row row("chaos.program",
          "1 ms tasks, 2 warm program-mode workers, a SIGKILL every 100 ms (chaos_rate 10)",
          "tasks/s", "higher", program_chaos, base, program_calm);
  row.extra = {{"tasks", dn}, {"kills_per_run", program_tally.kills / reps}};
  emit(row);
  row = Row("chaos.fork",
            "1 ms tasks, 2 workers, Pool fork mode, a SIGKILL every 100 ms (chaos_rate 10)",
            "tasks/s", "higher", fork_chaos, base, fork_calm);
  row.extra = {{"tasks", dn}, {"kills_per_run", fork_tally.kills / reps}};
  emit(row);
}

}  // namespace
}  // namespace taskfarm::bench

int main(int argc, char** argv) {
  return taskfarm::bench::bench_main("bench_chaos", argc, argv, taskfarm::bench::chaos);
}
