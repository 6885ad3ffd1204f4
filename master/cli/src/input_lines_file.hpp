// Reading --input-lines: the lines of a file, or of standard input for "-". Task i is line i.
// Runs in the master before anything is created; any thread.
#pragma once

#include <string>
#include <vector>

namespace taskfarm::cli {

/// The lines of `path` ("-" = standard input), without their '\n'. A last line without '\n'
/// counts; a final '\n' does not start another line. Throws UsageError if the file cannot be
/// read or holds no line at all.
std::vector<std::string> read_input_lines(const std::string& path);

}  // namespace taskfarm::cli
