// The spool directory of a `taskfarm run --exec`: where each task's stdout and stderr wait,
// on disk, until the master prints them whole (GNU parallel's --group does the same in its
// $TMPDIR). The master (taskfarm) creates the directory, reads and removes the task files, and
// removes the directory at the end; the built-in workers (taskfarm-exec) write into it:
//   <dir>/w<pid>-<n>-<index>.out|.err   the file a worker's running command (task <index>) writes
//   <dir>/<index>.out|.err      task <index>'s output once its command ended (renamed into place)
//   <dir>/slot-<k>              locked (flock) by the worker whose {%} is k
// A task that printed nothing has no file. Memory stays bounded on both sides whatever a task
// prints: the command writes straight into the file, the master copies it with sendfile.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "taskfarm/error.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm::exec {

enum class Stream : std::uint8_t { out, err };

/// A task's output could not be written into the spool (a full --tmpdir, a file size limit, an
/// I/O error): thrown by the worker for that task, whose output is incomplete. The master knows
/// the failure by this type's name (kSpoolWriteFailedType, its FailureRecord::exception_type)
/// and stops the run: what it would print next is not the whole output.
class SpoolWriteFailed : public Error {
 public:
  using Error::Error;
};
inline constexpr const char* kSpoolWriteFailedType = "taskfarm::exec::SpoolWriteFailed";

/// The message of a SpoolWriteFailed for task `index` (before "; command: "): names the
/// directory, says it is full when it is (`err`).
std::string spool_write_failed_message(const std::string& dir, std::uint64_t index, Stream s, int err);

/// The bytes of each stream (indexed by Stream) that a task's command left in the spool: the
/// worker sends them as the result value of a task that succeeded (TaskContext::set_result), and
/// the master checks the files it prints against them — a file removed or cut short since (a tmp
/// cleaner, a user's rm) is lost output, never taken for a task that printed nothing.
using PublishedSizes = std::array<std::uint64_t, 2>;
/// The sizes in a task's result value; nullopt if it holds none (an empty or foreign value).
std::optional<PublishedSizes> published_sizes(std::span<const char> value);

/// "<dir>/<index>.out" or ".err": task `index`'s output once its command has ended.
std::string task_output_path(const std::string& dir, std::uint64_t index, Stream s);

/// What a running command's file name says (w<pid>-<n>-<index>.out|err), or nullopt for another name.
struct LiveFile {
  pid_t worker = 0;
  std::uint64_t index = 0;
  Stream stream = Stream::out;
};
std::optional<LiveFile> parse_live_name(std::string_view name);

/// Worker side: the file one stream of the running command goes to. One per stream per worker.
class SpoolFile {
 public:
  SpoolFile(std::string dir, Stream stream) : dir_(std::move(dir)), stream_(stream) {}
  /// The descriptor the next command's output goes to (a new file when the last one was
  /// published); `index`: the task, named if a full --tmpdir refuses the file (SpoolWriteFailed).
  int fd(std::uint64_t index);
  /// The command has ended: if it wrote anything, its file becomes task `index`'s output
  /// (replacing an earlier attempt's) and the next command gets a new file. Returns the bytes.
  std::uint64_t publish(std::uint64_t index);
  /// The last `n` bytes written to the current file (before publish()).
  std::string tail(std::size_t n) const;

 private:
  std::string dir_;
  Stream stream_;
  UniqueFd fd_;
  std::string name_;
  std::uint64_t index_ = 0;  // the task name_ says
  unsigned made_ = 0;
};

/// Removes what an earlier attempt of task `index` left (a worker that died after its command
/// ended), so that only this attempt's output can be printed.
void remove_task_output(const std::string& dir, std::uint64_t index);

/// Master side, after the worker `pid` died or was killed while its command ran task `index`
/// (a timeout, a crash): what that command wrote so far — the worker's current files, never
/// published — becomes task `index`'s output. Returns whether it wrote anything.
bool adopt_partial_output(const std::string& dir, pid_t worker, std::uint64_t index);

/// {%}: the lowest slot number k >= 1 whose lock file no live worker holds; held (flock, by an
/// open descriptor) until this process exits, so a replacement worker takes the number again.
unsigned take_slot(const std::string& dir);

}  // namespace taskfarm::exec
