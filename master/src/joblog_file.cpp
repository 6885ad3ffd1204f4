#include "taskfarm/joblog_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "taskfarm/detail/user_file.hpp"
#include "taskfarm/error.hpp"

namespace taskfarm {
namespace {

constexpr std::string_view kMagic = "# taskfarm joblog 1";
/// Longest line read_joblog accepts: the identity line holds a path (PATH_MAX 4096) and little else.
constexpr std::size_t kMaxLine = 64 * 1024;

std::string join_extent(const std::vector<std::uint64_t>& extent) {
  std::string s;
  for (std::size_t i = 0; i < extent.size(); ++i) s += (i ? "x" : "") + std::to_string(extent[i]);
  return s;
}

bool parse_u64(std::string_view text, std::uint64_t& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && ec == std::errc{} && ptr == text.data() + text.size();
}

std::optional<std::vector<std::uint64_t>> parse_extent(std::string_view text) {
  std::vector<std::uint64_t> extent;
  while (true) {
    const auto x = text.find('x');
    std::uint64_t v = 0;
    if (!parse_u64(text.substr(0, x), v) || v == 0) return std::nullopt;
    extent.push_back(v);
    if (x == std::string_view::npos) return extent;
    text.remove_prefix(x + 1);
  }
}

bool parse_hex(std::string_view text, std::uint64_t& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out, 16);
  return !text.empty() && ec == std::errc{} && ptr == text.data() + text.size();
}

template <class T>
bool parse_number(std::string_view text, T& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return !text.empty() && ec == std::errc{} && ptr == text.data() + text.size();
}

/// What makes `f` (a line split at tabs) other than a row taskfarm writes for a run of `tasks`
/// tasks: "" if nothing. Every column is checked as append_row writes it: a row read as "not
/// ok" that is not a row at all would make a resume re-run or skip tasks on a guess.
enum class LastColumn { none, inputs, host, inputs_host };

std::string row_problem(const std::vector<std::string_view>& f, std::uint64_t tasks, LastColumn last) {
  const std::size_t columns = last == LastColumn::none ? 10 : last == LastColumn::inputs_host ? 12 : 11;
  if (f.size() != columns) return std::to_string(f.size()) + " columns, not " + std::to_string(columns);
  std::uint64_t index = 0;
  if (!parse_u64(f[0], index)) return "index '" + std::string(f[0]) + "' is not a number";
  if (index >= tasks) return "index " + std::string(f[0]) + " is outside [0, " + std::to_string(tasks) + ")";
  int i = 0;
  std::uint32_t u = 0;
  double d = 0;
  const char* const names[] = {"index", "slot", "pid", "start", "runtime", "attempt", "outcome", "exit_code", "signal"};
  for (std::size_t k : {1u, 2u, 7u, 8u})
    if (!parse_number(f[k], i)) return std::string(names[k]) + " '" + std::string(f[k]) + "' is not a number";
  for (std::size_t k : {3u, 4u})
    if (!parse_number(f[k], d)) return std::string(names[k]) + " '" + std::string(f[k]) + "' is not a number";
  if (!parse_number(f[5], u)) return "attempt '" + std::string(f[5]) + "' is not a number";
  if (f[6] != "ok" && f[6] != "retried" && f[6] != "failed")
    return "outcome '" + std::string(f[6]) + "' is none of ok, retried, failed";
  std::uint64_t h = 0;
  if ((last == LastColumn::inputs || last == LastColumn::inputs_host) && (f[10].size() != 16 || !parse_hex(f[10], h)))
    return "inputs '" + std::string(f[10]) + "' is not 16 hex digits";
  if (last == LastColumn::host && f[10].empty()) return "host is empty";
  if (last == LastColumn::inputs_host && f[11].empty()) return "host is empty";
  return "";
}

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> fields;
  while (true) {
    const auto t = line.find('\t');
    fields.push_back(line.substr(0, t));
    if (t == std::string_view::npos) return fields;
    line.remove_prefix(t + 1);
  }
}

/// Writes all of `bytes`; returns 0 or the errno of the write that failed.
int write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

/// The length of `fd`'s content up to and including its last '\n' (0 if none).
std::uint64_t whole_lines_length(int fd, std::uint64_t size, const std::string& path) {
  char buf[4096];
  for (std::uint64_t end = size; end > 0;) {
    const std::uint64_t begin = end > sizeof buf ? end - sizeof buf : 0;
    const ssize_t n = ::pread(fd, buf, end - begin, static_cast<off_t>(begin));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("cannot read joblog " + path);
    if (n == 0) break;
    for (ssize_t i = n; i > 0; --i)
      if (buf[i - 1] == '\n') return begin + static_cast<std::uint64_t>(i);
    end = begin;
  }
  return 0;
}

}  // namespace

const char* const joblog_columns =
    "index\tslot\tpid\tstart\truntime\tattempt\toutcome\texit_code\tsignal\tcause";
const char* const joblog_columns_with_inputs =
    "index\tslot\tpid\tstart\truntime\tattempt\toutcome\texit_code\tsignal\tcause\tinputs";
