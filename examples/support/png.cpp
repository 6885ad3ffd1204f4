#include "png.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <memory>
#include <string>

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
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) taskfarm::throw_errno("cannot write PNG " + path + " (as " + tmp + ")");
  std::size_t done = 0;
  while (done < png.size()) {
    const ssize_t n = ::write(fd, png.data() + done, png.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  const int saved = done < png.size() ? (errno != 0 ? errno : ENOSPC) : 0;
  if (::close(fd) != 0 && done == png.size()) done = 0;
  if (done < png.size() || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = saved != 0 ? saved : errno;
    ::unlink(tmp.c_str());
    errno = e;
    taskfarm::throw_errno("cannot write PNG " + path);
  }
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
