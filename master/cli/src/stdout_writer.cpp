#include "stdout_writer.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "taskfarm/progress.hpp"

namespace taskfarm::cli {

namespace {
constexpr std::size_t kFlushBytes = 64 * 1024;
constexpr std::size_t kFilePiece = 1 << 20;  // per sendfile call: a slow reader is not waited on for long
}

StdoutWriter::StdoutWriter(std::function<void(int)> on_failed, int fd) : on_failed_(std::move(on_failed)), fd_(fd) {}

void StdoutWriter::failed(int error) {
  closed_ = true;
  error_ = error;
  if (on_failed_) on_failed_(error);
}

StdoutWriter::~StdoutWriter() {
  if (restore_flags_ >= 0) ::fcntl(fd_, F_SETFL, restore_flags_);
  // Queueing: what still waits is dropped, its marks not called (the run drained it, or is
  // ending by an exception; what the marks would tell may be gone already).
  if (lead_ != nullptr) {
    std::erase_if(lead_->queue_, [this](const Item& it) { return it.to == this; });
    return;
  }
  if (queueing_) {
    queue_.clear();
    return;
  }
  flush();
}

UniqueFd reopen_nonblocking(int fd) {
  // A regular file never waits for a reader (and a descriptor of its own would not share the
  // offset); a socket cannot be opened anew: those stay as they are.
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))) return UniqueFd();
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  return UniqueFd(::open(self.c_str(), O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
}

bool same_file(int a, int b) {
  struct stat sa {}, sb {};
  return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino &&
         sa.st_rdev == sb.st_rdev;
}

bool StdoutWriter::open_own() {
  UniqueFd own = reopen_nonblocking(fd_);
  if (!own) return false;
  own_ = std::move(own);
  fd_ = own_.get();
  return true;
}

void StdoutWriter::shared_nonblocking() {
  // A pipe this process may not open anew (another user's: `sudo -u alice taskfarm … | less`,
  // h13 F12): its description is made non-blocking, and put back as it was at the end. Only
  // a pipe: a terminal's description is the shell's too, and would stay so if we were killed.
  struct stat st {};
  if (own_ || ::fstat(fd_, &st) != 0 || !S_ISFIFO(st.st_mode)) return;
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags < 0 || (flags & O_NONBLOCK) != 0 || ::fcntl(fd_, F_SETFL, flags | O_NONBLOCK) != 0) return;
  restore_flags_ = flags;
}

void StdoutWriter::give_up_after_stop(const volatile std::sig_atomic_t* stop, std::chrono::milliseconds patience) {
  flush();
  stop_ = stop;
  patience_ = patience;
  open_own();
}

void StdoutWriter::queue_when_full(std::uint64_t text_bound, std::function<bool()> also_full) {
  flush();
  text_bound_ = text_bound;
  also_full_ = std::move(also_full);
  queueing_ = true;
  if (!open_own() && (fd_ == STDOUT_FILENO || fd_ == STDERR_FILENO)) shared_nonblocking();
}

void StdoutWriter::follow(StdoutWriter& lead) {
  flush();
  lead_ = &lead;
  if (!open_own() && (fd_ == STDOUT_FILENO || fd_ == STDERR_FILENO)) shared_nonblocking();
}

StdoutWriter* StdoutWriter::queue_owner() noexcept {
  if (lead_ != nullptr) return lead_->queueing_ ? lead_ : nullptr;
  return queueing_ ? this : nullptr;
}

const StdoutWriter* StdoutWriter::queue_owner() const noexcept {
  return const_cast<StdoutWriter*>(this)->queue_owner();
}

bool StdoutWriter::busy() const noexcept {
  const StdoutWriter* q = queue_owner();
  return q != nullptr && !q->queue_.empty();
}

int StdoutWriter::fd() const {
  return queue_.empty() || queue_.front().to == nullptr ? -1 : queue_.front().to->fd_;
}

bool StdoutWriter::full() const { return queueing_ && (queued_text_ >= text_bound_ || (also_full_ && also_full_())); }

void StdoutWriter::then(std::function<void(bool)> done) {
  flush();
  StdoutWriter* q = queue_owner();
  if (q == nullptr || q->queue_.empty()) {
    done(!(q != nullptr ? q : this)->closed_);
    return;
  }
  Item mark;
  mark.done = std::move(done);
  q->queue_.push_back(std::move(mark));
}

void StdoutWriter::push(Item item) {
  StdoutWriter& q = *queue_owner();
  const std::uint64_t n = item.file ? item.len : item.text.size();
  item.to->queued_ += n;
  if (!item.file || item.in_memory) q.queued_text_ += n;
  q.queue_.push_back(std::move(item));
  q.pump();
}

