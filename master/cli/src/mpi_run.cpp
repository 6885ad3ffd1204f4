// `taskfarm run --mpi` (docs/design.md §17). Per rank, two processes:
//  - the relay: this process. It forks the node master first, then calls MPI_Init, and from then
//    on only moves small messages between its socketpair and MPI. Rank 0's relay also hands out
//    ranges: a node asks when it runs low and gets the next slice of the run (fast nodes ask
//    more often), creates the --output file before any work goes out, and prints the summary.
//  - the node master: forked before MPI_Init, so that it may fork and exec its workers freely
//    (Open MPI does not support fork() after MPI_Init in a process it manages). It runs the
//    ordinary Farm with a RangeFeed over the socketpair, maps the --output .npy (a shared file)
//    and reports its RunReport's counts when its feed is closed and its work done.
#include "mpi_run.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>

#include "stdout_writer.hpp"
#include "stop_signals.hpp"
#include "summary.hpp"
#include "task_output.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/range_feed.hpp"
#include "taskfarm/shared_array.hpp"

#ifdef TASKFARM_WITH_MPI
#include <mpi.h>
#endif

namespace taskfarm::cli {

int mpi_rank_from_environment() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"})
    if (const char* v = std::getenv(name); v != nullptr && *v != '\0') return std::atoi(v);
  return 0;
}

void strip_rank0_options(RunOptions& o) {
  if (!o.tasks.empty()) o.shape.clear();  // with --tasks, --shape is the output's
  o.output.clear();
  o.dtype.clear();
  o.joblog.clear();
  o.trace.clear();
  o.events = false;
  o.progress = false;
  o.no_progress = true;
}

std::string mpi_unsupported(const RunOptions& o) {
  if (!o.joblog.empty()) return "--joblog";
  if (o.resume) return "--resume";
  if (!o.trace.empty()) return "--trace";
  if (o.events) return "--events";
  if (o.progress) return "--progress";
  if (o.keep_order) return "--keep-order";
  if (o.exec) return "--exec";
  if (!o.input_lines.empty()) return "--input-lines";
  return {};
}

#ifndef TASKFARM_WITH_MPI
bool mpi_built() { return false; }
int run_mpi(const RunPlan&, const std::string&) { throw Error("--mpi: this taskfarm was built without MPI"); }
#else
bool mpi_built() { return true; }

namespace {

// Relay <-> node master, one datagram each (SOCK_SEQPACKET).
struct Wire {
  enum Kind : std::uint32_t { go, ranges, closed, more, report };
  Kind kind = go;
  std::uint32_t count = 0;                          // ranges: pairs in `v`
  std::array<std::uint64_t, 2 * 32> v{};            // ranges: [b, e) pairs; report: the counts below
};
enum ReportField { r_tasks, r_succeeded, r_failed, r_retries, r_deaths, r_error, r_fields };
constexpr int kTagMore = 1, kTagGrant = 2, kTagReport = 3;

void send_wire(int fd, const Wire& w) {
  if (::send(fd, &w, sizeof w, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof w)) throw_errno("--mpi: relay socket");
}
// Waits at most `ms` for a datagram; nullopt on none; throws when the other side is gone.
std::optional<Wire> recv_wire(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, ms) <= 0) return std::nullopt;
  Wire w;
  const ssize_t n = ::recv(fd, &w, sizeof w, 0);
  if (n == 0) throw Error("--mpi: the other side of this node's relay is gone");
  if (n != static_cast<ssize_t>(sizeof w)) throw_errno("--mpi: relay socket");
  return w;
}

// The node master's feed: ranges come down the socket, requests go up.
class SocketFeed final : public RangeFeed {
 public:
  SocketFeed(int fd, std::uint64_t low) : fd_(fd), low_(low) {}
  int fd() const override { return fd_; }
  Batch read() override {
    Batch b;
    auto w = recv_wire(fd_, 0);
    if (!w) return b;
    if (w->kind == Wire::closed) b.closed = true;
    for (std::uint32_t k = 0; k < w->count && k < 32; ++k) b.ranges.emplace_back(w->v[2 * k], w->v[2 * k + 1]);
    return b;
  }
  void want_more() override {
    Wire w;
    w.kind = Wire::more;
    send_wire(fd_, w);
  }
  std::uint64_t low_water() const override { return low_; }

 private:
  int fd_;
  std::uint64_t low_;
};

