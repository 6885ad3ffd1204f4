#include "kernels.hpp"

#include <csignal>

namespace taskfarm::bench {
namespace {

// NumPy's linspace: start + k * step, and exactly `stop` at the end.
double linspace_at(double start, double stop, std::size_t n, std::size_t k) noexcept {
  if (n < 2) return start;
  if (k == n - 1) return stop;
  return start + static_cast<double>(k) * ((stop - start) / static_cast<double>(n - 1));
}

}  // namespace

void spin_for(std::chrono::nanoseconds d) noexcept {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

std::uint64_t seeds_task(std::uint64_t i, std::chrono::microseconds length,
                         std::uint64_t crash_at) {
  if (i == crash_at) {
    spin_for(length / 2);
    std::raise(SIGKILL);
  }
  spin_for(length);
  return trivial_value(i);
}

std::int32_t mandelbrot_point(double re, double im, int max_iter) noexcept {
  double x = re, y = im;
  for (int i = 0; i < max_iter; ++i) {
    const double xx = x * x, yy = y * y;
    if (xx + yy >= 16.0) return i;
    y = 2.0 * x * y + im;
    x = xx - yy + re;
  }
  return -1;
}

void mandelbrot_row(const MandelbrotGrid& grid, std::size_t row, std::int32_t* out) noexcept {
  const double im = linspace_at(grid.y_min, grid.y_max, grid.size, row);
  for (std::size_t j = 0; j < grid.size; ++j)
    out[j] = mandelbrot_point(linspace_at(grid.x_min, grid.x_max, grid.size, j), im, grid.max_iter);
}

void double_frame(const double* src, double* dst, std::size_t count) noexcept {
  for (std::size_t k = 0; k < count; ++k) dst[k] = 2.0 * src[k];
}

}  // namespace taskfarm::bench