const char* const joblog_columns_with_host =
    "index\tslot\tpid\tstart\truntime\tattempt\toutcome\texit_code\tsignal\tcause\thost";
const char* const joblog_columns_with_inputs_host =
    "index\tslot\tpid\tstart\truntime\tattempt\toutcome\texit_code\tsignal\tcause\tinputs\thost";

std::string format_identity(const RunIdentity& id) {
  std::string s(kMagic);
  s += "\textent=" + join_extent(id.extent);
  s += "\toutput=" + id.output;
  s += "\tdtype=" + id.dtype;
  s += "\tshape=" + id.shape;
  if (!id.runs.empty()) s += "\truns=" + id.runs;
  return s;
}

std::optional<RunIdentity> parse_identity(std::string_view line) {
  const auto fields = split_tabs(line);
  if ((fields.size() != 5 && fields.size() != 6) || fields[0] != kMagic) return std::nullopt;
  RunIdentity id;
  const char* keys[] = {"extent=", "output=", "dtype=", "shape="};
  for (std::size_t k = 0; k < 4; ++k) {
    const std::string_view f = fields[k + 1];
    const std::string_view key = keys[k];
    if (f.substr(0, key.size()) != key) return std::nullopt;
    const std::string_view value = f.substr(key.size());
    if (k == 0) {
      auto extent = parse_extent(value);
      if (!extent) return std::nullopt;
      id.extent = std::move(*extent);
    } else {
      (k == 1 ? id.output : k == 2 ? id.dtype : id.shape) = std::string(value);
    }
  }
  if (fields.size() == 6) {  // (written only when set: an empty one is not ours)
    constexpr std::string_view key = "runs=";
    if (fields[5].substr(0, key.size()) != key || fields[5].size() == key.size()) return std::nullopt;
    id.runs = std::string(fields[5].substr(key.size()));
  }
  return id;
}

void append_row(std::string& out, const JoblogRow& r) {
  char buf[256];
  const int n = std::snprintf(buf, sizeof buf, "%llu\t%d\t%d\t%.3f\t%.6f\t%u\t%.*s\t%d\t%d\t%.*s\n",
                              static_cast<unsigned long long>(r.index), r.slot, static_cast<int>(r.pid),
                              r.start, r.runtime, r.attempt, static_cast<int>(r.outcome.size()),
                              r.outcome.data(), r.exit_code, r.signal, static_cast<int>(r.cause.size()),
                              r.cause.data());
  out.append(buf, static_cast<std::size_t>(std::min(n, static_cast<int>(sizeof buf) - 1)));
  if (r.inputs) {  // before the row's '\n'
    char hex[24];
    const int h = std::snprintf(hex, sizeof hex, "\t%016llx\n", static_cast<unsigned long long>(*r.inputs));
    out.pop_back();
    out.append(hex, static_cast<std::size_t>(h));
  }
  if (!r.host.empty()) {  // (after the inputs, if any)
    out.pop_back();
    out += '\t';
    out += r.host;
    out += '\n';
  }
}

JoblogFile JoblogFile::create(UniqueFd fd, std::string path, const RunIdentity& id, bool with_inputs, bool with_host) {
  // A tab or a line break inside a field would make a first line no resume can read back.
  for (const std::string* field : {&id.output, &id.dtype, &id.shape})
    if (field->find_first_of("\t\n") != std::string::npos)
      throw Error("joblog " + path + ": the job's identity '" + *field + "' holds a tab or a line break");
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags | O_APPEND) != 0) throw_errno("cannot open joblog " + path);
  JoblogFile f(std::move(fd), std::move(path), 0);
  f.write(format_identity(id) + "\n" +
          (with_inputs && with_host ? joblog_columns_with_inputs_host
           : with_inputs            ? joblog_columns_with_inputs
           : with_host              ? joblog_columns_with_host
                                    : joblog_columns) +
          "\n");
  return f;
}

