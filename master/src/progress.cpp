#include "taskfarm/progress.hpp"
#include "taskfarm/detail/write_out.hpp"

#include <unistd.h>

#include <cstdio>

namespace taskfarm {
namespace {

constexpr auto kBarInterval = std::chrono::milliseconds(100);
constexpr auto kLineInterval = std::chrono::seconds(2);
constexpr int kBarWidth = 24;
// A worker this long without progress is shown (a task that takes this long is worth naming).
constexpr auto kShowSlowAfter = std::chrono::seconds(2);

std::string clock_text(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "?";
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  return buf;
}

}  // namespace

Progress::Progress(ProgressMode mode, std::uint64_t total, int fd)
    : mode_(mode), total_(total), fd_(fd), start_(std::chrono::steady_clock::now()) {}

void Progress::set_total(std::uint64_t total, bool all) {
  total_ = total;
  open_ = !all;
  update(false);
}

void Progress::on_tasks_done(const TasksDone& t) {
  done_ += t.succeeded();
  update(false);
}

void Progress::on_failure(const FailureRecord& f) {
  if (!f.index) return;
  if (f.final) {
    ++done_;
    ++failed_;
  }
  update(false);
}

void Progress::on_tick(const FarmTick& t) {
  slowest_.reset();
  for (const auto& w : t.workers)
    if (w.busy && w.since_progress >= kShowSlowAfter && (!slowest_ || w.since_progress > slowest_->since_progress))
      slowest_ = w;
  update(false);
}

std::string Progress::line(std::chrono::steady_clock::time_point now) const {
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0;
  const double frac = total_ == 0 || done_ > total_ ? 1.0 : static_cast<double>(done_) / static_cast<double>(total_);
  const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : -1;
  char buf[200];
  if (open_ && done_ <= total_)  // more may come: no percentage, no ETA
    std::snprintf(buf, sizeof buf, "%llu/%llu+ so far  %.1f tasks/s  elapsed %s  %llu failed",
                  static_cast<unsigned long long>(done_), static_cast<unsigned long long>(total_), rate,
                  clock_text(elapsed).c_str(), static_cast<unsigned long long>(failed_));
  else if (done_ > total_)  // the caller's total was wrong: "100/0 100%" would pass for a finished count
    std::snprintf(buf, sizeof buf, "%llu done, more than the %llu tasks Progress was told  %.1f tasks/s  elapsed %s  %llu failed",
                  static_cast<unsigned long long>(done_), static_cast<unsigned long long>(total_), rate,
                  clock_text(elapsed).c_str(), static_cast<unsigned long long>(failed_));
  else
    std::snprintf(buf, sizeof buf, "%llu/%llu %3.0f%%  %.1f tasks/s  elapsed %s  ETA %s  %llu failed",
                  static_cast<unsigned long long>(done_), static_cast<unsigned long long>(total_), frac * 100, rate,
                  clock_text(elapsed).c_str(), done_ >= total_ ? "0:00" : clock_text(eta).c_str(),
                  static_cast<unsigned long long>(failed_));
  std::string text = buf;
  if (!holdup_.empty()) text += "  " + holdup_;
  else if (slowest_) {  // "  slot 1 on 7 for 1:05, stopped": who holds the run up
    const auto& w = *slowest_;
    text += "  slot " + std::to_string(w.slot) + (w.index ? " on " + std::to_string(*w.index) : " idle with work") +
            " for " + clock_text(std::chrono::duration<double>(w.since_progress).count()) +
            (w.stopped()        ? ", stopped"
             : w.task_stopped() ? ", its command (pid " + std::to_string(w.task_pid) + ") stopped"
             : w.stopped_pid    ? ", pid " + std::to_string(w.stopped_pid) + " of its process group stopped"
                                : "");
  }
  if (mode_ != ProgressMode::bar) return "taskfarm: " + text;
  const int filled = static_cast<int>(frac * kBarWidth);
  std::string bar = "[";
  for (int i = 0; i < kBarWidth; ++i) bar += i < filled ? '#' : '.';
  return bar + "] " + text;
}

void Progress::put(const std::string& s) { detail::write_best_effort(fd_, s); }

void Progress::update(bool force) {
  if (mode_ == ProgressMode::off) return;
  const auto now = std::chrono::steady_clock::now();
  const auto interval = mode_ == ProgressMode::bar ? std::chrono::steady_clock::duration(kBarInterval)
                                                   : std::chrono::steady_clock::duration(kLineInterval);
  if (!force && drawn_ && now - last_draw_ < interval) return;
  if (!force && !drawn_ && mode_ == ProgressMode::lines && now - start_ < interval) return;
  last_draw_ = now;
  drawn_ = true;
  if (mode_ == ProgressMode::bar) put("\r" + line(now) + "\x1b[K");
  else put(line(now) + "\n");
}

void Progress::clear() {
  if (mode_ == ProgressMode::bar && drawn_) put("\r\x1b[K");
}

void Progress::finish() {
  if (mode_ == ProgressMode::off) return;
  slowest_.reset();  // the run is over: nothing holds it up any more
  holdup_.clear();
  update(true);
  if (mode_ == ProgressMode::bar) put("\n");
}

}  // namespace taskfarm
