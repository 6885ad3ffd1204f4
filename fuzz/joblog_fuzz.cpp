// Joblogs (master/cli/src/joblog.cpp): `taskfarm run --resume` reads whatever file --joblog
// names. Contract: parse_identity() of the first line returns nullopt or an identity that
// format_identity() writes back to an equal one; read_joblog() throws UsageError (naming the
// file) or returns a state consistent with itself — nothing else, whatever the bytes.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <string>

#include "fuzz_check.hpp"
#include "joblog.hpp"
#include "usage_error.hpp"

using namespace taskfarm;
using namespace taskfarm::cli;

namespace {

// The bytes as a regular file that read_joblog() can open by path (a memfd: no disk).
std::string as_file(std::string_view bytes) {
  static const int fd = ::memfd_create("joblog-fuzz", MFD_CLOEXEC);
  fuzz::require(fd >= 0, "memfd_create");
  fuzz::require(::ftruncate(fd, 0) == 0, "ftruncate memfd");
  fuzz::require(::pwrite(fd, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size()),
                "write memfd");
  return "/proc/self/fd/" + std::to_string(fd);
}

// read_joblog() holds one bit per task of the earlier run until resume state is O(done ranges)
// (issue 11, Rule 4, in progress elsewhere); until then it is fuzzed on index spaces it can
// hold. Remove this bound once read_joblog no longer allocates per task.
constexpr std::uint64_t kMaxTasksHeldPerTask = 1u << 20;

bool small_index_space(const RunIdentity& id) {
  std::uint64_t tasks = 1;
  for (const std::uint64_t e : id.extent) {
    if (e != 0 && tasks > kMaxTasksHeldPerTask / e) return false;
    tasks *= e;
  }
  return tasks <= kMaxTasksHeldPerTask;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  const std::optional<RunIdentity> id = parse_identity(text.substr(0, text.find('\n')));
  if (id) {
    fuzz::require(parse_identity(format_identity(*id)) == id, "parse(format(identity)) == identity");
    if (!small_index_space(*id)) return 0;
  }
  try {
    const EarlierRun run = read_joblog(as_file(text));
    fuzz::require(id.has_value() && run.identity == *id, "read_joblog's identity is the first line's");
    fuzz::require(run.done_count == static_cast<std::uint64_t>(std::count(run.done.begin(), run.done.end(), true)),
                  "done_count counts the done tasks");
  } catch (const UsageError&) {
  }
  return 0;
}
