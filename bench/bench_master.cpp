// bench_master [WORKER_PROGRAM]: the master that the master-death row SIGKILLs. Runs a
// program-mode Farm of 2 bench_worker processes on long busy tasks (10 s each, 4 of them). The
// workers inherit its stdout, and each says "running <pid>" there when it starts a task: then
// it is past its handshake and its PR_SET_PDEATHSIG, and busy. (The master's own
// on_chunk_started is no such proof: chunks are sent before the worker has even started.)
// It dies with the bench that started it.
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <exception>

#include "taskfarm/farm.hpp"

int main(int argc, char** argv) {
  const pid_t bench = ::getppid();
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != bench) return 3;
  try {
    taskfarm::FarmOptions o;
    o.workers = 2;
    o.chunk = 1;
    // A wrapper in place of bench_worker (argv[1]) can capture what the workers print.
    taskfarm::Farm farm = taskfarm::Farm::program(o, argc > 1 ? argv[1] : BENCH_WORKER,
                                                  {"announce_spin_us", "10000000"});
    taskfarm::JobSpec job;
    job.extent = {4};
    farm.run(job);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_master: %s\n", e.what());
    return 1;
  }
}
