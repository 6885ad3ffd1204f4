// PNG files for the examples (through stb_image / stb_image_write) and a colormap to paint
// numbers with. Every function stands alone: any process, any thread (stb keeps no state
// between calls except its compression level, which nothing here changes).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace examples {

/// An 8-bit image: height rows of width pixels of `channels` bytes (1 grey, 3 RGB), row-major.
struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<std::uint8_t> pixels;
};

/// Writes `pixels` (height × width × channels bytes) to `path`; throws taskfarm::Error naming
/// the path if stb cannot write it. The bytes depend only on the pixels.
void write_png(const std::string& path, int width, int height, int channels,
               const std::uint8_t* pixels);
inline void write_png(const std::string& path, const Image& image) {
  write_png(path, image.width, image.height, image.channels, image.pixels.data());
}

/// Reads `path` converted to `channels` channels; throws taskfarm::Error naming the path and
/// stb's reason if it is not an image stb can read.
Image read_png(const std::string& path, int channels);

/// Width and height from the file's header alone (the pixels are not decoded).
std::array<int, 2> png_size(const std::string& path);

/// Matplotlib's "inferno" colormap at t in [0, 1] (clamped): black, purple, orange, pale yellow.
std::array<std::uint8_t, 3> inferno(double t);

}  // namespace examples
