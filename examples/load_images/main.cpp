// example-load-images: reads every PNG of a folder, sorted by name, into one (N, H, W) uint8
// shared array in parallel; task i decodes image i straight into frame i. All images must have
// one size: the first that differs from the first image is named in the error.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "compare.hpp"
#include "output_array.hpp"
#include "png.hpp"
#include "run_modes.hpp"
#include "taskfarm/pool.hpp"

namespace fs = std::filesystem;

namespace {

std::vector<std::string> list_pngs(const std::string& dir) {
  if (!fs::is_directory(dir)) throw taskfarm::Error("no folder " + dir);
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file() && entry.path().extension() == ".png")
      files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());  // Python's sorted(glob(...)): plain byte order
  if (files.empty()) throw taskfarm::Error("no .png files in " + dir);
  return files;
}

// The common size (height, width) of all images, from their headers; throws naming the first
// image whose size differs from the first one's.
std::array<std::size_t, 2> common_size(const std::vector<std::string>& files) {
  const auto first = examples::png_size(files.front());
  for (const auto& file : files) {
    const auto size = examples::png_size(file);
    if (size != first) {
      throw taskfarm::Error("images differ in size: " + file + " is " + std::to_string(size[0]) +
                            "x" + std::to_string(size[1]) + ", but " + files.front() + " is " +
                            std::to_string(first[0]) + "x" + std::to_string(first[1]));
    }
  }
  return {static_cast<std::size_t>(first[1]), static_cast<std::size_t>(first[0])};
}

void load_into(const std::string& file, const taskfarm::ArrayView<std::uint8_t>& frame) {
  const examples::Image image = examples::read_png(file, 1);
  if (image.pixels.size() != frame.size())
    throw taskfarm::Error(file + " changed size while loading");
  frame.copy_from(image.pixels.data());
}

}  // namespace

int main(int argc, char** argv) {
  examples::RunModes modes;
  examples::CommandLine cli{
      "Loads a folder of same-size PNG images into an (N, H, W) uint8 shared array in parallel.",
      modes};
  std::string dir = "images", output;
  cli.option("--dir", dir, "folder of .png images (read as grey)");
  cli.option("--output", output, "write the uint8 (N, H, W) array to this .npy file");
  if (const auto status = cli.parse(argc, argv)) return *status;

  try {
    const std::vector<std::string> files = list_pngs(dir);
    const auto [height, width] = common_size(files);
    const taskfarm::Shape shape{files.size(), height, width};
    auto stack = examples::make_output<std::uint8_t>(output, shape);

    examples::Timing timing;
    if (modes.run_parallel()) {
      taskfarm::Pool pool(modes.pool_options());
      timing.workers = pool.workers();
      timing.parallel_s = examples::time_seconds([&] {
        pool.for_each(files.size(), [&](std::uint64_t i) { load_into(files[i], stack[i]); });
      });
    }
    std::vector<std::uint8_t> serial;  // the serial run's own copy when both run
    if (modes.run_serial()) {
      taskfarm::ArrayView<std::uint8_t> target = stack.view();
      if (modes.run_parallel()) {
        serial.resize(stack.size());
        target = taskfarm::ArrayView<std::uint8_t>(serial.data(), shape);
      }
      timing.serial_s = examples::time_seconds([&] {
        for (std::size_t i = 0; i < files.size(); ++i) load_into(files[i], target[i]);
      });
    }
    std::printf("load-images: %zu images of %zux%zu from %s into a %s uint8 array\n", files.size(),
                height, width, dir.c_str(), taskfarm::format_shape(shape).c_str());
    examples::print_timing(timing);
    examples::publish_output(stack, output);
    if (modes.check && modes.run_parallel()) {
      const std::span<const std::uint8_t> parallel(stack.data(), stack.size());
      return examples::report_check("pixels", examples::first_difference(
                                                  parallel, std::span<const std::uint8_t>(serial)))
                 ? 0
                 : 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "example-load-images: %s\n", e.what());
    return 1;
  }
}
