// Issue 7, item 4: Mandelbrot 1600 x 1600, max_iter 256, one task per row (chunk 1), 2 workers.
// Each repetition times, back to back, the serial loop, the threads backend, the fork-mode
// Pool and warm program-mode workers; every parallel image is checked against the serial one.
//  mandelbrot.fork / .program   speed-up over the serial loop; baseline: the threads backend's
//                               speed-up in the same repetition.
//  mandelbrot.threads           the threads backend's speed-up over the serial loop.
#include <cstdio>
#include <cstring>
#include <exception>
#include <optional>
#include <vector>

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

// WarmPool's kernel: a function of its arguments only (the grid by value, the image by handle).
void warm_row(std::uint64_t row, const SharedArray<std::int32_t>& image, const MandelbrotGrid& grid) {
  mandelbrot_row(grid, row, image[row].data());
}

void check_same(const PrivateBuffer<std::int32_t>& serial, const SharedArray<std::int32_t>& image,
                const char* who) {
  if (std::memcmp(serial.data(), image.data(), serial.size() * sizeof(std::int32_t)) != 0)
    throw Error(std::string(who) + " image differs from the serial one");
}

void mandelbrot(const BenchArgs& args) {
  MandelbrotGrid grid;
  grid.size = args.pick<std::size_t>(1600, 400);
  const std::size_t n = grid.size;
  const int reps = args.reps_or(7, 2);

  PoolOptions po;
  po.workers = kWorkers;
  po.chunk = 1;
  Pool fork_pool(po);
  const PoolOptions po_fork = po;
  po.backend = Backend::threads;
  Pool threads_pool(po);
  FarmOptions fo;
  fo.workers = kWorkers;
  fo.chunk = 1;
  Farm farm = Farm::program(fo, BENCH_WORKER, {"mandelbrot", std::to_string(grid.max_iter)});

  auto image = SharedArray<std::int32_t>::create({n, n});
  PrivateBuffer<std::int32_t> serial(n * n);  // not write-protected by the fork-mode calls
  JobSpec job;
  job.extent = {n};
  job.output_handle = image.handle();
  auto row_into_image = [&grid, &image](std::uint64_t row) {
    mandelbrot_row(grid, row, image[row].data());
  };
  farm.run(job);  // start the program-mode workers: later runs find them warm
  WarmPool warm(po_fork);
  warm.for_each(n, &warm_row, image, grid);  // likewise

  Samples serial_ms, fork_x, threads_x, program_x, fork_ms, threads_ms, program_ms, warm_x, warm_ms;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    for (std::size_t row = 0; row < n; ++row) mandelbrot_row(grid, row, serial.data() + row * n);
    do_not_optimize(serial.data());
    const double s = ms_since(t0);
    serial_ms.add(s);

    std::memset(image.data(), 0, n * n * sizeof(std::int32_t));
    t0 = Clock::now();
    fork_pool.for_each(n, row_into_image);
    fork_ms.add(ms_since(t0));
    check_same(serial, image, "fork-mode");

    std::memset(image.data(), 0, n * n * sizeof(std::int32_t));
    t0 = Clock::now();
    threads_pool.for_each(n, row_into_image);
    threads_ms.add(ms_since(t0));
    check_same(serial, image, "threads-backend");

    std::memset(image.data(), 0, n * n * sizeof(std::int32_t));
    t0 = Clock::now();
    const RunReport rep = farm.run(job);
    program_ms.add(ms_since(t0));
    if (rep.succeeded != n) throw Error("program-mode run did not complete");
    check_same(serial, image, "program-mode");

    std::memset(image.data(), 0, n * n * sizeof(std::int32_t));
    t0 = Clock::now();
    warm.for_each(n, &warm_row, image, grid);
    warm_ms.add(ms_since(t0));
    check_same(serial, image, "WarmPool");
    warm_x.add(s / warm_ms.values().back());

    fork_x.add(s / fork_ms.values().back());
    threads_x.add(s / threads_ms.values().back());
    program_x.add(s / program_ms.values().back());
  }
  const std::string base = "threads backend's speed-up, same repetitions";
  const std::vector<std::pair<std::string, double>> extra = {
      {"size", static_cast<double>(n)},    {"max_iter", grid.max_iter},
      {"serial_ms", serial_ms.median()},   {"fork_ms", fork_ms.median()},
      {"threads_ms", threads_ms.median()}, {"program_ms", program_ms.median()},
      {"warm_fork_ms", warm_ms.median()}};
  Row row("mandelbrot.fork",
          "Mandelbrot, one task per row, 2 workers, Pool fork mode: speed-up over serial", "x",
          "higher", fork_x, base, threads_x);
  row.extra = extra;
  emit(row);
  row.name = "mandelbrot.program";
  row.what = "Mandelbrot, one task per row, 2 warm program-mode workers: speed-up over serial";
  row.samples = program_x;
  emit(row);
  Row threads("mandelbrot.threads",
              "Mandelbrot, one task per row, threads backend (2 threads): speed-up over serial",
              "x", "higher", threads_x, "serial loop (speed-up 1)", Samples());
  for (int r = 0; r < reps; ++r) threads.baseline_samples.add(1.0);
  threads.extra = extra;
  emit(threads);
  row.name = "mandelbrot.warm_fork";
  row.what = "Mandelbrot, one task per row, 2 warm forked workers (WarmPool): speed-up over serial";
  row.samples = warm_x;
  row.baseline = "mandelbrot.program's speed-up, same repetitions";
  row.baseline_samples = program_x;
  emit(row);
}

}  // namespace
}  // namespace taskfarm::bench

int main(int argc, char** argv) {
  return taskfarm::bench::bench_main("bench_mandelbrot", argc, argv, taskfarm::bench::mandelbrot);
}
