#include "mpi_watch.hpp"

#include <algorithm>
#include <cstdio>

#include "mpi_wire.hpp"
#include "summary.hpp"

namespace taskfarm::cli::mpi {

void DoneFrontier::fed(std::uint64_t begin, std::uint64_t end) {
  if (begin >= end) return;
  pending_.emplace(begin, end);
  fed_end_ = std::max(fed_end_, end);
}

void DoneFrontier::done(std::uint64_t begin, std::uint64_t end) {
  // The pending ranges that overlap [begin, end) lose it: cut, split or gone.
  auto it = pending_.upper_bound(begin);
  if (it != pending_.begin()) --it;
  while (it != pending_.end() && it->first < end) {
    const std::uint64_t b = it->first, e = it->second;
    if (e <= begin) {
      ++it;
      continue;
    }
    it = pending_.erase(it);
    if (b < begin) pending_.emplace(b, begin);
    if (end < e) it = pending_.emplace(end, e).first;
  }
}

void NodePulse::on_tasks_done(const TasksDone& t) {
  // Its failed tasks are done only when they fail for good (on_failure).
  std::uint64_t from = t.begin;
  for (const std::uint64_t f : t.failed) {
    frontier_.done(from, f);
    from = f + 1;
  }
  frontier_.done(from, t.end);
}

void NodePulse::on_failure(const FailureRecord& f) {
  if (f.index && f.final) frontier_.done(*f.index, *f.index + 1);
}

void NodePulse::on_tick(const FarmTick&) {
  const auto now = std::chrono::steady_clock::now();
  if (last_ && now - *last_ < every_) return;
  last_ = now;
  Wire w;
  w.kind = Wire::pulse;
  w.v[0] = frontier_.low();
  send_wire(fd_, w);
}

namespace {

std::string seconds_text(std::chrono::nanoseconds d) {
  const double s = std::chrono::duration<double>(d).count();
  char buf[32];  // as the one-machine stall line: "60 s", or "0.5 s" for a short --stall-warning
  std::snprintf(buf, sizeof buf, s < 10 ? "%.1f s" : "%.0f s", s);
  return buf;
}

std::string clock_text(std::chrono::nanoseconds d) {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  char buf[32];  // as Progress draws a worker's time
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  return buf;
}

// A rank this long silent is shown in --progress: as Progress shows a worker, but never before
// three quarters of --stall-warning, since a live node's pulses may be half that apart.
constexpr auto kShowInProgressAfter = std::chrono::seconds(2);

}  // namespace

std::string RankStall::describe() const {
  return "rank " + std::to_string(rank) + " (" + host + ") has sent nothing for " +
         seconds_text(silent) + " while holding tasks " + format_range_list(tasks, 0, 3) +
         ": is it stopped (kill -CONT resumes it) or its node overloaded?";
}

std::string RankStall::event() const {
  std::string h;  // a host name is letters, digits, '-' and '.': anything else is no JSON risk
  for (const char c : host)
    h += (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) ? '_' : c;
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.3f", std::chrono::duration<double>(silent).count());
  return R"({"event":"stall","rank":)" + std::to_string(rank) + R"(,"host":")" + h +
         R"(","seconds":)" + secs + R"(,"silent":true,"tasks":")" + format_range_list(tasks, 0, 3) +
         "\"}\n";
}

RankWatch::RankWatch(const std::vector<std::string>& hosts, std::chrono::milliseconds after,
                     Clock::time_point now)
    : after_(after) {
  for (const std::string& name : hosts) {
    Rank r;
    const auto colon = name.rfind(':');  // "HOST:RANK"
    r.host = colon == std::string::npos ? name : name.substr(0, colon);
    r.heard = now;
    ranks_.push_back(std::move(r));
  }
}

void RankWatch::heard(int rank, Clock::time_point now) {
  Rank& r = ranks_.at(static_cast<std::size_t>(rank));
  r.heard = now;
  r.said = false;
}

void RankWatch::granted(int rank, std::uint64_t begin, std::uint64_t end) {
  if (begin < end) ranks_.at(static_cast<std::size_t>(rank)).held.emplace_back(begin, end);
}

void RankWatch::done_below(int rank, std::uint64_t low) {
  auto& held = ranks_.at(static_cast<std::size_t>(rank)).held;
  std::size_t k = 0;
  while (k < held.size() && held[k].second <= low) ++k;
  held.erase(held.begin(), held.begin() + static_cast<std::ptrdiff_t>(k));
  if (!held.empty()) held.front().first = std::max(held.front().first, low);
}

void RankWatch::reported(int rank) { ranks_.at(static_cast<std::size_t>(rank)).held.clear(); }

std::vector<RankStall> RankWatch::stalls(Clock::time_point now) {
  std::vector<RankStall> out;
  if (after_.count() <= 0) return out;
  for (std::size_t k = 0; k < ranks_.size(); ++k) {
    Rank& r = ranks_[k];
    if (r.said || r.held.empty() || now - r.heard < after_) continue;
    r.said = true;
    out.push_back(RankStall{static_cast<int>(k), r.host, now - r.heard, r.held});
  }
  return out;
}

std::string RankWatch::holdup(Clock::time_point now) const {
  if (after_.count() <= 0) return {};  // no pulses: silence says nothing
  const auto show_after = std::max<Clock::duration>(kShowInProgressAfter, after_ * 3 / 4);
  const Rank* worst = nullptr;
  std::size_t at = 0;
  for (std::size_t k = 0; k < ranks_.size(); ++k) {
    const Rank& r = ranks_[k];
    if (r.held.empty() || now - r.heard < show_after) continue;
    if (worst == nullptr || r.heard < worst->heard) {
      worst = &r;
      at = k;
    }
  }
  if (worst == nullptr) return {};
  return "rank " + std::to_string(at) + " (" + worst->host + ") silent for " +
         clock_text(now - worst->heard);
}

}  // namespace taskfarm::cli::mpi
