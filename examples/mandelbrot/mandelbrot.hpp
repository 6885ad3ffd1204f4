// The tutorial's Mandelbrot kernel, shared by example-mandelbrot's three runs: fork mode,
// the plain serial loop, and the worker program under `taskfarm run`. Pure functions of their
// arguments: any process, any thread. Results match the tutorial's NumPy code bit for bit.
#pragma once

#include <complex>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace examples {

/// The picture: size × size points around (x0, y0), radius `radius`.
struct MandelbrotGrid {
  std::size_t size = 1000;
  int max_iter = 20;
  double x0 = -0.235, y0 = 0.827, radius = 0.4;
};

/// Iterations until |z| ≥ 4, where z starts at c and steps z ← z² + c; −1 if it never escapes
/// within max_iter. |z| is the modulus (std::abs, i.e. hypot), as Python's abs(z) is.
std::int32_t compute_mandelbrot(std::complex<double> c, int max_iter);

/// NumPy's linspace(start, stop, n)[k]: start + k·step with step = (stop − start)/(n − 1),
/// and exactly `stop` at the end.
double linspace_at(double start, double stop, std::size_t n, std::size_t k);

/// Row i of the picture (task i): row[j] = compute_mandelbrot(x[j] + i·y[i]) where
/// x = linspace(x0 − r, x0 + r, size) and y = linspace(y0 − r, y0 + r, size).
void compute_row(const MandelbrotGrid& grid, std::size_t i, std::span<std::int32_t> row);

/// RGB pixels (3 bytes per count) of the counts: inferno on a log scale up to the largest
/// count present; −1 (never escaped: inside the set) black.
std::vector<std::uint8_t> colorize(std::span<const std::int32_t> counts);

}  // namespace examples
