// The joblog file: GNU parallel's --joblog, one TSV row per task attempt, and the record a
// resume trusts. Its first line names the job (index space, output array) so that a resume can
// tell whether an earlier run is the same job. Rows go to the file with one write(2) per batch,
// so the joblog of a master killed with SIGKILL holds only whole rows. The format is
// docs/cli.md's; taskfarm::Joblog (joblog.hpp) writes it as a run goes. Written and read by
// the master, on one thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "taskfarm/range_set.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm {

/// What makes two runs the same job: the first line of a joblog. Compared field by field; the
/// `taskfarm` binary fills them as below, a program of yours with whatever names its job.
struct RunIdentity {
  std::vector<std::uint64_t> extent;  ///< index-space shape
  std::string output;                 ///< the output file (the CLI: absolute path of --output), or ""
  std::string dtype;                  ///< NumPy name of the output dtype, or ""
  std::string shape;                  ///< output shape "AxB", or ""
  /// What ran the tasks, or "" (not recorded): the CLI writes "commands" (--exec) or "a worker
  /// program", and a resume by the other kind is refused (a joblog of worker-program tasks took
  /// every command of an --exec resume for done: outside pass F9).
  std::string runs;
  bool operator==(const RunIdentity&) const = default;
};

/// "# taskfarm joblog 1\textent=100\toutput=/abs/o.npy\tdtype=int32\tshape=100x100", then
/// "\truns=commands" if `runs` is set (no '\n').
std::string format_identity(const RunIdentity& id);
/// Inverse of format_identity; nullopt if `line` is not one.
std::optional<RunIdentity> parse_identity(std::string_view line);

/// Column names, tab-separated, no '\n'.
extern const char* const joblog_columns;
/// The same and a last column, `inputs`: a joblog whose tasks have inputs (`taskfarm run --exec`
/// with ::: / :::: / --input-lines) records a fingerprint of each task's inputs, so that a resume
/// with other inputs is refused instead of skipping the wrong tasks.
extern const char* const joblog_columns_with_inputs;
/// The same and a last column, `host`: the node of each attempt ("HOSTNAME:RANK"), in the joblog
/// rank 0 of a `taskfarm run --mpi` writes (docs/design.md §17).
extern const char* const joblog_columns_with_host;
/// Both: `inputs`, then `host` — the joblog of a `taskfarm run --mpi --exec` with inputs.
extern const char* const joblog_columns_with_inputs_host;

/// A fingerprint of task `index`'s inputs (a 64-bit hash of its values).
using InputFingerprint = std::function<std::uint64_t(std::uint64_t index)>;

/// One attempt of one task.
struct JoblogRow {
  std::uint64_t index = 0;
  int slot = -1;
  pid_t pid = 0;
  double start = 0;       ///< seconds since the epoch
  double runtime = 0;     ///< seconds
  std::uint32_t attempt = 0;
  std::string_view outcome = "ok";  ///< "ok", "retried" (failed, tried again) or "failed" (finally)
  int exit_code = 0;
  int signal = 0;
  std::string_view cause = "-";     ///< FailureCause name, "-" for ok
  std::optional<std::uint64_t> inputs;  ///< the inputs column (joblog_columns_with_inputs), if any
  std::string_view host;                ///< the host column (joblog_columns_with_host), if not "": after the inputs
};

/// Appends `row` as one TSV line with its '\n'.
void append_row(std::string& out, const JoblogRow& row);

/// A joblog open for writing. Move-only owner of the file descriptor. A failed write leaves
/// the file as it was before that write (whole rows only), so a resume can still read it.
class JoblogFile {
 public:
  /// Writes the identity line and the column names into `fd`, a new empty file (the CLI's
  /// StagedFile, published under `path` when the run starts). Throws SystemError naming `path`,
  /// or Error if a field of `id` holds a tab or a line break (no resume could read it back).
  /// `with_host`: the columns are joblog_columns_with_host (with `with_inputs` too:
  /// joblog_columns_with_inputs_host).
  static JoblogFile create(UniqueFd fd, std::string path, const RunIdentity& id, bool with_inputs = false,
                           bool with_host = false);
  /// Opens the existing joblog `path` to add rows (a resume); never blocks, refuses anything
  /// but a regular file. A torn last line (a master killed mid-write; never read as a row) is
  /// cut off first, so that the rows added after it stay whole.
  static JoblogFile append(const std::string& path);

  /// Writes `rows` (whole lines) with one write(2). On failure (a full disk, EFBIG past the
  /// file size limit) cuts the file back to its length before the call and throws SystemError
  /// naming the file.
  void write(std::string_view rows);
  const std::string& path() const noexcept { return path_; }

 private:
  JoblogFile(UniqueFd fd, std::string path, std::uint64_t size)
      : fd_(std::move(fd)), path_(std::move(path)), size_(size) {}
  UniqueFd fd_;
  std::string path_;
  std::uint64_t size_ = 0;  ///< bytes in the file: whole lines only
};

/// What an earlier run's joblog says. Its size grows with the joblog's runs of done indices,
/// never with the index space (a resume of 10^11 tasks holds a few ranges).
struct EarlierRun {
  RunIdentity identity;
  std::uint64_t tasks = 0;  ///< the size of its index space (the product of identity.extent)
  RangeSet done;            ///< the tasks with an "ok" row
  bool has_inputs = false;  ///< its rows record their inputs (joblog_columns_with_inputs)
  bool has_host = false;    ///< its rows record their node (joblog_columns_with_host: an --mpi run)
};

/// Reads a joblog, one line at a time. A last line without '\n' (a master killed mid-write) is
/// ignored. Throws Error naming the file if it is missing or unreadable ("cannot read joblog
/// 'PATH': … (no earlier run to resume)"), not a regular file ("cannot read joblog: 'PATH' is a
/// FIFO, not a regular file": refused without blocking or reading it), or not a taskfarm joblog ("'PATH' is not a taskfarm
/// joblog (…)": an index space of 2^64 tasks or more, a line longer than any joblog writes, a
/// row outside the index space or unlike the rows taskfarm writes).
/// With `inputs`, a joblog that records its tasks' inputs is also checked against them: the
/// first row whose fingerprint differs throws Error naming its task ("… was written for other
/// inputs: task Seq 4 (index 3, line 6) …").
/// With `extent` (the resuming run's index space, if not empty), a joblog of another index space
/// is refused at its identity line, as plan_resume() does, before any row is read ("the earlier
/// run in joblog 'PATH' had index space 5, this run 10"), rather than at a row outside its own.
EarlierRun read_joblog(const std::string& path, const InputFingerprint& inputs = {},
                       const std::vector<std::uint64_t>& extent = {});

/// What a resumed run computes.
struct ResumePlan {
  std::vector<IndexRange> ranges;  ///< the tasks still to run
  std::uint64_t done = 0;          ///< tasks the earlier run(s) completed
};

/// Checks that `earlier` ran the same job as `now` (same index space, same output, dtype and
/// shape) and returns what is left. Throws Error naming the difference and the joblog ("the
/// earlier run in joblog 'PATH' had index space 10x3, this run 30").
ResumePlan plan_resume(const EarlierRun& earlier, const RunIdentity& now, const std::string& joblog_path);

}  // namespace taskfarm
