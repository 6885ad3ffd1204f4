// GroupKeeper: what kills the commands' own children when their worker dies unexpectedly. A
// command gets PR_SET_PDEATHSIG from its worker (child_process.hpp), but what the command starts
// does not: `sh -c 'a & (b &); c'` left a, b and c running when the master was SIGKILLed (its
// workers die of their PDEATHSIG, their commands of theirs, and the grandchildren live on — the
// hostile test's F6). They all stay in the worker's process group, so a keeper process forked
// once per worker waits, every signal blocked, for the worker's death (its own PDEATHSIG) and
// SIGKILLs that group. A worker that ends normally kills its keeper first: what its commands
// left then is the master's to end, as before. Worker process (taskfarm-exec), main thread.
#pragma once

#include <sys/types.h>

namespace taskfarm::exec {

class GroupKeeper {
 public:
  /// Forks the keeper if this process leads its process group (the master starts every worker
  /// so); else does nothing — that group is not the worker's to kill. Throws SystemError if the
  /// fork fails.
  GroupKeeper();
  /// Kills and reaps the keeper: the worker ends normally.
  ~GroupKeeper();
  GroupKeeper(const GroupKeeper&) = delete;
  GroupKeeper& operator=(const GroupKeeper&) = delete;

 private:
  pid_t pid_ = -1;
};

}  // namespace taskfarm::exec
