// A worker program for tests of large results: sets result i to a std::string of 5 bytes
// ('a' + (i + k) % 26), or of --big-bytes bytes at index --big-at; with --print it also prints
// "task i" (or, at --big-at, the whole big string) so that captured stdout is large too.
//   blob_worker [--big-at K] [--big-bytes N] [--print]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "taskfarm/worker.hpp"

int main(int argc, char** argv) {
  std::uint64_t big_at = ~0ull, big_bytes = 0;
  bool print = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--big-at" && i + 1 < argc) big_at = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--big-bytes" && i + 1 < argc) big_bytes = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--print") print = true;
  }
  return taskfarm::run_worker([&](taskfarm::TaskContext& t) {
    const std::uint64_t i = t.index();
    const std::uint64_t n = i == big_at ? big_bytes : 5;
    std::string v(n, '\0');
    for (std::uint64_t k = 0; k < n; ++k) v[k] = static_cast<char>('a' + (i + k) % 26);
    if (print) {
      if (i == big_at) std::fwrite(v.data(), 1, v.size(), stdout), std::fputc('\n', stdout);
      else std::printf("task %llu\n", static_cast<unsigned long long>(i));
    }
    t.set_result(v);
  });
}
