// Usable CPUs as joblib/loky count them: the affinity mask, capped by a cgroup v2 quota.
#include <sched.h>

#include <cmath>
#include <fstream>
#include <string>

#include "taskfarm/error.hpp"
#include "taskfarm/farm.hpp"

namespace taskfarm {
namespace {

// cpu.max is "max 100000" (no quota) or "<quota> <period>"; the quota may sit in any ancestor.
int cgroup_cpu_limit() {
  std::ifstream cg("/proc/self/cgroup");
  std::string line, path;
  while (std::getline(cg, line))
    if (line.rfind("0::", 0) == 0) path = line.substr(3);
  int limit = 0;
  for (;;) {
    std::ifstream f("/sys/fs/cgroup" + path + "/cpu.max");
    std::string quota;
    long period = 0;
    if (f >> quota >> period && quota != "max" && period > 0) {
      const int n = static_cast<int>(std::ceil(std::stod(quota) / static_cast<double>(period)));
      if (n > 0 && (limit == 0 || n < limit)) limit = n;
    }
    if (path.empty() || path == "/") break;
    path = path.substr(0, path.find_last_of('/'));
  }
  return limit;
}

}  // namespace

int usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  int n = 1;
  if (::sched_getaffinity(0, sizeof set, &set) == 0) n = CPU_COUNT(&set);
  const int quota = cgroup_cpu_limit();
  if (quota > 0 && quota < n) n = quota;
  return n < 1 ? 1 : n;
}

int resolve_workers(int requested) {
  if (requested == 0) throw Error("workers = 0: ask for N > 0, or -1 for all usable CPUs, -2 for all but one");
  if (requested > 0) return requested;
  const int n = usable_cpus() + 1 + requested;  // joblib: -1 → all, -2 → all but one
  return n < 1 ? 1 : n;
}

}  // namespace taskfarm
