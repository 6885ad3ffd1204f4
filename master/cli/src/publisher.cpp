#include "publisher.hpp"

#include "taskfarm/error.hpp"

namespace taskfarm::cli {

Publisher::Publisher(Unpublished output, Unpublished joblog, Unpublished trace,
                     std::function<void(const std::string&)> failed)
    : output_(std::move(output)), joblog_(std::move(joblog)), trace_(std::move(trace)), failed_(std::move(failed)) {}

void Publisher::on_tasks_done(const TasksDone& t) {
  ended_ = true;
  if (t.succeeded() > 0) publish_output();
}

void Publisher::on_failure(const FailureRecord& f) {
  if (f.index) ended_ = true;  // (a worker that died between tasks: no task ended)
}

bool Publisher::finish(const RunReport& report) {
  if (report.succeeded > 0) publish_output();
  publish_records(/*at_end=*/true);
  return error_.empty();
}

void Publisher::publish_records(bool at_end) {
  if (records_done_ || !ended_ || !error_.empty()) return;
  // Each file on its own: a trace that holds its records replaces the user's even while the
  // joblog cannot take a row, and the other way round.
  bool done = true;
  for (Unpublished* u : {&joblog_, &trace_}) {
    if (u->file == nullptr || u->file->published()) continue;
    if ((u->at_end && !at_end) || !u->holds_rows || !u->holds_rows()) {
      done = false;
    } else if (!publish(*u)) {
      return;
    }
  }
  records_done_ = done;
}

void Publisher::publish_output() {
  if (output_done_ || !error_.empty()) return;
  output_done_ = publish(output_);
}

bool Publisher::publish(Unpublished& u) {
  try {
    if (u.array != nullptr && !u.array->published())
      u.array->publish(u.replace_existing ? AnySharedArray::OnExisting::replace : AnySharedArray::OnExisting::refuse);
    if (u.file != nullptr && !u.file->published()) u.file->publish(u.replace_existing);
    return true;
  } catch (const Error& e) {
    error_ = e.what();
    if (failed_) failed_(error_);
    return false;
  }
}

}  // namespace taskfarm::cli
