// Starting and waiting for one task's command in the built-in worker (taskfarm-exec): vfork +
// execve, as posix_spawn does, plus what posix_spawn cannot do — the command is bound to the
// worker's life (PR_SET_PDEATHSIG), so a worker killed at any instant leaves no command
// running. The command stays in the worker's process group: the master's timeout (TERM, then
// KILL to the group) and its stop reach it. Worker process, its one thread.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

namespace taskfarm::exec {

/// How a command ended: exactly one of the two is non-zero for a failure; both 0 for success.
struct CommandStatus {
  int exit_code = 0;
  int signal = 0;
};

/// The file descriptors a command starts with as its 0, 1 and 2.
struct StandardFds {
  int in = -1, out = -1, err = -1;
};

/// `program` as execvp would find it: a name with a '/' as is, else the first executable
/// `dir/program` along PATH. Returns "" when there is none (errno-like reason in `why`).
std::string find_program(const std::string& program, std::string& why);

/// Runs `path` with `argv` (argv[0] included) and the worker's environment, waits for it and
/// returns how it ended. A command that cannot be started (exec fails) ends like a shell says
/// it: exit code 127 (not found) or 126 (not executable), with the reason in `exec_error`.
/// `name_process` is called with its pid once it has started, and with 0 once it has ended,
/// before it is reaped (so a pid named is never another process's: the worker publishes it in
/// its slot for the master's stall report). `while_running` is called with its pid then, before
/// it is waited for (the worker copies its output meanwhile); if it throws, the command is killed
/// and reaped first. Throws SystemError when the worker cannot start a process at all (vfork
/// fails).
CommandStatus run_command(const std::string& path, const std::vector<std::string>& argv, StandardFds fds,
                          std::string& exec_error, const std::function<void(pid_t)>& name_process,
                          const std::function<void(pid_t)>& while_running);

}  // namespace taskfarm::exec
