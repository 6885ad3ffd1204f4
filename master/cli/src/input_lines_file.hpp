// Reading --input-lines: the lines of a file, or of standard input for "-". Task i is line i.
// The lines end in a shared segment, so reading stops at a limit on that segment's size: an
// endless producer (`yes | taskfarm run --input-lines - …`) is refused in bounded memory.
// Runs in the master before anything is created; any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "line_source.hpp"
#include "taskfarm/input_lines.hpp"

namespace taskfarm::cli {

/// The lines of `path` ("-" = standard input; a FIFO or pipe too, see LineSource), without their '\n' (or `separator`: '\0' for
/// NUL-separated names, `find -print0`). A last line without one counts; a final separator
/// does not start another line. Throws UsageError (naming `option`) if the file cannot be read,
/// holds no line at all, or holds more than `limit` bytes of lines as the shared segment counts
/// them (LineTable::segment_bytes) — or more than memory holds.
/// With `allow_empty`, no line at all is an empty table, not an error.
LineTable read_input_lines(const std::string& path, std::uint64_t limit, char separator = '\n',
                           const std::string& option = "--input-lines", bool allow_empty = false,
                           std::chrono::milliseconds writer_wait = LineSource::kWriterWait);

/// Like read_input_lines, but appends to `lines` (whose lines count against `limit` too) and
/// returns how many it added (0 is no error): each `:::: FILE` goes straight into the one table.
std::uint64_t append_input_lines(const std::string& path, std::uint64_t limit, char separator,
                                 const std::string& option, LineTable& lines,
                                 std::chrono::milliseconds writer_wait = LineSource::kWriterWait);

/// The limit when --input-lines-max is not given: the free space of /dev/shm, at most a
/// quarter of the physical memory (while the segment is filled, /dev/shm holds the lines and the
/// master's table still part of them).
std::uint64_t default_input_lines_limit();

}  // namespace taskfarm::cli
