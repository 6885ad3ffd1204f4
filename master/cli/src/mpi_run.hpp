// `taskfarm run --mpi`: one MPI rank per node; each rank's process forks its node master (the
// ordinary farm: Supervisor, workers, shared memory, crash recovery) BEFORE MPI_Init and then only
// relays over a socketpair — ranges from rank 0 down, the node's report up. No process that
// called MPI_Init ever forks (docs/design.md §17). Main thread.
#pragma once

#include <cstdint>

#include "run_options.hpp"
#include "run_plan.hpp"

namespace taskfarm::cli {

/// This process's MPI rank as mpirun announces it in the environment (OMPI_COMM_WORLD_RANK,
/// PMIX_RANK), known before MPI_Init; 0 without one (a single rank).
int mpi_rank_from_environment();

/// What rank 0 alone does (output, joblog, trace, progress, events): the other ranks' plans
/// leave them out, so that they take no lock on rank 0's files.
void strip_rank0_options(RunOptions& options);

/// Options --mpi does not support yet: a one-line usage error naming it, or "".
std::string mpi_unsupported(const RunOptions& options);

/// Runs `plan` as this rank's part of an MPI run; `output_path` is rank 0's --output (absolute),
/// which every node maps once rank 0 has created it. Returns the exit status of this rank.
/// `grain`: indices per range (--mpi-grain), 0 for the default.
int run_mpi(const RunPlan& plan, const std::string& output_path, std::uint64_t grain);

/// Whether this binary was built with MPI (TASKFARM_WITH_MPI).
bool mpi_built();

}  // namespace taskfarm::cli
