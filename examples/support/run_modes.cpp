#include "run_modes.hpp"

#include <cstdio>

namespace examples {

taskfarm::PoolOptions RunModes::pool_options() const {
  taskfarm::PoolOptions options;
  options.workers = workers;
  return options;
}

void add_run_modes(CLI::App& app, RunModes& modes) {
  app.add_option("--workers", modes.workers,
                 "worker processes: N > 0, or -1 for all usable CPUs, -2 all but one, ...")
      ->capture_default_str();
  app.add_flag("--serial", modes.serial, "run only the plain serial loop");
  app.add_flag("--compare", modes.compare,
               "run the parallel and the serial loop; print both times");
  app.add_flag("--check", modes.check,
               "run both loops and exit 1 if their results differ anywhere");
}

void print_timing(const Timing& timing) {
  if (timing.parallel_s) {
    std::printf("parallel: %.3f s on %zu workers\n", *timing.parallel_s, timing.workers);
  }
  if (timing.serial_s) std::printf("serial:   %.3f s\n", *timing.serial_s);
  if (timing.parallel_s && timing.serial_s && *timing.parallel_s > 0) {
    std::printf("speed-up: %.2fx\n", *timing.serial_s / *timing.parallel_s);
  }
}

bool report_check(const std::string& what, std::optional<std::string> first_difference) {
  if (!first_difference) {
    std::printf("check: %s: parallel and serial results are identical\n", what.c_str());
    return true;
  }
  std::printf("check FAILED: %s: %s\n", what.c_str(), first_difference->c_str());
  return false;
}

}  // namespace examples
