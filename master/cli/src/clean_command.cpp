// `taskfarm clean`: sweep_dead_segments() plus a report of what it removed.
#include <iostream>

#include "commands.hpp"
#include "summary.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/shm_segment.hpp"

namespace taskfarm::cli {

int clean_command() {
  try {
    const auto removed = sweep_dead_segments();
    for (const auto& name : removed) std::cout << "removed /dev/shm/" << name << "\n";
    if (removed.empty()) std::cout << "taskfarm clean: no segments of dead masters\n";
    else std::cout << "taskfarm clean: removed " << removed.size() << " segment(s) of dead masters\n";
    return exit_ok;
  } catch (const Error& e) {
    std::cerr << "taskfarm: clean: " << e.what() << "\n";
    return exit_farm;
  }
}

}  // namespace taskfarm::cli
