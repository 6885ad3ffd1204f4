// Publisher: puts a run's new files at their paths once the run has something to show — the
// joblog once a row of it was written whole, the output at the first task that succeeded, the
// trace when the run ends (finish()) if a task ended and every record of it was written. Until
// then they live under temporary names and whatever the user had at those paths is untouched:
// a run whose workers never start, that is stopped before any task ends, whose joblog cannot
// take a single row or whose trace was cut (a full disk) changes no file of the user's. Farm's
// thread (two observers: the Publisher before the records' writers, records() after them), then
// the main thread (finish()).
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>

#include "taskfarm/detail/staged_file.hpp"
#include "taskfarm/farm.hpp"
#include "taskfarm/shared_array.hpp"

namespace taskfarm::cli {

/// A file the run writes under a temporary name: publish it over its path, replacing a regular
/// file only if one was there when the run was planned (one that appeared since is refused).
struct Unpublished {
  AnySharedArray* array = nullptr;     ///< the output (create_npy, Publish::later), or
  detail::StagedFile* file = nullptr;  ///< the joblog or trace
  bool replace_existing = false;
  /// The joblog or trace: whether the file holds what was written of a task yet (called after a
  /// task ended: the trace's record of it written, or not). Published only once it says true.
  std::function<bool()> holds_rows;
  /// Published by finish() only, once holds_rows() says the file is complete (a trace that
  /// replaces a file of the user's: a trace cut by a full disk never does).
  bool at_end = false;
};

class Publisher final : public FarmObserver {
 public:
  /// `failed(why)` is called once if publishing fails (something appeared at a path since the
  /// plan looked): the caller stops the run; nothing of the user's was touched.
  Publisher(Unpublished output, Unpublished joblog, Unpublished trace, std::function<void(const std::string&)> failed);

  void on_tasks_done(const TasksDone& t) override;
  void on_failure(const FailureRecord& f) override;

  /// The observer that publishes the joblog and the trace once they hold rows: add it after
  /// them (and after whatever prints output, which lets held "ok" rows be written).
  FarmObserver* records() noexcept { return &records_; }

  /// After the run: publishes what its report says it earned (a commit whose indices all
  /// failed publishes no output; report.succeeded > 0 does) and the records that hold rows.
  /// Returns false if publishing failed.
  bool finish(const RunReport& report);
  bool output_published() const noexcept { return output_done_; }
  const std::string& error() const noexcept { return error_; }

 private:
  class Records final : public FarmObserver {
   public:
    explicit Records(Publisher& p) : p_(p) {}
    void on_tasks_done(const TasksDone&) override { p_.publish_records(); }
    void on_failure(const FailureRecord&) override { p_.publish_records(); }
    void on_result(const IndexResult&) override { p_.publish_records(); }  // held rows written as printed
    void on_tick(const FarmTick&) override { p_.publish_records(); }

   private:
    Publisher& p_;
  };

  void publish_records(bool at_end = false);
  void publish_output();
  bool publish(Unpublished& u);

  Unpublished output_, joblog_, trace_;
  std::function<void(const std::string&)> failed_;
  Records records_{*this};
  bool ended_ = false;  // a task ended (ok or failed)
  bool records_done_ = false, output_done_ = false;
  std::string error_;
};

}  // namespace taskfarm::cli