void StdoutWriter::drop(Item& item) {
  if (item.to == nullptr) return;
  const std::uint64_t n = item.file ? item.len : item.text.size() - item.pos;
  item.to->queued_ -= n;
  if (!item.file || item.in_memory) queued_text_ -= n;
  item.pos = item.text.size();
  item.len = 0;
}

void StdoutWriter::pump() {
  if (pumping_) return;  // (a mark's callback that writes: the loop below goes on with it)
  pumping_ = true;
  bool emptied = false;
  while (!queue_.empty()) {
    Item& it = queue_.front();
    if (it.done) {
      auto done = std::move(it.done);
      queue_.pop_front();
      done(!closed_);
      emptied = queue_.empty();
      continue;
    }
    const Step step = it.to->closed_ ? Step::ended : write_some(it);
    if (step == Step::blocked) {
      if (stuck_since_ == std::chrono::steady_clock::time_point{}) stuck_since_ = std::chrono::steady_clock::now();
      break;
    }
    if (step == Step::ended) {
      drop(it);
      queue_.pop_front();
      emptied = queue_.empty();
    }
  }
  pumping_ = false;
  if (queue_.empty()) stuck_since_ = {};
  if (emptied && on_room_) on_room_();
}

// One write of the head item: wrote (some; call again), blocked (EAGAIN), or ended (all of
// it is out, or its writer failed).
StdoutWriter::Step StdoutWriter::write_some(Item& it) {
  StdoutWriter& w = *it.to;
  if (w.progress_ != nullptr) w.progress_->clear();
  ssize_t n = 0;
  if (!it.file) {
    if (it.pos == it.text.size()) return Step::ended;
    n = ::write(w.fd_, it.text.data() + it.pos, it.text.size() - it.pos);
  } else {
    if (it.len == 0) return Step::ended;
    auto off = static_cast<off_t>(it.off);
    n = ::sendfile(w.fd_, it.file.get(), &off, static_cast<std::size_t>(std::min<std::uint64_t>(kFilePiece, it.len)));
    if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {  // this pair of files cannot: through a buffer
      std::vector<char> piece(static_cast<std::size_t>(std::min<std::uint64_t>(kFlushBytes, it.len)));
      const ssize_t got = ::pread(it.file.get(), piece.data(), piece.size(), static_cast<off_t>(it.off));
      if (got <= 0) return Step::ended;  // (the file is shorter than it was: what is left is out)
      n = ::write(w.fd_, piece.data(), static_cast<std::size_t>(got));
    } else if (n == 0) {
      return Step::ended;
    }
  }
  if (n < 0) {
    if (errno == EINTR) return Step::wrote;
    if (errno == EAGAIN) return Step::blocked;
    w.failed(errno);
    return Step::ended;
  }
  const auto k = static_cast<std::uint64_t>(n);
  stuck_since_ = {};
  w.out_ += k;
  w.queued_ -= k;
  if (!it.file) {
    it.pos += static_cast<std::size_t>(n);
    queued_text_ -= k;
    return it.pos == it.text.size() ? Step::ended : Step::wrote;
  }
  it.off += k;
  it.len -= k;
  if (it.in_memory) queued_text_ -= k;
  return it.len == 0 ? Step::ended : Step::wrote;
}

void StdoutWriter::drop_all() {
  while (!queue_.empty()) {
    Item& it = queue_.front();
    if (it.done) {
      auto done = std::move(it.done);
      queue_.pop_front();
      done(false);
      continue;
    }
    drop(it);
    queue_.pop_front();
  }
}

void StdoutWriter::drain(const volatile std::sig_atomic_t* stop, std::chrono::milliseconds patience) {
  flush();
  if (!queueing_) return;
  stop_ = stop;
  patience_ = patience;
  for (;;) {
    pump();
    if (queue_.empty()) return;
    // Waits for the head's descriptor in slices, seeing a stop; given up after its patience.
    pollfd p{fd(), POLLOUT, 0};
    if (!may_go_on()) {
      drop_all();
      return;
    }
    ::poll(&p, 1, 100);  // (an error, or a signal: the next write or look says what)
  }
}

bool StdoutWriter::may_go_on() {
  if (stop_ == nullptr || *stop_ == 0) return !closed_;
  const auto now = std::chrono::steady_clock::now();
  if (!stop_seen_) {
    stop_seen_ = true;
    give_up_at_ = now + patience_;
  }
  if (now < give_up_at_ || closed_) return !closed_;
  closed_ = gave_up_ = true;
  return false;
}

