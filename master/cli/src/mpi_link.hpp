// The MPI side of a rank's relay in `taskfarm run --mpi` (docs/design.md §17): the message tags,
// the stop signal its loop watches (mpirun's SIGTERM, a ^C), and rank 0's MPI calls that give up
// within a budget once the job must end. Compiled with MPI only (TASKFARM_WITH_MPI); included
// by mpi_run*.cpp. The relay's main thread.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <csignal>
#include <vector>

#include <mpi.h>

#include "mpi_wire.hpp"

namespace taskfarm::cli::mpi {

constexpr int kTagMore = 1, kTagGrant = 2, kTagReport = 3, kTagRows = 4, kTagStopping = 5, kTagProgress = 6,
              kTagEvents = 7, kTagTrace = 8, kTagEnded = 9, kTagData = 10, kTagOutput = 11, kTagFailures = 12,
              kTagPulse = 13;

/// The MPI tag of a text kind, and back.
constexpr int tag_of(Wire::Kind k) {
  return k == Wire::rows     ? kTagRows
         : k == Wire::events ? kTagEvents
         : k == Wire::output ? kTagOutput
         : k == Wire::failures ? kTagFailures
                               : kTagTrace;
}
constexpr Wire::Kind kind_of(int tag) {
  return tag == kTagRows     ? Wire::rows
         : tag == kTagEvents ? Wire::events
         : tag == kTagOutput ? Wire::output
         : tag == kTagFailures ? Wire::failures
                               : Wire::trace;
}

/// The relay's SIGTERM/SIGINT (mpirun ending the job after losing a rank, or a user's ^C): its
/// handlers, installed without SA_RESTART; the flag is the signal once one came, else 0, seen by
/// its loop, which then stops its node master and says what was lost. SIGXFSZ is ignored: a
/// write past the file size limit fails with EFBIG, reported.
void catch_stop_signals();
extern volatile std::sig_atomic_t g_stop_signal;

/// Waits `ms` at most for the node master `pid` to exit, then SIGKILLs and reaps it.
void wait_child(pid_t pid, int& status, int ms);

/// Rank 0: receives the message MPI_Iprobe found (`n` items of `type`) into `buf`; false if a
/// stop came and the budget (100 ms after it, all such calls together) was spent first.
bool receive_unless_stopped(std::vector<char>& buf, int n, MPI_Datatype type, int from, int tag);

/// Rank 0: sends grant `g` to rank `to`, given up as receive_unless_stopped's.
void send_grant_unless_stopped(const Wire& g, int to);

}  // namespace taskfarm::cli::mpi
