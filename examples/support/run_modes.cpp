#include "run_modes.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>

namespace examples {

taskfarm::PoolOptions RunModes::pool_options() const {
  taskfarm::PoolOptions options;
  options.workers = workers;
  return options;
}

namespace {

CLI::Option* checked(CLI::Option* option, Check check) {
  if (check == Check::positive) option->check(CLI::PositiveNumber);
  if (check == Check::non_negative) option->check(CLI::NonNegativeNumber);
  return option;
}

}  // namespace

CommandLine::CommandLine(const std::string& description, RunModes& modes)
    : app_(std::make_unique<CLI::App>(description)) {
  app_->add_option("--workers", modes.workers,
                   "worker processes: N > 0, or -1 for all usable CPUs, -2 all but one, ...")
      ->capture_default_str();
  app_->add_flag("--serial", modes.serial, "run only the plain serial loop");
  app_->add_flag("--compare", modes.compare,
                 "run the parallel and the serial loop; print both times");
  app_->add_flag("--check", modes.check,
                 "run both loops and exit 1 if their results differ anywhere");
}

CommandLine::~CommandLine() = default;

void CommandLine::option(const std::string& name, std::uint64_t& value, const std::string& help,
                         Check check) {
  checked(app_->add_option(name, value, help)->capture_default_str(), check);
}

void CommandLine::option(const std::string& name, int& value, const std::string& help,
                         Check check) {
  checked(app_->add_option(name, value, help)->capture_default_str(), check);
}

void CommandLine::option(const std::string& name, double& value, const std::string& help,
                         Check check) {
  checked(app_->add_option(name, value, help)->capture_default_str(), check);
}

void CommandLine::option(const std::string& name, std::string& value, const std::string& help) {
  app_->add_option(name, value, help)->capture_default_str();  // an empty default is not shown
}

void CommandLine::one_or_two(const std::string& name, std::vector<double>& values,
                             const std::string& help, Check check) {
  checked(
      app_->add_option(name, values, help)->delimiter(',')->expected(1, 2)->capture_default_str(),
      check);
}

void CommandLine::flag(const std::string& name, bool& value, const std::string& help) {
  app_->add_flag(name, value, help);
}

std::optional<int> CommandLine::parse(int argc, char** argv) {
  try {
    app_->parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    return app_->exit(e);
  }
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
