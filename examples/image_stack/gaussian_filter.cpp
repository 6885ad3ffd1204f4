#include "gaussian_filter.hpp"

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
  const double* w = weights.data() + r;  // centred: w[-r .. r]
  for (std::size_t k = 0; k < n; ++k) {
    const double* x = ext.data() + k + static_cast<std::size_t>(r);
    double acc = x[0] * w[0];
    for (std::ptrdiff_t j = -r; j < 0; ++j) acc += (x[j] + x[-j]) * w[j];
    out[k] = acc;
  }
}

namespace {

// One pass of the separable filter along `axis` of the C-order (rows, cols) image `img`,
// in place; each result is rounded to float32 as SciPy stores it.
void filter_axis(std::vector<float>& img, std::size_t rows, std::size_t cols, int axis,
                 double sigma, double truncate) {
  if (sigma <= 1e-15) return;  // SciPy skips such axes
  const std::vector<double> w = gaussian_weights(sigma, truncate);
  const std::size_t lines = axis == 0 ? cols : rows, length = axis == 0 ? rows : cols;
  const std::size_t step = axis == 0 ? cols : 1, next = axis == 0 ? 1 : cols;
  std::vector<double> line(length), out(length);
  for (std::size_t l = 0; l < lines; ++l) {
    float* p = img.data() + l * next;
    for (std::size_t k = 0; k < length; ++k) line[k] = p[k * step];
    correlate_reflect(line, w, out);
    for (std::size_t k = 0; k < length; ++k) p[k * step] = static_cast<float>(out[k]);
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
  std::vector<float> img(rows * cols);
  in.copy_to(img.data());
  filter_axis(img, rows, cols, 0, sigma.rows, truncate);
  filter_axis(img, rows, cols, 1, sigma.cols, truncate);
  out.copy_from(img.data());
}

}  // namespace examples
