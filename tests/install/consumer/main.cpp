// A worker program built outside the taskfarm tree, against the installed package.
#include <taskfarm/worker.hpp>

int main() {
  return taskfarm::run_worker([](taskfarm::TaskContext& t) { t.set_result(t.index() * 2); });
}
