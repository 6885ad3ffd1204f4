// RunModes: the options every example shares (--workers, --serial, --compare, --check) and the
// wall-time report they print. Used by the examples' main(), in the master process only.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>

#include "taskfarm/pool.hpp"

namespace examples {

/// Which loops an example runs: the parallel one, the plain serial one, or both.
struct RunModes {
  int workers = -1;      ///< --workers: as PoolOptions::workers (-1 = all usable CPUs)
  bool serial = false;   ///< --serial: only the plain loop
  bool compare = false;  ///< --compare: both, and print the speed-up
  bool check = false;    ///< --check: both, and fail on any difference

  bool run_parallel() const noexcept { return !serial; }
  bool run_serial() const noexcept { return serial || compare || check; }
  /// Pool options for these modes (workers set; everything else at its default).
  taskfarm::PoolOptions pool_options() const;
};

/// Registers --workers, --serial, --compare and --check on `app`.
void add_run_modes(CLI::App& app, RunModes& modes);

/// Wall time of the parallel and serial runs, as far as they ran.
struct Timing {
  std::optional<double> parallel_s, serial_s;
  std::size_t workers = 0;
};

/// Runs f() and returns its wall time in seconds.
template <class F>
double time_seconds(F&& f) {
  const auto start = std::chrono::steady_clock::now();
  std::forward<F>(f)();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Prints "parallel: 1.234 s on 2 workers", "serial: 2.345 s" and "speed-up: 1.90x".
void print_timing(const Timing& timing);

/// Prints "check: <what>: parallel and serial results are identical" and returns true, or
/// prints where they first differ and returns false.
bool report_check(const std::string& what, std::optional<std::string> first_difference);

}  // namespace examples
