#include "mpi_relay.hpp"

#include "mpi_order.hpp"

namespace taskfarm::cli::mpi {

void TextRelay::flush() {
  if (first_ != nullptr) first_->flush();
  if (text_.empty()) return;
  send_text(fd_, kind_, text_);
  text_.clear();
  last_ = std::chrono::steady_clock::now();
}

void TextRelay::flush_if_due() {
  if (text_.size() >= 16 * 1024 || std::chrono::steady_clock::now() - last_ >= lag_) flush();
}

void RowRelay::on_tasks_done(const TasksDone& t) {
  format_.append_done(text_, t);
  flush_if_due();
}

void RowRelay::on_failure(const FailureRecord& f) {
  if (format_.append_failure(text_, f)) flush_if_due();
}

void OutputRelay::on_result(const IndexResult& r) {
  // Not sent before its end (on_tasks_done, in the same commit): a worker program's output then
  // reaches rank 0 with its end, and is never printed whole without it.
  if (exec_) return;
  open_.emplace_back(r.index, text_.size());
  append_output_record(text_, r.index, 0, std::string_view(r.text.data(), r.text.size()));
}

void OutputRelay::on_tasks_done(const TasksDone& t) {
  // A worker program's records of this commit become their tasks' ends in place (one record per
  // task, not two: 50,000 tiny tasks took 10% longer so); a command's end is a record of its own.
  std::size_t k = 0;
  auto failed = t.failed.begin();
  for (std::uint64_t i = t.begin; i < t.end; ++i) {
    if (failed != t.failed.end() && *failed == i) {
      ++failed;  // (its end came with its failure)
      continue;
    }
    while (k < open_.size() && open_[k].first < i) ++k;
    if (k < open_.size() && open_[k].first == i) add_record_flags(text_, open_[k].second, o_done | o_succeeded);
    else append_output_record(text_, i, o_done | o_succeeded, {});
  }
  open_.clear();
  flush_if_due();
}

void OutputRelay::on_failure(const FailureRecord& f) {
  if (f.index && f.final) append_output_record(text_, *f.index, o_done, {});
  flush_if_due();
}

void OutputRelay::Pieces::on_result(const IndexResult& r) {
  append_output_record(relay.text_, r.index, 0, std::string_view(r.text.data(), r.text.size()));
  relay.flush_if_due();
}

}  // namespace taskfarm::cli::mpi
