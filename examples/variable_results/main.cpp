// example-variable-results: tasks whose results differ in size. Task i returns a vector of
// i % 4 numbers; map gathers them in index order (they travel serialised, not in a fixed-size
// array), and filter_map drops the empty ones while keeping the order of the rest.
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "compare.hpp"
#include "run_modes.hpp"
#include "taskfarm/pool.hpp"

namespace {

using Values = std::vector<std::uint64_t>;

// Task i: i % 4 values, i*10, i*10 + 1, ...
Values values_of(std::uint64_t i) {
  Values v;
  for (std::uint64_t k = 0; k < i % 4; ++k) v.push_back(i * 10 + k);
  return v;
}

std::optional<Values> non_empty(std::uint64_t i) {
  Values v = values_of(i);
  if (v.empty()) return std::nullopt;
  return v;
}

std::string format(const std::vector<Values>& all) {
  std::string text = "[";
  for (const Values& v : all) {
    text += text.size() > 1 ? ", [" : "[";
    for (std::size_t k = 0; k < v.size(); ++k) text += (k ? ", " : "") + std::to_string(v[k]);
    text += "]";
  }
  return text + "]";
}

}  // namespace

int main(int argc, char** argv) {
  examples::RunModes modes;
  examples::CommandLine cli{
      "Results of varying length, gathered in index order (map) and filtered (filter_map).", modes};
  std::uint64_t tasks = 10;
  cli.option("--tasks", tasks, "number of tasks");
  if (const auto status = cli.parse(argc, argv)) return *status;

  try {
    std::vector<Values> all, kept, serial_all, serial_kept;
    examples::Timing timing;
    if (modes.run_parallel()) {
      taskfarm::Pool pool(modes.pool_options());
      timing.workers = pool.workers();
      timing.parallel_s = examples::time_seconds([&] {
        all = pool.map<Values>(tasks, values_of);
        kept = pool.filter_map<Values>(tasks, non_empty);
      });
    }
    if (modes.run_serial()) {
      timing.serial_s = examples::time_seconds([&] {
        for (std::uint64_t i = 0; i < tasks; ++i) {
          serial_all.push_back(values_of(i));
          if (auto v = non_empty(i)) serial_kept.push_back(std::move(*v));
        }
      });
    }
    const bool p = modes.run_parallel();
    std::printf("map:        %s\n", format(p ? all : serial_all).c_str());
    std::printf("filter_map: %s\n", format(p ? kept : serial_kept).c_str());
    examples::print_timing(timing);
    if (modes.check && p) {
      const bool same_all =
          examples::report_check("map", examples::first_difference(all, serial_all));
      const bool same_kept =
          examples::report_check("filter_map", examples::first_difference(kept, serial_kept));
      return same_all && same_kept ? 0 : 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "example-variable-results: %s\n", e.what());
    return 1;
  }
}