// The forked node master: waits for `go` (the output exists by then), runs the farm on what its
// feed brings, reports. Its exit status is the relay's business only.
int node_main(const RunPlan& plan, const std::string& output_path, int fd, std::uint64_t grain) {
  // Its relay gone (the rank killed, the job aborted): SIGTERM, a clean stop — workers stopped,
  // segments removed. Its own process group, so that Open MPI's kill of the rank's group does
  // not SIGKILL it before it has cleaned up.
  StopSignals signals;
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() == 1) return exit_farm;
  std::array<std::uint64_t, r_fields> counts{};
  try {
    std::optional<Wire> go;
    for (int waited = 0; !go && waited < 600; ++waited) go = recv_wire(fd, 100);  // rank 0 creates the output
    if (!go) throw Error("--mpi: rank 0 did not start the run within 60 s");
    AnySharedArray output;
    if (!output_path.empty()) output = AnySharedArray::open_npy(output_path, /*writable=*/true);
    std::optional<Farm> farm;
    farm.emplace(Farm::program(plan.farm, plan.program, plan.args));
    SocketFeed feed(fd, grain / 2);
    JobSpec job;
    job.extent = plan.extent;
    if (output) job.output_handle = output.handle();
    job.capture_stdout = true;
    job.feed = &feed;
    StdoutWriter out([&signals] { signals.stop(SIGPIPE); });
    TaskOutput task_output(out);
    signals.attach(*farm);
    RunReport r = farm->run(job, &task_output);
    signals.detach();
    farm.reset();
    out.flush();
    counts = {r.tasks, r.succeeded, r.failed_indices().size(), r.retries, r.worker_deaths,
              r.farm_error.empty() && !r.interrupted ? 0u : 1u};
    if (!r.farm_error.empty()) std::cerr << "taskfarm: " << r.farm_error << "\n";
  } catch (const std::exception& e) {
    std::cerr << "taskfarm: node master: " << e.what() << "\n";
    counts[r_error] = 1;
  }
  Wire w;
  w.kind = Wire::report;
  std::copy(counts.begin(), counts.end(), w.v.begin());
  try {
    send_wire(fd, w);
  } catch (const std::exception&) {
    return exit_farm;
  }
  return counts[r_error] != 0 ? exit_farm : exit_ok;
}

// Rank 0's hand-out: the run's ranges, sliced `grain` indices at a time, in order.
class HandOut {
 public:
  HandOut(std::vector<IndexRange> todo, std::uint64_t grain) : todo_(std::move(todo)), grain_(grain) {}
  // The next slice as a Wire (closed when none is left).
  Wire next() {
    Wire w;
    w.kind = Wire::ranges;
    while (k_ < todo_.size() && at_ >= todo_[k_].second) {
      if (++k_ < todo_.size()) at_ = todo_[k_].first;
    }
    if (k_ >= todo_.size()) {
      w.kind = Wire::closed;
      return w;
    }
    if (at_ < todo_[k_].first) at_ = todo_[k_].first;
    const std::uint64_t e = std::min(todo_[k_].second, at_ + grain_);
    w.count = 1;
    w.v[0] = at_;
    w.v[1] = e;
    at_ = e;
    ++handed_;
    return w;
  }
  std::uint64_t handed() const noexcept { return handed_; }

 private:
  std::vector<IndexRange> todo_;
  std::uint64_t grain_;
  std::size_t k_ = 0;
  std::uint64_t at_ = 0;
  std::uint64_t handed_ = 0;
};

void wait_child(pid_t pid, int& status) {
  // It exits right after its report (or at once, its relay's socket closed): bounded anyway.
  for (int waited = 0; waited < 3000; ++waited) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return;
    ::poll(nullptr, 0, 10);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
}

}  // namespace

