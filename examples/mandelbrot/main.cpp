// example-mandelbrot: the tutorial's Mandelbrot picture, one task per row. Fork mode writes the
// rows straight into a shared int32 (size, size) array; --serial runs the plain loop; --worker
// makes this the worker program of `taskfarm run --output M.npy --dtype int32 --shape NxN`.
#include <cstdio>
#include <exception>
#include <span>
#include <string>
#include <vector>

#include "compare.hpp"
#include "mandelbrot.hpp"
#include "output_array.hpp"
#include "png.hpp"
#include "run_modes.hpp"
#include "taskfarm/pool.hpp"
#include "taskfarm/worker.hpp"

namespace {

using examples::MandelbrotGrid;

std::span<std::int32_t> as_span(const taskfarm::ArrayView<std::int32_t>& row) {
  return {row.begin(), row.size()};
}

// Worker program: task i of `taskfarm run` computes row i of the run's --output array.
int serve_as_worker(const MandelbrotGrid& grid) {
  return taskfarm::run_worker([grid](taskfarm::TaskContext& task) {
    const taskfarm::ArrayView<std::int32_t>& out = task.output_as<std::int32_t>();
    if (out.shape() != taskfarm::Shape{grid.size, grid.size}) {
      throw taskfarm::Error("example-mandelbrot --worker --size " + std::to_string(grid.size) +
                            ": the output array is " + taskfarm::format_shape(out.shape()) +
                            ", not " + std::to_string(grid.size) + "x" + std::to_string(grid.size));
    }
    examples::compute_row(grid, task.index(), as_span(out.at(task.index())));
  });
}

void write_picture(const std::string& png, std::span<const std::int32_t> counts, std::size_t n) {
  const int side = static_cast<int>(n);
  examples::write_png(png, side, side, 3, examples::colorize(counts).data());
  std::printf("wrote %s\n", png.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  examples::RunModes modes;
  examples::CommandLine cli{
      "The tutorial's Mandelbrot picture computed in parallel, one task per row.", modes};
  MandelbrotGrid grid;
  std::string output, png, png_from;
  bool worker = false;
  cli.option("--size", grid.size, "points per side", examples::Check::positive);
  cli.option("--max-iter", grid.max_iter, "iterations per point", examples::Check::positive);
  cli.option("--output", output, "write the int32 (size, size) counts to this .npy file");
  cli.option("--png", png, "write a colour picture of the counts to this PNG file");
  cli.option("--png-from", png_from, "only paint the counts of this .npy file (needs --png)");
  cli.flag("--worker", worker, "serve `taskfarm run` as its worker program");
  if (const auto status = cli.parse(argc, argv)) return *status;

  try {
    if (worker) return serve_as_worker(grid);
    if (!png_from.empty()) {
      if (png.empty()) throw taskfarm::Error("--png-from " + png_from + " needs --png");
      const auto counts = taskfarm::SharedArray<const std::int32_t>::open_npy(png_from);
      if (counts.shape().size() != 2 || counts.shape()[0] != counts.shape()[1]) {
        throw taskfarm::Error(png_from + ": expected a square 2-d array, not " +
                              taskfarm::format_shape(counts.shape()));
      }
      write_picture(png, {counts.data(), counts.size()}, counts.shape()[0]);
      return 0;
    }

    const std::size_t n = grid.size;
    auto result = examples::make_output<std::int32_t>(output, {n, n});
    examples::Timing timing;
    if (modes.run_parallel()) {
      taskfarm::Pool pool(modes.pool_options());
      timing.workers = pool.workers();
      timing.parallel_s = examples::time_seconds([&] {
        pool.for_each(n,
                      [&](std::uint64_t i) { examples::compute_row(grid, i, as_span(result[i])); });
      });
    }
    std::vector<std::int32_t> serial;  // the serial run's own copy when both run
    if (modes.run_serial()) {
      taskfarm::ArrayView<std::int32_t> target = result.view();
      if (modes.run_parallel()) {
        serial.resize(n * n);
        target = taskfarm::ArrayView<std::int32_t>(serial.data(), {n, n});
      }
      timing.serial_s = examples::time_seconds([&] {
        for (std::size_t i = 0; i < n; ++i) examples::compute_row(grid, i, as_span(target[i]));
      });
    }

    std::printf("mandelbrot: %zu x %zu points, max_iter %d, one task per row\n", n, n,
                grid.max_iter);
    examples::print_timing(timing);
    examples::publish_output(result, output);
    const std::span<const std::int32_t> counts(result.data(), result.size());
    if (!png.empty()) write_picture(png, counts, n);
    if (modes.check && modes.run_parallel()) {
      return examples::report_check(
                 "mandelbrot counts",
                 examples::first_difference(counts, std::span<const std::int32_t>(serial)))
                 ? 0
                 : 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "example-mandelbrot: %s\n", e.what());
    return 1;
  }
}
