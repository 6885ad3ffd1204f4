// The options side of `taskfarm run --mpi` (docs/design.md §17), before MPI_Init: what every
// rank checks on the command line, what only rank 0 keeps, and what each rank tells rank 0 it
// read. Main thread of each rank's process.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "input_sources.hpp"
#include "mpi_run.hpp"
#include "mpi_wire.hpp"
#include "taskfarm/error.hpp"

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

std::string mpi_unsupported(const RunOptions& o, const std::vector<std::string>& command) {
  // -k: rank 0 prints every node's output in order (mpi_order.hpp); --events would need their
  // lines in order too, and --line-buffer prints running tasks' lines on their own node.
  if (o.keep_order && o.events) return "--keep-order with --events is not supported with --mpi";
  if (o.keep_order && o.line_buffer) return "--keep-order with --line-buffer is not supported with --mpi";
  // Every rank reads the input itself (only ranges travel): a FIFO or device would be read once
  // per rank. A regular file, on a shared file system (rank 0 checks that every rank read the
  // same tasks); standard input, which reaches rank 0 only, is copied to all (mpi_stdin.hpp) —
  // a '-' left here is a second one, refused in one machine's words.
  std::vector<InputSource> sources;
  if (!o.input_lines.empty()) sources.push_back(InputSource{true, {o.input_lines}});
  if (o.exec) {
    const std::vector<InputSource> given = split_sources(command).sources;
    sources.insert(sources.end(), given.begin(), given.end());
  }
  try {
    check_stdin_read_once(sources, o.input_lines.empty() ? "::::" : "--input-lines");
  } catch (const Error& e) {
    return e.what();
  }
  std::vector<std::string> files;
  for (const InputSource& src : sources)
    if (src.file) files.insert(files.end(), src.items.begin(), src.items.end());
  for (const std::string& f : files) {
    struct stat st {};
    const bool exists = ::stat(f.c_str(), &st) == 0;
    if (exists && !S_ISREG(st.st_mode))
      return "'" + f + "' is not a regular file: with --mpi every rank reads the input itself";
    if (!exists && (f.starts_with("/dev/fd/") || f.starts_with("/proc/self/fd/")))
      return "'" + f + "' is a pipe of the shell that started mpirun (<(...)), which no rank can read: pipe the lines "
             "into mpirun and read them with :::: - (or --input-lines -)";
  }
  return {};
}

namespace mpi {

Hello hello(int rank, const RunPlan& plan, std::uint64_t lines_hash) {
  Hello h;
  if (::gethostname(h.host, sizeof h.host - 1) != 0) std::strcpy(h.host, "?");
  for (char& c : h.host)
    if (c == '\t' || c == '\n') c = '_';
  const std::string name = std::string(h.host) + ":" + std::to_string(rank);
  std::memset(h.host, 0, sizeof h.host);
  name.copy(h.host, sizeof h.host - 1);
  h.workers = static_cast<std::uint64_t>(std::max(1, plan.farm.workers));
  h.tasks_hash = lines_hash;
  for (std::uint64_t e : plan.extent) h.tasks_hash = (h.tasks_hash ^ e) * 1099511628211ull;
  return h;
}

std::uint64_t hash_lines(const RunPlan& plan) {
  std::uint64_t h = 14695981039346656037ull;
  if (!plan.lines) return h;
  for (std::uint64_t i = 0; i < plan.lines->size(); ++i) {
    for (const char c : plan.lines->line(i)) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace mpi
}  // namespace taskfarm::cli