int run_mpi(const RunPlan& plan, const std::string& output_path) {
  std::uint64_t todo = 0;
  for (auto [b, e] : plan.todo.ranges) todo += e - b;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) throw_errno("--mpi: socketpair");
  // The grain: a few slices per worker of every node... the node count is not known before
  // MPI_Init, so per local worker; rank 0 clamps nothing more (docs/design.md §17).
  const std::uint64_t workers = static_cast<std::uint64_t>(std::max(1, plan.farm.workers));
  const std::uint64_t grain = std::max<std::uint64_t>(1, std::min<std::uint64_t>(todo / (16 * workers) + 1, 1u << 20));
  std::cout.flush();
  const pid_t child = ::fork();
  if (child < 0) throw_errno("--mpi: fork");
  if (child == 0) {
    ::close(sv[0]);
    ::_exit(node_main(plan, output_path, sv[1], grain));
  }
  ::close(sv[1]);
  const int fd = sv[0];

  MPI_Init(nullptr, nullptr);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  int status = exit_ok;
  AnySharedArray output;
  int ok = 1;
  if (rank == 0 && plan.output && !plan.output->reuse) {
    try {
      output = AnySharedArray::create_npy(plan.output->path, plan.output->dtype, plan.output->shape, AnySharedArray::Publish::now);
    } catch (const Error& e) {
      std::cerr << "taskfarm: --output: " << e.what() << "\n";
      ok = 0;
    }
  }
  MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);  // every node maps it only once it exists
  const auto t0 = std::chrono::steady_clock::now();
  std::array<std::uint64_t, r_fields> total{};
  int reports = 0;
  bool own_reported = false;
  std::uint64_t requests = 0;
  try {
    if (!ok) throw Error("rank 0 could not create the output");
    Wire go;
    go.kind = Wire::go;
    send_wire(fd, go);
    HandOut handout(plan.todo.ranges, grain);
    auto add_report = [&](const std::uint64_t* v) {
      for (int k = 0; k < r_fields; ++k) total[static_cast<std::size_t>(k)] += v[k];
      ++reports;
    };
    while (rank == 0 ? reports < size : !own_reported) {
      // Once its node has reported, it exits and its socket reads EOF: only MPI is left to watch.
      std::optional<Wire> w;
      if (own_reported) ::poll(nullptr, 0, 1);
      else w = recv_wire(fd, 1);
      if (w) {
        if (w->kind == Wire::more) {
          if (rank == 0) {
            ++requests;
            send_wire(fd, handout.next());
          } else {
            char c = 0;
            MPI_Send(&c, 1, MPI_CHAR, 0, kTagMore, MPI_COMM_WORLD);
          }
        } else if (w->kind == Wire::report) {
          own_reported = true;
          if (rank == 0) add_report(w->v.data());
          else MPI_Send(w->v.data(), r_fields, MPI_UINT64_T, 0, kTagReport, MPI_COMM_WORLD);
        }
      }
      int flag = 0;
      MPI_Status st;
      MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
      if (!flag) continue;
      if (st.MPI_TAG == kTagMore) {
        char c;
        MPI_Recv(&c, 1, MPI_CHAR, st.MPI_SOURCE, kTagMore, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        ++requests;
        Wire g = handout.next();
        MPI_Send(&g, static_cast<int>(sizeof g), MPI_BYTE, st.MPI_SOURCE, kTagGrant, MPI_COMM_WORLD);
      } else if (st.MPI_TAG == kTagGrant) {
        Wire g;
        MPI_Recv(&g, static_cast<int>(sizeof g), MPI_BYTE, 0, kTagGrant, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        send_wire(fd, g);
      } else if (st.MPI_TAG == kTagReport) {
        std::array<std::uint64_t, r_fields> v{};
        MPI_Recv(v.data(), r_fields, MPI_UINT64_T, st.MPI_SOURCE, kTagReport, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        add_report(v.data());
      }
    }
  } catch (const std::exception& e) {
    // Open MPI 4.1 cannot go on without a rank (no ULFM): end the whole job, with the reason.
    std::cerr << "taskfarm: rank " << rank << ": " << e.what() << "; ending the MPI job\n";
    ::close(fd);
    int child_status = 0;
    wait_child(child, child_status);
    MPI_Abort(MPI_COMM_WORLD, exit_farm);
    return exit_farm;
  }
  ::close(fd);  // the node master, if still waiting, sees its relay gone
  int child_status = 0;
  wait_child(child, child_status);
  if (rank == 0 && status == exit_ok) {
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cerr << "taskfarm: " << total[r_succeeded] << " of " << todo << " tasks succeeded on " << size << " rank"
              << (size == 1 ? "" : "s") << " (" << total[r_failed] << " failed, " << total[r_retries] << " retries, "
              << total[r_deaths] << " worker deaths, " << requests << " ranges handed out) in " << wall << " s\n";
    if (total[r_error] != 0) status = exit_farm;
    else if (total[r_failed] != 0) status = total[r_failed] > 100 ? exit_many_failures : static_cast<int>(total[r_failed]);
    else if (total[r_succeeded] != todo) status = exit_farm;
  }
  MPI_Finalize();
  return status;
}
#endif

}  // namespace taskfarm::cli
