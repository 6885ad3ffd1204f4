// A Gaussian blur with the semantics of scipy.ndimage.gaussian_filter for 2-D float32 images:
// per-axis sigma, mode 'reflect' (d c b a | a b c d | d c b a), truncate 4.0, separable 1-D
// correlations along axis 0 then axis 1, each pass accumulated in double and stored as
// float32 as SciPy does for float32 input. Pure functions: any process, any thread.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "taskfarm/array_view.hpp"

namespace examples {

/// Standard deviation of the blur along each axis of an image, in pixels.
struct Sigma {
  double rows = 3, cols = 5;
};

/// SciPy's 1-D kernel: radius int(truncate·σ + 0.5); weights exp(−0.5/σ² · x²) for
/// x = −radius … radius, divided by their sum.
std::vector<double> gaussian_weights(double sigma, double truncate = 4.0);

/// Index k of the infinite 'reflect'-extended line, folded into [0, n).
std::size_t reflect_index(std::ptrdiff_t k, std::size_t n);

/// Correlates `line` with the symmetric `weights` (odd length), 'reflect' at the ends, in
/// SciPy's order of operations: out[k] = x[k]·w[0] + Σ_{d=r…1} (x[k−d] + x[k+d])·w[d].
void correlate_reflect(std::span<const double> line, std::span<const double> weights,
                       std::span<double> out);

/// out = gaussian_filter(in, (sigma.rows, sigma.cols), mode='reflect', truncate=truncate)
/// for two (rows, cols) views of one shape; either may be strided (a slice of a stack).
void gaussian_filter(taskfarm::ArrayView<const float> in, taskfarm::ArrayView<float> out,
                     Sigma sigma, double truncate = 4.0);

}  // namespace examples
