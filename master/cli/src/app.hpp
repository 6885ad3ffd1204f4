// The `taskfarm` command line: `run [options] -- PROGRAM [ARGS...]`, `clean`, `info`,
// `--help`, `--version`. Parses argv (CLI11), turns mistakes into one line and exit status 2,
// and hands a checked RunPlan to run_command(). Holds no farm logic. Main thread.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace taskfarm::cli {

/// Runs the command line `args` (args[0] is the program name); returns the exit status. No
/// exception leaves it (see exit_status_of).
int main_entry(const std::vector<std::string>& args) noexcept;

/// Runs `body` and returns its exit status; an exception that escapes it becomes one line on
/// stderr and a documented status: UsageError 2; any other taskfarm::Error ("taskfarm: what")
/// 3; std::bad_alloc ("taskfarm: out of memory") 3; anything else ("taskfarm: internal error:
/// what") 3. The net under every command: no exception ever reaches main().
int exit_status_of(const std::function<int()>& body) noexcept;

/// The exit-status table, as shown in --help and docs/cli.md.
extern const char* const exit_status_help;

}  // namespace taskfarm::cli
