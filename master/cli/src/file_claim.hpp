// FileClaim: a `taskfarm run`'s advisory lock (flock) on a file it names — exclusive on what it
// will write (--output, --joblog, --trace), shared on what it reads (--input) — so that two
// runs never write the same file, nor one write what another reads: the second is refused with
// exit status 2 before it creates anything. Taken by make_run_plan, held until the run ends.
// A file a run creates is locked by its own StagedFile (see detail/staged_file.hpp); CreatedFile
// removes an output the run created when no task wrote to it. Main thread.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "taskfarm/unique_fd.hpp"

namespace taskfarm::cli {

class FileClaim {
 public:
  enum class Use : std::uint8_t { read, write };

  /// Locks the regular file `path` (LOCK_NB) if it exists; if it does not, holds nothing and
  /// existed() is false. Throws UsageError "OPTION: 'PATH' is in use by another taskfarm run"
  /// if another process holds a conflicting lock, or naming the problem if `path` is not a
  /// regular file or cannot be opened. Never blocks.
  static FileClaim take(const std::string& option, const std::string& path, Use use);

  FileClaim() = default;
  /// The path existed when claimed (and is locked by this object).
  bool existed() const noexcept { return static_cast<bool>(fd_); }

 private:
  UniqueFd fd_;
};

/// Removes the output file this run created and published unless keep() is called (an output
/// no task wrote to is no output) — only if the path still names that very file (device and
/// inode), so that nothing put there by someone else since is ever removed.
class CreatedFile {
 public:
  CreatedFile() = default;
  CreatedFile(const CreatedFile&) = delete;
  CreatedFile& operator=(const CreatedFile&) = delete;
  ~CreatedFile();
  /// `path` names the file this run has just published.
  void arm(std::string path);
  void keep() noexcept { path_.clear(); }
  bool armed() const noexcept { return !path_.empty(); }

 private:
  std::string path_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace taskfarm::cli
