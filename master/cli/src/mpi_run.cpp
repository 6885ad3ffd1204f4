// `taskfarm run --mpi` (docs/design.md §17). Per rank, two processes:
//  - the relay: this process. It forks the node master first, then calls MPI_Init, and from then
//    on only moves small messages between its socketpair and MPI. Rank 0's relay also hands out
//    ranges: a node asks when it runs low and gets the next slice of the run (fast nodes ask
//    more often), creates the --output file before any work goes out, and prints the summary.
//  - the node master: forked before MPI_Init, so that it may fork and exec its workers freely
//    (Open MPI does not support fork() after MPI_Init in a process it manages). It runs the
//    ordinary Farm with a RangeFeed over the socketpair, maps the --output .npy (a shared file)
//    and reports its RunReport's counts when its feed is closed and its work done (mpi_node.cpp).
// With --joblog, rank 0 writes every node's rows, adding the node (host column); a rank lost
// ends the job, and rank 0 says so, naming the ranks that had not finished.
#include "mpi_run.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>

#include "mpi_leak_check.hpp"
#include "mpi_node.hpp"
#include "mpi_rank0.hpp"
#include "mpi_wire.hpp"
#include "summary.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/progress.hpp"
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
  o.resume = false;  // rank 0 reads the joblog and hands out only what it lacks
  o.dtype.clear();
  o.joblog.clear();
  o.trace.clear();
  o.events = false;
  o.progress = false;
  o.no_progress = true;
}

std::string mpi_unsupported(const RunOptions& o) {
  if (!o.trace.empty()) return "--trace";
  if (o.events) return "--events";
  if (o.keep_order) return "--keep-order";
  if (o.exec) return "--exec";
  if (!o.input_lines.empty()) return "--input-lines";
  return {};
}

#ifndef TASKFARM_WITH_MPI
bool mpi_built() { return false; }
int run_mpi(const RunPlan&, const std::string&, std::uint64_t) { throw Error("--mpi: this taskfarm was built without MPI"); }
#else
bool mpi_built() { return true; }

namespace {

using mpi::HandOut;
using mpi::Message;
using mpi::RankJoblog;
using mpi::Wire;
constexpr int kTagMore = 1, kTagGrant = 2, kTagReport = 3, kTagRows = 4, kTagStopping = 5, kTagProgress = 6;
constexpr int kHostBytes = 64;

// The relay's SIGTERM/SIGINT (mpirun ending the job after losing a rank, or a user's ^C): seen by
// its loop, which then stops its node master and says what was lost.
volatile sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }

void wait_child(pid_t pid, int& status, int ms) {
  // It exits right after its report (or at once, its relay's socket closed): bounded anyway.
  for (int waited = 0; waited < ms / 10; ++waited) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return;
    ::poll(nullptr, 0, 10);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
}

std::string node_name(int rank) {
  char host[kHostBytes] = {};
  if (::gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "?");
  for (char& c : host)
    if (c == '\t' || c == '\n') c = '_';
  return std::string(host) + ":" + std::to_string(rank);
}

}  // namespace

