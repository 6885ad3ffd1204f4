// Issue 7, items 1 and 2: how fast the farm hands out trivial tasks.
//  dispatch.*   chunk size 1, 2 workers: tasks/s of one map() / run() call, against the
//               threads backend running the same Pool API.
//  warm_pool.*  200,000 trivial items, auto chunking, on a pool that already ran once: what one
//               call costs end to end (fork mode forks and reaps its workers in every call;
//               program mode keeps them warm), against the serial loop.
// Repetitions interleave subject and baseline, so both see the same machine load.
#include <malloc.h>

#include <cstdio>
#include <exception>
#include <string>

#include "kernels.hpp"
#include "measure.hpp"
#include "row.hpp"
#include "taskfarm/farm.hpp"
#include "taskfarm/pool.hpp"
#include "taskfarm/shared_array.hpp"
#include "taskfarm/warm_pool.hpp"

namespace taskfarm::bench {
namespace {

constexpr int kWorkers = 2;

PoolOptions pool_options(Backend backend, std::uint64_t chunk) {
  PoolOptions o;
  o.workers = kWorkers;
  o.chunk = chunk;
  o.backend = backend;
  return o;
}

/// Seconds for one Pool::map of n trivial items; checks the last value.
double time_pool_map(Pool& pool, std::uint64_t n) {
  const auto t0 = Clock::now();
  std::vector<std::uint64_t> v =
      pool.map<std::uint64_t>(n, [](std::uint64_t i) { return trivial_value(i); });
  const double s = seconds(t0, Clock::now());
  if (v.size() != n || v[n - 1] != trivial_value(n - 1)) throw Error("map returned wrong values");
  return s;
}

/// Seconds for one WarmPool::for_each of n trivial items into `out` (what ProgramFarm's workers
/// do); checks the last value.
double time_warm_for_each(WarmPool& pool, const SharedArray<std::int64_t>& out) {
  const std::uint64_t n = out.size();
  const auto t0 = Clock::now();
  pool.for_each(n, [](std::uint64_t i, const SharedArray<std::int64_t>& o) {
    o.data()[i] = static_cast<std::int64_t>(trivial_value(i));
  }, out);
  const double s = seconds(t0, Clock::now());
  if (static_cast<std::uint64_t>(out.data()[n - 1]) != trivial_value(n - 1)) throw Error("WarmPool::for_each wrote wrong values");
  return s;
}

/// Seconds for one WarmPool::map of n trivial items; checks the last value.
double time_warm_map(WarmPool& pool, std::uint64_t n) {
  const auto t0 = Clock::now();
  std::vector<std::uint64_t> v = pool.map<std::uint64_t>(n, [](std::uint64_t i) { return trivial_value(i); });
  const double s = seconds(t0, Clock::now());
  if (v.size() != n || v[n - 1] != trivial_value(n - 1)) throw Error("WarmPool::map returned wrong values");
  return s;
}

/// A warm program-mode farm of bench_worker store_index writing into its own output array.
class ProgramFarm {
 public:
  ProgramFarm(std::uint64_t chunk, std::uint64_t n) : out_(SharedArray<std::int64_t>::create({n})) {
    FarmOptions o;
    o.workers = kWorkers;
    o.chunk = chunk;
    farm_.emplace(Farm::program(o, BENCH_WORKER, {"store_index"}));
    job_.extent = {n};
    job_.output_handle = out_.handle();
    run_seconds();  // start the workers: later runs find them warm
  }
  double run_seconds() {
    const auto t0 = Clock::now();
    const RunReport r = farm_->run(job_, &worker_time_);
    const double s = seconds(t0, Clock::now());
    const std::uint64_t n = job_.extent[0];
    if (r.succeeded != n || static_cast<std::uint64_t>(out_.view()(n - 1)) != trivial_value(n - 1))
      throw Error("program-mode run did not complete: " + std::to_string(r.succeeded) + " of " +
                  std::to_string(n));
    return s;
  }
  /// Nanoseconds per item inside the workers (their own chunk timings), over all runs so far.
  double worker_ns_per_item() const {
    return static_cast<double>(worker_time_.ns) / static_cast<double>(worker_time_.items);
  }
  void reset_worker_time() { worker_time_ = WorkerTime{}; }

