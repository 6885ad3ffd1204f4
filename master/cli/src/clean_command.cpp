// `taskfarm clean`: sweep_dead_segments() and sweep_dead_spools() (the output directories of
// --exec runs in $TMPDIR) plus a report of what they removed and of what they could not remove,
// with the reason; exit 1 when something was left.
#include <cstring>
#include <iostream>

#include "commands.hpp"
#include "spool_dir.hpp"
#include "summary.hpp"
#include "taskfarm/shm_segment.hpp"

namespace taskfarm::cli {
namespace {
/// Some segments of dead masters could not be removed (each is named, with the reason).
constexpr int exit_segments_left = 1;
}  // namespace

int clean_command() {
  const SweepReport report = sweep_dead_segments();
  if (report.scan_error != 0) {
    std::cerr << "taskfarm: clean: cannot list /dev/shm: " << std::strerror(report.scan_error) << "\n";
    return exit_farm;
  }
  for (const auto& name : report.removed) std::cout << "removed /dev/shm/" << name << "\n";
  for (const auto& f : report.failed)
    std::cerr << "taskfarm: clean: cannot remove /dev/shm/" << f.name << ": " << std::strerror(f.error) << "\n";
  std::vector<std::string> spool_problems;
  const auto spools = sweep_dead_spools(default_spool_parent(), spool_problems);
  for (const auto& dir : spools) std::cout << "removed " << dir << "\n";
  for (const auto& p : spool_problems) std::cerr << "taskfarm: clean: " << p << "\n";
  if (!spools.empty()) std::cout << "taskfarm clean: removed " << spools.size() << " output folder(s) of dead --exec runs\n";
  if (report.removed.empty() && report.failed.empty()) {
    std::cout << "taskfarm clean: no segments of dead masters\n";
    return spool_problems.empty() ? exit_ok : exit_segments_left;
  }
  std::cout << "taskfarm clean: removed " << report.removed.size() << " segment(s) of dead masters";
  if (!report.failed.empty()) std::cout << ", could not remove " << report.failed.size();
  std::cout << "\n";
  return report.failed.empty() && spool_problems.empty() ? exit_ok : exit_segments_left;
}

}  // namespace taskfarm::cli
