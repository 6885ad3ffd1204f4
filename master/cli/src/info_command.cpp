// `taskfarm info`: what the farm would see on this machine — CPUs it may use, shared memory,
// and the limits that bound workers. Read-only.
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "commands.hpp"
#include "summary.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/farm.hpp"
#include "taskfarm/shm_segment.hpp"

namespace taskfarm::cli {
namespace {

std::string limit_text(int resource, bool bytes) {
  struct rlimit rl {};
  if (::getrlimit(resource, &rl) != 0) return "unknown";
  auto one = [bytes](rlim_t v) {
    if (v == RLIM_INFINITY) return std::string("unlimited");
    return bytes ? format_bytes(static_cast<std::size_t>(v)) : std::to_string(v);
  };
  return one(rl.rlim_cur) + " (hard " + one(rl.rlim_max) + ")";
}

std::string meminfo(const std::string& key) {
  std::ifstream f("/proc/meminfo");
  std::string name;
  std::size_t kib = 0;
  std::string unit;
  while (f >> name >> kib >> unit)
    if (name == key + ":") return format_bytes(kib * 1024);
  return "unknown";
}

}  // namespace

int info_command() try {
  cpu_set_t set;
  CPU_ZERO(&set);
  const int affinity = ::sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  const int usable = usable_cpus();
  const SegmentCensus segments = census_segments();
  const std::size_t live = segments.live.size(), dead = segments.dead.size();

  std::cout << "usable CPUs:     " << usable << "  (affinity mask: " << affinity << " of " << online
            << " online" << (usable < affinity ? "; capped by the cgroup cpu.max quota" : "; no lower cgroup quota")
            << ")\n";
  std::cout << "default workers: " << resolve_workers(-1) << "  (-j -1; -j -2 gives " << resolve_workers(-2) << ")\n";
  std::cout << "/dev/shm free:   " << format_bytes(shm_free_bytes()) << "\n";
  std::cout << "memory:          " << meminfo("MemTotal") << " total, " << meminfo("MemAvailable") << " available\n";
  std::cout << "open files:      " << limit_text(RLIMIT_NOFILE, false) << "\n";
  std::cout << "processes:       " << limit_text(RLIMIT_NPROC, false) << "\n";
  std::cout << "address space:   " << limit_text(RLIMIT_AS, true) << "  (per process; --mem-limit sets it for workers)\n";
  std::cout << "segments:        " << live << " of running masters, " << dead
            << " of dead masters" << (dead > 0 ? " (taskfarm clean removes them)" : "") << "\n";
  return exit_ok;
} catch (const Error& e) {
  std::cerr << "taskfarm: info: " << e.what() << "\n";
  return exit_farm;
}

}  // namespace taskfarm::cli
