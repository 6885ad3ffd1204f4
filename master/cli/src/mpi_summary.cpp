#include "mpi_summary.hpp"

#include <algorithm>
#include <iostream>
#include <string>

#include "summary.hpp"

namespace taskfarm::cli::mpi {

int say_summary(const RunPlan& plan, const RankTotals& t, RankJoblog* joblog, RankTrace* trace,
                const FailureNames* failures, CreatedFile& created) {
  int status = exit_ok;
  std::cerr << "taskfarm: " << t.total[r_succeeded] - t.unprinted << " of " << t.todo << " tasks succeeded on " << t.ranks << " rank"
            << (t.ranks == 1 ? "" : "s") << " (" << t.total[r_failed] << " failed, " << t.total[r_retries]
            << " retries, " << t.total[r_deaths] << " worker deaths, " << t.requests << " ranges handed out, "
            << std::chrono::duration<double, std::micro>(t.serving).count() / static_cast<double>(std::max<std::uint64_t>(1, t.requests))
            << " us of rank 0 each) in " << t.wall_s << " s"
            << (t.gathered ? "; " + std::to_string(*t.gathered) + " bytes gathered to rank 0" : std::string()) << "\n";
  if (t.unprinted != 0)
    std::cerr << "taskfarm: " << t.unprinted << " more task" << (t.unprinted == 1 ? "" : "s")
              << " succeeded but rank 0 lost their output (see above): not printed, not recorded"
              << (joblog ? "; --resume runs them" : "") << "\n";
  // The failed tasks named, in one machine's words, each with the node where it ran.
  SummaryContext named;
  named.joblog = plan.joblog;
  if (plan.exec && plan.retries_defaulted) named.retry_note = kExecRetryNote;
  if (failures) std::cerr << format_failures(failures->lines(), named);
  // A node that stopped early (its farm failed, or its --tmpdir filled) leaves its tasks unrun.
  if (const std::uint64_t ran = t.total[r_succeeded] + t.total[r_failed]; ran < t.todo)
    std::cerr << "taskfarm: " << t.todo - ran << " of " << t.todo << " tasks were not run ("
              << (t.total[r_halted] != 0 ? "halted by --halt on a node: no range went out after it"
                                            : "stopped early: the reason is above")
              << ")"
              << (joblog ? "; --resume runs them" : "") << "\n";
  // A joblog that could not be written to the end: tasks that succeeded after its last row run
  // again on --resume — as on one machine, said (commands may have side effects; h12 F4).
  if (joblog && !joblog->error().empty() && joblog->in_place()) {
    const std::uint64_t ok = t.total[r_succeeded] - t.unprinted, recorded = std::min(ok, joblog->recorded_ok());
    if (recorded < ok)
      std::cerr << "taskfarm: the joblog records " << recorded << " of the " << ok << " tasks that succeeded; the other "
                << ok - recorded << " run again on --resume\n";
  }
  // As on one machine (summary.cpp): an output with holes is said to be one.
  if (const std::uint64_t missing = t.todo - std::min(t.todo, t.total[r_succeeded]); missing > 0 && plan.output)
    std::cerr << "taskfarm: " << plan.output->path << " is INCOMPLETE: " << missing << " of " << plan.tasks
              << " tasks missing"
              << (joblog ? "; to compute only those: the same command with --resume (on any number of ranks; the "
                           "joblog's failed rows name the tasks)"
                         : "; add --joblog to a run to be able to --resume it")
              << "\n";
  // A node's master found the output's header written over and wrote it back (F10's check).
  if (t.total[r_restored] != 0) std::cerr << "taskfarm: " << restored_header_message(plan.output->path) << "\n";
  if (trace) trace->finish();
  if (joblog && !joblog->in_place())  // as on one machine (run_command.cpp)
    std::cerr << "taskfarm: " << plan.joblog << " was not replaced: no joblog row of this run was written (the file there is as it was)\n";
  if (t.total[r_error] != 0) status = exit_farm;
  else if ((joblog && !joblog->error().empty()) || (trace && !trace->error().empty()) || t.total[r_stopped] != 0 ||
           t.lost_output)
    status = exit_joblog_failed;
  else if (t.total[r_restored] != 0) status = exit_output_damaged;
  else if (t.total[r_failed] != 0)
    status = t.total[r_failed] > 100 ? exit_many_failures : static_cast<int>(t.total[r_failed]);
  else if (t.total[r_succeeded] != t.todo) status = exit_farm;
  if (status == exit_joblog_failed) say_joblog_count(plan, joblog);  // stopped early: how far the joblog got
  if (created.armed() && t.total[r_succeeded] == 0)
    std::cerr << "taskfarm: removed " << plan.output->path << ": no task succeeded\n";
  else
    created.keep();
  return status;
}

void say_joblog_count(const RunPlan& plan, const RankJoblog* joblog) {
  if (joblog && joblog->in_place())
    std::cerr << "taskfarm: joblog " << plan.joblog << " records " << plan.todo.done + joblog->recorded_ok() << " of "
              << plan.tasks << " tasks done: rerun with --resume (on any number of ranks) to finish\n";
}

}  // namespace taskfarm::cli::mpi
