#include "publisher.hpp"

#include "taskfarm/error.hpp"

namespace taskfarm::cli {

Publisher::Publisher(Unpublished output, Unpublished joblog, Unpublished trace,
                     std::function<void(const std::string&)> failed)
    : output_(output), joblog_(joblog), trace_(trace), failed_(std::move(failed)) {}

void Publisher::on_chunk_done(int, pid_t, std::uint64_t begin, std::uint64_t end, std::uint32_t,
                              std::chrono::nanoseconds) {
  // The farm reports a committed piece's failed indices just before the piece itself.
  std::uint64_t failed = 0;
  for (auto it = failed_since_done_.lower_bound(begin); it != failed_since_done_.end() && *it < end; ++it) ++failed;
  failed_since_done_.clear();
  publish_records();
  if (end - begin > failed) publish_output();
}

void Publisher::on_failure(const FailureRecord& f) {
  if (!f.index) return;  // a worker that died between tasks: no task ended
  failed_since_done_.insert(*f.index);
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
