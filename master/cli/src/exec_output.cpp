#include "exec_output.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <cerrno>
#include <vector>

#include "spool.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm::cli {
namespace {

constexpr std::size_t kEventPiece = 1 << 20;  // text of one `output` event, at most

/// A piece of UTF-8 text ends before a character it would cut (an `output` event's text is
/// checked for UTF-8, and a character cut in two would turn into two U+FFFD).
std::size_t whole_characters(const char* p, std::size_t n) {
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    const auto c = static_cast<unsigned char>(p[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    const std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return len > back ? n - back : n;
  }
  return n;
}

}  // namespace

std::vector<std::string> exec_worker_args(const ExecPlan& exec, const std::string& spool) {
  std::vector<std::string> args = {"--spool", spool};
  if (exec.shell) args.push_back("--shell");
  if (!exec.replace.empty()) args.insert(args.end(), {"--replace", exec.replace});
  if (const auto& l = exec.layout) {  // linked sources: each one's size and axis
    std::string spec;
    for (std::size_t k = 0; k < l->sizes.size(); ++k)
      spec += (k > 0 ? "," : "") + std::to_string(l->sizes[k]) + ":" + std::to_string(l->axes[k]);
    args.insert(args.end(), {"--sources", spec});
  }
  args.push_back("--");
  args.insert(args.end(), exec.words.begin(), exec.words.end());
  return args;
}

ExecOutput::ExecOutput(std::string spool, StdoutWriter& out, StdoutWriter& err, bool keep_order, FarmObserver* events,
                       std::vector<IndexRange> todo, OnPrinted on_printed,
                       std::function<void(const std::string&, bool)> on_spool_failed)
    : spool_(std::move(spool)), out_(out), err_(err), keep_order_(keep_order), events_(events), todo_(std::move(todo)),
      on_printed_(std::move(on_printed)), on_spool_failed_(std::move(on_spool_failed)) {
  if (!todo_.empty()) next_ = todo_.front().first;
  out_.on_room([this] { print_ready(); });
  err_.on_room([this] { print_ready(); });
}

ExecOutput::~ExecOutput() {
  out_.on_room({});
  err_.on_room({});
}

void ExecOutput::print_ready() {
  if (printing_) return;  // (standard output took a task's output at once: on_room, from print)
  printing_ = true;
  // Stderr too: a task's stderr that waits behind an unread stderr holds its joblog row like its
  // stdout would, so the next task waits, and the run holds at the bound (h13c P1).
  // Nor once either cannot take more (given up on after a stop, closed): the tasks that wait are
  // not printed — their stderr went out while their stdout could not (h14 F9), and --resume
  // printed it again.
  while (!ready_.empty() && !out_.busy() && !err_.busy() && !out_.gave_up() && !err_.gave_up() && !out_.closed() &&
         !err_.closed()) {
    const auto [index, d] = ready_.front();
    ready_.pop_front();
    ready_bytes_ -= size_of(d);
    print(index, d);
  }
  printing_ = false;
}

void ExecOutput::on_failure(const FailureRecord& f) {
  if (f.index && f.exception_type == exec::kSpoolWriteFailedType) {
    // What the spool holds of it is cut short: said, and the run stops (retried or not).
    std::string why = f.message.substr(0, f.message.find("; command: "));
    if (on_spool_failed_) on_spool_failed_(why, f.final);
    if (f.final) partial_[*f.index] = std::move(why);
  }
  if (!f.index || !f.final) return;
  // The worker died or was killed while its command ran (not a command that ended and failed,
  // whose output was published): its unpublished files hold what the command wrote so far.
  // (Not after an exception: that worker went on, and its current files are its next task's.)
  if (f.ended_worker() && f.pid > 0 && exec::adopt_partial_output(spool_, f.pid, *f.index))
    partial_[*f.index] = std::string("its command did not end (") +
                         (f.cause == FailureCause::timeout ? "it was killed by --timeout" : "its worker ended: " + std::string(to_string(f.cause))) +
                         "): printed up to where it was stopped";
  done(*f.index, false);
}

void ExecOutput::done(std::uint64_t index, bool succeeded, std::optional<exec::PublishedSizes> sizes) {
  Done d{succeeded, sizes, 0};
  // (A failed task's worker said no sizes: its files say what they hold — h13 F4.)
  if (sizes) {
    d.bytes = (*sizes)[0] + (*sizes)[1];
  } else {
    for (exec::Stream s : {exec::Stream::out, exec::Stream::err}) {
      struct stat st {};
      if (::stat(exec::task_output_path(spool_, index, s).c_str(), &st) == 0) d.bytes += static_cast<std::uint64_t>(st.st_size);
    }
  }
  if (!keep_order_) {
    ready_.emplace_back(index, d);
    ready_bytes_ += size_of(d);
  } else {
    held_.emplace(index, d);
    while (range_ < todo_.size() && !held_.empty() && held_.begin()->first == next_) {
      ready_.emplace_back(next_, held_.begin()->second);
      ready_bytes_ += size_of(held_.begin()->second);
      held_.erase(held_.begin());
      advance();
    }
  }
  print_ready();
}

void ExecOutput::advance() {
  if (++next_ < todo_[range_].second) return;
  if (++range_ < todo_.size()) next_ = todo_[range_].first;
}

void ExecOutput::finish() {
  for (const auto& [index, d] : held_) {
    ready_.emplace_back(index, d);
    ready_bytes_ += size_of(d);
  }
  held_.clear();
  print_ready();  // (what standard output does not take now, its drain prints: on_room)
}

void ExecOutput::on_tick(const FarmTick&) {
  // (Nothing of the running tasks while standard output has not taken what is done.)
  if (!live_ || !ready_.empty() || out_.busy()) return;
  if (!keep_order_) return live_->poll(std::nullopt);
  if (range_ < todo_.size()) live_->poll(next_);
}

// Why task `index`'s file `path` (open as `fd`, or -1) does not hold the `expected` bytes its
// worker left there, or "" if it does.
std::string ExecOutput::lost_output(std::uint64_t index, exec::Stream s, const std::string& path, int fd,
                                    std::uint64_t expected) const {
  struct stat st {};
  const std::uint64_t found = fd >= 0 && ::fstat(fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  if (found >= expected) return {};
  return "the output of index " + std::to_string(index) + " was lost: its " +
         (s == exec::Stream::out ? "stdout" : "stderr") + " file " + path +
         (fd < 0 ? " was removed" : " was cut to " + std::to_string(found) + " bytes") +
         " while the run held it (" + std::to_string(expected) + " bytes written)";
}

void ExecOutput::print(std::uint64_t index, const Done& d) {
  std::string lost;
  bool out_ends_line = true;  // what was printed of its stdout ends with a newline (or is empty)
  std::uint64_t out_at = 0, out_len = 0;  // where its stdout is in standard output's bytes, and how long
  std::uint64_t err_at = 0, err_len = 0;  // ... its stderr in stderr's
  for (exec::Stream s : {exec::Stream::out, exec::Stream::err}) {
    const std::string path = exec::task_output_path(spool_, index, s);
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    // --line-buffer: what was printed of it as it ran is not printed again.
    const std::uint64_t printed = live_ ? live_->resume_offset(index, s, fd.get()) : 0;
    // No file is a task that printed nothing there — unless its worker said it left bytes.
    // (Not once standard output or stderr was given up on after a stop: what waited is not
    // printed, which is said already — its files may be gone with the spool: h14 F13.)
    if (d.sizes && lost.empty() && !out_.gave_up() && !err_.gave_up())
      lost = lost_output(index, s, path, fd ? fd.get() : -1, (*d.sizes)[static_cast<std::size_t>(s)]);
    if (!fd) continue;
    if (printed > 0 && ::lseek(fd.get(), static_cast<off_t>(printed), SEEK_SET) < 0) continue;
    ::unlink(path.c_str());  // the space comes back once it is printed
    if (s == exec::Stream::err) {
      err_.flush();
      err_at = err_.bytes_taken();
      // (Its length whatever the write took: a closed stderr took none of it.)
      struct stat st {};
      if (::fstat(fd.get(), &st) == 0) err_len = static_cast<std::uint64_t>(std::max<off_t>(0, st.st_size - static_cast<off_t>(printed)));
      err_.write_file(fd.get());
    } else if (events_ != nullptr) {
      out_.flush();
      out_at = out_.bytes_taken();
      events_of(index, fd.get());
      out_.flush();
      out_len = out_.bytes_taken() - out_at;  // (its `output` events' lines)
    } else {
      out_.flush();
      out_at = out_.bytes_taken();
      // (Its length whatever the write took: a closed standard output took none of it, and the
      // task is not printed — h13c.)
      struct stat st {};
      if (::fstat(fd.get(), &st) == 0) out_len = static_cast<std::uint64_t>(std::max<off_t>(0, st.st_size - static_cast<off_t>(printed)));
      if (out_.write_file(fd.get()) > 0) {
        char last = '\n';
        if (st.st_size > 0 && ::pread(fd.get(), &last, 1, st.st_size - 1) == 1) out_ends_line = last == '\n';
      }
    }
  }
  if (!lost.empty()) {  // printed what is left, marked PARTIAL; the run stops (exit 102), no "ok" row
    partial_[index] = lost.substr(lost.find(": ") + 2);
    if (on_spool_failed_) on_spool_failed_(lost, true);
  }
  if (const auto p = partial_.find(index); p != partial_.end()) {
    // A task cut mid-line ends its line: the next task's output starts on a line of its own (F41).
    if (!out_ends_line) out_.write("\n");
    out_.flush();  // the mark comes after what it marks, where both go to one terminal
    err_.write("taskfarm: the output of index " + std::to_string(index) + " is PARTIAL: " + p->second + "\n");
    err_.flush();
    partial_.erase(p);
  }
  // Once its output is out — its stdout and its stderr, which may wait in queues of their own —
  // or could not be: said done, or cut (h13b N1: a stop recorded a task whose stderr never went out).
  struct Marks {
    int pending = 2;
    bool out = false, err = false;
  };
  auto marks = std::make_shared<Marks>();
  auto settle = [this, index, recorded = d.succeeded && lost.empty(), out_at, out_len, err_at, err_len, marks] {
    // A stream is out whole if its mark was reached, or (given up on, or failed, after it) if its
    // bytes went out all the same: the pipe holds them for its reader.
    const bool out_whole = marks->out || out_.bytes_out() >= out_at + out_len;
    const bool err_whole = marks->err || err_.bytes_out() >= err_at + err_len;
    if (out_whole && err_whole) {
      if (recorded && on_printed_) on_printed_(std::span<const std::uint64_t>(&index, 1));
      return;
    }
    // Failed midway through it (a full disk, ulimit -f: h12 F16), or given up on after a stop
    // midway through it (h13 F6) — not a reader that went away: what is in its file is cut, and
    // said to be. Nothing more is written there after it.
    const auto cut = [](const StdoutWriter& w, std::uint64_t at, std::uint64_t len) {
      const bool failed = w.error() != 0 && w.error() != EPIPE;
      return (failed || w.gave_up()) && w.bytes_out() > at && w.bytes_out() < at + len;
    };
    const StdoutWriter* w = cut(out_, out_at, out_len) ? &out_ : cut(err_, err_at, err_len) ? &err_ : nullptr;
    if (w == nullptr) return;
    const std::string stream = w == &out_ ? "standard output" : "stderr";
    err_.write("taskfarm: the output of index " + std::to_string(index) + " is PARTIAL: " +
               (w->gave_up() ? stream + " had not taken all of it when the run ended"
                             : stream + " could not take it whole (" + std::strerror(w->error()) + ")") +
               "\n");
    err_.flush();
  };
  out_.then([marks, settle](bool all_out) {
    marks->out = all_out;
    if (--marks->pending == 0) settle();
  });
  err_.then([marks, settle](bool all_out) {
    marks->err = all_out;
    if (--marks->pending == 0) settle();
  });
}

void ExecOutput::events_of(std::uint64_t index, int fd) {
  std::vector<char> piece(kEventPiece);
  std::size_t kept = 0;  // the start of a character the last piece would have cut
  for (;;) {
    ssize_t got = 0;
    while ((got = ::read(fd, piece.data() + kept, piece.size() - kept)) < 0 && errno == EINTR) {}
    const bool end = got <= 0;
    const std::size_t have = kept + (end ? 0 : static_cast<std::size_t>(got));
    if (have == 0) return;
    std::size_t cut = end ? have : whole_characters(piece.data(), have);
    if (cut == 0) cut = have;
    events_->on_result(IndexResult{index, {}, std::span<const char>(piece.data(), cut)});
    kept = have - cut;
    std::copy(piece.begin() + static_cast<std::ptrdiff_t>(cut), piece.begin() + static_cast<std::ptrdiff_t>(have), piece.begin());
    if (end) return;
  }
}

}  // namespace taskfarm::cli
