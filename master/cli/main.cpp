// The `taskfarm` binary: the CLI library plus main() (see src/app.hpp).
#include <string>
#include <vector>

#include "app.hpp"

int main(int argc, char** argv) {
  return taskfarm::cli::main_entry(std::vector<std::string>(argv, argv + argc));
}
