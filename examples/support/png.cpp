#include "png.hpp"

#include <unistd.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "taskfarm/detail/staged_file.hpp"
#include "taskfarm/error.hpp"

namespace examples {

void write_png(const std::string& path, int width, int height, int channels,
               const std::uint8_t* pixels) {
  // Encoded in memory, written under a temporary name beside `path`, checked, then renamed over
  // it: stb's own file writer checks neither fwrite nor fclose, and truncated a file of the
  // user's in place (h14 F16: a full disk left a cut PNG and said "wrote").
  std::string png;
  const auto append = [](void* to, void* data, int size) {
    static_cast<std::string*>(to)->append(static_cast<const char*>(data), static_cast<std::size_t>(size));
  };
  if (stbi_write_png_to_func(append, &png, width, height, channels, pixels, width * channels) == 0 || png.empty())
    throw taskfarm::Error("cannot encode PNG " + path);
  // (StagedFile: also never replaces a FIFO, device or directory at `path`.)
  taskfarm::detail::StagedFile staged = taskfarm::detail::StagedFile::create(path);
  for (std::string_view left(png); !left.empty();) {
    const ssize_t n = ::write(staged.fd(), left.data(), left.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      taskfarm::throw_errno("cannot write PNG " + path);  // (the temporary file goes with `staged`)
    }
    left.remove_prefix(static_cast<std::size_t>(n));
  }
  staged.publish(/*replace_existing=*/true);
}

Image read_png(const std::string& path, int channels) {
  Image image;
  int in_file = 0;
  std::unique_ptr<stbi_uc, decltype(&stbi_image_free)> data(
      stbi_load(path.c_str(), &image.width, &image.height, &in_file, channels), stbi_image_free);
  if (!data) throw taskfarm::Error("cannot read image " + path + ": " + stbi_failure_reason());
  image.channels = channels;
  const auto bytes = static_cast<std::size_t>(image.width) *
                     static_cast<std::size_t>(image.height) * static_cast<std::size_t>(channels);
  image.pixels.assign(data.get(), data.get() + bytes);
  return image;
}

std::array<int, 2> png_size(const std::string& path) {
  int width = 0, height = 0, channels = 0;
  if (stbi_info(path.c_str(), &width, &height, &channels) == 0) {
    throw taskfarm::Error("cannot read image " + path + ": " + stbi_failure_reason());
  }
  return {width, height};
}

std::array<std::uint8_t, 3> inferno(double t) {
  // Matplotlib's inferno sampled at t = 0, 0.1, ..., 1; linear in between.
  static constexpr std::array<std::array<double, 3>, 11> stops{{{0, 0, 4},
                                                                {22, 11, 57},
                                                                {66, 10, 104},
                                                                {106, 23, 110},
                                                                {147, 38, 103},
                                                                {188, 55, 84},
                                                                {221, 81, 58},
                                                                {243, 120, 25},
                                                                {252, 165, 10},
                                                                {246, 215, 70},
                                                                {252, 255, 164}}};
  const double x = std::clamp(t, 0.0, 1.0) * 10.0;
  const auto k = std::min<std::size_t>(static_cast<std::size_t>(x), 9);
  const double f = x - static_cast<double>(k);
  std::array<std::uint8_t, 3> rgb{};
  for (std::size_t c = 0; c < 3; ++c) {
    const double v = stops[k][c] + f * (stops[k + 1][c] - stops[k][c]);
    rgb[c] = static_cast<std::uint8_t>(std::lround(v));
  }
  return rgb;
}

}  // namespace examples
