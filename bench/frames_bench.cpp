// Issue 7, item 5: 100 frames of 512 x 512 f64 (200 MiB) in, `frame × 2` out, one task per
// frame, 2 workers writing straight into a SharedArray. Rate = output bytes / call time (GB/s,
// 10^9 B/s). The output array is created once, as a user's would be, outside the timing.
// Baselines, in the same repetitions: one process memcpy-ing the 200 MiB into fresh memory
// (a new anonymous mapping: every page faults) and into memory it already touched. Both are
// PrivateBuffers, which fork-mode calls in this process leave alone.
#include <cstdio>
#include <cstring>
#include <exception>

#include "kernels.hpp"
#include "measure.hpp"
#include "private_buffer.hpp"
#include "row.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/farm.hpp"
#include "taskfarm/pool.hpp"
#include "taskfarm/shared_array.hpp"
#include "taskfarm/warm_pool.hpp"

namespace taskfarm::bench {
namespace {

constexpr int kWorkers = 2;

// WarmPool's kernel: a function of its arguments only (the arrays travel as handles).
void warm_double_frame(std::uint64_t f, const SharedArray<double>& in, const SharedArray<double>& out) {
  double_frame(in[f].data(), out[f].data(), in[f].size());
}

void frames(const BenchArgs& args) {
  const std::size_t count = args.pick<std::size_t>(100, 10), side = 512, per_frame = side * side;
  const std::size_t bytes = count * per_frame * sizeof(double);
  const int reps = args.reps_or(8, 2);  // even: each order of the ABBA below as often

  auto in = SharedArray<double>::create({count, side, side});
  for (std::size_t k = 0; k < count * per_frame; ++k)
    in.data()[k] = static_cast<double>(k % 1000) * 0.5;
  auto out = SharedArray<double>::create({count, side, side});

  PoolOptions po;
  po.workers = kWorkers;
  po.chunk = 1;
  Pool pool(po);
  FarmOptions fo;
  fo.workers = kWorkers;
  fo.chunk = 1;
  Farm farm = Farm::program(fo, BENCH_WORKER, {"double_frame"});
  JobSpec job;
  job.extent = {count};
  job.input_handle = in.handle();
  job.output_handle = out.handle();
  WarmPool warm(po);
  // Warm workers in their steady state: a worker faults on every page of a frame it never
  // touched (~16 us per fault on the bench's VM), and with chunk 1 which frames a worker gets
  // changes from call to call. After a single warm-up call the timed calls took ~6,500
  // first-touch faults each in the workers, falling call by call, which landed on either side
  // of frames.warm_fork at random; after 8 they take 0.2 (docs/performance.md, "Session 10 —
  // WarmPool").
  for (int k = 0; k < 8; ++k) {
    farm.run(job);
    warm.for_each(count, &warm_double_frame, in, out);
  }

  PrivateBuffer<double> touched(count * per_frame);
  std::memset(touched.data(), 1, bytes);  // touched from now on
  auto poison = [&] {  // one element per frame, so a frame the farm skipped shows
    for (std::size_t f = 0; f < count; ++f) out[f].data()[per_frame / 2] = -1;
  };
  auto check = [&](const char* who) {
    for (std::size_t f = 0; f < count; ++f) {
      const std::size_t k = f * per_frame + per_frame / 2;
      if (out.data()[k] != 2 * in.data()[k])
        throw Error(std::string(who) + ": frame " + std::to_string(f) + " not written");
    }
  };
  const double gb = static_cast<double>(bytes) / 1e9;
  Samples fork_rate, program_rate, fresh_rate, touched_rate, warm_rate;
  for (int r = 0; r < reps; ++r) {
    poison();
    auto t0 = Clock::now();
    pool.for_each(count,
                  [&](std::uint64_t f) { double_frame(in[f].data(), out[f].data(), per_frame); });
    fork_rate.add(gb / seconds(t0, Clock::now()));
    check("fork mode");

    // Program mode and WarmPool in turns (ABBA): the one right after the forking call above
    // meets its exited children's unmapping and a colder cache, and a fixed order put that
    // cost on one side of the frames.warm_fork ratio in every repetition.
    auto program_run = [&] {
      poison();
      const auto t = Clock::now();
      const RunReport rep = farm.run(job);
      program_rate.add(gb / seconds(t, Clock::now()));
      if (rep.succeeded != count) throw Error("program-mode run did not complete");
      check("program mode");
    };
    auto warm_run = [&] {
      poison();
      const auto t = Clock::now();
      warm.for_each(count, &warm_double_frame, in, out);
      warm_rate.add(gb / seconds(t, Clock::now()));
      check("WarmPool");
    };
    if (r % 2 == 0) {
      program_run();
      warm_run();
    } else {
      warm_run();
      program_run();
    }

    {
      PrivateBuffer<double> fresh(count * per_frame);
      t0 = Clock::now();
      std::memcpy(fresh.data(), in.data(), bytes);
      fresh_rate.add(gb / seconds(t0, Clock::now()));
      do_not_optimize(fresh.data());
    }
    t0 = Clock::now();
    std::memcpy(touched.data(), in.data(), bytes);
    touched_rate.add(gb / seconds(t0, Clock::now()));
    do_not_optimize(touched.data());
  }
  const std::vector<std::pair<std::string, double>> extra = {{"frames", static_cast<double>(count)},
                                                             {"bytes", static_cast<double>(bytes)}};
  const std::string fresh_base = "one process: memcpy of the same bytes into fresh memory";
  Row row("frames.fork",
          "frame x 2 into a SharedArray, one task per frame, 2 workers, Pool fork mode", "GB/s",
          "higher", fork_rate, fresh_base, fresh_rate);
  row.extra = extra;
  emit(row);
  row.name = "frames.program";
  row.what = "frame x 2 into a SharedArray, one task per frame, 2 warm program-mode workers";
  row.samples = program_rate;
  emit(row);
  row.name = "frames.fork_vs_touched";
  row.what = "frames.fork against memcpy into already-touched memory";
  row.samples = fork_rate;
  row.baseline = "one process: memcpy of the same bytes into touched memory";
  row.baseline_samples = touched_rate;
  emit(row);
  row.name = "frames.program_vs_touched";
  row.what = "frames.program against memcpy into already-touched memory";
  row.samples = program_rate;
  emit(row);
  row.name = "frames.warm_fork_vs_touched";
  row.what = "frames.warm_fork against memcpy into already-touched memory";
  row.samples = warm_rate;
  emit(row);
  row.name = "frames.warm_fork";
  row.what = "frame x 2 into a SharedArray, one task per frame, 2 warm forked workers (WarmPool)";
  row.baseline = "frames.program: 2 warm program-mode workers, same repetitions";
  row.baseline_samples = program_rate;
  emit(row);
}

}  // namespace
}  // namespace taskfarm::bench

int main(int argc, char** argv) {
  return taskfarm::bench::bench_main("bench_frames", argc, argv, taskfarm::bench::frames);
}
