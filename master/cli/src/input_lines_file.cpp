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
    while (!chunk.empty()) {
      const auto nl = chunk.find(separator);
      lines.text.append(chunk.substr(0, nl));
      if (nl == std::string_view::npos) break;
      lines.end_line();
      chunk.remove_prefix(nl + 1);
    }
    const bool open_line = lines.text.size() > lines.offsets.back();
    if (LineTable::segment_bytes(lines.size() + (open_line ? 1 : 0), lines.text.size()) > limit)
      throw UsageError(in.who() + " holds more than " + format_bytes(limit) + " of lines (stopped after " +
                       std::to_string(lines.size()) +
                       " lines; the limit is --input-lines-max, by default the free space of /dev/shm, "
                       "at most a quarter of memory)");
  }
  if (lines.text.size() > lines.offsets.back()) lines.end_line();  // a last line without '\n'
}

}  // namespace

LineTable read_input_lines(const std::string& path, std::uint64_t limit, char separator, const std::string& option,
                           bool allow_empty, std::chrono::milliseconds writer_wait) {
  LineSource in(path, option, writer_wait);
  LineTable lines;
  try {
    read_all(in, limit, separator, lines);
  } catch (const std::bad_alloc&) {
    const std::uint64_t count = lines.size();
    const std::uint64_t bytes = lines.text.size();
    std::string().swap(lines.text);  // give the memory back (without allocating) before saying so
    std::vector<std::uint64_t>().swap(lines.offsets);
    throw UsageError(in.who() + " does not fit in memory (stopped after " + std::to_string(count) + " lines, " +
                     format_bytes(bytes) + "; --input-lines-max sets a lower limit)");
  }
  if (lines.size() == 0 && !allow_empty) throw UsageError(in.who() + " holds no lines: no tasks to run");
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
