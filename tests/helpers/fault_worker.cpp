// A worker program for tests: writes out[i] = i * i (int64 output array) or, without an output
// array, sets result i * i; misbehaves at index --at in the way --fault says.
//   fault_worker [--fault MODE] [--at K] [--print [--pad BYTES]] [--spin-ms MS] [--marker-dir DIR] [--tally FILE]
// MODE: none segv abort exit3 throw hang oom garbage early-exit stop-file, or slow-start: the
// first worker to start (the one that creates DIR/slow-start) blocks before run_worker.
// For the --mpi tests (a wrapper picks the mode by rank), at any process's first task:
// kill-once: the first such task of all (the one that creates DIR/killed) SIGKILLs its worker;
// gate: waits (at most 20 s) until DIR/killed exists; kill-relay: creates DIR/killed, waits (at
// most 20 s) until DIR/j.tsv (or DIR/FILE with --tally FILE) has --at lines, then SIGKILLs its
// master's parent (the rank's MPI process). --tally FILE: each task adds a line to DIR/FILE.
// hold: waits like gate, then holds its task (at most 20 s) until its master stops it.
// --pad BYTES: --print's line carries that many dots more (output too big for a pipe).
// stop-child: task K runs as a child process that stops itself (SIGSTOP), named as the task's
// process (TaskContext::set_task_process); the task ends when that child does. name-master:
// task K names the master (its parent, not the worker's child) as its process and hangs.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <time.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "taskfarm/worker.hpp"

namespace {

long lines_in(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return 0;
  long n = 0;
  for (int c; (c = std::fgetc(f)) != EOF;) n += c == '\n';
  std::fclose(f);
  return n;
}

// Polls `ready` every 2 ms for at most 20 s (a bounded wait on a file another process writes).
template <class Ready>
void wait_for(Ready ready) {
  for (int k = 0; k < 10000 && !ready(); ++k) {
    timespec ts{0, 2'000'000};
    ::nanosleep(&ts, nullptr);
  }
}

void mpi_fault(const std::string& fault, const std::string& dir, std::uint64_t at, const std::string& tally) {
  if (fault == "kill-once") {
    const int fd = ::open((dir + "/killed").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd >= 0) ::raise(SIGKILL);
  } else if (fault == "gate") {
    wait_for([&] { return ::access((dir + "/killed").c_str(), F_OK) == 0; });
  } else if (fault == "hold") {
    wait_for([&] { return ::access((dir + "/killed").c_str(), F_OK) == 0; });
    wait_for([] { return false; });  // busy when the job ends: its node master stops it
  } else if (fault == "kill-relay") {
    const int fd = ::open((dir + "/killed").c_str(), O_CREAT | O_WRONLY, 0644);  // this rank holds work: open the gate
    if (fd >= 0) ::close(fd);
    const std::string counted = dir + "/" + (tally.empty() ? std::string("j.tsv") : tally);
    wait_for([&] { return static_cast<std::uint64_t>(lines_in(counted)) >= at; });
    // getppid() is the node master; field 4 of its /proc stat is its parent, the relay.
    FILE* f = std::fopen(("/proc/" + std::to_string(::getppid()) + "/stat").c_str(), "r");
    int relay = 0;
    if (f != nullptr && std::fscanf(f, "%*d (%*[^)]) %*c %d", &relay) == 1 && relay > 1) ::kill(relay, SIGKILL);
    if (f != nullptr) std::fclose(f);
    for (;;) ::pause();  // its node master stops it
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string fault = "none";
  std::uint64_t at = ~0ull;
  bool print = false;
  std::size_t pad = 0;
  long spin_ms = 0;
  std::string marker_dir = ".";
  std::string tally;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--fault" && i + 1 < argc) fault = argv[++i];
    else if (a == "--at" && i + 1 < argc) at = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--print") print = true;
    else if (a == "--pad" && i + 1 < argc) pad = std::strtoull(argv[++i], nullptr, 10);
    else if (a == "--spin-ms" && i + 1 < argc) spin_ms = std::strtol(argv[++i], nullptr, 10);
    else if (a == "--marker-dir" && i + 1 < argc) marker_dir = argv[++i];
    else if (a == "--tally" && i + 1 < argc) tally = argv[++i];
  }
  if (fault == "early-exit" && taskfarm::started_by_master()) return 5;  // dies before its handshake
  if (fault == "slow-start") {
    const int fd = ::open((marker_dir + "/slow-start").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd >= 0)
      for (;;) ::pause();  // never gets to run_worker: the master's start deadline must end it
  }
  bool first = true;
  return taskfarm::run_worker([&](taskfarm::TaskContext& t) {
    const std::uint64_t i = t.index();
    if (first) {
      first = false;
      mpi_fault(fault, marker_dir, at, tally);
    }
    if (i == at) {
      if (fault == "segv") ::raise(SIGSEGV);
      if (fault == "abort") std::abort();
      if (fault == "exit3") std::exit(3);
      if (fault == "throw") throw std::invalid_argument("bad input at " + std::to_string(i));
      if (fault == "hang") for (;;) ::pause();
      if (fault == "oom") {
        std::vector<char> huge(std::size_t{8} << 30);  // 8 GiB: past any test's limit
        huge[0] = 1;
      }
      if (fault == "garbage") {
        const char junk[] = "this is not a taskfarm message";
        [[maybe_unused]] auto r = ::write(3, junk, sizeof junk);
        for (;;) ::pause();  // stay on this index until the master kills us for it
      }
      if (fault == "stop-child") {
        const pid_t child = ::fork();
        if (child == 0) {
          ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlives its worker
          ::raise(SIGSTOP);
          ::_exit(0);
        }
        if (child < 0) throw std::runtime_error("fork failed");
        t.set_task_process(child);
        siginfo_t info{};
        while (::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT) != 0 && errno == EINTR) {
        }
        t.set_task_process(0);
        ::waitpid(child, nullptr, 0);
      }
      if (fault == "name-master") {
        t.set_task_process(::getppid());
        for (;;) ::pause();
      }
      if (fault == "stderr") std::fprintf(stderr, "about to fail on %llu\n", static_cast<unsigned long long>(i)), std::exit(7);
    }
    if (spin_ms > 0) {  // a slow task that burns CPU (no sleeping in tests)
      timespec t0{}, t1{};
      ::clock_gettime(CLOCK_MONOTONIC, &t0);
      do ::clock_gettime(CLOCK_MONOTONIC, &t1);
      while ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1'000'000 < spin_ms);
    }
    const auto v = static_cast<std::int64_t>(i * i);
    if (print) std::printf("task %llu%s\n", static_cast<unsigned long long>(i), std::string(pad, '.').c_str());
    if (!tally.empty() && fault != "kill-relay") {
      const int fd = ::open((marker_dir + "/" + tally).c_str(), O_CREAT | O_WRONLY | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0 && ::write(fd, "x\n", 2) == 2) ::close(fd);
      else if (fd >= 0) ::close(fd);
    }
    if (t.job().output_handle.empty()) t.set_result(v);
    else t.output_as<std::int64_t>().element({i}) = v;
  });
}
