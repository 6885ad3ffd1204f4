#include "memory_failure.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <string>

namespace taskfarm::exec {

bool reports_allocation_failure(std::string_view tail) {
  static constexpr std::string_view kSaid[] = {
      "cannot allocate memory", "bad_alloc",       "memoryerror",      "out of memory",
      "outofmemoryerror",       "memory exhausted", "memory allocation", "failed to allocate", "xmalloc: cannot allocate",
  };
  std::string lower(tail);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::any_of(std::begin(kSaid), std::end(kSaid), [&lower](std::string_view s) { return lower.find(s) != std::string::npos; });
}

bool address_space_limited() {
  rlimit r{};
  return ::getrlimit(RLIMIT_AS, &r) == 0 && r.rlim_cur != RLIM_INFINITY;
}

}  // namespace taskfarm::exec
