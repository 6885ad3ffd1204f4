// example-nested-loops: the tutorial's nested loop
//     for i in range(2): for j in range(2, 4): results.append((i, j))
// as one 2-D index space: Extent{2, 2} calls fn(i, j) for every pair and returns the results
// in row-major order, exactly where the nested loop would have put them.
#include <cstdio>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "compare.hpp"
#include "run_modes.hpp"
#include "taskfarm/pool.hpp"

namespace {

using Pair = std::pair<std::uint64_t, std::uint64_t>;

std::string format(const std::vector<Pair>& pairs) {
  std::string text = "[";
  for (const auto& [i, j] : pairs) {
    text += (text.size() > 1 ? ", (" : "(") + std::to_string(i) + ", " + std::to_string(j) + ")";
  }
  return text + "]";
}

}  // namespace

int main(int argc, char** argv) {
  examples::RunModes modes;
  examples::CommandLine cli{
      "A nested loop over i in [0, rows), j in [first_j, first_j + cols) as one 2-D index space.",
      modes};
  std::uint64_t rows = 2, cols = 2, first_j = 2;
  cli.option("--rows", rows, "values of i");
  cli.option("--cols", cols, "values of j");
  cli.option("--first-j", first_j, "first value of j");
  if (const auto status = cli.parse(argc, argv)) return *status;
  const auto body = [first_j](std::uint64_t i, std::uint64_t j) { return Pair{i, first_j + j}; };

  try {
    std::vector<Pair> parallel, serial;
    examples::Timing timing;
    if (modes.run_parallel()) {
      taskfarm::Pool pool(modes.pool_options());
      timing.workers = pool.workers();
      timing.parallel_s = examples::time_seconds([&] {
        parallel = pool.map<Pair>({rows, cols}, body);
      });
    }
    if (modes.run_serial()) {
      timing.serial_s = examples::time_seconds([&] {
        for (std::uint64_t i = 0; i < rows; ++i)
          for (std::uint64_t j = 0; j < cols; ++j) serial.push_back(body(i, j));
      });
    }
    std::printf("%s\n", format(modes.run_parallel() ? parallel : serial).c_str());
    examples::print_timing(timing);
    if (modes.check && modes.run_parallel()) {
      return examples::report_check("pairs", examples::first_difference(parallel, serial)) ? 0 : 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "example-nested-loops: %s\n", e.what());
    return 1;
  }
}
