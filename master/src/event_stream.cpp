#include "taskfarm/event_stream.hpp"

#include "json.hpp"

namespace taskfarm {
namespace {

using detail::json_string;

std::string num(double v) { return detail::json_number(v, 6); }

std::string field(const char* key, std::uint64_t v) { return std::string(",\"") + key + "\":" + std::to_string(v); }
std::string field(const char* key, int v) { return std::string(",\"") + key + "\":" + std::to_string(v); }
std::string field(const char* key, bool v) { return std::string(",\"") + key + "\":" + (v ? "true" : "false"); }
std::string field(const char* key, std::string_view v) { return std::string(",\"") + key + "\":" + json_string(v); }

}  // namespace

void EventStream::line(std::string&& json) {
  json += "}\n";
  if (sink_) sink_(json);
}

void EventStream::start(std::uint64_t tasks, std::uint64_t total, std::uint64_t already_done, int workers,
                           const std::string& program) {
  line(R"({"event":"start")" + field("tasks", tasks) + field("total", total) + field("already_done", already_done) +
       field("workers", workers) + field("program", std::string_view(program)));
}

void EventStream::end(const RunReport& r, int exit_status) {
  end(r, static_cast<std::uint64_t>(r.failed_indices().size()), exit_status);
}

void EventStream::end(const RunReport& r, std::uint64_t failed, int exit_status) {
  line(R"({"event":"end")" + field("tasks", r.tasks) + field("succeeded", r.succeeded) +
       field("failed", failed) + field("retries", r.retries) +
       field("worker_deaths", r.worker_deaths) + field("chaos_kills", r.chaos_kills) +
       ",\"wall_s\":" + num(std::chrono::duration<double>(r.wall).count()) + field("interrupted", r.interrupted) +
       field("halted", r.halted) + field("farm_error", std::string_view(r.farm_error)) + field("exit", exit_status));
}

void EventStream::on_worker_started(int slot, pid_t pid) {
  line(R"({"event":"worker")" + field("slot", slot) + field("pid", static_cast<int>(pid)));
}

void EventStream::on_tasks_done(const TasksDone& t) {
  std::string failed = ",\"failed\":[";
  for (std::size_t k = 0; k < t.failed.size(); ++k) failed += (k ? "," : "") + std::to_string(t.failed[k]);
  line(R"({"event":"chunk")" + field("slot", t.slot) + field("pid", static_cast<int>(t.pid)) + field("begin", t.begin) +
       field("end", t.end) + field("attempt", static_cast<int>(t.attempt)) +
       ",\"elapsed_s\":" + num(std::chrono::duration<double>(t.stop - t.start).count()) + failed + "]");
}

void EventStream::on_result(const IndexResult& r) {
  if (r.text.empty()) return;
  const std::string_view text(r.text.data(), r.text.size());
  // Not UTF-8 (binary, Latin-1): `text` has U+FFFD for what is not, and `bytes` the bytes as they
  // were, so that what the task printed can be had back (outside pass h12 F14).
  line(R"({"event":"output")" + field("index", r.index) + field("text", text) +
       (detail::valid_utf8(text) ? std::string() : ",\"bytes\":\"" + detail::base64(text) + "\""));
}

void EventStream::on_failure(const FailureRecord& f) {
  std::string s = R"({"event":"failure")";
  if (f.index) s += field("index", *f.index);
  s += field("cause", to_string(f.cause)) + field("attempt", static_cast<int>(f.attempt)) + field("final", f.final) +
       field("slot", f.slot) + field("pid", static_cast<int>(f.pid)) + field("exit_code", f.exit_code) +
       field("signal", f.signal);
  if (f.signal != 0) s += field("signal_name", std::string_view(signal_name(f.signal)));
  if (!f.exception_type.empty()) s += field("exception_type", std::string_view(f.exception_type));
  s += field("message", std::string_view(f.message)) + field("description", std::string_view(f.describe()));
  if (!f.stderr_tail.empty()) {
    const std::string_view tail(f.stderr_tail);
    s += field("stderr_tail", tail);  // (as `output`'s text: U+FFFD for what is not UTF-8, and then the bytes)
    if (!detail::valid_utf8(tail)) s += ",\"stderr_tail_bytes\":\"" + detail::base64(tail) + "\"";
  }
  line(std::move(s));
}

void EventStream::on_stall(const WorkerLiveness& w) {
  std::string s = R"({"event":"stall")" + field("slot", w.slot) + field("pid", static_cast<int>(w.pid));
  if (w.index) s += field("index", *w.index);
  s += ",\"seconds\":" + num(std::chrono::duration<double>(w.since_progress).count()) +
       field("state", std::string_view(&w.state, 1)) + field("stopped", w.stopped());
  if (w.task_pid != 0)  // the process that runs the task (an --exec command)
    s += field("task_pid", static_cast<int>(w.task_pid)) + field("task_state", std::string_view(&w.task_state, 1)) +
         field("task_stopped", w.task_stopped());
  if (w.stopped_pid != 0) s += field("stopped_pid", static_cast<int>(w.stopped_pid));  // what its task started
  if (w.stopped_again) s += field("stopped_again", true);
  line(std::move(s));
}

}  // namespace taskfarm
