#include "mpi_order.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>

#include "spool.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm::cli::mpi {
namespace {

struct RecordHead {
  std::uint64_t index;
  std::uint32_t flags;
  std::uint32_t bytes;
};

void write_all(int fd, const char* p, std::size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw Error("--keep-order: cannot write " + path + ": " + std::strerror(errno));
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

// Whether a joblog row is its task's last: its outcome (the 7th column, docs/cli.md) is not
// "retried" — ok or failed.
bool is_final_row(std::string_view line) {
  for (int column = 0; column < 6; ++column) {
    const std::size_t tab = line.find('\t');
    if (tab == std::string_view::npos) return true;
    line.remove_prefix(tab + 1);
  }
  return line.substr(0, line.find_first_of("\t\n")) != "retried";
}

}  // namespace

void append_output_record(std::string& text, std::uint64_t index, std::uint32_t flags, std::string_view bytes) {
  const RecordHead h{index, flags, static_cast<std::uint32_t>(bytes.size())};
  text.append(reinterpret_cast<const char*>(&h), sizeof h);
  text.append(bytes);
}

void add_record_flags(std::string& text, std::size_t at, std::uint32_t flags) {
  RecordHead h{};
  std::memcpy(&h, text.data() + at, sizeof h);
  h.flags |= flags;
  std::memcpy(text.data() + at, &h, sizeof h);
}

OrderedPrinter::OrderedPrinter(std::vector<IndexRange> todo, const std::string& spool_parent, StdoutWriter& out,
                               WriteRows rows, std::size_t memory_budget)
    : todo_(std::move(todo)), spool_(SpoolDir::create(spool_parent)), out_(out), write_rows_(std::move(rows)),
      budget_(memory_budget) {
  if (!todo_.empty()) next_ = todo_.front().first;
}

bool OrderedPrinter::printed(std::uint64_t index) const {
  if (range_ >= todo_.size()) return true;
  if (index < todo_[range_].first) return true;  // ranges are sorted: an earlier range's
  return index < next_ && index >= todo_[range_].first;
}

std::string OrderedPrinter::path_of(std::uint64_t index) const {
  return exec::task_output_path(spool_.path(), index, exec::Stream::out);
}

void OrderedPrinter::append_spool(std::uint64_t index, std::string_view bytes) {
  spooled_.try_emplace(index, 0u);
  if (bytes.empty() || lost_.count(index) != 0) return;
  // In memory while the early tasks' output fits the budget (a file per task costs an open, a
  // sendfile and an unlink: 20-25x slower for tiny tasks); a task that would pass it goes to
  // disk whole, what it had in memory first.
  auto held = held_text_.find(index);
  const bool on_disk = on_disk_.count(index) != 0;
  if (!on_disk && held_bytes_ + bytes.size() <= budget_) {
    held_text_[index].append(bytes);
    held_bytes_ += bytes.size();
    return;
  }
  std::string text;
  if (held != held_text_.end()) {
    text = std::move(held->second);
    held_bytes_ -= text.size();
    held_text_.erase(held);
  }
  text.append(bytes);
  on_disk_.insert(index);
  bytes = text;
  const std::string path = path_of(index);
  try {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (!fd) throw Error("--keep-order: cannot write " + path + ": " + std::strerror(errno));
    write_all(fd.get(), bytes.data(), bytes.size(), path);
  } catch (const Error& e) {
    // Its output is not whole: never printed, its rows never written; the run stops (102).
    lost_.insert(index);
    if (error_.empty()) {
      error_ = e.what();
      out_.flush();
      std::cerr << "taskfarm: " << error_ << " (the output of index " << index
                << " is lost: no more ranges go out; --resume runs it and the tasks not yet printed)\n";
    }
  }
}

void OrderedPrinter::take(std::string_view text) {
  while (!text.empty()) {
    RecordHead h{};
    if (text.size() < sizeof h) throw Error("--keep-order: a node sent a cut record");
    std::memcpy(&h, text.data(), sizeof h);
    text.remove_prefix(sizeof h);
    if (text.size() < h.bytes) throw Error("--keep-order: a node sent a cut record");
    const std::string_view bytes = text.substr(0, h.bytes);
    text.remove_prefix(h.bytes);
    take_record(h.index, h.flags, bytes);
  }
  write_released();
}

void OrderedPrinter::take_record(std::uint64_t index, std::uint32_t flags, std::string_view bytes) {
  if (finished_ || printed(index)) return;  // (a task of no range, or already out: nothing to do)
  if (lost_.count(index) != 0) {  // its output is lost: nothing of it is printed (counted at finish())
    if ((flags & o_done) != 0) spooled_[index] = flags;
    return;
  }
  if ((flags & o_done) != 0 && expect_rows_ && final_rows_.count(index) == 0) {
    // Its row has not come: the task is not done for rank 0 until it does (rows() takes the
    // record up again), so that its output is never printed whole without its row (F37).
    auto& waiting = waiting_[index];
    waiting.first = flags;
    waiting.second.append(bytes);
    return;
  }
  // The task printed next comes straight through (what came of it before its turn is out already).
  if (index == next_ && spooled_.find(index) == spooled_.end()) {
    if (!head_written_ && !bytes.empty()) begins(index);
    out_.write(bytes);
    if (!bytes.empty()) last_byte_ = bytes.back();
    head_written_ = head_written_ || !bytes.empty();
  } else {
    append_spool(index, bytes);
  }
  if ((flags & o_done) != 0) done(index, flags);
}

void OrderedPrinter::done(std::uint64_t index, std::uint32_t flags) {
  if (index != next_) {
    spooled_[index] = flags;
    return;
  }
  spooled_.erase(index);  // (its bytes were written straight through)
  release_rows(index);
  advance();
  // The tasks after it: those done are printed whole; the first one not done is printed as far
  // as it came, and from then on comes straight through. A lost one stops the printing there.
  while (range_ < todo_.size()) {
    const auto s = spooled_.find(next_);
    if (s == spooled_.end() || lost_.count(next_) != 0) break;
    const bool whole = (s->second & o_done) != 0;
    print_spooled(next_);
    head_written_ = true;
    spooled_.erase(s);
    if (!whole) break;
    release_rows(next_);
    advance();
  }
}

void OrderedPrinter::print_spooled(std::uint64_t index) {
  if (const auto held = held_text_.find(index); held != held_text_.end()) {
    begins(index);
    out_.write(held->second);
    if (!held->second.empty()) last_byte_ = held->second.back();
    held_bytes_ -= held->second.size();
    held_text_.erase(held);
    return;
  }
  if (on_disk_.erase(index) == 0) return;  // it printed nothing
  const std::string path = path_of(index);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return;  // it printed nothing
  ::unlink(path.c_str());
  begins(index);
  struct stat st {};
  char last = '\n';
  if (::fstat(fd.get(), &st) == 0 && st.st_size > 0 && ::pread(fd.get(), &last, 1, st.st_size - 1) == 1) last_byte_ = last;
  out_.write_file(fd.get());
}

void OrderedPrinter::begins(std::uint64_t index) {
  if (out_.closed()) return;  // (nothing more goes out)
  const std::uint64_t at = out_.bytes_taken();
  while (begun_.size() > 1 && std::next(begun_.begin())->first <= out_.bytes_out()) begun_.erase(begun_.begin());
  begun_[at] = index;  // (one that printed nothing gives way to the next, at the same offset)
}

void OrderedPrinter::release_rows(std::uint64_t index) {
  const auto h = held_rows_.find(index);
  if (h == held_rows_.end()) return;
  // Written by write_released() once the output before it is out, a batch per write(2) (a
  // write per task cost 6% of a run of 50,000 tiny tasks).
  // (A writer closed already took none of the output: no row.)
  if (!out_.closed())
    for (auto& [rank, rows] : h->second) released_.push_back(Released{out_.bytes_taken(), rank, std::move(rows)});
  held_rows_.erase(h);
  final_rows_.erase(index);
}

void OrderedPrinter::write_released() {
  out_.flush();  // the output before the rows that say it is out
  if (released_.empty()) return;
  // A task not wholly out (standard output gave up, or its reader went) gets no row: a --resume runs it.
  const bool all_out = !out_.closed();
  std::string batch;
  int rank = -1;
  for (Released& r : released_) {
    if (!all_out && r.end > out_.bytes_out()) break;
    if (r.rank != rank && !batch.empty()) {
      write_rows_(rank, batch);
      batch.clear();
    }
    rank = r.rank;
    batch += r.rows;
  }
  if (!batch.empty()) write_rows_(rank, batch);
  released_.clear();
}

void OrderedPrinter::advance() {
  head_written_ = false;
  if (++next_ < todo_[range_].second) return;
  if (++range_ < todo_.size()) next_ = todo_[range_].first;
}

void OrderedPrinter::rows(int rank, std::string_view rows) {
  // One row per line, its task's index first ("INDEX\t..."): a row of a task not yet printed waits.
  std::string now;
  std::vector<std::uint64_t> ready;  // tasks whose done record waited for this row
  while (!rows.empty()) {
    const std::size_t nl = rows.find('\n');
    const std::string_view line = rows.substr(0, nl == std::string_view::npos ? rows.size() : nl + 1);
    rows.remove_prefix(line.size());
    std::uint64_t index = 0;
    std::size_t k = 0;
    for (; k < line.size() && line[k] >= '0' && line[k] <= '9'; ++k) index = index * 10 + static_cast<std::uint64_t>(line[k] - '0');
    if (k == 0 || printed(index)) {
      now += line;
      continue;
    }
    auto& held = held_rows_[index];
    if (held.empty() || held.back().first != rank) held.emplace_back(rank, std::string());
    held.back().second += line;
    if (expect_rows_ && is_final_row(line) && final_rows_.insert(index).second && waiting_.count(index) != 0)
      ready.push_back(index);
  }
  if (!now.empty()) {
    out_.flush();  // (its task's output may still be in the buffer)
    if (!out_.closed()) write_rows_(rank, now);
  }
  for (const std::uint64_t index : ready) {
    auto waiting = waiting_.extract(index);
    take_record(index, waiting.mapped().first, waiting.mapped().second);
  }
  write_released();
}

void OrderedPrinter::say_cut() {
  // The writer stopped at byte `at`, with bytes still to write: the task whose bytes began
  // before it and go past it (the last begun, or one ending after `at`) is PARTIAL; no task after
  // it is printed (its row unwritten: a --resume runs it).
  const std::uint64_t at = out_.bytes_out();
  const auto after = begun_.lower_bound(at);
  std::cerr << "taskfarm: rank 0: standard output took no more in the time left once the job had to end";
  if (after != begun_.begin() && (after == begun_.end() || after->first > at))
    std::cerr << ": the output of index " << std::prev(after)->second << " is PARTIAL and the tasks after it";
  else if (after != begun_.end())
    std::cerr << ": the tasks from index " << after->second << " on";
  else
    std::cerr << ": the tasks after those printed";
  std::cerr << " are not printed (--resume runs them)\n";
}

void OrderedPrinter::finish() {
  if (finished_) return;
  finished_ = true;
  out_.flush();
  if (head_written_ && !out_.closed()) {  // its node was lost while it ran: what came of it is out
    // Cut mid-line, it gets its line's end: the next task's output starts on a line of its own (F41).
    if (last_byte_ != '\n') {
      out_.write("\n");
      out_.flush();
    }
    std::cerr << "taskfarm: the output of index " << next_ << " is PARTIAL: its node ended while it ran\n";
  }
  for (const auto& [index, flags] : spooled_) {
    // Never done (its node lost), or lost output: not printed, its rows dropped. Lost output
    // stops the printing there (what comes after it waits for the --resume, in order).
    if (!lost_.empty() && index >= *lost_.begin()) {
      if ((flags & o_succeeded) != 0) ++unprinted_ok_;
      continue;
    }
    if ((flags & o_done) == 0) continue;
    print_spooled(index);
    release_rows(index);
  }
  spooled_.clear();
  held_text_.clear();
  held_bytes_ = 0;
  held_rows_.clear();
  final_rows_.clear();
  for (const auto& [index, w] : waiting_) unprinted_ok_ += (w.first & o_succeeded) != 0 ? 1 : 0;
  waiting_.clear();  // done, but their rows never came: not printed (a --resume runs them)
  write_released();
  if (out_.gave_up()) say_cut();
}

}  // namespace taskfarm::cli::mpi
