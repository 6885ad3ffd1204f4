#ifdef TASKFARM_WITH_MPI
#include "mpi_stop.hpp"

#include <poll.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>

#include "mpi_link.hpp"
#include "mpi_node.hpp"
#include "taskfarm/error.hpp"

namespace taskfarm::cli::mpi {

void end_on_stop(int sig, pid_t child, int fd, int rank, const std::vector<char>& reported,
                 const std::vector<char>& stopping, const StopHooks& hooks) {
  // mpirun ends the job (it lost a rank, or was interrupted) and SIGKILLs what is left 1 s later
  // (odls_base_sigkill_timeout): stop the node master at once and keep reading its socket until
  // it is gone (a full socket would block its last sends, and so its cleanup), so that it
  // removes its segments while this process still holds mpirun. Each node relay tells rank 0
  // it is stopping; rank 0 listens until every rank has finished or said so — at once after a
  // ^C — or, when one stays silent (Open MPI 4.1 gives no event for a lost rank: design §17),
  // until 500 ms have passed (halfway to mpirun's SIGKILL: as long for the others to answer as
  // for rank 0 to speak), and names the silent ones. Rank 0 writes what its node still sends.
  ::kill(child, kRelayStop);
  if (rank != 0) {
    char c = 0;
    MPI_Send(&c, 1, MPI_CHAR, 0, kTagStopping, MPI_COMM_WORLD);
  }
  const auto t_stop = std::chrono::steady_clock::now();
  bool child_gone = false, listening = rank == 0;
  int child_status = 0;
  auto silent = [&] {
    std::string lost;  // neither finished nor said it is stopping
    for (std::size_t r = 1; r < reported.size(); ++r)
      if (!reported[r] && !stopping[r]) lost += (lost.empty() ? "" : ", ") + std::to_string(r);
    return lost;
  };
  for (auto now = t_stop; now - t_stop < std::chrono::milliseconds(900); now = std::chrono::steady_clock::now()) {
    if (listening && (silent().empty() || now - t_stop >= std::chrono::milliseconds(500))) {
      listening = false;
      hooks.say_ending(silent());
    }
    if (child_gone && !listening) break;
    if (!child_gone) {
      try {
        auto m = recv_message(fd, 1);
        if (m && rank == 0 && (is_text(m->wire.kind) || m->wire.kind == Wire::ended)) hooks.from_node(*m);
      } catch (const Error&) {
        ::poll(nullptr, 0, 1);  // its end closed: it is exiting
      }
      child_gone = ::waitpid(child, &child_status, WNOHANG) == child;
    } else {
      ::poll(nullptr, 0, 1);
    }
    if (rank == 0)
      while (hooks.serve_mpi()) {
      }
  }
  if (listening) hooks.say_ending(silent());
  if (!child_gone) wait_child(child, child_status, 0);
  hooks.release();
  // mpirun SIGKILLs every rank left as soon as one of them exits while the job ends (measured:
  // rank 0 killed ~15 ms after rank 1's exit, mid-wait, its message never written). So a rank
  // other than 0, its node master gone, stays until rank 0 has spoken and exited (mpirun then
  // kills it) — at most until 900 ms after the stop, before mpirun's own SIGKILL at 1 s.
  if (rank != 0)
    while (std::chrono::steady_clock::now() - t_stop < std::chrono::milliseconds(900)) ::poll(nullptr, 0, 10);
  std::_Exit(128 + sig);  // no MPI_Finalize: the job is already being torn down
}

}  // namespace taskfarm::cli::mpi
#endif
