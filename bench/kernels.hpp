// The work the benchmarks give the farm, shared by the in-process benches (fork and threads
// backends, serial baselines) and bench_worker (program mode), so every side runs the same
// machine code. Pure functions of their arguments: any process, any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace taskfarm::bench {

/// The trivial task: a value that depends on the index, so nothing folds away.
inline std::uint64_t trivial_value(std::uint64_t i) noexcept { return i * 2654435761u + 1; }

/// Busy-waits `d` of wall time (a task of known length that needs a CPU).
void spin_for(std::chrono::nanoseconds d) noexcept;

/// No index: a seeds_task that never crashes.
inline constexpr std::uint64_t kNoCrash = ~std::uint64_t{0};

/// The seeds' crash case, one task: busy-waits `length` and returns trivial_value(i); at index
/// `crash_at` it busy-waits half of `length`, then SIGKILLs its own process (the worker).
std::uint64_t seeds_task(std::uint64_t i, std::chrono::microseconds length, std::uint64_t crash_at);

/// The Mandelbrot: z starts at c; for i < max_iter: if |z| >= 4 return i; z = z² + c;
/// return -1. x = linspace(-0.635, 0.165, size), y = linspace(0.427, 1.227, size).
struct MandelbrotGrid {
  std::size_t size = 1600;
  int max_iter = 256;
  double x_min = -0.635, x_max = 0.165, y_min = 0.427, y_max = 1.227;
  template <class Archive>
  void serialize(Archive& ar) {  // cereal: a WarmPool call passes the grid by value
    ar(size, max_iter, x_min, x_max, y_min, y_max);
  }
};

/// Escape count of c = (re, im): |z| >= 4 is tested as |z|² >= 16 (no square root).
std::int32_t mandelbrot_point(double re, double im, int max_iter) noexcept;
/// Row `row` (one task): out[j] for x[j] + i·y[row], j < grid.size.
void mandelbrot_row(const MandelbrotGrid& grid, std::size_t row, std::int32_t* out) noexcept;

/// One frame of the frames benchmark: dst[k] = 2 * src[k], k < count.
void double_frame(const double* src, double* dst, std::size_t count) noexcept;

}  // namespace taskfarm::bench
