// The node master of one rank of `taskfarm run --mpi` (docs/design.md §17): forked by its relay
// before MPI_Init, it never calls MPI. It runs the ordinary Farm on the ranges its relay brings
// over the socketpair (worker programs, or --exec's commands with their own spool), sends up
// what rank 0 asked for in its "go" — joblog rows, --events lines, --trace records, counts, the
// first task's end — and reports its counts at the end. Main thread of the forked process.
#pragma once

#include <signal.h>

#include <cstdint>
#include <functional>
#include <string>

#include "run_plan.hpp"

namespace taskfarm::cli::mpi {

/// The signal that stops a node master cleanly: its relay's death (PR_SET_PDEATHSIG) or its relay.
constexpr int kRelayStop = SIGUSR1;

/// The indices per grant a node expects (it asks for more at half of it): `grain_option`
/// (--mpi-grain), or 1/16 of a worker's share of `plan`'s tasks.
std::uint64_t node_grain(const RunPlan& plan, std::uint64_t grain_option);

/// Runs the node's farm; `fd` is its end of the socketpair; its input lines move into their
/// segment. `replan`: a plan from standard input's copy, which "go" says to make (mpi_stdin.hpp).
/// Returns the process's exit status (its relay reads the report).
int node_main(RunPlan& plan, const std::function<RunPlan()>& replan, const std::string& output_path, int fd,
              std::uint64_t grain_option);

}  // namespace taskfarm::cli::mpi
