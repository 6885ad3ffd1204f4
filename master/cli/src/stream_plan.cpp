#include "stream_plan.hpp"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <limits>

#include "taskfarm/error.hpp"
#include "taskfarm/shm_segment.hpp"
#include "usage_error.hpp"

namespace taskfarm::cli {
namespace {

/// Whether `path` ("-": standard input) is a stream — a pipe, FIFO, socket or terminal, whose end
/// may be far. A regular file is read whole: it is all there (and a device is refused).
bool is_stream(const std::string& path) {
  struct stat st {};
  if (path == "-") return ::fstat(STDIN_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || ::isatty(STDIN_FILENO) == 1);
  return ::stat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
}

}  // namespace

std::vector<std::uint64_t> StreamPlan::extent() const {
  std::vector<std::uint64_t> e{bound};
  e.insert(e.end(), rest_counts.begin(), rest_counts.end());
  return e;
}

std::string StreamPlan::worker_sources() const {
  // The other sources' values come first in the segment, the stream's after them.
  std::string spec = std::to_string(bound) + ":0:" + std::to_string(rest.size());
  std::uint64_t base = 0;
  for (std::size_t k = 0; k < rest_counts.size(); ++k) {
    spec += "," + std::to_string(rest_counts[k]) + ":" + std::to_string(k + 1) + ":" + std::to_string(base);
    base += rest_counts[k];
  }
  return spec;
}

bool may_stream(const RunOptions& o, const std::vector<InputSource>& sources) {
  // --joblog and --resume: the joblog's first line records the index space, which a resume
  // checks; --events: its start event has the total; --mem-limit: each worker maps the growing
  // segment's whole room, which counts against it. Those read the input whole first, as before.
  // --mpi: every rank reads the same regular file (mpi_options.cpp).
  if (!o.exec || o.mpi || !o.joblog.empty() || o.resume || o.events || !o.mem_limit.empty()) return false;
  if (sources.empty() || !sources.front().file) return false;
  if (std::any_of(sources.begin(), sources.end(), [](const InputSource& s) { return s.linked; })) return false;
  return is_stream(sources.front().items.front());
}

StreamPlan plan_stream(const std::vector<InputSource>& sources, const std::string& first_option, char separator,
                       std::uint64_t limit, bool stdin_lines) {
  check_stdin_read_once(sources, first_option);
  const std::string& path = sources.front().items.front();
  StreamPlan s{LineSource(path, first_option), {}, separator, limit, 0, 0, {}, {}, 1, 0};
  if (sources.size() > 1) {
    s.rest = read_sources(std::vector<InputSource>(sources.begin() + 1, sources.end()), limit, separator, s.rest_counts);
    for (const std::uint64_t n : s.rest_counts)
      if (__builtin_mul_overflow(s.per_line, n, &s.per_line))
        throw UsageError("the inputs make an index space of 2^64 tasks or more");
  }
  s.first.resize(64 * 1024);
  s.first.resize(s.source.read(s.first.data(), s.first.size()));
  if (s.first.empty()) {
    if (stdin_lines)
      throw UsageError("no tasks: give --tasks N, --shape AxB or --input-lines FILE, or ::: VALUES after the command"
                       " (standard input, read for tasks since it is not a terminal, holds none)");
    throw UsageError(s.source.who() + " holds no lines: no tasks to run");
  }
  // The room: what the limit allows, and no more than /dev/shm has (both regions are sparse, and
  // a write that /dev/shm cannot take stops the reading: InputLines::create_growing).
  std::uint64_t room = limit;
  try {
    room = std::min<std::uint64_t>(room, shm_free_bytes());
  } catch (const Error&) {
    // No /dev/shm to ask: creating the segment will say so.
  }
  // Every process of the run maps the whole segment (twice the room: offsets and text), so an
  // address-space limit (`ulimit -v`, inherited by the workers) bounds it too: a quarter of it.
  rlimit as{};
  if (::getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) room = std::min<std::uint64_t>(room, as.rlim_cur / 8);
  const std::uint64_t fixed = LineTable::segment_bytes(0, 0);
  s.max_lines = std::max<std::uint64_t>(1, room > fixed ? (room - fixed) / sizeof(std::uint64_t) : 0);
  s.max_text = std::max<std::uint64_t>(1, room);
  const std::uint64_t stream_room = s.max_lines > s.rest.size() ? s.max_lines - s.rest.size() : 1;
  s.bound = std::max<std::uint64_t>(1, std::min(stream_room, std::numeric_limits<std::uint64_t>::max() / s.per_line));
  return s;
}

}  // namespace taskfarm::cli
