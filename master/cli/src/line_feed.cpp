#include "line_feed.hpp"

#include <sys/epoll.h>

#include <cerrno>

#include "taskfarm/error.hpp"
#include "taskfarm/shm_segment.hpp"

namespace taskfarm::cli {
namespace {
constexpr std::size_t kBlock = 64 * 1024;
constexpr const char* kNoRoom =
    "does not fit in the room for its lines (at most the free space of /dev/shm, and an eighth of the "
    "address-space limit under `ulimit -v`)";
}

LineFeed::LineFeed(LineSource source, std::string first, char separator, std::uint64_t limit, std::string limit_text,
                   InputLines& lines, std::uint64_t per_line, std::uint64_t bound, OnLines on_lines)
    : source_(std::move(source)), first_(std::move(first)), separator_(separator), limit_(limit),
      limit_text_(std::move(limit_text)), lines_(lines), base_(lines.ended()), per_line_(per_line), bound_(bound),
      on_lines_(std::move(on_lines)), published_(lines.size()), block_(kBlock) {
  // The Supervisor watches one fd: an epoll of our own, so that the source can leave it while
  // the run has lines enough, and for good at its end (a pipe at its end stays readable).
  epoll_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) throw_errno("epoll_create1");
}

void LineFeed::arm(bool on) {
  if (on == armed_ || ended_) return;
  epoll_event ev{};
  ev.events = EPOLLIN;
  if (::epoll_ctl(epoll_.get(), on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, source_.fd(), &ev) != 0)
    throw_errno(source_.who() + ": cannot watch it");
  armed_ = on;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> LineFeed::first_ranges() {
  take(first_);
  first_ = std::string();
  return publish(ended_).ranges;
}

void LineFeed::want_more() {
  since_asked_ = 0;
  arm(true);
}

RangeFeed::Batch LineFeed::read() {
  if (ended_) return Batch{{}, true};
  const std::ptrdiff_t n = source_.read_ready(block_.data(), block_.size());
  if (n < 0) return Batch{};  // nothing after all
  if (n == 0) {
    // A last line without its separator counts, as when the input is read whole.
    if (lines_.open_line() && !lines_.end_line()) {
      stop(kNoRoom, false);
    } else {
      arm(false);
      ended_ = true;
    }
  } else {
    take(std::string_view(block_.data(), static_cast<std::size_t>(n)));
  }
  return publish(ended_);
}

void LineFeed::take(std::string_view chunk) {
  // Line by line, each checked before it is kept: the segment never holds more than the limit
  // allows (an open line counts as one, as when the input is read whole), and the lines that
  // fit before it run.
  while (!chunk.empty() && !ended_) {
    const auto nl = chunk.find(separator_);
    const std::string_view piece = chunk.substr(0, nl);
    if (lines_.ended() - base_ >= bound_) return stop("has more lines than the index space holds", false);
    if (LineTable::segment_bytes(lines_.ended() + 1, lines_.text_written() + piece.size()) > limit_)
      return stop("holds more than " + limit_text_ + " of lines", true);
    if (!lines_.append_text(piece)) return stop(kNoRoom, false);
    if (nl == std::string_view::npos) break;
    if (!lines_.end_line()) return stop(kNoRoom, false);
    chunk.remove_prefix(nl + 1);
  }
}

void LineFeed::stop(const std::string& why, bool limit) {
  arm(false);
  ended_ = true;
  // (Not even a first line: the run is refused, exit 2, and says so in other words than exit 102's.)
  const std::uint64_t read = lines_.ended() - base_;
  refused_whole_ = read == 0 && limit && base_ == 0;
  stopped_ = source_.who() + " " + why +
             (read == 0 ? std::string(": its first line alone is past that; nothing was run")
                        : ": stopped reading it after " + std::to_string(read) + " lines; the rest was not run") +
             (limit ? " (the limit is --input-lines-max, by default the free space of /dev/shm, at most a quarter of memory)" : "");
}

RangeFeed::Batch LineFeed::publish(bool closed) {
  Batch b;
  b.closed = closed;
  const std::uint64_t from = std::max(lines_.size(), base_), to = lines_.ended();
  if (to > lines_.size()) lines_.publish();  // before the range goes out: a worker given a task finds its line
  published_ = to;
  if (to > from) {
    b.ranges.emplace_back((from - base_) * per_line_, (to - base_) * per_line_);
    since_asked_ += to - from;
    if (since_asked_ >= kBatch) arm(false);  // enough ahead: the producer waits until the run asks
  }
  if (on_lines_ && (to > from || closed)) on_lines_(tasks(), closed);
  return b;
}

}  // namespace taskfarm::cli
