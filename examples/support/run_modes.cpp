#include "run_modes.hpp"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace examples {

taskfarm::PoolOptions RunModes::pool_options() const {
  taskfarm::PoolOptions options;
  options.workers = workers;
  return options;
}

namespace {

// Checks on the text as given, with messages that name the value (CLI11's PositiveNumber said
// "Value 0 not in range 0.000000 to 1797...", 309 digits: h14 F5).
std::string number_error(const std::string& in, Check check) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(in.c_str(), &end);
  if (end == in.c_str() || *end != '\0' || errno == ERANGE || !std::isfinite(v))
    return "not a finite number: " + in;
  if (check == Check::positive && !(v > 0)) return "must be more than 0, not " + in;
  if (check == Check::non_negative && !(v >= 0)) return "must be 0 or more, not " + in;
  return {};
}

CLI::Option* checked(CLI::Option* option, Check check) {
  if (check != Check::any)
    option->check(CLI::Validator([check](std::string& in) { return number_error(in, check); },
                                 check == Check::positive ? "POSITIVE" : "NONNEGATIVE"));
  return option;
}

// An unsigned option took "-1" as 2^64 - 1 (h14 F4: parallel-sum --count -1 ran without end).
CLI::Option* unsigned_checked(CLI::Option* option, Check check) {
  option->check(CLI::Validator(
      [check](std::string& in) {
        if (in.find('-') != std::string::npos) return "must be 0 or more, not " + in;
        return check == Check::any ? std::string() : number_error(in, check);
      },
      check == Check::positive ? "POSITIVE" : "NONNEGATIVE"));
  return option;
}

}  // namespace

CommandLine::CommandLine(const std::string& description, RunModes& modes)
    : app_(std::make_unique<CLI::App>(description)) {
  // Up to 256 per usable CPU, as `taskfarm run -j` (h14 F8: 99999 forked ~9,766 workers).
  const int most = 256 * std::max(1, taskfarm::usable_cpus());
  app_->add_option("--workers", modes.workers,
                   "worker processes: N > 0, or -1 for all usable CPUs, -2 all but one, ...")
      ->capture_default_str()
      ->check(CLI::Validator(
          [most](std::string& in) {
            char* end = nullptr;
            const long v = std::strtol(in.c_str(), &end, 10);
            if (end == in.c_str() || *end != '\0' || v == 0 || v > most || v < -most)
              return "must be 1 to " + std::to_string(most) +
                     " (256 per usable CPU), or -1, -2, ..., not " + in;
            return std::string();
          },
          "N"));
  auto* serial = app_->add_flag("--serial", modes.serial, "run only the plain serial loop");
  app_->add_flag("--compare", modes.compare,
                 "run the parallel and the serial loop; print both times");
  auto* check = app_->add_flag("--check", modes.check,
                               "run both loops and exit 1 if their results differ anywhere");
  serial->excludes(check);  // (--serial --check ran no check and said nothing: h14 F7)
}

CommandLine::~CommandLine() = default;

void CommandLine::option(const std::string& name, std::uint64_t& value, const std::string& help,
                         Check check) {
  unsigned_checked(app_->add_option(name, value, help)->capture_default_str(), check);
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
  // (An empty --output "" was taken as no --output: nothing written, nothing said — h14b.)
  app_->add_option(name, value, help)
      ->capture_default_str()  // an empty default is not shown
      ->check(CLI::Validator(
          [](std::string& in) {
            return in.empty() ? std::string("must not be empty") : std::string();
          },
          "TEXT"));
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
    const int status = app_->exit(e);  // (prints the help, or the error and a hint)
    return status == 0 ? 0 : 2;  // a usage error: 2, as `taskfarm`'s (not CLI11's 105, 109...)
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
