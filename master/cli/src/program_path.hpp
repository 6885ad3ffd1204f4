// Finding the worker program of `taskfarm run ... -- PROGRAM` before anything is started, so
// that a typo is a usage error (exit 2) and not a farm whose workers all fail to start.
// Pure lookup on the file system; any thread.
#pragma once

#include <string>

namespace taskfarm::cli {

/// What execvp would run for `name`: a name containing '/' is a path (relative to the current
/// directory); a bare name is looked up in $PATH. Returns an absolute path. Throws UsageError
/// if there is no such file, it is a directory, or it is not executable; `noun` names what is
/// looked for in that message ("worker program", "command").
std::string resolve_program(const std::string& name, const std::string& noun = "worker program");

/// taskfarm-exec, the built-in worker of `taskfarm run --exec`: beside this binary (the build
/// tree) or in ../libexec/taskfarm/ from it (installed). Throws Error if it is in neither.
std::string exec_worker_program();

}  // namespace taskfarm::cli
