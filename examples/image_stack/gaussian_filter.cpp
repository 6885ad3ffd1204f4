#include "gaussian_filter.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace examples {

std::vector<double> gaussian_weights(double sigma, double truncate) {
  const auto radius = static_cast<std::ptrdiff_t>(truncate * sigma + 0.5);  // Python's int()
  const double a = -0.5 / (sigma * sigma);
  std::vector<double> w;
  for (std::ptrdiff_t x = -radius; x <= radius; ++x)
    w.push_back(std::exp(a * static_cast<double>(x * x)));
  double sum = 0;
  for (const double v : w) sum += v;
  for (double& v : w) v /= sum;
  return w;
}

std::size_t reflect_index(std::ptrdiff_t k, std::size_t n) {
  const auto period = static_cast<std::ptrdiff_t>(2 * n);
  std::ptrdiff_t m = k % period;
  if (m < 0) m += period;
  const auto folded = static_cast<std::size_t>(m);
  return folded < n ? folded : 2 * n - 1 - folded;
}

void correlate_reflect(std::span<const double> line, std::span<const double> weights,
                       std::span<double> out) {
  const auto r = static_cast<std::ptrdiff_t>(weights.size() / 2);
  const std::size_t n = line.size();
  std::vector<double> ext(n + 2 * weights.size() / 2);  // the line with r reflected each side
  for (std::size_t k = 0; k < ext.size(); ++k) {
    ext[k] = line[reflect_index(static_cast<std::ptrdiff_t>(k) - r, n)];
  }
  // All outputs advance together, one weight at a time: each out[k] still sees SciPy's order.
  const double* x = ext.data() + r;  // x[k] = line[k], x[-r] and x[n-1+r] reflected
  for (std::size_t k = 0; k < n; ++k) out[k] = x[k] * weights[static_cast<std::size_t>(r)];
  for (std::ptrdiff_t d = r; d >= 1; --d) {
    const double w = weights[static_cast<std::size_t>(r - d)];
    for (std::size_t k = 0; k < n; ++k) {
      const auto at = static_cast<std::ptrdiff_t>(k);
      out[k] += (x[at - d] + x[at + d]) * w;
    }
  }
}

namespace {

// Axis 0: correlate_reflect down every column, computed a row at a time so that memory is read
// in order; per element the operations are the same, in the same order.
void filter_columns(const std::vector<float>& in, std::vector<float>& out, std::size_t rows,
                    std::size_t cols, std::span<const double> weights) {
  const auto r = static_cast<std::ptrdiff_t>(weights.size() / 2);
  std::vector<double> acc(cols);
  for (std::size_t k = 0; k < rows; ++k) {
    const float* x = &in[k * cols];
    for (std::size_t c = 0; c < cols; ++c)
      acc[c] = static_cast<double>(x[c]) * weights[static_cast<std::size_t>(r)];
    for (std::ptrdiff_t d = r; d >= 1; --d) {
      const auto at = static_cast<std::ptrdiff_t>(k);
      const float* above = &in[reflect_index(at - d, rows) * cols];
      const float* below = &in[reflect_index(at + d, rows) * cols];
      const double w = weights[static_cast<std::size_t>(r - d)];
      for (std::size_t c = 0; c < cols; ++c) acc[c] += (double{above[c]} + double{below[c]}) * w;
    }
    for (std::size_t c = 0; c < cols; ++c) out[k * cols + c] = static_cast<float>(acc[c]);
  }
}

// Axis 1: correlate_reflect along every row.
void filter_rows(const std::vector<float>& in, std::vector<float>& out, std::size_t rows,
                 std::size_t cols, std::span<const double> weights) {
  std::vector<double> line(cols), result(cols);
  for (std::size_t k = 0; k < rows; ++k) {
    std::copy_n(&in[k * cols], cols, line.begin());
    correlate_reflect(line, weights, result);
    for (std::size_t c = 0; c < cols; ++c) out[k * cols + c] = static_cast<float>(result[c]);
  }
}

}  // namespace

void gaussian_filter(taskfarm::ArrayView<const float> in, taskfarm::ArrayView<float> out,
                     Sigma sigma, double truncate) {
  if (in.ndim() != 2 || in.shape() != out.shape()) {
    throw std::invalid_argument("gaussian_filter: needs two 2-d views of one shape, not " +
                                taskfarm::format_shape(in.shape()) + " and " +
                                taskfarm::format_shape(out.shape()));
  }
  const std::size_t rows = in.shape()[0], cols = in.shape()[1];
  std::vector<float> img(rows * cols), tmp(rows * cols);
  // Row by row: a slice's rows are contiguous even when the slice itself is strided.
  for (std::size_t r = 0; r < rows; ++r) in[r].copy_to(&img[r * cols]);
  // Each pass rounds to float32, as SciPy stores float32 input's passes; sigma ~ 0 is skipped.
  if (sigma.rows > 1e-15) {
    filter_columns(img, tmp, rows, cols, gaussian_weights(sigma.rows, truncate));
    img.swap(tmp);
  }
  if (sigma.cols > 1e-15) {
    filter_rows(img, tmp, rows, cols, gaussian_weights(sigma.cols, truncate));
    img.swap(tmp);
  }
  for (std::size_t r = 0; r < rows; ++r) out[r].copy_from(&img[r * cols]);
}

}  // namespace examples
