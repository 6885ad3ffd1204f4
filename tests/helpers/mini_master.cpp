// A master for tests of the master's own death: runs fault_worker on 2 workers over slow tasks,
// prints "worker <pid>" as each starts, and stops in order on SIGINT/SIGTERM (exit 130/143).
//   mini_master FAULT_WORKER [ARGS...]     (ARGS default to --spin-ms 20)
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "taskfarm/farm.hpp"
#include "taskfarm/shared_array.hpp"

namespace {
taskfarm::Farm* g_farm = nullptr;
volatile sig_atomic_t g_signal = 0;
void on_signal(int sig) {
  g_signal = sig;
  if (g_farm != nullptr) g_farm->request_stop();
}
struct Announce : taskfarm::FarmObserver {
  void on_worker_started(int, pid_t pid) override {
    std::printf("worker %d\n", static_cast<int>(pid));
    std::fflush(stdout);
  }
};
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  taskfarm::FarmOptions o;
  o.workers = 2;
  o.chunk = 1;
  std::vector<std::string> args(argv + 2, argv + argc);
  if (args.empty()) args = {"--spin-ms", "20"};
  taskfarm::Farm farm = taskfarm::Farm::program(o, argv[1], args);
  g_farm = &farm;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  auto out = taskfarm::SharedArray<std::int64_t>::create({100000});
  taskfarm::JobSpec job;
  job.extent = {100000};
  job.output_handle = out.handle();
  Announce obs;
  taskfarm::RunReport r = farm.run(job, &obs);
  farm.close();
  if (r.interrupted) return 128 + g_signal;
  return r.failures.empty() ? 0 : 1;
}
