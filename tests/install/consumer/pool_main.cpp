// A program embedding the library, built against the installed package: a Pool map of
// serialised results must equal the serial loop; exit 0 only then.
#include <taskfarm/pool.hpp>

#include <cstdio>
#include <string>
#include <vector>

int main() {
  taskfarm::PoolOptions opt;
  opt.workers = 2;
  taskfarm::Pool pool(opt);
  const std::uint64_t n = 1000;
  auto words = pool.map<std::string>(n, [](std::uint64_t i) { return std::to_string(i * i); });
  auto squares = pool.map<long>(n, [](std::uint64_t i) { return static_cast<long>(i * i); });
  for (std::uint64_t i = 0; i < n; ++i) {
    if (words[i] != std::to_string(i * i) || squares[i] != static_cast<long>(i * i)) {
      std::fprintf(stderr, "consumer_pool: index %llu differs from the serial loop\n", static_cast<unsigned long long>(i));
      return 1;
    }
  }
  std::puts("consumer_pool: 1000 results equal the serial loop");
  return 0;
}
