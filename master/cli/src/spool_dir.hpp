// SpoolDir: the directory where the output of `taskfarm run --exec`'s commands waits to be
// printed (layout: worker/exec/src/spool.hpp). Made by the master at the start of the run as
// <parent>/taskfarm-<pid>-XXXXXX (mkdtemp, mode 0700), removed with everything in it when the
// run ends. A master killed with SIGKILL leaves it behind: sweep_dead_spools() removes those of
// dead masters (`taskfarm clean`, and every --exec run at its start). Main thread.
#pragma once

#include <string>
#include <vector>

#include "taskfarm/unique_fd.hpp"

namespace taskfarm::cli {

class SpoolDir {
 public:
  /// Throws Error (with the reason) if the directory cannot be made in `parent`.
  static SpoolDir create(const std::string& parent);
  SpoolDir(SpoolDir&& other) noexcept : path_(std::move(other.path_)), lock_(std::move(other.lock_)) { other.path_.clear(); }
  SpoolDir& operator=(SpoolDir&&) = delete;
  SpoolDir(const SpoolDir&) = delete;
  SpoolDir& operator=(const SpoolDir&) = delete;
  ~SpoolDir();  ///< removes the directory and its files

  const std::string& path() const noexcept { return path_; }

 private:
  SpoolDir(std::string path, UniqueFd lock) : path_(std::move(path)), lock_(std::move(lock)) {}
  std::string path_;
  // A shared flock on the directory while it lives: a sweep from another PID namespace (where
  // this master's pid means nothing) sees it is in use (outside pass h12 F18).
  UniqueFd lock_;
};

/// Removes the spool directories in `parent` whose master no longer runs (taskfarm-<pid>-XXXXXX,
/// owned by this user, holding only what taskfarm puts there). Returns the ones removed; a
/// directory that cannot be removed is named in `problems`.
std::vector<std::string> sweep_dead_spools(const std::string& parent, std::vector<std::string>& problems);

/// The directory spool directories go in when --tmpdir is not given: $TMPDIR, else /tmp.
std::string default_spool_parent();

}  // namespace taskfarm::cli
