// Timing for the benchmark programs: a monotonic clock, repeated samples with their median
// and percentiles, and the common command line (--quick, --reps). Used by one thread of one
// bench process at a time; nothing here talks to the farm.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace taskfarm::bench {

using Clock = std::chrono::steady_clock;

/// Seconds between two time points, as a double.
inline double seconds(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}
inline double ms_since(Clock::time_point from) { return 1e3 * seconds(from, Clock::now()); }

/// Keeps `value` alive in the optimiser's eyes (Google Benchmark's DoNotOptimize).
template <class T>
inline void do_not_optimize(const T& value) {
  asm volatile("" : : "r,m"(value) : "memory");
}

/// The repeated measurements of one quantity.
class Samples {
 public:
  void add(double v) { values_.push_back(v); }
  const std::vector<double>& values() const noexcept { return values_; }
  std::size_t size() const noexcept { return values_.size(); }
  bool empty() const noexcept { return values_.empty(); }
  /// Median (mean of the middle two for an even count); 0 when empty.
  double median() const;
  /// Nearest-rank percentile, p in [0, 100]; 0 when empty.
  double percentile(double p) const;

 private:
  std::vector<double> values_;
};

/// Per-sample ratios a[i] / b[i] of two interleaved series of equal length.
Samples ratios(const Samples& a, const Samples& b);

/// What every bench program accepts: --quick (reduced sizes for smoke tests), --reps N, and
/// --only PART for programs that measure more than one thing (to profile one of them).
struct BenchArgs {
  bool quick = false;
  int reps = 0;      ///< 0: the program's default for the mode
  std::string only;  ///< empty: everything

  /// Whether the part called `part` is to run.
  bool wants(const std::string& part) const { return only.empty() || only == part; }

  static BenchArgs parse(int argc, char** argv);
  /// The repetition count to use: --reps if given, else `full` or `quick_reps`.
  int reps_or(int full, int quick_reps) const {
    return reps > 0 ? reps : quick ? quick_reps : full;
  }
  /// A size for the mode: `full` normally, `reduced` with --quick.
  template <class T>
  T pick(T full, T reduced) const {
    return quick ? reduced : full;
  }
};

/// The main() of a bench program called `name`: parses the arguments and runs `body`; an error
/// prints "name: what" and returns 1.
int bench_main(const char* name, int argc, char** argv, void (*body)(const BenchArgs&));

}  // namespace taskfarm::bench
