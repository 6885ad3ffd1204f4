// The `taskfarm` command line: `run [options] -- PROGRAM [ARGS...]`, `clean`, `info`,
// `--help`, `--version`. Parses argv (CLI11), turns mistakes into one line and exit status 2,
// and hands a checked RunPlan to run_command(). Holds no farm logic. Main thread.
#pragma once

#include <string>
#include <vector>

namespace taskfarm::cli {

/// Runs the command line `args` (args[0] is the program name); returns the exit status.
int main_entry(const std::vector<std::string>& args);

/// The exit-status table, as shown in --help and docs/cli.md.
extern const char* const exit_status_help;

}  // namespace taskfarm::cli