bool StdoutWriter::wait_writable() {
  // In slices when watching a stop: a signal taken by another thread (MPI's) wakes no poll here.
  for (;;) {
    if (!may_go_on()) return false;
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, stop_ != nullptr ? 10 : 1000) != 0) return true;  // (an error: the write says which)
  }
}

void StdoutWriter::write(std::string_view text) {
  if (closed_) return;
  buf_.append(text);
  if (buf_.size() >= kFlushBytes) flush();
}

void StdoutWriter::flush() {
  if (buf_.empty() || closed_) {
    buf_.clear();
    return;
  }
  if (queue_owner() != nullptr) {
    Item it;
    it.to = this;
    it.text = std::move(buf_);
    buf_.clear();
    push(std::move(it));
    return;
  }
  if (progress_ != nullptr) progress_->clear();
  std::string_view rest = buf_;
  while (!rest.empty() && may_go_on()) {
    const ssize_t n = ::write(fd_, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      if (!wait_writable()) break;
      continue;
    }
    if (n < 0) {
      failed(errno);
      break;
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
    out_ += static_cast<std::uint64_t>(n);
  }
  buf_.clear();
}

std::uint64_t StdoutWriter::write_file(int fd, std::uint64_t limit, bool in_memory) {
  flush();
  if (closed_) return 0;
  if (queue_owner() != nullptr) {  // its range, from its position: written in turn
    struct stat st {};
    const off_t at = ::lseek(fd, 0, SEEK_CUR);
    if (at < 0 || ::fstat(fd, &st) != 0 || st.st_size <= at) return 0;
    const std::uint64_t want = std::min<std::uint64_t>(limit, static_cast<std::uint64_t>(st.st_size - at));
    // A small one is copied as text: write(2)s share a pipe's pages, each sendfile takes one of
    // its 16 (an unread pipe held 16 tasks' output whatever their size: h13 F11).
    if (want <= kFlushBytes) {
      std::string text(static_cast<std::size_t>(want), '\0');
      ssize_t got = 0;
      while ((got = ::pread(fd, text.data(), text.size(), at)) < 0 && errno == EINTR) {}
      if (got <= 0) return 0;
      text.resize(static_cast<std::size_t>(got));
      ::lseek(fd, at + got, SEEK_SET);
      write(text);
      flush();  // (written now, as a file is: --line-buffer's lines go out at its tick)
      return static_cast<std::uint64_t>(got);
    }
    Item it;
    it.to = this;
    it.off = static_cast<std::uint64_t>(at);
    it.len = want;
    it.in_memory = in_memory;
    it.file.reset(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
    if (!it.file) {  // no descriptor left (the queue holds at most a task's two): output is lost
      failed(errno);
      return 0;
    }
    const std::uint64_t len = it.len;
    ::lseek(fd, static_cast<off_t>(it.off + len), SEEK_SET);
    push(std::move(it));
    return len;
  }
  if (progress_ != nullptr) progress_->clear();
  std::uint64_t total = 0;
  for (;;) {
    if (total == limit || !may_go_on()) return total;
    const ssize_t n = ::sendfile(fd_, fd, nullptr, static_cast<std::size_t>(std::min<std::uint64_t>(kFilePiece, limit - total)));
    if (n > 0) {
      total += static_cast<std::uint64_t>(n);
      out_ += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n == 0) return total;
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {  // a non-blocking standard output, full: wait until it takes more
      if (!wait_writable()) return total;
      continue;
    }
    if (errno == EINVAL || errno == ENOSYS) break;  // this pair of files cannot: copy through a buffer
    failed(errno);
    return total;
  }
  std::vector<char> piece(kFlushBytes);
  for (;;) {
    if (total == limit) return total;
    const ssize_t got = ::read(fd, piece.data(), static_cast<std::size_t>(std::min<std::uint64_t>(piece.size(), limit - total)));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return total;
    for (std::size_t done = 0; done < static_cast<std::size_t>(got);) {
      if (!may_go_on()) return total;
      const ssize_t n = ::write(fd_, piece.data() + done, static_cast<std::size_t>(got) - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        if (!wait_writable()) return total;
        continue;
      }
      if (n < 0) {
        failed(errno);
        return total;
      }
      done += static_cast<std::size_t>(n);
      total += static_cast<std::uint64_t>(n);
      out_ += static_cast<std::uint64_t>(n);
    }
  }
}

}  // namespace taskfarm::cli
