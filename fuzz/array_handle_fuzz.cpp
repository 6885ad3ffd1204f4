// Shared-array handle strings (common/src/array_handle.cpp): a worker attaches whatever handle
// its master names. Contract: parse_handle() throws Error or returns fields within their limits
// (a kind, 0..8 non-empty axes whose byte count may still overflow, a name with no NUL byte, which
// would make the OS open another name than the one given), and format_handle() of them parses
// back to the same fields.
#include "fuzz_check.hpp"
#include "taskfarm/detail/array_handle.hpp"
#include "taskfarm/error.hpp"

using namespace taskfarm;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  detail::ParsedHandle h;
  try {
    h = detail::parse_handle(fuzz::as_text(data, size));
  } catch (const Error&) {
    return 0;
  }
  fuzz::require(h.backing != AnySharedArray::Backing::none, "a handle names shm or npy");
  fuzz::require(h.shape.size() <= max_shape_dims, "at most max_shape_dims axes");
  for (const std::size_t extent : h.shape) fuzz::require(extent != 0, "no empty axis");
  fuzz::require(!h.name.empty(), "a name");
  fuzz::require(h.name.find('\0') == std::string::npos, "no NUL byte in the name");
  fuzz::require(detail::parse_handle(detail::format_handle(h)) == h, "parse(format(h)) == h");
  return 0;
}
