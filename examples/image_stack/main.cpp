// example-image-stack: a stack of frames laid out (rows, slices, cols), each slice data[:, i, :]
// (a strided view) blurred by a Gaussian filter as scipy.ndimage.gaussian_filter would; task i
// is slice i. --worker makes this the worker program of `taskfarm run --input IN.npy
// --output OUT.npy --dtype float32 --shape RxSxC`.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "compare.hpp"
#include "gaussian_filter.hpp"
#include "output_array.hpp"
#include "run_modes.hpp"
#include "stack.hpp"
#include "taskfarm/pool.hpp"
#include "taskfarm/worker.hpp"

namespace {

using examples::Sigma;
using FloatView = taskfarm::ArrayView<float>;
using InputView = taskfarm::ArrayView<const float>;

void blur_slice(const InputView& in, const FloatView& out, std::size_t i, Sigma sigma) {
  examples::gaussian_filter(in.take(1, i), out.take(1, i), sigma);
}

int serve_as_worker(Sigma sigma) {
  return taskfarm::run_worker([sigma](taskfarm::TaskContext& task) {
    const InputView& in = task.input_as<float>();
    const FloatView& out = task.output_as<float>();
    if (in.ndim() != 3 || in.shape() != out.shape()) {
      throw taskfarm::Error("example-image-stack --worker: input " +
                            taskfarm::format_shape(in.shape()) + " and output " +
                            taskfarm::format_shape(out.shape()) +
                            " must be one (rows, slices, cols) shape");
    }
    blur_slice(in, out, task.index(), sigma);
  });
}

}  // namespace

int main(int argc, char** argv) {
  examples::RunModes modes;
  examples::CommandLine cli{
      "Blurs every slice of a (rows, slices, cols) float32 stack in parallel, like "
      "scipy.ndimage.gaussian_filter(data[:, i, :], sigma).",
      modes};
  std::size_t rows = 300, cols = 500, slices = 16;
  std::vector<double> sigma_list{3, 5};
  std::string input, save_input, output, png;
  bool worker = false;
  cli.option("--rows", rows, "rows of the default stack (the tutorial: 3000)",
             examples::Check::positive);
  cli.option("--cols", cols, "columns of the default stack (the tutorial: 5000)",
             examples::Check::positive);
  cli.option("--slices", slices, "slices of the default stack", examples::Check::positive);
  cli.one_or_two("--sigma", sigma_list, "sigma along rows,cols (one value: both)",
                 examples::Check::non_negative);
  cli.option("--input", input,
             "a float32 (rows, slices, cols) .npy file instead of the default stack");
  cli.option("--save-input", save_input, "write the default stack to this .npy file");
  cli.option("--output", output, "write the blurred float32 stack to this .npy file");
  cli.option("--png", png, "write the last slice before and after to this PNG file");
  cli.flag("--worker", worker, "serve `taskfarm run` as its worker program");
  if (const auto status = cli.parse(argc, argv)) return *status;
  const Sigma sigma{sigma_list.front(), sigma_list.back()};

  try {
    if (worker) return serve_as_worker(sigma);
    taskfarm::SharedArray<const float> opened;
    taskfarm::SharedArray<float> made;
    InputView in;
    if (!input.empty()) {
      opened = taskfarm::SharedArray<const float>::open_npy(input);
      if (opened.shape().size() != 3) {
        throw taskfarm::Error(input + ": expected a (rows, slices, cols) array, not " +
                              taskfarm::format_shape(opened.shape()));
      }
      in = opened.view();
    } else {
      made = examples::make_output<float>(save_input, {rows, slices, cols});
      examples::fill_default_stack(made.view());
      examples::publish_output(made, save_input, " (input)");
      in = made.view();
    }
    const taskfarm::Shape shape = in.shape();
    auto result = examples::make_output<float>(output, shape);

    examples::Timing timing;
    if (modes.run_parallel()) {
      taskfarm::Pool pool(modes.pool_options());
      timing.workers = pool.workers();
      timing.parallel_s = examples::time_seconds([&] {
        pool.for_each(shape[1], [&](std::uint64_t i) { blur_slice(in, result.view(), i, sigma); });
      });
    }
    std::vector<float> serial;  // the serial run's own copy when both run
    if (modes.run_serial()) {
      FloatView target = result.view();
      if (modes.run_parallel()) {
        serial.resize(result.size());
        target = FloatView(serial.data(), shape);
      }
      timing.serial_s = examples::time_seconds([&] {
        for (std::size_t i = 0; i < shape[1]; ++i) blur_slice(in, target, i, sigma);
      });
    }

    std::printf(
        "image-stack: %s float32 (rows, slices, cols), sigma (%g, %g), one task per slice\n",
        taskfarm::format_shape(shape).c_str(), sigma.rows, sigma.cols);
    examples::print_timing(timing);
    examples::publish_output(result, output);
    if (!png.empty()) examples::write_before_after(png, in, result.view());
    if (modes.check && modes.run_parallel()) {
      const std::span<const float> parallel(result.data(), result.size());
      return examples::report_check("blurred stack", examples::first_difference(
                                                         parallel, std::span<const float>(serial)))
                 ? 0
                 : 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "example-image-stack: %s\n", e.what());
    return 1;
  }
}
