#include "stack.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "png.hpp"

namespace examples {

void fill_default_stack(const taskfarm::ArrayView<float>& stack) {
  const std::size_t rows = stack.shape()[0], slices = stack.shape()[1], cols = stack.shape()[2];
  for (std::size_t r = rows / 3; r < 2 * rows / 3; ++r) {
    for (std::size_t s = 0; s < slices; ++s) {
      for (std::size_t c = 3 * cols / 10; c < 7 * cols / 10; ++c) {
        stack(r, s, c) = static_cast<float>(s);
      }
    }
  }
}

void write_before_after(const std::string& path, const taskfarm::ArrayView<const float>& before,
                        const taskfarm::ArrayView<const float>& after) {
  const std::size_t rows = before.shape()[0], cols = before.shape()[2];
  const std::size_t slice = before.shape()[1] - 1, gap = 10, width = 2 * cols + gap;
  std::vector<float> a(rows * cols), b(rows * cols);
  before.take(1, slice).copy_to(a.data());
  after.take(1, slice).copy_to(b.data());
  const auto [lo, hi] = std::minmax_element(a.begin(), a.end());
  const double range = *hi > *lo ? *hi - *lo : 1.0;
  std::vector<std::uint8_t> rgb(rows * width * 3, 255);  // the gap stays white
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t c = 0; c < cols; ++c) {
      const auto left = inferno((a[r * cols + c] - *lo) / range);
      const auto right = inferno((b[r * cols + c] - *lo) / range);
      std::copy(left.begin(), left.end(), &rgb[3 * (r * width + c)]);
      std::copy(right.begin(), right.end(), &rgb[3 * (r * width + cols + gap + c)]);
    }
  }
  write_png(path, static_cast<int>(width), static_cast<int>(rows), 3, rgb.data());
  std::printf("wrote %s (slice %zu: before | after)\n", path.c_str(), slice);
}

}  // namespace examples
