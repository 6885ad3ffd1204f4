// example-parallel-sum: the sum of 10^7 standard normal numbers with map_reduce. Number i comes
// from a counter-based generator seeded by i (SplitMix64 + Box–Muller), so every process sees
// the same numbers; map_reduce fixes the association (blocks folded left to right, then the
// block sums left to right), so the sum is the same bits on every run and worker count.
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <numbers>
#include <optional>

#include "compare.hpp"
#include "run_modes.hpp"
#include "splitmix64.hpp"
#include "taskfarm/pool.hpp"

namespace {

// The i-th standard normal number: Box–Muller on the SplitMix64 outputs for counters 2i, 2i+1.
double normal(std::uint64_t i) {
  const double u1 = 1.0 - examples::unit_double(examples::splitmix64(2 * i));  // (0, 1]
  const double u2 = examples::unit_double(examples::splitmix64(2 * i + 1));
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

// map_reduce's association, run serially: the reference the parallel sum must equal exactly.
double blocked_sum(std::uint64_t n, std::uint64_t block) {
  double total = 0.0;
  for (std::uint64_t begin = 0; begin < n; begin += block) {
    const std::uint64_t end = std::min(n, begin + block);
    double acc = normal(begin);
    for (std::uint64_t i = begin + 1; i < end; ++i) acc = acc + normal(i);
    total = total + acc;
  }
  return total;
}

double naive_sum(std::uint64_t n) {
  double total = 0.0;
  for (std::uint64_t i = 0; i < n; ++i) total += normal(i);
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  examples::RunModes modes;
  examples::CommandLine cli{
      "Sums N normal random numbers with map_reduce: the same bits on every run.", modes};
  std::uint64_t count = 10'000'000, block = 1024;
  cli.option("--count", count, "how many numbers");
  cli.option("--block", block, "numbers per block of the fixed association",
             examples::Check::positive);
  if (const auto status = cli.parse(argc, argv)) return *status;

  try {
    std::optional<double> parallel, serial;
    examples::Timing timing;
    if (modes.run_parallel()) {
      taskfarm::Pool pool(modes.pool_options());
      timing.workers = pool.workers();
      timing.parallel_s = examples::time_seconds([&] {
        parallel = pool.map_reduce<double>(count, normal, std::plus<double>(), 0.0, block);
      });
    }
    if (modes.run_serial())
      timing.serial_s = examples::time_seconds([&] { serial = blocked_sum(count, block); });

    std::printf("parallel-sum: %llu standard normal numbers, blocks of %llu\n",
                static_cast<unsigned long long>(count), static_cast<unsigned long long>(block));
    if (parallel) std::printf("sum, map_reduce:              %.17g\n", *parallel);
    if (serial) std::printf("sum, serial, same blocks:     %.17g\n", *serial);
    const double naive = naive_sum(count);
    std::printf("sum, serial, naive left fold: %.17g (differs by %.3g: rounding order)\n", naive,
                (parallel ? *parallel : *serial) - naive);
    examples::print_timing(timing);
    if (modes.check && parallel && serial) {
      const double p[] = {*parallel}, s[] = {*serial};
      return examples::report_check("sum (bit for bit)", examples::first_difference(p, s)) ? 0 : 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "example-parallel-sum: %s\n", e.what());
    return 1;
  }
}
