#include "publisher.hpp"

#include "taskfarm/error.hpp"

namespace taskfarm::cli {

Publisher::Publisher(Unpublished output, Unpublished joblog, Unpublished trace,
                     std::function<void(const std::string&)> failed)
    : output_(output), joblog_(joblog), trace_(trace), failed_(std::move(failed)) {}

void Publisher::on_tasks_done(const TasksDone& t) {
  publish_records();
  if (t.succeeded() > 0) publish_output();
}

void Publisher::on_failure(const FailureRecord& f) {
  if (!f.index) return;  // a worker that died between tasks: no task ended
  publish_records();
}

bool Publisher::finish(const RunReport& report) {
  if (report.succeeded > 0) {
    publish_records();
    publish_output();
  }
  return error_.empty();
}

void Publisher::publish_records() {
  if (records_done_ || !error_.empty()) return;
  records_done_ = publish(joblog_) && publish(trace_);
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
