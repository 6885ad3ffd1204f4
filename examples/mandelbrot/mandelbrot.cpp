#include "mandelbrot.hpp"

#include <algorithm>
#include <cmath>

#include "png.hpp"

namespace examples {

std::int32_t compute_mandelbrot(std::complex<double> c, int max_iter) {
  std::complex<double> z = c;
  for (int i = 0; i < max_iter; ++i) {
    if (std::abs(z) >= 4.0) return i;
    z = z * z + c;
  }
  return -1;
}

double linspace_at(double start, double stop, std::size_t n, std::size_t k) {
  if (n > 1 && k == n - 1) return stop;
  const double step = (stop - start) / static_cast<double>(n - 1);
  return static_cast<double>(k) * step + start;  // NumPy: y = arange(n) * step; y += start
}

void compute_row(const MandelbrotGrid& grid, std::size_t i, std::span<std::int32_t> row) {
  const double x_lo = grid.x0 - grid.radius, x_hi = grid.x0 + grid.radius;
  const double y = linspace_at(grid.y0 - grid.radius, grid.y0 + grid.radius, grid.size, i);
  for (std::size_t j = 0; j < row.size(); ++j) {
    const std::complex<double> c(linspace_at(x_lo, x_hi, grid.size, j), y);
    row[j] = compute_mandelbrot(c, grid.max_iter);
  }
}

std::vector<std::uint8_t> colorize(std::span<const std::int32_t> counts) {
  std::vector<std::uint8_t> rgb;
  rgb.reserve(counts.size() * 3);
  const std::int32_t top = counts.empty() ? 0 : *std::max_element(counts.begin(), counts.end());
  const double scale = std::log1p(static_cast<double>(std::max(top, 1)));
  for (const std::int32_t count : counts) {
    std::array<std::uint8_t, 3> colour{0, 0, 0};
    if (count >= 0) colour = inferno(std::log1p(static_cast<double>(count)) / scale);
    rgb.insert(rgb.end(), colour.begin(), colour.end());
  }
  return rgb;
}

}  // namespace examples
