#include "taskfarm/trace.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <string_view>

#include "json.hpp"
#include "taskfarm/detail/staged_file.hpp"
#include "taskfarm/detail/user_file.hpp"
#include "taskfarm/error.hpp"

namespace taskfarm {
namespace {

using detail::json_string;

std::string fmt(double v) { return detail::json_number(v, 3); }

std::string range_name(std::uint64_t begin, std::uint64_t end) {
  return end == begin + 1 ? std::to_string(begin) : std::to_string(begin) + "-" + std::to_string(end - 1);
}

/// "SIGSEGV", "exit 3", "timeout": what ended a worker, short enough for a marker.
std::string crash_label(const FailureRecord& f) {
  if (f.signal != 0 && f.cause == FailureCause::signal) return signal_name(f.signal);
  if (f.cause == FailureCause::exit) return "exit " + std::to_string(f.exit_code);
  return std::string(to_string(f.cause));
}

}  // namespace

Trace Trace::create(const std::string& path, const std::string& title) {
  detail::require_regular_or_absent(path);  // a FIFO or device refused now, not at the end
  detail::StagedFile staged = detail::StagedFile::create(path);
  Trace trace(staged.duplicate_fd(), path, title);  // its first records are in before the rename
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 && errno == ENOENT) {
    staged.publish(
        /*replace_existing=*/false);  // a new file: there at once, readable if we are killed
  } else {
    trace.staged_ = std::move(staged);  // the user's file: replaced only by a whole trace (finish)
  }
  return trace;
}

Trace::Trace(UniqueFd file, const std::string& path, const std::string& title)
    : Trace(std::move(file), path, title, static_cast<int>(::getpid())) {}

Trace::Trace(UniqueFd file, const std::string& path, const std::string& title, int track)
    : file_(::fdopen(file.get(), "w")), path_(path), pid_(track), t0_(std::chrono::steady_clock::now()) {
  if (!file_) throw_errno("cannot create trace " + path);
  file.release();  // the FILE owns it now
  pending_ = "[\n";
  name_process(pid_, title);
}

Trace::Trace(Sink sink, int track)
    : sink_(std::move(sink)), pid_(track), first_(false), t0_(std::chrono::steady_clock::now()) {}

void Trace::name_process(int track, const std::string& title) {
  emit(R"({"name":"process_name","ph":"M","pid":)" + std::to_string(track) + R"(,"args":{"name":)" +
       json_string(title) + "}}");
  flush();
}

void Trace::append(std::string_view records) {
  if (records.empty()) return;
  pending_ += records;
  flush();
}

Trace::~Trace() {
  if (!file_) return;  // (a sink-mode Trace has no array to close)
  pending_ += "\n]\n";
  flush();
  if (staged_ && !write_failed()) {
    try {
      staged_.publish(/*replace_existing=*/true);
    } catch (const Error&) {  // (unreported, as the destructor's write errors are)
    }
  }
}

double Trace::micros(std::chrono::steady_clock::time_point t) const {
  return std::chrono::duration<double, std::micro>(t - t0_).count();
}

void Trace::emit(const std::string& event) {
  if (!first_) pending_ += ",\n";
  first_ = false;
  pending_ += event;
}

void Trace::flush() noexcept {
  // One write(2) of whole records per batch, never a stdio buffer: a master killed at any
  // instant leaves a file that ends after a complete record (the joblog's discipline).
  if (sink_) {
    if (!pending_.empty()) sink_(pending_);
    pending_.clear();
    return;
  }
  std::string_view bytes = file_ ? std::string_view(pending_) : std::string_view();
  std::uint64_t done = 0;
  while (!bytes.empty() && write_errno_ == 0) {
    const ssize_t n = ::write(::fileno(file_.get()), bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      write_errno_ = errno;
      // A batch written in part (a full disk) is cut off again: the file ends after a record.
      if (done != 0 && ::ftruncate(::fileno(file_.get()), static_cast<off_t>(written_)) == 0) done = 0;
    } else {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      done += static_cast<std::uint64_t>(n);
    }
  }
  written_ += done;
  pending_.clear();
}

