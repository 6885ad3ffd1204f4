#ifdef TASKFARM_WITH_MPI
#include "mpi_link.hpp"

#include <poll.h>
#include <sys/wait.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>

namespace taskfarm::cli::mpi {

volatile std::sig_atomic_t g_stop_signal = 0;

namespace {

extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }

}  // namespace

void catch_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  // A trace, joblog or output past the file size limit (RLIMIT_FSIZE) is a failed write (EFBIG)
  // that rank 0 reports and stops on, as one machine does (StopSignals), not a killed relay.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  ::sigemptyset(&ignore.sa_mask);
  ::sigaction(SIGXFSZ, &ignore, nullptr);
}

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

namespace {

// Whether a stop signal came 100 ms ago or more: rank 0's budget, in all calls together, for
// messages still on their way once the job is ending.
bool stop_budget_spent() {
  if (g_stop_signal == 0) return false;
  static std::optional<std::chrono::steady_clock::time_point> give_up_at;
  const auto now = std::chrono::steady_clock::now();
  if (!give_up_at) give_up_at = now + std::chrono::milliseconds(100);
  return now >= *give_up_at;
}

// Waits for `request` with MPI_Test: true once it completed, false once the stop budget is spent
// (the request stays pending: the caller keeps its buffer until the process exits).
bool complete_unless_stopped(MPI_Request& request) {
  for (int done = 0;;) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (done != 0) return true;
    if (stop_budget_spent()) return false;
  }
}

}  // namespace

// Rank 0: receives the message MPI_Iprobe found (`n` items of `type`) into `buf`. A large one
// comes only as its sender goes on sending (Open MPI's rendezvous), and a sender that dies midway
// — the rank lost — can leave MPI_Recv waiting for ever: rank 0 would never see the stop signal
// and die silent at mpirun's SIGKILL (seen under load in mpi.rank-lost_gathered: rank 1 reached
// its stop path at once, rank 0 never did; the blocking receive is the likely place). So once a
// stop came it gives the message up within the budget: false then. (A live rank's message is
// whole long before.)
bool receive_unless_stopped(std::vector<char>& buf, int n, MPI_Datatype type, int from, int tag) {
  buf.resize(static_cast<std::size_t>(n));
  MPI_Request request;
  MPI_Irecv(buf.data(), n, type, from, tag, MPI_COMM_WORLD, &request);
  if (complete_unless_stopped(request)) return true;
  static std::vector<std::vector<char>> abandoned;  // (a vector moved keeps its storage)
  abandoned.push_back(std::move(buf));
  buf.clear();
  return false;
}

// Rank 0: sends grant `g` to rank `to`. A node that asked for more just before its rank was lost
// never takes it: the shared-memory queue to that rank fills, and MPI_Send waited for ever —
// rank 0 never reached its stop path and died silent at mpirun's SIGKILL (outside pass F35). So
// once a stop came it gives the grant up within the same budget.
void send_grant_unless_stopped(const Wire& g, int to) {
  auto copy = std::make_unique<Wire>(g);
  MPI_Request request;
  MPI_Isend(copy.get(), static_cast<int>(sizeof(Wire)), MPI_BYTE, to, kTagGrant, MPI_COMM_WORLD, &request);
  if (complete_unless_stopped(request)) return;
  static std::vector<std::unique_ptr<Wire>> abandoned;  // what the request may still read
  abandoned.push_back(std::move(copy));
}

}  // namespace taskfarm::cli::mpi
#endif
