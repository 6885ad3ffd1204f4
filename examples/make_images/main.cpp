// example-make-images: writes N noise images image_<i>.png in parallel, one task per image.
// Image i's noise comes from SplitMix64 seeded by i, so the files do not depend on which
// process wrote them: the parallel and serial runs give byte-identical files.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "compare.hpp"
#include "png.hpp"
#include "run_modes.hpp"
#include "splitmix64.hpp"
#include "taskfarm/pool.hpp"

namespace fs = std::filesystem;

namespace {

void make_image(const fs::path& dir, std::uint64_t i, int size) {
  examples::SplitMix64 rng(i);
  std::vector<std::uint8_t> pixels(static_cast<std::size_t>(size) * static_cast<std::size_t>(size));
  for (auto& p : pixels) p = static_cast<std::uint8_t>(rng.next() >> 56);
  examples::write_png((dir / ("image_" + std::to_string(i) + ".png")).string(), size, size, 1,
                      pixels.data());
}

std::string read_file(const fs::path& path) {
  std::string bytes(fs::file_size(path), '\0');
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                             std::fclose);
  if (!file || std::fread(bytes.data(), 1, bytes.size(), file.get()) != bytes.size()) {
    taskfarm::throw_errno("cannot read " + path.string());
  }
  return bytes;
}

// nullopt if every image_<i>.png in `a` has the same bytes as in `b`.
std::optional<std::string> first_different_file(const fs::path& a, const fs::path& b,
                                                std::uint64_t count) {
  for (std::uint64_t i = 0; i < count; ++i) {
    const std::string name = "image_" + std::to_string(i) + ".png";
    if (read_file(a / name) != read_file(b / name)) {
      return "first difference at index " + std::to_string(i) + ": " + (a / name).string() +
             " and " + (b / name).string() + " differ";
    }
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  examples::RunModes modes;
  examples::CommandLine cli{"Writes N noise images image_<i>.png in parallel, seeded by index.",
                            modes};
  std::uint64_t count = 2000;
  int size = 100;
  std::string dir = "images";
  cli.option("--count", count, "number of images");
  cli.option("--size", size, "width and height in pixels", examples::Check::positive);
  cli.option("--dir", dir, "folder to write into (created if missing)");
  if (const auto status = cli.parse(argc, argv)) return *status;

  try {
    // With both runs, the serial one writes into <dir>/serial so the two can be compared.
    const fs::path out = dir, serial_out = modes.run_parallel() ? out / "serial" : out;
    examples::Timing timing;
    if (modes.run_parallel()) {
      fs::create_directories(out);
      taskfarm::Pool pool(modes.pool_options());
      timing.workers = pool.workers();
      timing.parallel_s = examples::time_seconds(
          [&] { pool.for_each(count, [&](std::uint64_t i) { make_image(out, i, size); }); });
    }
    if (modes.run_serial()) {
      fs::create_directories(serial_out);
      timing.serial_s = examples::time_seconds([&] {
        for (std::uint64_t i = 0; i < count; ++i) make_image(serial_out, i, size);
      });
    }
    std::printf("make-images: %llu noise images %dx%d in %s, one task per image\n",
                static_cast<unsigned long long>(count), size, size, dir.c_str());
    examples::print_timing(timing);
    if (modes.check && modes.run_parallel()) {
      return examples::report_check("image files", first_different_file(out, serial_out, count))
                 ? 0
                 : 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "example-make-images: %s\n", e.what());
    return 1;
  }
}
