// `taskfarm run --mpi`: one MPI rank per node; each rank's process forks its node master (the
// ordinary farm: Supervisor, workers, shared memory, crash recovery) BEFORE MPI_Init and then only
// relays over a socketpair — ranges from rank 0 down, the node's report up. No process that
// called MPI_Init ever forks (docs/design.md §17). Main thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "run_options.hpp"
#include "run_plan.hpp"

namespace taskfarm::cli {

namespace mpi {
class StdinCopy;
}  // namespace mpi
/// --mpi with standard input as a source: the copy every rank reads (nullptr without one), and
/// how a node master plans again from it.
struct MpiStdin {
  mpi::StdinCopy* copy = nullptr;
  std::function<RunPlan()> replan;
};

/// This process's MPI rank as mpirun announces it in the environment (OMPI_COMM_WORLD_RANK,
/// PMIX_RANK), known before MPI_Init; 0 without one (a single rank).
int mpi_rank_from_environment();

/// What rank 0 alone does (output, joblog, trace, progress, events): the other ranks' plans
/// leave them out, so that they take no lock on rank 0's files.
void strip_rank0_options(RunOptions& options);

/// Options --mpi does not support: a one-line usage error naming it, or "".
/// `command`: the worker program or --exec template with its input sources.
std::string mpi_unsupported(const RunOptions& options, const std::vector<std::string>& command);

/// Runs `plan` as this rank's part of an MPI run; `output_path` is rank 0's --output (absolute),
/// which every node maps once rank 0 has created it. Returns the exit status of this rank.
/// `grain`: indices per range (--mpi-grain), 0 for the default. `gather` (--mpi-gather): only
/// rank 0 opens the output; the others send it their rows (mpi_gather.hpp).
/// Its input lines move to the node master (plan.lines is empty after).
/// `in`: standard input as a source (mpi_stdin.hpp): rank 0's copy, which every other rank gets.
int run_mpi(RunPlan& plan, const std::string& output_path, std::uint64_t grain, bool gather, const MpiStdin& in);

namespace mpi {
struct Hello;
/// FNV-1a over the input lines (--exec's sources, --input-lines), each followed by a 0 byte.
std::uint64_t hash_lines(const RunPlan& plan);
/// This rank's Hello; `lines_hash` from hash_lines (the lines move to the node master first).
Hello hello(int rank, const RunPlan& plan, std::uint64_t lines_hash);
}  // namespace mpi

/// Whether this binary was built with MPI (TASKFARM_WITH_MPI).
bool mpi_built();

}  // namespace taskfarm::cli
