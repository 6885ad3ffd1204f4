// fuzz_seeds DIR: writes the seed inputs that only the real encoders can make into
// DIR/<target>/seed-<name>: a datagram of every message type (protocol), shared-array handles
// (array_handle) and one value per `taskfarm run` option parser (cli_values). fuzz/make-seeds
// runs it; the .npy and joblog seeds come from NumPy and from real runs there.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "taskfarm/detail/array_handle.hpp"
#include "taskfarm/detail/protocol.hpp"

using namespace taskfarm;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& dir, const std::string& name, std::string_view bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / ("seed-" + name), std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void protocol_seeds(const fs::path& dir) {
  proto::Job job;
  job.job_id = 3;
  job.kernel = "mandelbrot";
  job.extent = {1000, 1000};
  job.output_handle = "npy:i4:1000x1000:/tmp/m.npy";
  job.input_handle = "shm:f8:1000:taskfarm-4711-0123456789abcdef-input";
  job.wants_result = true;
  job.time_tasks = true;
  proto::Assign assign{3, {{1, 0, 500, 0, 1'000'000}, {2, 500, 510, 2, 0}}};
  proto::Done done{3, {{1, 250, 0, 96, 1'200'000, true}, {2, 510, 96, 40, 900, false}}};
  proto::TaskError error{3, 2, 507, false, "std::invalid_argument", "bad input at 507", 0, 0, ""};
  proto::TaskError oom{3, 2, 508, true, "std::bad_alloc", "std::bad_alloc", 0, 0, ""};
  proto::TaskError exited{3, 2, 509, false, "", "gzip -9 'a b.txt'", 1, 0, "gzip: a b.txt: No such file or directory\n"};
  proto::TaskError killed{3, 2, 510, false, "", "sh -c 'kill -SEGV $$'", 0, 11, ""};
  const std::pair<const char*, proto::Message> messages[] = {
      {"hello", proto::Hello{4711}}, {"job", job},     {"assign", assign}, {"stop", proto::Stop{}},
      {"wake", proto::Wake{}},       {"done", done},   {"task-error", error}, {"task-error-oom", oom},
      {"task-error-exit", exited}, {"task-error-signal", killed}};
  std::string bytes;
  for (const auto& [name, m] : messages) {
    proto::encode(m, bytes);
    write(dir, name, bytes);
  }
}

void handle_seeds(const fs::path& dir) {
  using B = AnySharedArray::Backing;
  const std::pair<const char*, detail::ParsedHandle> handles[] = {
      {"shm", {B::shm, DType::f64, {100, 512, 512}, "taskfarm-4711-0123456789abcdef-stack"}},
      {"shm-0d", {B::shm, DType::u8, {}, "taskfarm-4711-fedcba9876543210"}},
      {"npy", {B::npy, DType::i32, {1000, 1000}, "/home/user/out.npy"}},
      {"npy-colon-8d", {B::npy, DType::u16, {2, 3, 4, 5, 6, 7, 8, 9}, "/tmp/a:b/c.npy"}},
  };
  for (const auto& [name, h] : handles) write(dir, name, detail::format_handle(h));
}

// cli_values_fuzz.cpp: the first byte picks the parser.
void value_seeds(const fs::path& dir) {
  const std::pair<char, const char*> values[] = {
      {0, "1000"}, {1, "0"},      {2, "-2"},   {2, "50%"},     {3, "auto"},   {3, "64"},
      {4, "1.5s"}, {4, "500ms"},  {4, "2m"},   {5, "2GiB"},    {5, "512M"},   {6, "0.5"},
      {7, "now,fail=1"}, {7, "soon,fail=3"}, {8, "100x512x512"}, {8, "()"},
  };
  const char* parser[] = {"count", "count-or-zero", "workers", "chunk", "duration", "size", "rate", "halt", "shape"};
  int n = 0;
  for (const auto& [which, text] : values)
    write(dir, std::string(parser[static_cast<int>(which)]) + "-" + std::to_string(n++), std::string(1, which) + text);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds CORPUS_DIR\n");
    return 2;
  }
  const fs::path root = argv[1];
  protocol_seeds(root / "protocol");
  handle_seeds(root / "array_handle");
  value_seeds(root / "cli_values");
  return 0;
}
