// Row: one measured quantity with its baseline, as the bench programs report it to bench/run:
// one JSON object per line on stdout. bench/run adds the ratio, the target, the machine.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "measure.hpp"

namespace taskfarm::bench {

struct Row {
  Row(std::string name_, std::string what_, std::string unit_, std::string better_,
      Samples samples_, std::string baseline_, Samples baseline_samples_)
      : name(std::move(name_)),
        what(std::move(what_)),
        unit(std::move(unit_)),
        better(std::move(better_)),
        samples(std::move(samples_)),
        baseline(std::move(baseline_)),
        baseline_samples(std::move(baseline_samples_)) {}

  std::string name;      ///< stable id, e.g. "dispatch.fork"; bench/run knows the targets by it
  std::string what;      ///< one line for the table: what was measured
  std::string unit;      ///< "tasks/s", "ms", "x", "GB/s"
  std::string better;    ///< "higher" or "lower": which way is good
  Samples samples;       ///< the measured quantity, one value per repetition
  std::string baseline;  ///< what it is compared with
  Samples baseline_samples;
  /// Statistic reported as `value`: "median" (default), or "p99" for tail rows.
  std::string statistic = "median";
  std::vector<std::pair<std::string, double>> extra;  ///< context numbers (sizes, kills, ...)
  std::string note;
};

/// Writes `row` as one JSON line on stdout and flushes.
void emit(const Row& row);

/// A row with no measurement, saying why (a tool that is not installed, a failed setup).
void emit_unavailable(const std::string& name, const std::string& what, const std::string& why);

}  // namespace taskfarm::bench
