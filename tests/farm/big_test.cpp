// Scale: 10^8 trivial tasks with master memory independent of n.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include "taskfarm/pool.hpp"

using namespace taskfarm;

TEST(Scale, HundredMillionTrivialTasksInBoundedMasterMemory) {
  PoolOptions o;
  o.workers = 2;
  Pool pool(o);
  const std::uint64_t n = 100'000'000;
  pool.for_each(n, [](std::uint64_t i) { asm volatile("" ::"r"(i)); });
  EXPECT_EQ(pool.last_report().succeeded, n);
  // The same space again with a result per index, folded in blocks: 10^8 values computed,
  // ~10^5 block sums come back.
  const std::uint64_t odd = pool.map_reduce<std::uint64_t>(n, [](std::uint64_t i) { return i & 1; }, std::plus<>{}, 0, 1024);
  EXPECT_EQ(odd, n / 2);
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  EXPECT_LT(ru.ru_maxrss, 64 * 1024) << "master peak RSS " << ru.ru_maxrss << " KiB";
}
