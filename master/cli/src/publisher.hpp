// Publisher: puts a run's new files at their paths once the run has something to show — the
// joblog and the trace at the first task that ended (ok or failed), the output at the first task
// that succeeded. Until then they live under temporary names and whatever the user had at those
// paths is untouched: a run whose workers never start, or that is stopped before any task ends,
// changes no file of the user's. Farm's thread (an observer), then the main thread (finish()).
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
};

class Publisher final : public FarmObserver {
 public:
  /// `failed(why)` is called once if publishing fails (something appeared at a path since the
  /// plan looked): the caller stops the run; nothing of the user's was touched.
  Publisher(Unpublished output, Unpublished joblog, Unpublished trace, std::function<void(const std::string&)> failed);

  void on_tasks_done(const TasksDone& t) override;
  void on_failure(const FailureRecord& f) override;

  /// After the run: publishes what its report says it earned (a commit whose indices all
  /// failed publishes no output; report.succeeded > 0 does). Returns false if publishing failed.
  bool finish(const RunReport& report);
  bool output_published() const noexcept { return output_done_; }
  const std::string& error() const noexcept { return error_; }

 private:
  void publish_records();
  void publish_output();
  bool publish(Unpublished& u);

  Unpublished output_, joblog_, trace_;
  std::function<void(const std::string&)> failed_;
  bool records_done_ = false, output_done_ = false;
  std::string error_;
};

}  // namespace taskfarm::cli
