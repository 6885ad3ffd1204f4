// RunModes: the options every example shares (--workers, --serial, --compare, --check) and the
// wall-time report they print; CommandLine: an example's options, parsed by CLI11. Used by the
// examples' main(), in the master process only.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "taskfarm/pool.hpp"

namespace CLI {
class App;
}

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

/// What a number given on the command line must be.
enum class Check { any, positive, non_negative };

/// An example's command line: a CLI11 App with --workers, --serial, --compare and --check
/// (filling `modes`) and the options the example names. CLI11 is included by run_modes.cpp
/// alone: at -O3 it costs ~10 s of compiling in every file that includes it (docs/testing.md).
class CommandLine {
 public:
  CommandLine(const std::string& description, RunModes& modes);
  ~CommandLine();
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  /// --name VALUE; --help shows the variable's value now as the default.
  void option(const std::string& name, std::uint64_t& value, const std::string& help,
              Check check = Check::any);
  void option(const std::string& name, int& value, const std::string& help,
              Check check = Check::any);
  void option(const std::string& name, double& value, const std::string& help,
              Check check = Check::any);
  void option(const std::string& name, std::string& value, const std::string& help);
  /// --name A or --name A,B: one or two numbers.
  void one_or_two(const std::string& name, std::vector<double>& values, const std::string& help,
                  Check check = Check::any);
  /// --name: sets `value` to true.
  void flag(const std::string& name, bool& value, const std::string& help);

  /// Parses the command line: nothing to go on, or the status main() returns — 0 after
  /// --help, else CLI11's for the error it printed.
  std::optional<int> parse(int argc, char** argv);

 private:
  std::unique_ptr<CLI::App> app_;
};

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
