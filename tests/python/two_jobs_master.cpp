// Drives `python3 worker.py keep` through two jobs on one warm Farm, each with its own output
// array: the kernel of job 2 reads the view of job 1's output that it kept in a global, so the
// mapping of job 1 must outlive the job (TaskContext::attachments()). Exit 0 when job 2's
// output is job 1's plus one everywhere and no task failed.
//   two_jobs_master PYTHON WORKER_PY
#include <cstdio>
#include <string>

#include "taskfarm/farm.hpp"
#include "taskfarm/shared_array.hpp"

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  taskfarm::FarmOptions o;
  o.workers = 1;  // one process runs both jobs: its cache sees job 1's arrays replaced
  o.start_timeout = std::chrono::seconds(60);  // Python and NumPy start slowly under load
  taskfarm::Farm farm = taskfarm::Farm::program(o, argv[1], {argv[2], "keep"});
  constexpr std::size_t n = 50;
  auto first = taskfarm::SharedArray<std::int64_t>::create({n});
  auto second = taskfarm::SharedArray<std::int64_t>::create({n});
  int bad = 0;
  for (const auto* out : {&first, &second}) {
    taskfarm::JobSpec job;
    job.extent = {n};
    job.output_handle = out->handle();
    const taskfarm::RunReport r = farm.run(job);
    for (const auto& f : r.failures) std::printf("failure: %s\n", f.describe().c_str()), ++bad;
  }
  farm.close();
  for (std::size_t i = 0; i < n; ++i) {
    const auto want = static_cast<std::int64_t>(i * i + 1);
    if (first.data()[i] != want - 1 || second.data()[i] != want) {
      std::printf("index %zu: job 1 wrote %lld, job 2 %lld; expected %lld and %lld\n", i,
                  static_cast<long long>(first.data()[i]), static_cast<long long>(second.data()[i]),
                  static_cast<long long>(want - 1), static_cast<long long>(want));
      ++bad;
    }
  }
  std::printf("%s\n",
              bad == 0 ? "ok: a view kept from job 1 read its array during job 2" : "FAILED");
  return bad == 0 ? 0 : 1;
}
