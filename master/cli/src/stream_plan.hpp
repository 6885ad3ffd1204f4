// StreamPlan: an --exec run whose first source of lines is a stream (standard input, a pipe, a
// FIFO) starts its tasks as the lines arrive (LineFeed, docs/design.md §10) instead of after
// the whole input was read. The plan opens the stream and waits for its first bytes, as a whole
// read would (no byte at all is refused the same way), and reads every other source whole: a
// cross product's first axis grows, line by line, the others are known. Main thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "input_sources.hpp"
#include "line_source.hpp"
#include "run_options.hpp"
#include "taskfarm/input_lines.hpp"

namespace taskfarm::cli {

struct StreamPlan {
  LineSource source;
  std::string first;               ///< what the plan read of it (at least a byte)
  char separator = '\n';
  std::uint64_t limit = 0;         ///< --input-lines-max, as LineTable::segment_bytes counts (all sources)
  std::uint64_t max_lines = 0, max_text = 0;  ///< the growing segment's room (InputLines::create_growing)
  LineTable rest;                  ///< the other sources' values, source after source (first in the segment)
  std::vector<std::uint64_t> rest_counts;  ///< their extents: axes 1, 2, ...
  std::uint64_t per_line = 1;      ///< tasks per line of the stream: the product of rest_counts
  std::uint64_t bound = 0;         ///< lines of the stream the index space has room for

  /// The run's index space: the stream's bound, then the other sources' extents.
  std::vector<std::uint64_t> extent() const;
  /// --sources of taskfarm-exec: each source's size, axis and first line in the segment.
  std::string worker_sources() const;
};

/// Whether `sources` (--input-lines first when given) are read as a stream: --exec, the first is
/// a stream, none is linked (:::+), and no option needs the number of tasks before the run.
bool may_stream(const RunOptions& o, const std::vector<InputSource>& sources);

/// Opens the first source and reads its first bytes, and reads the others whole. Throws
/// UsageError as a whole read would: no lines, more than `limit`, standard input twice.
/// `stdin_lines`: the input is standard input because no other was given (its own message).
StreamPlan plan_stream(const std::vector<InputSource>& sources, const std::string& first_option, char separator,
                       std::uint64_t limit, bool stdin_lines);

}  // namespace taskfarm::cli
