// bench_worker KERNEL [ARG [ARG2]]: the program-mode worker of the benchmarks (and of `taskfarm
// run` in bench/run). Serves one kernel, chosen on its command line, written the way the worker
// header shows users to write kernels.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "kernels.hpp"
#include "taskfarm/worker.hpp"

namespace {

using taskfarm::TaskContext;
namespace bench = taskfarm::bench;

taskfarm::Kernel kernel_named(const std::string& name, long arg, long arg2) {
  if (name == "noop") return [](TaskContext&) {};
  if (name == "store_index")
    return [](TaskContext& t) {
      t.output_as<std::int64_t>()(t.index()) =
          static_cast<std::int64_t>(bench::trivial_value(t.index()));
    };
  if (name == "set_result")
    return [](TaskContext& t) { t.set_result(bench::trivial_value(t.index())); };
  if (name == "spin_us")
    return [arg](TaskContext&) { bench::spin_for(std::chrono::microseconds(arg)); };
  if (name == "seeds_task")  // US CRASH_AT: output[i] = trivial_value(i); SIGKILL at CRASH_AT
    return [arg, crash_at = arg2 < 0 ? bench::kNoCrash
                                     : static_cast<std::uint64_t>(arg2)](TaskContext& t) {
      const std::uint64_t v =
          bench::seeds_task(t.index(), std::chrono::microseconds(arg), crash_at);
      t.output_as<std::int64_t>()(t.index()) = static_cast<std::int64_t>(v);
    };
  if (name == "announce_spin_us")  // says "running <pid>" on stdout, then busy-waits US
    return [arg](TaskContext&) {
      std::printf("running %d\n", static_cast<int>(::getpid()));
      std::fflush(stdout);
      bench::spin_for(std::chrono::microseconds(arg));
    };
  if (name == "sleep_ms")
    return [arg](TaskContext&) { std::this_thread::sleep_for(std::chrono::milliseconds(arg)); };
  if (name == "mandelbrot")
    return [arg](TaskContext& t) {
      auto image = t.output_as<std::int32_t>();
      bench::MandelbrotGrid grid;
      grid.size = image.shape()[1];
      grid.max_iter = static_cast<int>(arg);
      bench::mandelbrot_row(grid, t.index(), image[t.index()].data());
    };
  if (name == "double_frame")
    return [](TaskContext& t) {
      auto in = t.input_as<double>()[t.index()];
      bench::double_frame(in.data(), t.output_as<double>()[t.index()].data(), in.size());
    };
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string name = argc > 1 ? argv[1] : "";
  const long arg = argc > 2 ? std::atol(argv[2]) : 0;
  const long arg2 = argc > 3 ? std::atol(argv[3]) : -1;
  taskfarm::Kernel kernel = kernel_named(name, arg, arg2);
  if (!kernel) {
    std::fprintf(
        stderr,
        "usage: bench_worker noop | store_index | set_result | spin_us US | sleep_ms MS | "
        "seeds_task US CRASH_AT | announce_spin_us US | mandelbrot MAX_ITER | double_frame\n");
    return 2;
  }
  return taskfarm::run_worker(std::move(kernel));
}