void Trace::name_track(int slot) {
  if (slot < 0) return;
  const auto s = static_cast<std::size_t>(slot);
  if (s < named_.size() && named_[s]) return;
  if (s >= named_.size()) named_.resize(s + 1, false);
  named_[s] = true;
  emit(R"({"name":"thread_name","ph":"M","pid":)" + std::to_string(pid_) + R"(,"tid":)" + std::to_string(slot) +
       R"(,"args":{"name":"worker slot )" + std::to_string(slot) + R"("}})");
}

void Trace::on_worker_started(int slot, pid_t pid) {
  const auto now = std::chrono::steady_clock::now();
  name_track(slot);
  emit(R"({"name":"worker started","ph":"i","s":"t","pid":)" + std::to_string(pid_) + R"(,"tid":)" +
       std::to_string(slot) + R"(,"ts":)" + fmt(micros(now)) + R"(,"args":{"pid":)" + std::to_string(pid) + "}}");
  flush();
}

void Trace::on_tasks_done(const TasksDone& t) {
  const auto [slot, pid, begin, end, attempt, failed, start, stop] = t;
  std::string failed_json = "[";
  for (std::size_t i = 0; i < failed.size(); ++i) failed_json += (i ? "," : "") + std::to_string(failed[i]);
  failed_json += "]";
  name_track(slot);
  emit(R"({"name":)" + json_string(range_name(begin, end)) + R"(,"cat":"chunk","ph":"X","pid":)" +
       std::to_string(pid_) + R"(,"tid":)" + std::to_string(slot) + R"(,"ts":)" + fmt(micros(start)) +
       R"(,"dur":)" + fmt(micros(stop) - micros(start)) + R"(,"args":{"begin":)" + std::to_string(begin) +
       R"(,"end":)" + std::to_string(end) + R"(,"attempt":)" + std::to_string(attempt) + R"(,"pid":)" +
       std::to_string(pid) + R"(,"outcome":"ok","failed":)" + failed_json + "}}");
  flush();
}

void Trace::on_failure(const FailureRecord& f) {
  const auto now = std::chrono::steady_clock::now();
  const int tid = f.slot < 0 ? 0 : f.slot;
  name_track(tid);
  const std::string common = R"(,"pid":)" + std::to_string(pid_) + R"(,"tid":)" + std::to_string(tid);
  std::string args = R"({"cause":)" + json_string(to_string(f.cause)) + R"(,"pid":)" + std::to_string(f.pid) +
                     R"(,"attempt":)" + std::to_string(f.attempt) + R"(,"final":)" + (f.final ? "true" : "false") +
                     R"(,"description":)" + json_string(f.describe());
  if (f.index) args += R"(,"index":)" + std::to_string(*f.index);
  args += "}";
  if (f.index && !f.ended_worker()) {
    emit(R"({"name":)" + json_string("exception at " + std::to_string(*f.index)) +
         R"(,"cat":"failure","ph":"i","s":"t","ts":)" + fmt(micros(now)) + common + R"(,"args":)" + args + "}");
    flush();
    return;
  }
  if (f.index) {  // the chunk it was running ends here, crashed
    const auto start = now - f.runtime;
    emit(R"({"name":)" + json_string(range_name(f.chunk_begin, f.chunk_end)) +
         R"(,"cat":"chunk","ph":"X","ts":)" + fmt(micros(start)) + R"(,"dur":)" + fmt(micros(now) - micros(start)) +
         common + R"(,"args":{"begin":)" + std::to_string(f.chunk_begin) + R"(,"end":)" +
         std::to_string(f.chunk_end) + R"(,"attempt":)" + std::to_string(f.attempt) + R"(,"pid":)" +
         std::to_string(f.pid) + R"(,"outcome":"crashed","index":)" + std::to_string(*f.index) + "}}");
  }
  emit(R"({"name":)" + json_string("crash: " + crash_label(f) +
                                   (f.index ? " at " + std::to_string(*f.index) : std::string())) +
       R"(,"cat":"failure","ph":"i","s":"t","ts":)" + fmt(micros(now)) + common + R"(,"args":)" + args + "}");
  flush();
}

void Trace::finish() {
  if (!file_) return;
  pending_ += "\n]\n";
  flush();
  const int rc = std::fclose(file_.release());
  const int err = write_errno_ != 0 ? write_errno_ : rc != 0 ? errno : 0;
  if (err != 0)
    throw SystemError("cannot write trace " + path_, err);  // (a file of the user's not replaced)
  if (staged_) staged_.publish(/*replace_existing=*/true);
}

}  // namespace taskfarm
