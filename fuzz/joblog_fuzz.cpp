// Joblogs (master/src/joblog_file.cpp): a resume (`taskfarm run --resume`, Joblog::resume)
// reads whatever file it is given. Contract: parse_identity() of the first line returns
// nullopt or an identity that format_identity() writes back to an equal one; read_joblog()
// throws Error (naming the file) or returns a state consistent with itself (done ranges
// sorted, merged, inside the index space, whatever its size: resume state is O(done ranges))
// — nothing else, whatever the bytes.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <limits>
#include <string>

#include "fuzz_check.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/joblog_file.hpp"

using namespace taskfarm;

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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  const std::optional<RunIdentity> id = parse_identity(text.substr(0, text.find('\n')));
  if (id) {
    fuzz::require(parse_identity(format_identity(*id)) == id, "parse(format(identity)) == identity");
  }
  try {
    const EarlierRun run = read_joblog(as_file(text));
    fuzz::require(id.has_value() && run.identity == *id, "read_joblog's identity is the first line's");
    // The done ranges are sorted, disjoint, not adjacent, inside the index space, and counted.
    std::uint64_t counted = 0, last_end = 0;
    bool first = true;
    for (const auto& [b, e] : run.done.ranges()) {
      fuzz::require(b < e && e <= run.tasks, "a done range is non-empty and inside the index space");
      fuzz::require(first || b > last_end, "done ranges are sorted, disjoint and merged");
      counted += e - b;
      last_end = e;
      first = false;
    }
    fuzz::require(counted == run.done.count(), "count() is the ranges' total");
  } catch (const Error&) {
  }
  return 0;
}