 private:
  /// Sums the workers' own chunk timings (Done messages): the per-item cost inside a worker.
  struct WorkerTime final : FarmObserver {
    std::uint64_t ns = 0, items = 0;
    void on_tasks_done(const TasksDone& t) override {
      ns += static_cast<std::uint64_t>(std::chrono::nanoseconds(t.stop - t.start).count());
      items += t.end - t.begin;
    }
  };
  WorkerTime worker_time_;
  SharedArray<std::int64_t> out_;
  std::optional<Farm> farm_;
  JobSpec job_;
};

void dispatch(const BenchArgs& args) {
  Pool fork_pool(pool_options(Backend::fork, 1));
  Pool threads_pool(pool_options(Backend::threads, 1));
  // Size the calls from a pilot run so one repetition of the slowest takes ~0.4 s (0.05 quick).
  const std::uint64_t pilot = args.pick<std::uint64_t>(20'000, 5'000);
  const double pilot_rate = static_cast<double>(pilot) / time_pool_map(fork_pool, pilot);
  const double want_s = args.pick(0.4, 0.05);
  const auto n =
      static_cast<std::uint64_t>(std::clamp(pilot_rate * want_s, static_cast<double>(pilot), 4e6));
  ProgramFarm program(1, n);
  const int reps = args.reps_or(7, 2);

  Samples fork_rate, program_rate, threads_rate;
  const auto dn = static_cast<double>(n);
  for (int r = 0; r < reps; ++r) {
    fork_rate.add(dn / time_pool_map(fork_pool, n));
    threads_rate.add(dn / time_pool_map(threads_pool, n));
    program_rate.add(dn / program.run_seconds());
  }
  Row row{"dispatch.fork",
          "chunk 1, trivial task, 2 workers, Pool fork mode (one map call, fork and reap included)",
          "tasks/s",
          "higher",
          fork_rate,
          "threads backend, same Pool API, chunk 1",
          threads_rate};
  row.extra = {{"tasks_per_call", dn}};
  emit(row);
  row.name = "dispatch.program";
  row.what = "chunk 1, trivial task, 2 workers, program mode (warm bench_worker processes)";
  row.samples = program_rate;
  emit(row);
}

void warm_pool(const BenchArgs& args) {
  constexpr std::uint64_t n = 200'000;
  Pool fork_pool(pool_options(Backend::fork, 0));
  Pool threads_pool(pool_options(Backend::threads, 0));
  time_pool_map(fork_pool, n);  // warm: the pool's result buffer and slot segments exist now
  time_pool_map(threads_pool, n);
  ProgramFarm program(0, n);
  WarmPool warm(pool_options(Backend::fork, 0));
  time_warm_map(warm, n);  // its workers, result buffer and slot segments exist now
  auto warm_out = SharedArray<std::int64_t>::create({n});
  time_warm_for_each(warm, warm_out);
  const int reps = args.reps_or(21, 5);

  Samples fork_ms, program_ms, threads_ms, serial_ms, worker_ns, serial_ns, warm_ms, warm_map_ms;
  for (int r = 0; r < reps; ++r) {
    fork_ms.add(1e3 * time_pool_map(fork_pool, n));
    program.reset_worker_time();
    program_ms.add(1e3 * program.run_seconds());
    worker_ns.add(program.worker_ns_per_item());
    threads_ms.add(1e3 * time_pool_map(threads_pool, n));
    warm_ms.add(1e3 * time_warm_for_each(warm, warm_out));
    warm_map_ms.add(1e3 * time_warm_map(warm, n));
    const auto t0 = Clock::now();
    std::vector<std::uint64_t> v(n);  // what map returns: a fresh vector
    for (std::uint64_t i = 0; i < n; ++i) v[i] = trivial_value(i);
    do_not_optimize(v.data());
    serial_ms.add(ms_since(t0));
    serial_ns.add(serial_ms.values().back() * 1e6 / static_cast<double>(n));
  }
  const std::string base = "serial loop into a fresh std::vector";
  Row row{"warm_pool.fork",
          "200,000 trivial items, auto chunk, 2 workers: one Pool::map call (forks + reaps its "
          "workers)",
          "ms",
          "lower",
          fork_ms,
          base,
          serial_ms};
  row.extra = {{"items", static_cast<double>(n)}};
  emit(row);
  row.name = "warm_pool.program";
  row.what = "200,000 trivial items, auto chunk, 2 warm program-mode workers: one Farm::run call";
  row.samples = program_ms;
  emit(row);
  row.name = "warm_pool.threads";
  row.what = "200,000 trivial items, auto chunk, threads backend (for reference: no processes)";
  row.samples = threads_ms;
  emit(row);
  row.name = "warm_pool.warm_fork";
  row.what = "200,000 trivial items, auto chunk, 2 warm forked workers: one WarmPool::for_each into a "
             "SharedArray (what warm_pool.program's workers do)";
  row.samples = warm_ms;
  row.baseline = "warm_pool.program: one Farm::run of 2 warm program-mode workers, same repetitions";
  row.baseline_samples = program_ms;
  emit(row);
  row.name = "warm_pool.warm_fork_map";
  row.what = "the same items through WarmPool::map: results copied into a returned vector, as Pool::map";
  row.samples = warm_map_ms;
  row.baseline = "warm_pool.fork: Pool::map of the same items, same repetitions";
  row.baseline_samples = fork_ms;
  emit(row);
  Row per_item("warm_pool.worker_ns_per_item",
               "inside a program-mode worker: ns per trivial item (its own chunk timings, "
               "warm_pool.program)",
               "ns", "lower", worker_ns, "serial loop, ns per item", serial_ns);
  emit(per_item);
}

}  // namespace
}  // namespace taskfarm::bench

int main(int argc, char** argv) {
  using namespace taskfarm::bench;
  return bench_main("bench_dispatch", argc, argv, [](const BenchArgs& args) {
    if (args.wants("dispatch")) dispatch(args);
    // dispatch's calls of ~1M items leave glibc's heap holding tens of MB; a fork copies the
    // page tables of all of it, which would bill warm_pool.fork for the previous part (measured
    // 1.0 ms instead of 0.8 ms). Each part starts from the memory a fresh process would have.
    ::malloc_trim(0);
    if (args.wants("warm_pool")) warm_pool(args);
  });
}