int run_mpi(const RunPlan& plan, const std::string& output_path, std::uint64_t grain_option) {
  std::uint64_t todo = 0;
  for (auto [b, e] : plan.todo.ranges) todo += e - b;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) throw_errno("--mpi: socketpair");
  // The node's estimate of a slice (it asks for more at half of it): the node count is not known
  // before MPI_Init, so per local worker; rank 0 divides by the node count (docs/design.md §17).
  const std::uint64_t workers = static_cast<std::uint64_t>(std::max(1, plan.farm.workers));
  const std::uint64_t grain = grain_option != 0 ? grain_option
                              : std::max<std::uint64_t>(1, std::min<std::uint64_t>(todo / (16 * workers) + 1, 1u << 20));
  std::cout.flush();
  const pid_t child = ::fork();
  if (child < 0) throw_errno("--mpi: fork");
  if (child == 0) {
    ::close(sv[0]);
    ::_exit(mpi::node_main(plan, output_path, sv[1], grain));
  }
  ::close(sv[1]);
  const int fd = sv[0];
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);

  mpi::check_leaks_now_not_at_exit();  // Open MPI keeps what it allocates from here on
  MPI_Init(nullptr, nullptr);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::array<char, kHostBytes> me{};
  const std::string my_name = node_name(rank);
  my_name.copy(me.data(), me.size() - 1);
  std::vector<char> names(rank == 0 ? static_cast<std::size_t>(size) * kHostBytes : 0);
  MPI_Gather(me.data(), kHostBytes, MPI_CHAR, names.data(), kHostBytes, MPI_CHAR, 0, MPI_COMM_WORLD);
  int status = exit_ok;
  AnySharedArray output;
  std::optional<RankJoblog> joblog;
  std::array<int, 3> start{1, 0, 0};  // rank 0 ready; keeps a joblog (nodes send rows); shows progress (counts)
  if (rank == 0) {
    try {
      if (plan.output && !plan.output->reuse)
        output = AnySharedArray::create_npy(plan.output->path, plan.output->dtype, plan.output->shape,
                                            AnySharedArray::Publish::now);
      std::vector<std::string> hosts;
      for (int r = 0; r < size; ++r) hosts.emplace_back(names.data() + static_cast<std::size_t>(r) * kHostBytes);
      if (!plan.joblog.empty()) joblog.emplace(plan, std::move(hosts));
      start[1] = joblog ? 1 : 0;
      start[2] = plan.progress != ProgressMode::off ? 1 : 0;
    } catch (const Error& e) {
      std::cerr << "taskfarm: " << e.what() << "\n";
      start[0] = 0;
    }
  }
  MPI_Bcast(start.data(), 3, MPI_INT, 0, MPI_COMM_WORLD);  // every node maps the output only once it exists
  const auto t0 = std::chrono::steady_clock::now();
  std::array<std::uint64_t, mpi::r_fields> total{};
  std::vector<char> reported(static_cast<std::size_t>(size), 0), stopping(static_cast<std::size_t>(size), 0);
  int reports = 0;
  bool own_reported = false;
  std::uint64_t requests = 0;
  std::chrono::steady_clock::duration serving{};  // rank 0: inside requests (the hand-out's cost)
  std::string rows;
  // Rank 0's slices: 16 per worker of the whole job, now that the node count is known (every
  // node's -j taken as this one's); a node asks at half of its own estimate, made before MPI_Init.
  const std::uint64_t hand_grain =
      grain_option != 0 ? grain_option
                        : std::max<std::uint64_t>(1, std::min<std::uint64_t>(todo / (16 * workers * static_cast<std::uint64_t>(size)) + 1, 1u << 20));
  HandOut handout(plan.todo.ranges, hand_grain);
  // Rank 0's --progress: each node's counts so far come up; the progress sees their growth.
  Progress progress(rank == 0 ? plan.progress : ProgressMode::off, todo);
  std::vector<std::array<std::uint64_t, 2>> counted(static_cast<std::size_t>(size));
  auto add_counts = [&](int from, const std::uint64_t* v) {
    auto& c = counted[static_cast<std::size_t>(from)];
    if (v[0] > c[0]) {
      TasksDone t;
      t.end = v[0] - c[0];
      progress.on_tasks_done(t);
    }
    for (std::uint64_t k = c[1]; k < v[1]; ++k) {
      FailureRecord f;
      f.index = 0;
      f.final = true;
      progress.on_failure(f);
    }
    c = {std::max(c[0], v[0]), std::max(c[1], v[1])};
  };
  auto last_tick = std::chrono::steady_clock::now();
  auto add_report = [&](int from, const std::uint64_t* v) {
    for (int k = 0; k < mpi::r_fields; ++k) total[static_cast<std::size_t>(k)] += v[k];
    reported[static_cast<std::size_t>(from)] = 1;
    ++reports;
  };
  // One MPI message, if any is there: rank 0 serves requests and takes rows and reports; a
  // node relay passes grants down. Returns whether there was one.
  auto serve_mpi = [&] {
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
    if (!flag) return false;
    const int from = st.MPI_SOURCE;
    if (st.MPI_TAG == kTagMore) {
      const auto t = std::chrono::steady_clock::now();
      char c;
      MPI_Recv(&c, 1, MPI_CHAR, from, kTagMore, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      ++requests;
      Wire g = handout.next();
      MPI_Send(&g, static_cast<int>(sizeof g), MPI_BYTE, from, kTagGrant, MPI_COMM_WORLD);
      serving += std::chrono::steady_clock::now() - t;
    } else if (st.MPI_TAG == kTagGrant) {
      Wire g;
      MPI_Recv(&g, static_cast<int>(sizeof g), MPI_BYTE, 0, kTagGrant, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      if (!own_reported) mpi::send_wire(fd, g);
    } else if (st.MPI_TAG == kTagReport) {
      std::array<std::uint64_t, mpi::r_fields> v{};
      MPI_Recv(v.data(), mpi::r_fields, MPI_UINT64_T, from, kTagReport, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      add_report(from, v.data());
    } else if (st.MPI_TAG == kTagProgress) {
      std::array<std::uint64_t, 2> v{};
      MPI_Recv(v.data(), 2, MPI_UINT64_T, from, kTagProgress, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      add_counts(from, v.data());
    } else if (st.MPI_TAG == kTagRows) {
      int n = 0;
      MPI_Get_count(&st, MPI_CHAR, &n);
      rows.resize(static_cast<std::size_t>(n));
      MPI_Recv(rows.data(), n, MPI_CHAR, from, kTagRows, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      if (joblog) joblog->write(from, rows);
    } else {
      char c;
      MPI_Recv(&c, 1, MPI_CHAR, from, kTagStopping, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      stopping[static_cast<std::size_t>(from)] = 1;
    }
    return true;
  };
  try {
    if (!start[0]) throw Error("rank 0 could not start the run");
    Wire go;
    go.kind = Wire::go;
    go.v[0] = static_cast<std::uint64_t>(start[1]);
    go.v[1] = static_cast<std::uint64_t>(start[2]);
    mpi::send_wire(fd, go);
    while ((rank == 0 ? reports < size : !own_reported) && g_stop_signal == 0) {
      // Once its node has reported, it exits and its socket reads EOF: only MPI is left to watch.
      std::optional<Message> m;
      if (own_reported) ::poll(nullptr, 0, 1);
      else m = mpi::recv_message(fd, 1);
      if (m && m->wire.kind == Wire::more) {
        if (rank == 0) {
          const auto t = std::chrono::steady_clock::now();
          ++requests;
          mpi::send_wire(fd, handout.next());
          serving += std::chrono::steady_clock::now() - t;
        } else {
          char c = 0;
          MPI_Send(&c, 1, MPI_CHAR, 0, kTagMore, MPI_COMM_WORLD);
        }
      } else if (m && m->wire.kind == Wire::rows) {
        if (rank == 0 && joblog) joblog->write(0, m->rows);
        else if (rank != 0)
          MPI_Send(m->rows.data(), static_cast<int>(m->rows.size()), MPI_CHAR, 0, kTagRows, MPI_COMM_WORLD);
      } else if (m && m->wire.kind == Wire::progress) {
        if (rank == 0) add_counts(0, m->wire.v.data());
        else MPI_Send(m->wire.v.data(), 2, MPI_UINT64_T, 0, kTagProgress, MPI_COMM_WORLD);
      } else if (m && m->wire.kind == Wire::report) {
        own_reported = true;
        if (rank == 0) add_report(0, m->wire.v.data());
        else MPI_Send(m->wire.v.data(), mpi::r_fields, MPI_UINT64_T, 0, kTagReport, MPI_COMM_WORLD);
      }
      while (serve_mpi()) {
      }
      if (rank == 0 && std::chrono::steady_clock::now() - last_tick >= std::chrono::milliseconds(200)) {
        progress.on_tick(FarmTick{});  // it redraws on time (a line every 2 s, a bar 10 times a second)
        last_tick = std::chrono::steady_clock::now();
      }
    }
  } catch (const std::exception& e) {
    // Open MPI 4.1 cannot go on without a rank (no ULFM): end the whole job, with the reason.
    std::cerr << "taskfarm: rank " << rank << ": " << e.what() << "; ending the MPI job\n";
    ::close(fd);
    int child_status = 0;
    wait_child(child, child_status, 30'000);
    MPI_Abort(MPI_COMM_WORLD, exit_farm);
    return exit_farm;
  }
  if (const int sig = g_stop_signal; sig != 0) {
    // mpirun ends the job (it lost a rank, or was interrupted) and SIGKILLs what is left 1 s later
    // (odls_base_sigkill_timeout): stop the node master at once and keep reading its socket until
    // it is gone (a full socket would block its last sends, and so its cleanup), so that it
    // removes its segments while this process still holds mpirun. A node tells rank 0 it is
    // alive; rank 0 waits 300 ms for those words and names the ranks that neither finished nor
    // spoke. Rank 0 writes the rows that still come in.
    ::kill(child, mpi::kRelayStop);
    if (rank != 0) {
      char c = 0;
      MPI_Send(&c, 1, MPI_CHAR, 0, kTagStopping, MPI_COMM_WORLD);
    }
    const auto t_stop = std::chrono::steady_clock::now();
    bool child_gone = false;
    int child_status = 0;
    for (auto now = t_stop; now - t_stop < std::chrono::milliseconds(900); now = std::chrono::steady_clock::now()) {
      const bool listening = rank == 0 && now - t_stop < std::chrono::milliseconds(300);
      if (child_gone && !listening) break;
      if (!child_gone) {
        try {
          auto m = mpi::recv_message(fd, 1);
          if (m && m->wire.kind == Wire::rows && joblog) joblog->write(0, m->rows);
        } catch (const Error&) {
          ::poll(nullptr, 0, 1);  // its end closed: it is exiting
        }
        child_gone = ::waitpid(child, &child_status, WNOHANG) == child;
      } else {
        ::poll(nullptr, 0, 1);
      }
      if (rank == 0)
        while (serve_mpi()) {
        }
    }
    if (!child_gone) wait_child(child, child_status, 0);
    if (rank == 0) {
      std::string lost;  // neither finished nor said it is stopping
      for (int r = 1; r < size; ++r)
        if (!reported[static_cast<std::size_t>(r)] && !stopping[static_cast<std::size_t>(r)])
          lost += (lost.empty() ? "" : ", ") + std::to_string(r);
      std::cerr << "taskfarm: rank 0: the MPI job is ending (" << ::strsignal(sig) << ")"
                << (lost.empty() ? std::string() : "; lost: rank " + lost) << "\n";
      if (joblog)
        std::cerr << "taskfarm: joblog " << plan.joblog << " records " << plan.todo.done + joblog->recorded_ok()
                  << " of " << plan.tasks << " tasks done: rerun with --resume (on any number of ranks) to finish\n";
    }
    std::_Exit(128 + sig);  // no MPI_Finalize: the job is already being torn down
  }
  ::close(fd);  // the node master, if still waiting, sees its relay gone
  int child_status = 0;
  wait_child(child, child_status, 30'000);
  if (rank == 0) progress.finish();
  if (rank == 0 && status == exit_ok) {
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cerr << "taskfarm: " << total[mpi::r_succeeded] << " of " << todo << " tasks succeeded on " << size << " rank"
              << (size == 1 ? "" : "s") << " (" << total[mpi::r_failed] << " failed, " << total[mpi::r_retries]
              << " retries, " << total[mpi::r_deaths] << " worker deaths, " << requests << " ranges handed out, "
              << std::chrono::duration<double, std::micro>(serving).count() / static_cast<double>(std::max<std::uint64_t>(1, requests))
              << " us of rank 0 each) in " << wall << " s\n";
    if (total[mpi::r_error] != 0) status = exit_farm;
    else if (joblog && !joblog->error().empty()) status = exit_joblog_failed;
    else if (total[mpi::r_failed] != 0)
      status = total[mpi::r_failed] > 100 ? exit_many_failures : static_cast<int>(total[mpi::r_failed]);
    else if (total[mpi::r_succeeded] != todo) status = exit_farm;
  }
  MPI_Finalize();
  return status;
}
#endif

}  // namespace taskfarm::cli
