// example-progress: slow tasks (the tutorial's sleep(3), scaled by --seconds) streamed back
// with imap_unordered: each result is processed the moment it arrives, and the program says
// "k out of N completed". Tasks mostly wait, so more workers than cores pay off.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <numeric>
#include <thread>
#include <vector>

#include "compare.hpp"
#include "run_modes.hpp"
#include "taskfarm/pool.hpp"

namespace {

// The workload: wait, then return something that depends on the index.
std::uint64_t slow_square(std::uint64_t i, double seconds) {
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  return i * i;
}

}  // namespace

int main(int argc, char** argv) {
  examples::RunModes modes;
  modes.workers = 8;
  examples::CommandLine cli{"Slow tasks with a progress line per finished task (imap_unordered).",
                            modes};
  std::uint64_t tasks = 16;
  double seconds = 0.2;
  cli.option("--tasks", tasks, "number of tasks");
  cli.option("--seconds", seconds, "how long each task takes (the tutorial: 3)",
             examples::Check::non_negative);
  if (const auto status = cli.parse(argc, argv)) return *status;

  try {
    std::vector<std::uint64_t> parallel(tasks), serial(tasks),
        arrived;  // arrived: indices in order
    examples::Timing timing;
    if (modes.run_parallel()) {
      taskfarm::PoolOptions options = modes.pool_options();
      options.chunk = 1;  // one slow task per message: progress moves task by task
      taskfarm::Pool pool(options);
      timing.workers = pool.workers();
      timing.parallel_s = examples::time_seconds([&] {
        std::uint64_t done = 0;
        pool.imap_unordered<std::uint64_t>(
            tasks, [seconds](std::uint64_t i) { return slow_square(i, seconds); },
            [&](std::uint64_t i, std::uint64_t&& value) {
              parallel[i] = value;  // process the result as it arrives
              arrived.push_back(i);
              std::printf(
                  "%llu out of %llu completed (task %llu -> %llu)\n",
                  static_cast<unsigned long long>(++done), static_cast<unsigned long long>(tasks),
                  static_cast<unsigned long long>(i), static_cast<unsigned long long>(value));
              std::fflush(stdout);
            });
      });
    }
    if (modes.run_serial()) {
      timing.serial_s = examples::time_seconds([&] {
        for (std::uint64_t i = 0; i < tasks; ++i) serial[i] = slow_square(i, seconds);
      });
    }
    std::printf("progress: %llu tasks of %g s each\n", static_cast<unsigned long long>(tasks),
                seconds);
    examples::print_timing(timing);
    if (modes.check && modes.run_parallel()) {
      std::sort(arrived.begin(), arrived.end());
      std::vector<std::uint64_t> every(tasks);
      std::iota(every.begin(), every.end(), 0);
      const bool once = examples::report_check("each index delivered once",
                                               examples::first_difference(arrived, every));
      return examples::report_check("results by index",
                                    examples::first_difference(parallel, serial)) &&
                     once
                 ? 0
                 : 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "example-progress: %s\n", e.what());
    return 1;
  }
}
