// How a rank's relay ends when the MPI job must end (docs/design.md §17, "A lost rank"): mpirun
// lost a rank or was interrupted, SIGTERMs every rank and SIGKILLs what is left 1 s later. The
// relay stops its node master and reads its socket until it is gone; rank 0 listens for the
// other ranks and names the silent ones; every rank exits in mpirun's time. Compiled with MPI
// only; the relay's main thread, from run_mpi (mpi_run.cpp).
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "mpi_wire.hpp"

namespace taskfarm::cli::mpi {

/// What the stop path needs of the relay's loop.
struct StopHooks {
  std::function<void(const Message&)> from_node;  ///< rank 0: its node's texts, still written
  std::function<bool()> serve_mpi;                ///< rank 0: takes one MPI message, if any is there
  /// Rank 0's words once every rank answered or 500 ms passed; `lost`: the silent ranks ("2, 3").
  std::function<void(const std::string& lost)> say_ending;
  std::function<void()> release;  ///< before _Exit (no destructors run): what they would remove
};

/// Ends this rank after stop signal `sig`: never returns (_Exit(128 + sig)). `reported[r]`,
/// `stopping[r]` (rank 0, filled in by serve_mpi): rank r's node reported, or said it stops.
[[noreturn]] void end_on_stop(int sig, pid_t child, int fd, int rank, const std::vector<char>& reported,
                              const std::vector<char>& stopping, const StopHooks& hooks);

}  // namespace taskfarm::cli::mpi