JoblogFile JoblogFile::append(const std::string& path) {
  UniqueFd fd;
  try {
    fd = detail::open_regular_file(path, O_RDWR | O_APPEND);
  } catch (const SystemError& e) {
    throw SystemError("cannot open joblog " + path, e.code());
  } catch (const Error& e) {
    throw Error(std::string("cannot open joblog: ") + e.what());
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat joblog " + path);
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const std::uint64_t whole = whole_lines_length(fd.get(), size, path);
  if (whole != size && ::ftruncate(fd.get(), static_cast<off_t>(whole)) != 0)
    throw_errno("cannot cut the torn last line of joblog " + path);
  return JoblogFile(std::move(fd), path, whole);
}

void JoblogFile::write(std::string_view rows) {
  if (const int err = write_all(fd_.get(), rows); err != 0) {
    // Part of `rows` may be in the file: cut it off, so that the file holds whole rows only.
    [[maybe_unused]] const int rc = ::ftruncate(fd_.get(), static_cast<off_t>(size_));
    throw SystemError("cannot write joblog " + path_, err);
  }
  size_ += rows.size();
}

namespace {
/// The same job has the same index space (read_joblog, plan_resume: one message).
void check_extent(const std::vector<std::uint64_t>& was, const std::vector<std::uint64_t>& now, const std::string& path) {
  if (was != now)
    throw Error("the earlier run in joblog '" + path + "' had index space " + join_extent(was) + ", this run " + join_extent(now));
}
}  // namespace

EarlierRun read_joblog(const std::string& path, const InputFingerprint& inputs, const std::vector<std::uint64_t>& extent) {
  // A FIFO or device is refused by its kind, not opened blocking or read for ever (Joblog::resume
  // reads before it appends); the stream then reads the very file that was checked.
  UniqueFd fd;
  try {
    fd = detail::open_regular_file(path, O_RDONLY);
  } catch (const SystemError& e) {
    throw Error("cannot read joblog '" + path + "': " + std::strerror(e.code()) + " (no earlier run to resume)");
  } catch (const Error& e) {
    throw Error(std::string("cannot read joblog: ") + e.what());
  }
  std::ifstream in("/proc/self/fd/" + std::to_string(fd.get()), std::ios::binary);
  if (!in) throw Error("cannot read joblog '" + path + "': " + std::strerror(errno));
  const std::string not_ours = "'" + path + "' is not a taskfarm joblog";

  // One line at a time, so that memory does not grow with the joblog; a line longer than
  // any taskfarm writes (a path is at most PATH_MAX) means the file is something else.
  std::vector<char> buf(kMaxLine);
  std::uint64_t line_no = 0;
  auto next_line = [&](std::string_view& line) {
    in.getline(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = static_cast<std::size_t>(in.gcount());
    if (in.bad()) throw_errno("cannot read joblog '" + path + "'");
    if (in.eof()) return false;  // none left, or a torn last line (a master killed mid-write)
    if (in.fail()) throw Error(not_ours + " (line " + std::to_string(line_no + 1) + " is too long)");
    ++line_no;
    line = std::string_view(buf.data(), got - 1);  // without the '\n'
    return true;
  };
  std::string_view line;
  if (!next_line(line)) throw Error(not_ours);
  auto id = parse_identity(line);
  if (!id) throw Error(not_ours);
  const auto tasks = index_space_size(id->extent);
  if (!tasks)
    throw Error(not_ours + " (its index space " + join_extent(id->extent) + " has 2^64 tasks or more)");
  if (!extent.empty()) check_extent(id->extent, extent, path);  // before rows that only fit this run's
  if (!next_line(line) || (line != joblog_columns && line != joblog_columns_with_inputs && line != joblog_columns_with_host &&
                           line != joblog_columns_with_inputs_host))
    throw Error(not_ours);
  const LastColumn last = line == joblog_columns_with_inputs        ? LastColumn::inputs
                          : line == joblog_columns_with_host        ? LastColumn::host
                          : line == joblog_columns_with_inputs_host ? LastColumn::inputs_host
                                                                    : LastColumn::none;

  EarlierRun run;
  run.identity = std::move(*id);
  run.tasks = *tasks;
  run.has_inputs = last == LastColumn::inputs || last == LastColumn::inputs_host;
  run.has_host = last == LastColumn::host || last == LastColumn::inputs_host;
  while (next_line(line)) {
    const auto f = split_tabs(line);
    if (const std::string problem = row_problem(f, run.tasks, last); !problem.empty())
      throw Error(not_ours + " (line " + std::to_string(line_no) + " is not a row of this run: " + problem + ")");
    std::uint64_t index = 0;
    parse_u64(f[0], index);
    std::uint64_t was = 0;
    if (run.has_inputs && inputs && parse_hex(f[10], was) && was != inputs(index))
      throw Error("joblog '" + path + "' was written for other inputs: task Seq " + std::to_string(index + 1) + " (index " +
                  std::to_string(index) + ", line " + std::to_string(line_no) +
                  ") had other inputs than this run's; resume with the same inputs in the same order, or give a new --joblog");
    if (f[6] == "ok") run.done.insert(index);
  }
  return run;
}

ResumePlan plan_resume(const EarlierRun& earlier, const RunIdentity& now, const std::string& joblog_path) {
  const RunIdentity& was = earlier.identity;
  const std::string where = "the earlier run in joblog '" + joblog_path + "' ";
  auto or_none = [](const std::string& s) { return s.empty() ? "no output" : "'" + s + "'"; };
  check_extent(was.extent, now.extent, joblog_path);
  if (!was.runs.empty() && !now.runs.empty() && was.runs != now.runs)
    throw Error(where + "ran its tasks as " + was.runs + ", this run as " + now.runs +
                ": resume with the same kind of run, or give a new --joblog");
  if (was.output != now.output)
    throw Error(where + "wrote " + or_none(was.output) + ", this run " + or_none(now.output));
  if (was.dtype != now.dtype || was.shape != now.shape)
    throw Error(where + "made a " + was.dtype + " " + was.shape + " output, this run asks for " + now.dtype + " " +
                now.shape);
  return ResumePlan{earlier.done.complement(earlier.tasks), earlier.done.count()};
}

}  // namespace taskfarm
