#include "mpi_rank0.hpp"

#include <algorithm>
#include <filesystem>
#include <iostream>

#include "taskfarm/error.hpp"

namespace taskfarm::cli::mpi {

Wire HandOut::next() {
  Wire w;
  w.kind = Wire::ranges;
  while (k_ < todo_.size() && at_ >= todo_[k_].second) {
    if (++k_ < todo_.size()) at_ = todo_[k_].first;
  }
  if (k_ >= todo_.size()) {
    w.kind = Wire::closed;
    return w;
  }
  if (at_ < todo_[k_].first) at_ = todo_[k_].first;
  const std::uint64_t e = std::min(todo_[k_].second, at_ + grain_);
  w.count = 1;
  w.v[0] = at_;
  w.v[1] = e;
  at_ = e;
  return w;
}

RankJoblog::RankJoblog(const RunPlan& plan, std::vector<std::string> hosts) : hosts_(std::move(hosts)) {
  if (plan.resume) {
    file_.emplace(JoblogFile::append(plan.joblog));
    host_ = plan.joblog_has_host;
    return;
  }
  staged_ = detail::StagedFile::create(plan.joblog);
  file_.emplace(JoblogFile::create(staged_.duplicate_fd(), plan.joblog, plan.identity, plan.exec && plan.exec->joblog_inputs,
                                   /*with_host=*/true));
  replaces_ = plan.claims.joblog.existed();
  host_ = true;
}

void RankJoblog::publish_if_new() {
  if (staged_ && !replaces_) staged_.publish(/*replace_existing=*/false);
}

void RankJoblog::publish() {
  if (in_place() || !error_.empty()) return;
  try {
    staged_.publish(/*replace_existing=*/true);
  } catch (const Error& e) {
    failed(e.what());
  }
}

void RankJoblog::failed(const std::string& why) {
  error_ = why;
  std::cerr << "taskfarm: " << error_ << " (no more rows are written, no more work is handed out)\n";
}

void RankJoblog::write(int rank, std::string_view rows) {
  if (!error_.empty()) return;  // after a failed write nothing more: the file keeps whole rows
  std::string text;
  text.reserve(rows.size() + rows.size() / 4);
  std::uint64_t ok = 0;
  for (std::size_t at = 0; at < rows.size();) {
    const std::size_t nl = rows.find('\n', at);
    if (nl == std::string_view::npos) break;  // the node sends whole lines only
    const std::string_view line = rows.substr(at, nl - at);
    text += line;
    if (host_) text += '\t' + hosts_.at(static_cast<std::size_t>(rank));
    text += '\n';
    if (line.find("\tok\t") != std::string_view::npos) ++ok;
    at = nl + 1;
  }
  try {
    file_->write(text);
    recorded_ok_ += ok;
  } catch (const Error& e) {
    return failed(e.what());
  }
  publish();  // it holds a row now: it may replace the user's file
}

namespace {
std::string process_title(const RunPlan& plan, const std::string& host) {
  return "taskfarm " + std::filesystem::path(plan.program).filename().string() + " " + host;
}
}  // namespace

RankTrace::RankTrace(const RunPlan& plan, const std::vector<std::string>& hosts)
    : replaces_(plan.claims.trace.existed()),
      staged_(detail::StagedFile::create(plan.trace)),
      trace_(staged_.duplicate_fd(), plan.trace, process_title(plan, hosts.at(0)), 0) {
  for (std::size_t r = 1; r < hosts.size(); ++r) trace_.name_process(static_cast<int>(r), process_title(plan, hosts[r]));
}

void RankTrace::publish_if_new() {
  if (!replaces_) staged_.publish(/*replace_existing=*/false);
}

void RankTrace::append(std::string_view records) {
  trace_.append(records);
  appended_ = appended_ || (!records.empty() && !trace_.write_failed());
  publish();
}

void RankTrace::task_ended() {
  ended_ = true;
  publish();
}

void RankTrace::publish() {
  // A file of the user's is replaced only by a whole trace: at the end (finish()).
  if (replaces_ || staged_.published() || !error_.empty() || !ended_ || !appended_ ||
      trace_.write_failed())
    return;
  try {
    staged_.publish(/*replace_existing=*/true);
  } catch (const Error& e) {
    error_ = e.what();
    std::cerr << "taskfarm: " << error_ << "\n";
  }
}

void RankTrace::finish() {
  try {
    trace_.finish();
  } catch (const Error& e) {  // as on one machine: said in one line, exit 102
    error_ = e.what();
    std::cerr << "taskfarm: " << error_
              << (staged_.published()
                      ? " (it ends after the last record that fit)"
                      : " (" + staged_.path() + " was not replaced: the file there is as it was)")
              << "\n";
    return;
  }
  replaces_ = false;  // written whole: it may replace the user's file now
  publish();
}

RankEvents::RankEvents(const volatile std::sig_atomic_t* stop)
    : out_(nullptr), events_([this](std::string_view line) { write(line); }) {
  out_.give_up_after_stop(stop, std::chrono::milliseconds(100));
}

void RankEvents::start(const RunPlan& plan, std::uint64_t todo, std::uint64_t workers) {
  events_.start(todo, plan.tasks, plan.todo.done, static_cast<int>(workers), plan.program);
}

void RankEvents::write(std::string_view lines) {
  out_.write(lines);
  out_.flush();
}

void RankEvents::end(std::uint64_t todo, const std::vector<std::array<std::uint64_t, 2>>& counted,
                     const std::array<std::uint64_t, r_fields>& total, int exit_status, const std::string& interrupted,
                     std::chrono::steady_clock::duration wall) {
  RunReport r;
  r.tasks = todo;
  r.succeeded = total[r_succeeded];
  r.retries = total[r_retries];
  r.worker_deaths = total[r_deaths];
  std::uint64_t failed = total[r_failed];
  if (!interrupted.empty()) {
    r.succeeded = failed = 0;
    for (const auto& c : counted) {
      r.succeeded += c[0];
      failed += c[1];
    }
    r.interrupted = true;
  }
  r.farm_error = interrupted.empty() && total[r_error] != 0 ? "a node master could not finish (its rank's stderr says why)"
                                                            : interrupted;
  r.wall = std::chrono::duration_cast<std::chrono::nanoseconds>(wall);
  events_.end(r, failed, exit_status);
  if (out_.gave_up())
    std::cerr << "taskfarm: rank 0: standard output took no more in the time left once the job had to end: the "
                 "--events stream is cut short (no \"end\" event)\n";
}

}  // namespace taskfarm::cli::mpi
