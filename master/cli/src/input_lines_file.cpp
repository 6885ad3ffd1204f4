#include "input_lines_file.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <new>
#include <vector>

#include "line_source.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/shm_segment.hpp"
#include "usage_error.hpp"

namespace taskfarm::cli {
namespace {

constexpr std::size_t kBlock = 64 * 1024;

/// Appends what `in` holds to `lines` until its end; throws UsageError past `limit`.
void read_all(LineSource& in, std::uint64_t limit, char separator, LineTable& lines) {
  std::vector<char> block(kBlock);
  for (;;) {
    const std::size_t got = in.read(block.data(), block.size());
    if (got == 0) break;
    std::string_view chunk(block.data(), got);
    // Checked before the block is kept: the table never holds more than the limit allows.
    const auto ends = static_cast<std::uint64_t>(std::count(chunk.begin(), chunk.end(), separator));
    const bool open_after = chunk.back() != separator;
    if (LineTable::segment_bytes(lines.size() + ends + (open_after ? 1 : 0), lines.text_bytes() + got - ends) > limit)
      throw UsageError(in.who() + " holds more than " + format_bytes(limit) + " of lines (stopped after " +
                       std::to_string(lines.size()) +
                       " lines; the limit is --input-lines-max, by default the free space of /dev/shm, "
                       "at most a quarter of memory)");
    while (!chunk.empty()) {
      const auto nl = chunk.find(separator);
      lines.append_text(chunk.substr(0, nl));
      if (nl == std::string_view::npos) break;
      lines.end_line();
      chunk.remove_prefix(nl + 1);
    }
  }
  if (lines.open_line()) lines.end_line();  // a last line without '\n'
}

}  // namespace

std::uint64_t append_input_lines(const std::string& path, std::uint64_t limit, char separator,
                                 const std::string& option, LineTable& lines, std::chrono::milliseconds writer_wait) {
  LineSource in(path, option, writer_wait);
  const std::uint64_t before = lines.size();
  try {
    read_all(in, limit, separator, lines);
  } catch (const std::bad_alloc&) {
    const std::uint64_t count = lines.size() - before;
    const std::uint64_t bytes = lines.text_bytes();
    lines = LineTable();  // give the memory back (without allocating) before saying so
    throw UsageError(in.who() + " does not fit in memory (stopped after " + std::to_string(count) + " lines, " +
                     format_bytes(bytes) + " of lines in all; --input-lines-max sets a lower limit)");
  }
  return lines.size() - before;
}

LineTable read_input_lines(const std::string& path, std::uint64_t limit, char separator, const std::string& option,
                           bool allow_empty, std::chrono::milliseconds writer_wait) {
  LineTable lines;
  if (append_input_lines(path, limit, separator, option, lines, writer_wait) == 0 && !allow_empty)
    throw UsageError(LineSource::who(path, option) + " holds no lines: no tasks to run");
  return lines;
}

std::uint64_t default_input_lines_limit() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  std::uint64_t limit = std::numeric_limits<std::uint64_t>::max();
  try {
    limit = shm_free_bytes();
  } catch (const Error&) {
    // No /dev/shm to ask: the segment's creation will say so; memory still bounds the lines.
  }
  if (pages > 0 && page > 0) limit = std::min(limit, static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) / 4);
  return limit;
}

}  // namespace taskfarm::cli
