// A program embedding the library, built against the installed package, that writes a joblog and
// resumes from it through the library alone (issue 12). In DIR:
//   consumer_resume DIR first K   computes out.npy[i] = f(i) for i < N, recording each task in
//                                 run.joblog; the task at index K SIGKILLs this master as soon
//                                 as the joblog holds a row, so the run dies midway like a crash
//   consumer_resume DIR resume    goes on from run.joblog: computes only what the first run did
//                                 not record, and out.npy ends equal to the serial loop, bit for bit
// check-install.sh runs both and reads the joblog between them.
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include <taskfarm/joblog.hpp>
#include <taskfarm/pool.hpp>
#include <taskfarm/progress.hpp>
#include <taskfarm/shared_array.hpp>

namespace {

constexpr std::uint64_t kTasks = 2000;
std::uint64_t g_kill_at = kTasks;  // no index: the resumed run kills nobody

/// Whether the joblog at `path` holds a row (a line after its two header lines).
bool has_a_row(const char* path) {
  std::ifstream in(path);
  std::string line;
  int lines = 0;
  while (lines < 3 && std::getline(in, line) && !in.eof()) ++lines;
  return lines == 3;
}

/// Waits until the joblog at `path` holds a row, woken by inotify when it changes; at most 10 s.
bool wait_for_a_row(const char* path) {
  const int fd = ::inotify_init1(IN_CLOEXEC);
  if (fd < 0 || ::inotify_add_watch(fd, path, IN_MODIFY) < 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool found = has_a_row(path);  // looked at after the watch is set: no change is missed
  while (!found) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    char events[4096];
    if (::read(fd, events, sizeof events) <= 0) break;
    found = has_a_row(path);
  }
  ::close(fd);
  return found;
}

/// The kernel. In the first run, the task at g_kill_at kills the master (this worker's parent,
/// in fork mode) once the joblog shows that something was recorded: a crash midway.
double f(std::uint64_t i) {
  if (i == g_kill_at && wait_for_a_row("run.joblog")) ::kill(::getppid(), SIGKILL);
  return std::sin(0.001 * static_cast<double>(i)) * std::sqrt(static_cast<double>(i) + 1.0);
}

}  // namespace

// README-BEGIN: README.md "Joblog and resume from your own program" shows this function as is.
// out.npy[i] = f(i) for i < n, each task recorded in run.joblog. With `resume`, it goes on from
// an earlier run of the same job (also one that was killed) and computes only what that run
// did not record.
taskfarm::RunReport compute(std::uint64_t n, bool resume, const taskfarm::PoolOptions& options) {
  const taskfarm::RunIdentity job{{n}, "out.npy", "float64", ""};  // what makes runs the same job
  auto out = resume ? taskfarm::SharedArray<double>::open_npy("out.npy")
                    : taskfarm::SharedArray<double>::create_npy("out.npy", {n});
  auto log = resume ? taskfarm::Joblog::resume("run.joblog", job)
                    : taskfarm::Joblog::create("run.joblog", job);
  taskfarm::Progress progress(taskfarm::ProgressMode::lines, n - log.earlier_done());
  taskfarm::FanoutObserver observers;  // the joblog first, then the progress line
  observers.add(&log);
  observers.add(&progress);

  taskfarm::CallOptions call;
  call.observer = &observers;
  call.only = log.todo();  // all of [0, n), or what the earlier run left
  taskfarm::Pool pool(options);
  double* y = out.data();
  pool.for_each(n, [y](std::uint64_t i) { y[i] = f(i); }, call);
  progress.finish();
  return pool.last_report();
}
// README-END

int main(int argc, char** argv) {
  const std::string mode = argc >= 3 ? argv[2] : "";
  if ((mode != "first" || argc != 4) && (mode != "resume" || argc != 3)) {
    std::fprintf(stderr, "usage: consumer_resume DIR first K | consumer_resume DIR resume\n");
    return 2;
  }
  if (::chdir(argv[1]) != 0) {
    std::fprintf(stderr, "consumer_resume: cannot enter %s: %s\n", argv[1], std::strerror(errno));
    return 2;
  }
  taskfarm::PoolOptions options;
  options.workers = 2;
  options.chunk = 100;  // whole chunks before index K commit even if a single worker runs them
  if (mode == "first") {
    g_kill_at = std::strtoull(argv[3], nullptr, 10);
    compute(kTasks, false, options);
    std::fprintf(stderr, "consumer_resume: the first run was not stopped at index %s\n", argv[3]);
    return 1;
  }
  const std::uint64_t recorded = taskfarm::read_joblog("run.joblog").done.count();
  const taskfarm::RunReport report = compute(kTasks, true, options);
  if (recorded == 0 || recorded >= kTasks || report.tasks != kTasks - recorded || report.succeeded != report.tasks) {
    std::fprintf(stderr, "consumer_resume: the first run recorded %llu of %llu tasks, the resume ran %llu (%llu succeeded)\n",
                 static_cast<unsigned long long>(recorded), static_cast<unsigned long long>(kTasks),
                 static_cast<unsigned long long>(report.tasks), static_cast<unsigned long long>(report.succeeded));
    return 1;
  }
  const auto out = taskfarm::SharedArray<const double>::open_npy("out.npy");
  for (std::uint64_t i = 0; i < kTasks; ++i) {
    const double want = f(i);
    if (std::memcmp(&out.data()[i], &want, sizeof want) != 0) {
      std::fprintf(stderr, "consumer_resume: out.npy[%llu] differs from the serial loop\n", static_cast<unsigned long long>(i));
      return 1;
    }
  }
  std::printf("consumer_resume: resumed %llu of %llu tasks after the first run recorded %llu; out.npy equals the serial loop\n",
              static_cast<unsigned long long>(report.tasks), static_cast<unsigned long long>(kTasks),
              static_cast<unsigned long long>(recorded));
  return 0;
}
