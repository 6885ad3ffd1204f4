#include "input_lines_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <istream>
#include <limits>
#include <new>
#include <vector>

#include "taskfarm/detail/user_file.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/shm_segment.hpp"
#include "usage_error.hpp"

namespace taskfarm::cli {
namespace {

constexpr std::size_t kBlock = 64 * 1024;

/// Appends what `in` holds to `lines` until its end; throws UsageError past `limit`.
void read_all(std::istream& in, const std::string& what, std::uint64_t limit, char separator, const std::string& option,
              LineTable& lines) {
  std::vector<char> block(kBlock);
  while (in) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    std::string_view chunk(block.data(), static_cast<std::size_t>(in.gcount()));
    while (!chunk.empty()) {
      const auto nl = chunk.find(separator);
      lines.text.append(chunk.substr(0, nl));
      if (nl == std::string_view::npos) break;
      lines.end_line();
      chunk.remove_prefix(nl + 1);
    }
    const bool open_line = lines.text.size() > lines.offsets.back();
    if (LineTable::segment_bytes(lines.size() + (open_line ? 1 : 0), lines.text.size()) > limit)
      throw UsageError(option + ": " + what + " holds more than " + format_bytes(limit) +
                       " of lines (stopped after " + std::to_string(lines.size()) +
                       " lines; the limit is --input-lines-max, by default the free space of /dev/shm, "
                       "at most a quarter of memory)");
  }
  if (in.bad()) throw UsageError(option + ": error reading " + what);
  if (lines.text.size() > lines.offsets.back()) lines.end_line();  // a last line without '\n'
}

}  // namespace

LineTable read_input_lines(const std::string& path, std::uint64_t limit, char separator, const std::string& option,
                           bool allow_empty) {
  const bool from_stdin = path == "-";
  const std::string what = from_stdin ? std::string("standard input") : "'" + path + "'";
  std::ifstream file;
  if (!from_stdin) {
    struct stat st {};
    const bool known = ::stat(path.c_str(), &st) == 0;
    if (known && S_ISDIR(st.st_mode)) throw UsageError(option + ": " + what + " is a directory");
    // A device is never a file of lines (/dev/zero would be read up to the limit); a FIFO or
    // pipe is (`:::: <(find ...)`), as in GNU parallel.
    if (known && (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISSOCK(st.st_mode)))
      throw UsageError(option + ": " + what + " is " + std::string(detail::file_kind(st.st_mode)) + ", not a file of lines");
    file.open(path, std::ios::binary);
    if (!file) throw UsageError(option + ": cannot read " + what + ": " + std::strerror(errno));
  }
  std::istream& in = from_stdin ? std::cin : file;
  LineTable lines;
  try {
    read_all(in, what, limit, separator, option, lines);
  } catch (const std::bad_alloc&) {
    const std::uint64_t count = lines.size();
    const std::uint64_t bytes = lines.text.size();
    std::string().swap(lines.text);  // give the memory back (without allocating) before saying so
    std::vector<std::uint64_t>().swap(lines.offsets);
    throw UsageError(option + ": " + what + " does not fit in memory (stopped after " + std::to_string(count) +
                     " lines, " + format_bytes(bytes) + "; --input-lines-max sets a lower limit)");
  }
  if (lines.size() == 0 && !allow_empty) throw UsageError(option + ": " + what + " holds no lines: no tasks to run");
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
