#include "resume.hpp"

#include "usage_error.hpp"

namespace taskfarm::cli {
namespace {

std::string describe_extent(const std::vector<std::uint64_t>& extent) {
  std::string s;
  for (std::size_t i = 0; i < extent.size(); ++i) s += (i ? "x" : "") + std::to_string(extent[i]);
  return s;
}

std::string or_none(const std::string& s) { return s.empty() ? "no output" : "'" + s + "'"; }

}  // namespace

ResumePlan plan_resume(const EarlierRun& earlier, const RunIdentity& now, const std::string& joblog_path) {
  const RunIdentity& was = earlier.identity;
  const std::string where = "--resume: the earlier run in joblog '" + joblog_path + "' ";
  if (was.extent != now.extent)
    throw UsageError(where + "had index space " + describe_extent(was.extent) + ", this run " +
                     describe_extent(now.extent));
  if (was.output != now.output)
    throw UsageError(where + "wrote " + or_none(was.output) + ", this run " + or_none(now.output));
  if (was.dtype != now.dtype || was.shape != now.shape)
    throw UsageError(where + "made a " + was.dtype + " " + was.shape + " output, this run asks for " +
                     now.dtype + " " + now.shape);
  return ResumePlan{earlier.done.complement(earlier.tasks), earlier.done.count()};
}

}  // namespace taskfarm::cli
